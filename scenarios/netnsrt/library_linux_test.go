package netnsrt_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestLibraryCrossValidation replays shipped scenarios for every
// generation they name on sim and on netns (the same FabricBackend over
// either runtime): every expectation must hold on netns, and both
// runtimes must report the same probes: verdicts, paths, hop counts.
func TestLibraryCrossValidation(t *testing.T) {
	testutil.RequireRoot(t)
	if len(libraryScenarios) == 0 {
		t.Fatal("no shipped scenarios found in ../library")
	}
	for _, name := range libraryScenarios {
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			t.Run(name+"/"+string(gen), func(t *testing.T) {
				ctx := context.Background()
				simRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
					Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				rt := newRuntime(t, name)
				nsRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
					Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("netns run: %v wall time (sim: %v)", nsRun.Elapsed, simRun.Elapsed)
				if left := namespacesOf(rt.LabName()); len(left) > 0 {
					t.Errorf("namespaces left after the run: %v", left)
				}
				for _, c := range nsRun.Checks {
					if !c.Passed {
						t.Errorf("netns: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
					}
				}
				if len(nsRun.Checks) == 0 {
					t.Error("no checks ran on netns")
				}
				checkPodsAttachedByCNI(t, s, gen, nsRun)
				testutil.CheckHopTimes(t, nsRun.Probes, true)
				if len(nsRun.Tables) == 0 {
					t.Error("netns: no table sizes")
				}
				if len(nsRun.Probes) != len(simRun.Probes) {
					t.Fatalf("netns sent %d probes, sim %d", len(nsRun.Probes), len(simRun.Probes))
				}
				for i := range simRun.Probes {
					if d := reports.ProbeChanges(simRun.Probes[i], nsRun.Probes[i]); len(d) > 0 {
						t.Errorf("probe %d (%s -> %s) on netns (was: on sim): %s", i, simRun.Probes[i].From, simRun.Probes[i].To, strings.Join(d, "; "))
					}
				}
			})
		}
	}
}

// libraryScenarios are the shipped scenarios: every one of them
// (NETNSRT_LIBRARY=a,b,... replaces the list).
var libraryScenarios = func() []string {
	if v := os.Getenv("NETNSRT_LIBRARY"); v != "" {
		return strings.Split(v, ",")
	}
	files, _ := filepath.Glob("../library/*.yaml")
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	return names
}()

// BenchmarkPodDriftKeepsIP is the wall time of the shipped
// pod-drift-keeps-ip scenario end to end on netns (deploy, spawns through
// the controller, drift, probes, teardown), per generation.
func BenchmarkPodDriftKeepsIP(b *testing.B) {
	testutil.RequireRoot(b)
	s, err := scenarios.Load("../library/pod-drift-keeps-ip.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for _, gen := range s.Generations {
		b.Run(string(gen), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				rt := newRuntime(b, s.Name)
				run, err := scenarios.Run(context.Background(), s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
					Runtime: rt, StoreDir: b.TempDir()}), scenarios.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if run.Failed() {
					b.Fatalf("run failed: %+v", run.Checks)
				}
				total += run.Elapsed
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/run")
		})
	}
}

// TestInterruptedRunIsCleaned cancels a run on netns in the middle (as
// the CLI does on SIGINT) and checks that nothing of its lab is left.
func TestInterruptedRunIsCleaned(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := newRuntime(t, s.Name)
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()})
	// Cancel once both instances exist: the run is then sleeping until
	// its traffic step at 2s.
	go func() {
		for rt.LabName() == "" || len(namespacesOf(rt.LabName())) < 16 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err = scenarios.Run(ctx, s, scenarios.GenEVPN, b, scenarios.Options{})
	if err == nil {
		t.Fatal("the run finished despite the cancel")
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after an interrupted run: %v", left)
	}
}

func namespacesOf(lab string) []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), lab) {
			out = append(out, e.Name())
		}
	}
	return out
}

