package scenarios_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/bfd"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// TestSilentFailureOnSim runs testdata/silent-failure.yaml on sim: every
// check passes (the silently failed leaf's route is withdrawn, its
// instance unreachable meanwhile, everything back after the restore);
// the silent leaf's routes go only when the hold timer (3 s, keepalive
// 1 s) has expired, between hold − keepalive and hold after the fault
// (plus the withdrawal's few milliseconds), later than those of the leaf
// that lost power in the same run; in the report the fault says silent.
func TestSilentFailureOnSim(t *testing.T) {
	s, err := scenarios.Load("testdata/silent-failure.yaml")
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
	fault := func(target string) reports.Fault {
		i := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == target && !f.Restore })
		if i < 0 {
			t.Fatalf("no failure of %s recorded: %+v", target, run.Faults)
		}
		t.Logf("%s", run.Faults[i])
		return run.Faults[i]
	}
	power, silent := fault("node leaf1"), fault("node leaf2")
	if !strings.HasPrefix(silent.Detail, "silent") || strings.HasPrefix(power.Detail, "silent") {
		t.Errorf("fault details: power %q, silent %q", power.Detail, silent.Detail)
	}
	if silent.Convergence < 2*time.Second || silent.Convergence > 3*time.Second+100*time.Millisecond {
		t.Errorf("silent failure withdrawn after %v, want when the hold timer expires: 2–3 s (hold 3 s, keepalive 1 s)", silent.Convergence)
	}
	if power.Convergence <= 0 || power.Convergence >= silent.Convergence {
		t.Errorf("power loss withdrawn after %v, silent failure after %v: carrier loss should be at once", power.Convergence, silent.Convergence)
	}
}

// TestSilentFailureBFDOnSim runs testdata/silent-failure.yaml on sim with
// bgp: {bfd: true} and BGP's default timers (hold 9 s, keepalive 3 s), as
// TestBFDSilentFailure does on netns: every check passes, and the leaf
// failed silently is withdrawn when the spines' BFD sessions notice, the
// detection time (3 × 300 ms) after the last packet they had from it
// (less than an interval before the fault), plus the withdrawal's few
// milliseconds: long before the hold timer could have expired.
func TestSilentFailureBFDOnSim(t *testing.T) {
	s, err := scenarios.Load("testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	i := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == "node leaf2" && !f.Restore })
	if i < 0 {
		t.Fatalf("no failure of leaf2 recorded: %+v", run.Faults)
	}
	c := run.Faults[i].Convergence
	t.Logf("%s", run.Faults[i])
	detect := bfd.DefaultDetectMult * bfd.DefaultInterval
	if c <= detect-bfd.DefaultInterval || c > detect+100*time.Millisecond {
		t.Errorf("silent failure with BFD withdrawn after %v, want when BFD notices: %v–%v after the fault (and the withdrawal)", c, detect-bfd.DefaultInterval, detect)
	}
}
