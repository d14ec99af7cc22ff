package netnsrt_test

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// TestFailuresWithdraw fails a leaf (gen 2) and a host (gens 2 and 3
// with direct routing) on sim and on netns, through the backend every
// runtime shares, and reads the table sizes the report gets: what the
// failed device advertised is gone from every other device's tables,
// and back after the restore. A failed host's ports go down in the
// controller, and the fault's report lists them.
func TestFailuresWithdraw(t *testing.T) {
	runtimes := []struct {
		name string
		new  func(t *testing.T) *scenarios.FabricBackend
	}{
		{"sim", func(t *testing.T) *scenarios.FabricBackend {
			return scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(1), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency})
		}},
		{"netns", func(t *testing.T) *scenarios.FabricBackend {
			testutil.RequireRoot(t)
			return scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: newRuntime(t, "faults"), StoreDir: t.TempDir()})
		}},
	}
	for _, rt := range runtimes {
		t.Run(rt.name+"/evpn", func(t *testing.T) { leafAndHostFailure(t, rt.new(t)) })
		t.Run(rt.name+"/ebpf-direct", func(t *testing.T) { directHostFailure(t, rt.new(t)) })
	}
}

// start starts b on 2 spines, 3 leaves and a host per leaf, with one
// instance per host.
func start(t *testing.T, b *scenarios.FabricBackend, gen scenarios.Generation) {
	t.Helper()
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 3, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nets := scenarios.Segments([]scenarios.Network{{Name: "app", Subnet: netip.MustParsePrefix("10.7.0.0/24")}})
	if err := b.Start(ctx, scenarios.Env{Generation: gen, Topology: topo, Seed: 1, Networks: nets}); err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	for i, h := range []string{"host1", "host2", "host3"} {
		if _, err := b.Spawn(ctx, scenarios.SpawnRequest{Name: "vm-" + string(rune('1'+i)), Kind: "vm", Host: h, Network: "app"}); err != nil {
			t.Fatal(err)
		}
	}
}

// tables returns the backend's table sizes now, by "node/table".
func tables(t *testing.T, b *scenarios.FabricBackend) (map[string]int, *reports.Run) {
	t.Helper()
	var run reports.Run
	if err := b.Finish(&run); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, x := range run.Tables {
		out[x.Node+"/"+x.Name] = x.Entries
	}
	return out, &run
}

func fault(t *testing.T, b *scenarios.FabricBackend, tg scenarios.Target, up bool) {
	t.Helper()
	f := b.Fail
	if up {
		f = b.Restore
	}
	if err := f(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	// On sim the fault happens when time next runs.
	if err := b.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func leafAndHostFailure(t *testing.T, b *scenarios.FabricBackend) {
	start(t, b, scenarios.GenEVPN)
	before, _ := tables(t, b)
	fault(t, b, scenarios.Target{Node: "leaf1"}, false)
	after, run := tables(t, b)
	// vm-1 (behind leaf1): its type-2 route and leaf1's type-3 route go,
	// and leaf2 and leaf3 forget its MAC, its host route and leaf1 as a
	// flood VTEP.
	for _, k := range []string{"evpn/type-2 routes", "evpn/type-3 routes", "leaf2/macs", "leaf2/host routes", "leaf2/flood vteps", "leaf3/macs", "leaf3/arp suppression", "leaf3/flood vteps"} {
		if after[k] != before[k]-1 {
			t.Errorf("%s: %d before leaf1 failed, %d after; want one less", k, before[k], after[k])
		}
	}
	if f := run.Faults; len(f) != 1 || f[0].RoutesWithdrawn != 2 {
		t.Errorf("faults %+v; want leaf1's failure with 2 routes withdrawn", f)
	}
	fault(t, b, scenarios.Target{Node: "leaf1"}, true)
	if again, _ := tables(t, b); !maps.Equal(again, before) {
		t.Errorf("tables after leaf1's restore differ from before its failure:\nbefore %v\nafter  %v", before, again)
	}

	ctx := context.Background()
	fault(t, b, scenarios.Target{Node: "host2"}, false)
	_, run = tables(t, b)
	last := run.Faults[len(run.Faults)-1]
	if !slices.Equal(last.PortsDown, []string{"vm-2"}) || last.Target != "node host2" {
		t.Errorf("host2's failure reported %+v; want ports down [vm-2]", last)
	}
	if s, err := b.PortState(ctx, "vm-2"); err != nil || s == "ACTIVE_ACTIVE" {
		t.Errorf("vm-2's port with its host failed: %s (%v); want it down", s, err)
	}
	if s, err := b.PortState(ctx, "vm-1"); err != nil || s != "ACTIVE_ACTIVE" {
		t.Errorf("vm-1's port (host1 is up): %s (%v)", s, err)
	}
	fault(t, b, scenarios.Target{Node: "host2"}, true)
	if s, err := b.PortState(ctx, "vm-2"); err != nil || s != "ACTIVE_ACTIVE" {
		t.Errorf("vm-2's port after host2's restore: %s (%v)", s, err)
	}
}

// directHostFailure: with direct routing the leaves and spines route
// every node's pod CIDR; a failed host's route is withdrawn.
func directHostFailure(t *testing.T, b *scenarios.FabricBackend) {
	start(t, b, scenarios.GenEBPFDirect)
	before, _ := tables(t, b)
	fault(t, b, scenarios.Target{Node: "host2"}, false)
	after, _ := tables(t, b)
	for _, k := range []string{"spine1/routes", "spine2/routes", "leaf1/routes", "leaf3/routes"} {
		if after[k] >= before[k] {
			t.Errorf("%s: %d before host2 failed, %d after; want fewer (its node CIDR and node IP withdrawn)", k, before[k], after[k])
		}
	}
	fault(t, b, scenarios.Target{Node: "host2"}, true)
	if again, _ := tables(t, b); !maps.Equal(again, before) {
		t.Errorf("tables after host2's restore differ from before its failure:\nbefore %v\nafter  %v", before, again)
	}
}

// TestControllerProcessKilledMidStorm replays controller-restart on netns:
// the controller is its own process, gets SIGKILL while the storm's
// spawns run, and is restarted on its store; the clients' outage is in
// the report and every check (no address lost or handed out twice, ports
// back to ACTIVE_ACTIVE) holds.
func TestControllerProcessKilledMidStorm(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/controller-restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: newRuntime(t, s.Name), StoreDir: t.TempDir()}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Faults) != 2 {
		t.Fatalf("faults %+v; want the controller killed, then restored", run.Faults)
	}
	kill, restore := run.Faults[0], run.Faults[1]
	t.Logf("%s; %s", kill, restore)
	if !strings.HasPrefix(kill.Detail, "SIGKILL to pid ") || !strings.Contains(restore.Detail, "controller serve, pid ") {
		t.Errorf("kill %q, restore %q; want a SIGKILL to the controller process and a new process", kill.Detail, restore.Detail)
	}
	testutil.CheckKilledMidStorm(t, run, kill, restore)
}