// checkPodsAttachedByCNI checks that every pod spawn of a generation with
// a CNI mode went through the plugin on netns (the timeline says so).
func checkPodsAttachedByCNI(t *testing.T, s *scenarios.Scenario, gen scenarios.Generation, run *reports.Run) {
	t.Helper()
	if gen != scenarios.GenEVPN && gen.Family() != 3 {
		return
	}
	pods := map[string]bool{}
	for _, st := range s.Steps {
		if st.Spawn != nil && st.Spawn.Kind == "pod" {
			for k := 1; k <= st.Spawn.Count; k++ {
				pods[fmt.Sprintf("%s-%d", st.Spawn.Name, k)] = true
			}
		}
	}
	viaCNI := map[string]int{}
	for _, e := range run.Timeline {
		if pods[e.Instance] && strings.Contains(e.Step, "cni-add") {
			viaCNI[e.Instance]++
		}
	}
	for p := range pods {
		if viaCNI[p] == 0 {
			t.Errorf("pod %s was not attached through CNI (timeline has no cni-add step)", p)
		}
	}
}

// TestConservationOnNetns: a probe that left its instance must end
// delivered and answered, or dropped at a named place. Here the
// destination's own kernel drops it (an iptables rule netbed knows
// nothing about, added while the run is under way): the frame reaches the
// instance, no node recorded a drop, so the run's conservation check
// fails and names the lost probe. Before the rule, the same probes pass.
func TestConservationOnNetns(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		testutil.Unavailable(t, "needs iptables to drop packets inside an instance")
	}
	const src = `name: conserve
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
networks: [{name: n, subnet: 10.0.0.0/24}]
steps:
  - spawn: {name: a, count: 2, network: n}
  - at: 500ms
    traffic: {proto: icmp, from: [a-1], to: [a-2], tag: before}
  - expect: {tag: before, all_reachable: true}
  - traffic: {proto: icmp, from: [a-1], to: [a-2], tag: blackholed}
`
	s, err := scenarios.Parse("conserve.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, s.Name)
	var ruleErr error
	progress := func(msg string) {
		// Before the fourth step, the destination's kernel starts
		// dropping ICMP behind netbed's back.
		if strings.HasPrefix(msg, "step 4/4") {
			ns := "clab-" + rt.LabName() + "-a-2"
			out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "icmp", "-j", "DROP").CombinedOutput()
			if err != nil {
				ruleErr = fmt.Errorf("iptables in %s: %v: %s", ns, err, out)
			}
		}
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{Progress: progress, ProbeTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if ruleErr != nil {
		t.Fatal(ruleErr)
	}
	for _, c := range run.Checks {
		switch {
		case c.What == "all reachable" && !c.Passed:
			t.Errorf("before the fault: %s", c.Detail)
		case c.What == "packet conservation":
			if c.Passed || !strings.Contains(c.Detail, "1 probes lost without a recorded drop, first a-1 -> a-2 (blackholed)") {
				t.Errorf("conservation check: passed=%v %q", c.Passed, c.Detail)
			}
			return
		}
	}
	t.Errorf("no conservation check in %+v", run.Checks)
}

// BenchmarkDriftOutage replays the shipped drift-ping-pong scenario (an
// instance moved between two racks and back under a 100/s probe stream
// from a peer on each host) per backend and generation, and reports the
// mean outage per flow and move (last answer before the move to the
// first after it) and the probes lost per outage.
func BenchmarkDriftOutage(b *testing.B) {
	testutil.RequireRoot(b)
	s, err := scenarios.Load("../library/drift-ping-pong.yaml")
	if err != nil {
		b.Fatal(err)
	}
	backends := []struct {
		name string
		new  func(b *testing.B) scenarios.Backend
	}{
		{"sim", func(b *testing.B) scenarios.Backend {
			return scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: b.TempDir(), ControllerLatency: simrt.ControllerLatency})
		}},
		{"netns", func(b *testing.B) scenarios.Backend {
			return scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: newRuntime(b, s.Name), StoreDir: b.TempDir()})
		}},
	}
	for _, be := range backends {
		for _, gen := range s.Generations {
			b.Run(be.name+"/"+string(gen), func(b *testing.B) {
				var total time.Duration
				var n, lost int
				for range b.N {
					run, err := scenarios.Run(context.Background(), s, gen, be.new(b), scenarios.Options{})
					if err != nil {
						b.Fatal(err)
					}
					if run.Failed() {
						b.Fatalf("run failed: %+v", run.Checks)
					}
					for _, o := range run.Outages {
						total += o.Outage
						lost += o.Lost
						n++
					}
				}
				b.ReportMetric(float64(total.Microseconds())/1e3/float64(n), "outage-ms")
				b.ReportMetric(float64(lost)/float64(n), "lost/outage")
			})
		}
	}
}
