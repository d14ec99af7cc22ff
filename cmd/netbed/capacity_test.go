package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestCapacity: table sizes grow with the instances per host as the
// generations say they must, the study stops at a generation's address
// limit and says which pool, and every output is written.
func TestCapacity(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"capacity", "-q", "--gen", "evpn,ebpf", "--per-host", "5,2,300", "--leaves", "2", "--hosts-per-leaf", "1", "--traffic=false", "--out", dir}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md := stdout.String()
	for _, want := range []string{
		"## evpn (2 hosts)", "| table | 2/host | 5/host | 300/host |",
		"| type-2 routes | 4 | 10 | 600 |",               // a MAC/IP route per pod
		"## ebpf (2 hosts)", "| endpoints | 2 | 5 | – |", // local IPAM: a /24 per node
		"At 300 per host: **limit reached**", "local IPAM of host1: address pool exhausted (pools 10.0.0.0/24)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("capacity output lacks %q:\n%s", want, md)
		}
	}
	raw, err := os.ReadFile(dir + "/capacity.json")
	if err != nil {
		t.Fatal(err)
	}
	var points []capacityPoint
	if err := json.Unmarshal(raw, &points); err != nil || len(points) != 6 {
		t.Fatalf("capacity.json: %d points, %v", len(points), err)
	}
	html, err := os.ReadFile(dir + "/capacity.html")
	if err != nil || strings.Count(string(html), "<svg") != 2 || !strings.Contains(string(html), "limit reached") {
		t.Errorf("capacity.html: %v, %d plots", err, strings.Count(string(html), "<svg"))
	}
	if code := run([]string{"capacity", "--per-host", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("--per-host 0: exit %d, want 2", code)
	}
}
