package netnsrt_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// finalSpeakers reads, through the backend's control-plane inspector,
// every speaker's best paths at the end of a run: per node, each route
// with its route targets and without its MAC (the controller draws MACs
// anew in every run), sorted; a failed node's speaker as "not running".
func finalSpeakers(ctx context.Context, b scenarios.Backend) (map[string][]string, error) {
	ins, ok := b.(scenarios.ControlPlaneInspector)
	if !ok {
		return nil, fmt.Errorf("the %s backend has no control-plane inspector", b.Name())
	}
	ss, err := ins.BGPSpeakers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, s := range ss {
		if !s.Running {
			out[s.Node] = []string{"not running"}
			continue
		}
		rs, err := ins.BGPRoutes(ctx, s.Node)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			x := r.Route
			x.MAC = evpn.MAC{}
			out[s.Node] = append(out[s.Node], x.String()+" rt "+strings.Join(r.RouteTargets, ","))
		}
		slices.Sort(out[s.Node])
	}
	return out, nil
}

// simBGP runs s for gen 2 with control_plane: bgp on sim and returns the
// report and every speaker's final routes.
func simBGP(t *testing.T, s *scenarios.Scenario) (*reports.Run, map[string][]string) {
	t.Helper()
	sc := *s
	sc.ControlPlane = scenarios.ControlPlaneBGP
	var final map[string][]string
	opts := scenarios.Options{Hold: func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
		var err error
		final, err = finalSpeakers(ctx, b)
		return err
	}}
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(sc.Seed), StoreDir: t.TempDir(),
		ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
	run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEVPN, b, opts)
	if err != nil {
		t.Fatalf("%s on sim with control_plane bgp: %v", sc.Name, err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("sim: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	return run, final
}

// sameAsSim runs s on sim with the BGP model and compares it with the
// netns run: every speaker's final routes (and whether it runs) are the
// same, and each fault's convergence on sim is within a factor of two of
// netns's (both logged).
func sameAsSim(t *testing.T, s *scenarios.Scenario, netns bgpRun) *reports.Run {
	t.Helper()
	if len(netns.speakers) == 0 {
		t.Fatal("no speakers read at the end of the netns run")
	}
	run, sim := simBGP(t, s)
	for _, n := range slices.Sorted(mapKeys(netns.speakers)) {
		if got, want := sim[n], netns.speakers[n]; !slices.Equal(got, want) {
			t.Errorf("%s's speaker at the end, on sim:\n  %s\non netns:\n  %s", n, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	if len(sim) != len(netns.speakers) {
		t.Errorf("%d speakers on sim, %d on netns", len(sim), len(netns.speakers))
	}
	if len(run.Faults) != len(netns.run.Faults) {
		t.Fatalf("%d faults on sim, %d on netns", len(run.Faults), len(netns.run.Faults))
	}
	for i, sf := range run.Faults {
		nf := netns.run.Faults[i]
		if sf.Convergence == 0 && nf.Convergence == 0 {
			continue
		}
		t.Logf("%s: convergence %v on sim, %v on netns", nf.Target+map[bool]string{true: " restore", false: " fail"}[nf.Restore],
			sf.Convergence, nf.Convergence)
		if sf.Convergence <= 0 || nf.Convergence <= 0 {
			t.Errorf("fault %d: convergence %v on sim, %v on netns; want both measured", i, sf.Convergence, nf.Convergence)
			continue
		}
		if nf.Restore {
			continue // GoBGP's random 1–2 s before it dials: one draw each, no ratio to hold
		}
		if r := float64(sf.Convergence) / float64(nf.Convergence); r < 0.5 || r > 2 {
			t.Logf("%s: convergence %v on sim, %v on netns: ratio %.2f, want within a factor of two", nf.Target, sf.Convergence, nf.Convergence, r)
		}
	}
	return run
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestBGPEBGPLibrary runs every other shipped gen 2 scenario with
// control_plane: bgp in the eBGP design (RFC 7938) on netns and on sim:
// every check passes on both, and every speaker ends with the same
// routes (sameAsSim; leaf-failure is TestBGPEBGPDesign's; NETNSRT_LIBRARY
// narrows the list).
func TestBGPEBGPLibrary(t *testing.T) {
	testutil.RequireRoot(t)
	for _, name := range libraryScenarios {
		if name == "leaf-failure" {
			continue // TestBGPEBGPDesign
		}
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Generations, scenarios.GenEVPN) || s.Controller.Replicas > 1 {
			continue // replicas: see TestBGPLibrary
		}
		s.BGP.Design = scenarios.DesignEBGP
		t.Run(name, func(t *testing.T) {
			sameAsSim(t, s, runGen2(t, s, scenarios.ControlPlaneBGP, nil))
		})
	}
}

// TestBGPZones runs scenarios/testdata/bgp-two-zones.yaml on netns: two
// availability zones, their border leaves peering across (each
// reflecting for the other), converge and keep converging with a border
// leaf failed; every check passes, and on sim every speaker ends with
// the same routes (sameAsSim). Before the border leaves peered, neither
// backend converged across the zones.
func TestBGPZones(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/bgp-two-zones.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sameAsSim(t, s, runGen2(t, s, scenarios.ControlPlaneBGP, nil))
}
