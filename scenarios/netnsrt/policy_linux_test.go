package netnsrt_test

import (
	"context"
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
