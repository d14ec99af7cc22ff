package scenarios_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// TestControllerKilledMidStorm replays controller-restart on sim: the
// controller dies while the storm's spawns are running, its clients find
// the API unavailable until the restart and then carry on, and the report
// says how long they waited.
func TestControllerKilledMidStorm(t *testing.T) {
	s, err := scenarios.Load("library/controller-restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	checkMidStorm(t, run)
}

// checkMidStorm checks that a controller-restart run killed the
// controller while storm spawns ran, and measured the outage.
func checkMidStorm(t *testing.T, run *reports.Run) {
	t.Helper()
	if len(run.Faults) != 2 || run.Faults[0].Target != "controller" || run.Faults[0].Restore || !run.Faults[1].Restore {
		t.Fatalf("faults %+v; want the controller killed, then restored", run.Faults)
	}
	kill, restore := run.Faults[0], run.Faults[1]
	t.Logf("%s; %s", run.Faults[0], run.Faults[1])
	testutil.CheckKilledMidStorm(t, run, kill, restore)
}

// CheckController finds an acknowledged address the controller lost or
// changed.
func TestCheckControllerFindsLostAddresses(t *testing.T) {
	b := simBackend(t, 1)
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nets := scenarios.Segments([]scenarios.Network{{Name: "app", Subnet: netip.MustParsePrefix("10.7.0.0/24")}})
	if err := b.Start(ctx, scenarios.Env{Generation: scenarios.GenEVPN, Topology: topo, Seed: 1, Networks: nets}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in, err := b.Spawn(ctx, scenarios.SpawnRequest{Name: "vm-1", Kind: "vm", Host: "host1", Network: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b.CheckController(ctx, []scenarios.Instance{in}); err != nil || len(p) != 0 {
		t.Fatalf("a consistent controller: %v %v", p, err)
	}
	moved := in
	moved.IP = in.IP.Next()
	ghost := scenarios.Instance{Name: "vm-9", IP: netip.MustParseAddr("10.7.0.99")}
	p, err := b.CheckController(ctx, []scenarios.Instance{moved, ghost})
	if err != nil || len(p) != 2 || !strings.Contains(p[0], "vm-1 was given") || !strings.Contains(p[1], "vm-9 was given 10.7.0.99, but its port is gone") {
		t.Errorf("problems %q (%v); want vm-1's changed address and vm-9's lost port", p, err)
	}
}
