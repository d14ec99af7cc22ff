package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanCommand: netbed plan of a tiny fabric writes plan.md, .html and
// .json; --shard plans every n-th generation.
func TestPlanCommand(t *testing.T) {
	out := t.TempDir()
	tiny := []string{"plan", "-q", "--zones", "2", "--nodes-per-zone", "4", "--hosts-per-leaf", "2", "--spines", "2",
		"--instances-per-zone", "8", "--instances-per-network", "4", "--out", out}
	var stdout, stderr bytes.Buffer
	if code := run(tiny, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"plan.md", "plan.html", "plan.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, want := range []string{"## vlan", "## evpn", "## ebpf", "Blast radius"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	stdout.Reset()
	if code := run(append(tiny, "--shard", "1/3"), &stdout, &stderr); code != 0 {
		t.Fatalf("shard: exit %d: %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "## evpn") || strings.Contains(s, "## vlan") || strings.Contains(s, "## ebpf") {
		t.Errorf("shard 1/3 of vlan,evpn,ebpf planned:\n%s", s)
	}
}
