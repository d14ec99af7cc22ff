package netnsrt_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// silentWatch is a kernel runtime that runs check right after each
// silent failure it carries out, before the runner waits for the fault's
// convergence: what the fabric looks like at the fault.
type silentWatch struct {
	*netnsrt.Runtime
	check func(node string)
}

func (w silentWatch) FailSilently(ctx context.Context, node string) error {
	if err := w.Runtime.FailSilently(ctx, node); err != nil {
		return err
	}
	w.check(node)
	return nil
}

// kernelRuntimeAt is shortKernelRuntime that also returns its state
// root, in which every daemon of the lab keeps its files (processesIn).
func kernelRuntimeAt(t testing.TB, scenario string) (*netnsrt.Runtime, string) {
	t.Helper()
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true}), root
}

// processesIn lists the processes whose command line names dir (a
// speaker's configuration, a vswitch's files): a lab's daemons.
func processesIn(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		out = append(out, e.Name()+" "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

// TestKernelSilentLeaf runs scenarios/testdata/silent-failure.yaml (leaf1
// loses power, then leaf2 hangs: links up, everything dropped, its
// speaker frozen; each restored) for gen 2 with control_plane: bgp on
// the kernel backend, with the scenario's hold time (3 s, keepalive 1 s)
// and with BFD beside BGP's default timers (hold 9 s, keepalive 3 s).
// Right after leaf2 hangs, every other leaf's speaker still holds its
// routes and its kernel still points FDB and neighbour entries at leaf2's
// VTEP: nobody was told. Later every speaker has withdrawn them and no
// other leaf's kernel points at it (kernelWatch); with BFD that happens
// before BGP's hold timer could have expired (hold − keepalive = 6 s
// after the fault), so BFD ran between the kernel's namespaces. Every
// check passes, the probes and every speaker's final routes agree with
// sim's BGP model (which runs the same scenario without BFD: the settled
// state is the same), and no namespace or daemon of the lab is left.
func TestKernelSilentLeaf(t *testing.T) {
	testutil.RequireRoot(t)
	for _, bfd := range []bool{false, true} {
		t.Run(fmt.Sprintf("bfd=%v", bfd), func(t *testing.T) {
			s, err := scenarios.Load("../testdata/silent-failure.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if bfd {
				s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
			}
			rt, root := kernelRuntimeAt(t, s.Name)
			held := 0
			watch := silentWatch{Runtime: rt, check: func(node string) {
				v := vtepOf(t, rt, node)
				for _, l := range []string{"leaf1", "leaf3"} {
					c, ok := rt.Speaker(l)
					if !ok {
						t.Errorf("right after %s hung, %s's speaker does not run", node, l)
						continue
					}
					rs, err := c.Routes(context.Background())
					if err != nil {
						t.Errorf("%s's routes: %v", l, err)
						continue
					}
					if !slices.ContainsFunc(rs, func(r evpn.Route) bool { return r.VTEP == v }) {
						t.Errorf("right after %s hung, %s's speaker holds no route of its VTEP %s: it was told", node, l, v)
						continue
					}
					if n := readKernel(t, rt, l).at(v); n == 0 {
						t.Errorf("right after %s hung, %s's kernel points nothing at its VTEP %s", node, l, v)
						continue
					}
					held++
				}
			}}
			w := &kernelWatch{t: t, s: s, rt: rt}
			var speakers map[string][]string
			opts := scenarios.Options{
				Progress: w.progress,
				Hold: func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
					w.settle("at the end")
					var err error
					speakers, err = finalSpeakers(ctx, b)
					return err
				},
			}
			kRun, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: watch, StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatalf("on kernel: %v", err)
			}
			if kRun.Backend != "kernel" {
				t.Errorf("the run says backend %q, want kernel", kRun.Backend)
			}
			for _, c := range kRun.Checks {
				if !c.Passed {
					t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
				}
			}
			if held != 2 {
				t.Errorf("right after leaf2 hung, %d of the other 2 leaves still held its routes in speaker and kernel", held)
			}
			for _, want := range w.wantChecks() {
				if !w.done[want] {
					t.Errorf("the kernel was never checked %s", want)
				}
			}
			c := silentConvergence(t, kRun, "leaf2")
			i := slices.IndexFunc(kRun.Faults, func(f reports.Fault) bool { return f.Target == "node leaf2" && !f.Restore })
			if !strings.HasPrefix(kRun.Faults[i].Detail, "silent") {
				t.Errorf("leaf2's fault detail %q, want silent", kRun.Faults[i].Detail)
			}
			t.Logf("leaf2 hung: withdrawn everywhere after %v (bfd %v)", c, bfd)
			// The hold timer cannot expire before hold − keepalive
			// has passed since the fault.
			if !bfd && c < 2*time.Second {
				t.Errorf("withdrawn after %v, before the hold timer (3 s, keepalive 1 s) could expire: someone was told", c)
			}
			if bfd && c >= 6*time.Second {
				t.Errorf("withdrawn after %v with BFD: no sooner than BGP's hold timer (9 s, keepalive 3 s) would have", c)
			}
			if left := namespacesOf(rt.LabName()); len(left) > 0 {
				t.Errorf("namespaces left after the run: %v", left)
			}
			if left := processesIn(root); len(left) > 0 {
				t.Errorf("processes of the lab left after the run: %v", left)
			}
			sc := *s
			sc.BGP.BFD = false
			simRun, simSpeakers := simBGP(t, &sc)
			for _, n := range slices.Sorted(mapKeys(speakers)) {
				if got, want := speakers[n], simSpeakers[n]; !slices.Equal(got, want) {
					t.Errorf("%s's speaker at the end, on kernel:\n  %s\non sim:\n  %s", n, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
			if len(speakers) == 0 || len(speakers) != len(simSpeakers) {
				t.Errorf("%d speakers on kernel, %d on sim", len(speakers), len(simSpeakers))
			}
			sameProbes(t, s, kRun, simRun)
		})
	}
}
