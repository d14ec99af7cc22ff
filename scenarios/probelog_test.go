package scenarios_test

import (
	"context"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// largeMatrix is 48 instances probing each other: 2,256 probes, more
// than a run keeps in full.
const largeMatrix = `name: large-matrix
topology: {builder: spine-leaf, params: {spines: 2, leaves: 4, hosts_per_leaf: 3}}
generations: [ebpf-direct]
seed: 1
networks:
  - {name: a, subnet: 10.0.0.0/16}
steps:
  - spawn: {name: vm, kind: vm, count: 48, network: a}
  - traffic: {proto: icmp, from: [vm], to: [vm], matrix: true, tag: all}
  - expect: {tag: all, all_reachable: true, hops: {ebpf-direct: 1}}
`

// TestLargeRunKeepsSample: a run of more probes than it keeps in full
// keeps a sample (every outcome with an example and its path) and counts
// them all: its figures are those of every probe it sent, as OnProbe saw
// them; a check's failure still shows the failing probe's path.
func TestLargeRunKeepsSample(t *testing.T) {
	s, err := scenarios.Parse("large.yaml", []byte(largeMatrix))
	if err != nil {
		t.Fatal(err)
	}
	var all []reports.Probe
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPFDirect, simBackend(t, 1),
		scenarios.Options{OnProbe: func(p reports.Probe) { all = append(all, p) }})
	if err != nil {
		t.Fatal(err)
	}
	const sent = 48 * 47
	if len(all) != sent {
		t.Fatalf("OnProbe saw %d probes, want %d", len(all), sent)
	}
	st := reports.StatsOf(run)
	if st.Sent != sent || run.AllProbesKept() {
		t.Fatalf("stats count %d probes, %d kept in full; want %d sent and a sample", st.Sent, len(run.Probes), sent)
	}
	if len(run.Probes) < 1000 || len(run.Probes) >= sent {
		t.Errorf("%d probes kept in full, want at least the first 1000 and fewer than all", len(run.Probes))
	}
	// The figures of every probe: those of the full list, once every probe
	// is marked as the expectations marked it (all: delivered).
	for i := range all {
		all[i].Expect = reports.ExpectDelivered
	}
	want := reports.StatsOf(&reports.Run{Probes: all})
	got := *st
	if got.Sent != want.Sent || got.Delivered != want.Delivered || got.HopsMin != want.HopsMin || got.HopsMax != want.HopsMax ||
		got.RTTp50 != want.RTTp50 || got.RTTp99 != want.RTTp99 || got.RTTmax != want.RTTmax || len(got.Classes) != len(want.Classes) {
		t.Errorf("run's figures %+v, of every probe %+v", got, *want)
	}
	for i, c := range got.Classes {
		if c != want.Classes[i] {
			t.Errorf("class %d: %+v, of every probe %+v", i, c, want.Classes[i])
		}
	}
	kept := map[reports.ProbeKey]bool{}
	for _, p := range run.Probes {
		if len(p.Path) == 0 {
			t.Fatalf("kept probe %s -> %s has no path", p.From, p.To)
		}
		if p.Expect != reports.ExpectDelivered {
			t.Fatalf("kept probe %s -> %s: expect %q, want delivered", p.From, p.To, p.Expect)
		}
		kept[reports.KeyOf(p)] = true
	}
	for _, c := range got.Classes {
		if !kept[c.ProbeKey] {
			t.Errorf("no probe of outcome %s kept in full", c.ProbeKey)
		}
	}
	var hops *reports.Check
	for i := range run.Checks {
		if strings.HasPrefix(run.Checks[i].What, "hops = ") {
			hops = &run.Checks[i]
		}
	}
	if hops == nil || hops.Passed || !strings.Contains(hops.Detail, " → ") {
		t.Errorf("hops = 1 check: %+v; want it failed with the probe's path", hops)
	}
}
