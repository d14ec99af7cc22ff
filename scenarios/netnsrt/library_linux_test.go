package netnsrt_test

import (
	"context"
	"fmt"
	"os"
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
