package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
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
	// A plot per table that grew: evpn's type-2 routes, macs, ARP
	// suppression and host routes; ebpf's endpoints and ipcache (no
	// traffic: no conntrack).
	if err != nil || strings.Count(string(html), "<svg") != 6 || !strings.Contains(string(html), "limit reached") {
		t.Errorf("capacity.html: %v, %d plots", err, strings.Count(string(html), "<svg"))
	}
	if code := run([]string{"capacity", "--per-host", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("--per-host 0: exit %d, want 2", code)
	}
}

// TestCapacityPlots: a plot per table name with every generation that
// has the table on it (macs: vlan and evpn), and a table whose size is
// the same at every point listed instead of drawn.
func TestCapacityPlots(t *testing.T) {
	pt := func(gen string, per int, tables ...reports.TableStat) capacityPoint {
		return capacityPoint{Generation: gen, PerHost: per, Hosts: 4, Tables: tables}
	}
	points := []capacityPoint{
		pt("vlan", 10, reports.TableStat{Name: "macs", Largest: 40}), pt("vlan", 100, reports.TableStat{Name: "macs", Largest: 400}),
		pt("evpn", 10, reports.TableStat{Name: "macs", Largest: 40}, reports.TableStat{Name: "vrfs", Largest: 1}),
		pt("evpn", 100, reports.TableStat{Name: "macs", Largest: 400}, reports.TableStat{Name: "vrfs", Largest: 1}),
	}
	plots, constant, err := capacityPlots(points)
	if err != nil {
		t.Fatal(err)
	}
	if len(plots) != 1 || !slices.Equal(constant, []string{"evpn, vrfs: 1"}) {
		t.Fatalf("%d plots, constant %q; want the macs plot and vrfs listed", len(plots), constant)
	}
	svg := string(plots[0])
	for _, want := range []string{">macs<", ">vlan<", ">evpn<", ">instances per host<", ">entries, largest node<",
		"stroke:" + strings.ToUpper(reports.GenColour("vlan")), "stroke:" + strings.ToUpper(reports.GenColour("evpn"))} {
		if !strings.Contains(svg, want) {
			t.Errorf("macs plot lacks %q", want)
		}
	}
}
