package netnsrt_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// TestSilentFailure: with the scenario's hold time of 3 s (negotiated on
// every session), a leaf failed silently is withdrawn by the other leaves'
// speakers only once the route reflectors' hold timers have expired, at
// least hold − keepalive (2 s) after the fault and later than a leaf that
// lost power in the same run, whose carrier loss took its sessions down
// at once; meanwhile its instance is unreachable, and after the restore
// (a reboot) everything is back. Every check of the run passes. On sim
// (scenarios/simrt, the BGP model) the same scenario ends with every
// speaker holding the same routes, and the silent failure's convergence
// is within a factor of two of netns's in this run (both about the hold
// time).
func TestSilentFailure(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, s.Name)
	var holds []string
	opts := scenarios.Options{Progress: func(msg string) {
		if holds != nil || !strings.Contains(msg, " fail") {
			return
		}
		c, ok := rt.Speaker("spine1")
		if !ok {
			t.Error("spine1's speaker does not run")
			return
		}
		ss, err := c.Sessions(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		for _, x := range ss {
			holds = append(holds, x.Hold.String()+"/"+x.Keepalive.String())
		}
	}}
	var speakers map[string][]string
	opts.Hold = func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
		var err error
		speakers, err = finalSpeakers(ctx, b)
		return err
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(holds) != 3 || slices.ContainsFunc(holds, func(h string) bool { return h != "3s/1s" }) {
		t.Errorf("spine1's sessions negotiated hold/keepalive %v; want 3s/1s on each of 3", holds)
	}
	fault := func(target string) reports.Fault {
		i := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == target && !f.Restore })
		if i < 0 {
			t.Fatalf("no failure of %s recorded: %+v", target, run.Faults)
		}
		t.Logf("%s", run.Faults[i])
		return run.Faults[i]
	}
	power, silent := fault("node leaf1"), fault("node leaf2")
	if power.Convergence <= 0 || silent.Convergence <= 0 {
		t.Fatalf("convergence not measured: power %v, silent %v", power.Convergence, silent.Convergence)
	}
	if !strings.HasPrefix(silent.Detail, "silent") || strings.HasPrefix(power.Detail, "silent") {
		t.Errorf("fault details: power %q, silent %q", power.Detail, silent.Detail)
	}
	// The hold timer cannot expire before hold − keepalive has passed
	// since the fault: the last keepalive was sent at most one interval
	// before it.
	if silent.Convergence < 2*time.Second {
		t.Errorf("silent failure withdrawn after %v, before the hold timer (3 s, keepalive 1 s) could expire", silent.Convergence)
	}
	if silent.Convergence <= power.Convergence {
		t.Errorf("silent failure withdrawn after %v, power loss after %v: the silent one should wait for the hold timer", silent.Convergence, power.Convergence)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	sim := sameAsSim(t, s, bgpRun{run: run, speakers: speakers})
	i := slices.IndexFunc(sim.Faults, func(f reports.Fault) bool { return f.Target == "node leaf2" && !f.Restore })
	if i < 0 {
		t.Fatalf("no silent failure of leaf2 on sim: %+v", sim.Faults)
	}
	ratio := float64(sim.Faults[i].Convergence) / float64(silent.Convergence)
	t.Logf("silent failure: convergence %v on sim, %v on netns: ratio %.2f", sim.Faults[i].Convergence, silent.Convergence, ratio)
	// The silent leaf's restore (a reboot) on both, logged: its sessions
	// come back after the connect retry on netns too, since a session the
	// hold timer ended is configured afresh rather than left idle.
	restored := func(fs []reports.Fault) time.Duration {
		i := slices.IndexFunc(fs, func(f reports.Fault) bool { return f.Target == "node leaf2" && f.Restore })
		if i < 0 {
			t.Fatalf("no restore of leaf2 recorded: %+v", fs)
		}
		return fs[i].Convergence
	}
	t.Logf("silent leaf restored: convergence %v on sim, %v on netns", restored(sim.Faults), restored(run.Faults))
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("silent failure: convergence %v on sim, %v on netns: ratio %.2f, want within a factor of two", sim.Faults[i].Convergence, silent.Convergence, ratio)
	}
}

var _ = netnsrt.Executable
