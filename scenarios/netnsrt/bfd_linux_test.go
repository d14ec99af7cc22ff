package netnsrt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/scenarios/simrt"
)

// silentConvergence returns the convergence of the first silent failure
// of a node in run.
func silentConvergence(t testing.TB, run *reports.Run, node string) time.Duration {
	t.Helper()
	i := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == "node "+node && !f.Restore })
	if i < 0 {
		t.Fatalf("no failure of %s recorded: %+v", node, run.Faults)
	}
	if run.Faults[i].Convergence <= 0 {
		t.Fatalf("convergence of %s not measured: %+v", node, run.Faults[i])
	}
	return run.Faults[i].Convergence
}

// TestBFDSilentFailure runs the silent-failure scenario with bgp: {bfd:
// true}, BGP's default timers (hold 9 s, keepalive 3 s) and leaf3 as FRR:
// netbed's speakers run BFD (package bfd) beside every session, FRR's
// leaf runs bfdd, and the two interoperate (bfdd's peers, the spines'
// Go sessions, are up). A leaf failed silently is withdrawn everywhere,
// FRR's kernel included, before BGP's hold timer could have expired
// (hold − keepalive = 6 s after the fault), and every check of the run
// passes (the restores, traffic behind FRR's leaf, the sessions).
func TestBFDSilentFailure(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	s, err := scenarios.Load("../testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
	var peers []string
	run := runFRR(t, s, []string{"leaf3"}, func(ctx context.Context, rt *netnsrt.Runtime, _ []scenarios.Instance) error {
		dir, _ := rt.FRRLeaf("leaf3")
		out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", dir, "-c", "show bfd peers json").CombinedOutput()
		if err != nil {
			return fmt.Errorf("vtysh show bfd peers: %v: %s", err, out)
		}
		var ps []struct {
			Peer   string `json:"peer"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &ps); err != nil {
			return fmt.Errorf("show bfd peers json: %v: %s", err, out)
		}
		for _, p := range ps {
			peers = append(peers, p.Peer+" "+p.Status)
		}
		return nil
	})
	if len(peers) != 2 || slices.ContainsFunc(peers, func(p string) bool { return !slices.Contains([]string{"up"}, p[len(p)-2:]) }) {
		t.Errorf("FRR's bfdd peers at the end: %v; want both spines up", peers)
	}
	c := silentConvergence(t, run, "leaf2")
	t.Logf("silent failure of leaf2 with BFD: converged in %v", c)
	if c >= 6*time.Second {
		t.Errorf("silent failure withdrawn after %v: no sooner than BGP's hold timer (9 s, keepalive 3 s) would have", c)
	}
}

// TestSilentFailureBFDSameAsSim runs the silent-failure scenario with
// bgp: {bfd: true}, BGP's default timers and every leaf netbed's on netns
// and on sim (the BGP model's BFD): every check passes on both, and every
// speaker ends with the same routes (and the same running or not) on
// both. Both runs' convergences are logged; BenchmarkSilentFailureBFD
// compares them.
func TestSilentFailureBFDSameAsSim(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
	rt := newRuntime(t, s.Name)
	var speakers map[string][]string
	opts := scenarios.Options{Hold: func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
		var err error
		speakers, err = finalSpeakers(ctx, b)
		return err
	}}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("netns: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	sim := sameAsSim(t, s, bgpRun{run: run, speakers: speakers})
	t.Logf("silent failure with BFD: convergence %v on sim, %v on netns", silentConvergence(t, sim, "leaf2"), silentConvergence(t, run, "leaf2"))
}

// BenchmarkSilentFailureBFD measures how long a leaf failed silently
// (links up, everything dropped) takes to be withdrawn from every other
// leaf, on netns and on the kernel backend (the same speakers over the
// kernel's underlay, the leaf silenced by the same TCX drops), with BGP's
// default timers (hold 9 s, keepalive 3 s) alone and with BFD beside every
// session (300 ms × 3), all leaves netbed's: silent-ms is the fault's
// convergence. silent-sim-ms is the same scenario's on sim (the BGP
// model's BFD, in virtual time, one run per iteration with the
// iteration's number as the seed) and ratio sim / the backend.
func BenchmarkSilentFailureBFD(b *testing.B) {
	testutil.RequireRoot(b)
	src := []byte(`name: silent-bfd
topology: {builder: spine-leaf, params: {spines: 2, leaves: 3, hosts_per_leaf: 1}}
generations: [evpn]
control_plane: bgp
networks:
  - {name: web, subnet: 10.9.0.0/24}
steps:
  - spawn: {name: a, count: 1, network: web, hosts: [host1]}
  - spawn: {name: b, count: 1, network: web, hosts: [host2]}
  - expect: {bgp_sessions: established, within: 10s}
  - expect: {bgp_route: {present_on: [leaf1, leaf3], type: 2, mac: b-1}, within: 10s}
  - fail: {node: leaf2, mode: silent}
  - expect: {bgp_route: {absent_from: [leaf1, leaf3], type: 2, mac: b-1}, within: 15s}
`)
	for _, backend := range []string{"netns", "kernel"} {
		for _, bfd := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/bfd=%v", backend, bfd), func(b *testing.B) {
				s, err := scenarios.Parse("silent-bfd.yaml", src)
				if err != nil {
					b.Fatal(err)
				}
				s.BGP.BFD = bfd
				var total, simTotal time.Duration
				seed := int64(0)
				for b.Loop() {
					seed++
					sc := *s
					sc.Seed = seed
					simRun, err := scenarios.Run(context.Background(), &sc, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
						Runtime: simrt.New(seed), StoreDir: b.TempDir(), ControllerLatency: simrt.ControllerLatency, StoreNoSync: true}), scenarios.Options{})
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range simRun.Checks {
						if !c.Passed {
							b.Fatalf("sim: step %d %s: %s", c.Step, c.What, c.Detail)
						}
					}
					simTotal += silentConvergence(b, simRun, "leaf2")
					rt := newRuntime(b, s.Name)
					if backend == "kernel" {
						rt, _ = kernelRuntimeAt(b, s.Name)
					}
					run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
						Runtime: rt, StoreDir: b.TempDir()}), scenarios.Options{})
					if err != nil {
						b.Fatal(err)
					}
					if run.Backend != backend {
						b.Fatalf("ran on %s, want %s", run.Backend, backend)
					}
					for _, c := range run.Checks {
						if !c.Passed {
							b.Fatalf("step %d %s: %s", c.Step, c.What, c.Detail)
						}
					}
					total += silentConvergence(b, run, "leaf2")
				}
				b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "silent-ms")
				b.ReportMetric(float64(simTotal.Milliseconds())/float64(b.N), "silent-sim-ms")
				b.ReportMetric(float64(simTotal)/float64(total), "ratio")
			})
		}
	}
}
