package scenarios_test

import (
	"context"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios"
)

// TestBGPZonesOnSim runs testdata/bgp-two-zones.yaml on sim with
// control_plane: bgp: two availability zones joined by their border
// leaves converge (a route of a zone's leaf reaches the other zone's
// leaves, an instance reaches one in the other zone) and still do with
// one border leaf failed, whose restore converges once its sessions are
// up (it originates nothing to wait for). The eBGP design, whose spines share one AS, is
// refused for more than one zone, naming the link.
func TestBGPZonesOnSim(t *testing.T) {
	s, err := scenarios.Load("testdata/bgp-two-zones.yaml")
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
	for _, f := range run.Faults {
		t.Logf("%s", f)
		if f.Restore && (f.Convergence <= 0 || strings.Contains(f.Detail, "not converged")) {
			t.Errorf("restore of %s: %s; want it converged once its sessions are up (it originates nothing)", f.Target, f)
		}
	}
	s.BGP.Design = scenarios.DesignEBGP
	if _, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{}); err == nil ||
		!strings.Contains(err.Error(), "joins availability zones az1 and az2") {
		t.Errorf("design ebgp across zones: %v; want an error naming the link between the zones", err)
	}
}
