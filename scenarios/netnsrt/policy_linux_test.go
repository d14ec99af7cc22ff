package netnsrt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestPolicyEdgeCasesOnNetns replays the policy edge cases (scenarios'
// testdata/policy/edge-cases.yaml: egress to another namespace, except
// inside ipBlock, named ports per pod, a policy selecting no pod,
// policies that only add, the documentation's defaults, a Cilium deny)
// on real namespaces, gen 3 and stock gen 1: every truth-table cell must
// hold and equal the sim's.
func TestPolicyEdgeCasesOnNetns(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/policy/edge-cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := scenarios.Options{ProbeTimeout: 300 * time.Millisecond}
	for _, gen := range s.Generations {
		t.Run(string(gen), func(t *testing.T) {
			ctx := context.Background()
			simRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), opts)
			if err != nil {
				t.Fatal(err)
			}
			run, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: newRuntime(t, s.Name), StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("netns run: %v wall time", run.Elapsed)
			for _, c := range run.Checks {
				if !c.Passed {
					t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
				}
			}
			if len(run.TruthTables) != 7 || len(simRun.TruthTables) != 7 {
				t.Fatalf("%d truth tables on netns, %d on sim; want 7", len(run.TruthTables), len(simRun.TruthTables))
			}
			for i, tt := range run.TruthTables {
				st := simRun.TruthTables[i]
				if len(tt.Cells) != len(st.Cells) {
					t.Fatalf("table %d: %d cells on netns, %d on sim", i, len(tt.Cells), len(st.Cells))
				}
				for j, c := range tt.Cells {
					if c.Observed != st.Cells[j].Observed {
						t.Errorf("table %d: %s on netns, %s on sim", i, c, st.Cells[j])
					}
				}
			}
		})
	}
}

// TestPolicyTruthTableOnKernel runs the library's netpol-truth-table for
// gen 3 (tunnel and direct) on the kernel backend, where the tc programs
// decide (the egress check on the sending pod's lxc, the ingress check at
// the destination's node): every cell must hold and equal the sim's,
// verdict and rule, so that an egress drop is named by the program's
// flow event as the model names it.
func TestPolicyTruthTableOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/netpol-truth-table.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := scenarios.Options{ProbeTimeout: 300 * time.Millisecond}
	for _, gen := range []scenarios.Generation{scenarios.GenEBPF, scenarios.GenEBPFDirect} {
		t.Run(string(gen), func(t *testing.T) {
			ctx := context.Background()
			simRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), opts)
			if err != nil {
				t.Fatal(err)
			}
			rt := newKernelRuntime(t, s.Name)
			run, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range run.Checks {
				if !c.Passed {
					t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
				}
			}
			if len(run.TruthTables) != 1 || len(simRun.TruthTables) != 1 {
				t.Fatalf("%d truth tables on kernel, %d on sim; want 1", len(run.TruthTables), len(simRun.TruthTables))
			}
			kc, sc := run.TruthTables[0].Cells, simRun.TruthTables[0].Cells
			if len(kc) != len(sc) {
				t.Fatalf("%d cells on kernel, %d on sim", len(kc), len(sc))
			}
			egress := 0
			for i, c := range kc {
				if c.Observed != sc[i].Observed || c.Rule != sc[i].Rule {
					t.Errorf("%s on kernel (rule %q), %s on sim (rule %q)", c, c.Rule, sc[i], sc[i].Rule)
				}
				if strings.HasPrefix(c.Rule, "policy:egress:") {
					egress++
				}
			}
			if egress == 0 {
				t.Error("no cell was dropped by an egress rule: the table no longer tests egress")
			}
		})
	}
}

// TestPolicyEdgeCasesOnKernel replays the same edge cases for gen 3 on
// the kernel backend: the compiled entries in the kernel's policy map,
// checked by the tc programs of ebpf/kmaps (ingress and egress), must
// give every truth-table cell its expected verdict.
func TestPolicyEdgeCasesOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../testdata/policy/edge-cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newKernelRuntime(t, s.Name)
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}),
		scenarios.Options{ProbeTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel run: %v wall time", run.Elapsed)
	if run.Backend != "kernel" {
		t.Errorf("the run says backend %q, want kernel", run.Backend)
	}
	if len(run.TruthTables) != 7 {
		t.Fatalf("%d truth tables, want 7", len(run.TruthTables))
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
}
