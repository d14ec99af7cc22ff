package scenarios_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/policy"
	"github.com/netbed/netbed/scenarios/policycompile"
)

// TestPolicyEdgeCasesOnSim replays testdata/policy/edge-cases.yaml (the
// cases that trip implementations, the documentation's defaults and a
// CiliumNetworkPolicy) on gen 3 and stock gen 1: every truth-table cell
// must agree with the reference evaluator. The netns runtime replays it
// in netnsrt's TestPolicyEdgeCasesOnNetns.
func TestPolicyEdgeCasesOnSim(t *testing.T) {
	s, err := scenarios.Load("testdata/policy/edge-cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range s.Generations {
		t.Run(string(gen), func(t *testing.T) {
			run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkTruthTables(t, run, 7)
		})
	}
}

// checkTruthTables checks that run has n truth tables, every check
// passed, and the tables are not trivial: some cells allowed, some not.
func checkTruthTables(t *testing.T, run *reports.Run, n int) {
	t.Helper()
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.TruthTables) != n {
		t.Fatalf("%d truth tables, want %d", len(run.TruthTables), n)
	}
	allowed, dropped := 0, 0
	for _, tt := range run.TruthTables {
		if len(tt.Cells) == 0 {
			t.Errorf("truth table of step %d has no cells", tt.Step)
		}
		for _, c := range tt.Cells {
			if c.Expected {
				allowed++
			} else {
				dropped++
			}
		}
	}
	if allowed == 0 || dropped == 0 {
		t.Errorf("%d cells allowed, %d dropped: the tables test nothing", allowed, dropped)
	}
}

// ignoring is a backend that accepts policies and enforces none: a
// truth table must catch it, naming the cells.
type ignoring struct{ *scenarios.FabricBackend }

func (ignoring) SetPolicies(context.Context, *policy.Set, *policy.Cluster) error { return nil }

func TestTruthTableNamesCells(t *testing.T) {
	s, err := scenarios.Load("../scenarios/library/netpol-truth-table.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, ignoring{simBackend(t, s.Seed)}, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFailures(t, run, map[string]string{"truth table": "18 of 24 cells differ: shop/web-1 -> shop/db-1 tcp/8080: expected dropped, observed allowed"})
	if len(run.TruthTables) != 1 || len(run.TruthTables[0].Mismatches()) == 0 {
		t.Fatalf("truth tables %+v", run.TruthTables)
	}
}

// TestPolicyNoHostPolicy: gen 2 and Ctrip's gen 1 host have nowhere to
// enforce pod policy, and the step says so.
func TestPolicyNoHostPolicy(t *testing.T) {
	s, err := scenarios.Load("library/netpol-truth-table.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for gen, want := range map[scenarios.Generation]string{scenarios.GenEVPN: "hardware firewall", scenarios.GenVLAN: "use vlan-stock"} {
		if gen == scenarios.GenVLAN {
			s.Topologies["vlan"] = s.Topologies["vlan-stock"]
		}
		_, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
		if !errors.Is(err, policycompile.ErrNoHostPolicy) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", gen, err, want)
		}
	}
}

func TestPolicyFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  egress: [{ports: [{port: 80, endPort: 79}]}]\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "name: p\ntopology: {builder: spine-leaf}\nsteps:\n"
	for _, tc := range []struct{ step, want string }{
		{"  - policy: {file: bad.yaml}\n", "s.yaml:4: steps[0].policy.file: " + filepath.Join(dir, "bad.yaml") + ": document 1 (NetworkPolicy p, line 1): invalid: NetworkPolicy.networking.k8s.io \"p\" is invalid: spec.egress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"},
		{"  - policy: {file: missing.yaml}\n", "steps[0].policy.file: read policy file"},
		{"  - policy: {file: bad.yaml, name: x}\n", "steps[0].policy.file: a policy file holds the whole policy"},
		{"  - spawn: {name: a, count: 1, label: x, ports: {http: eighty}}\n", "steps[0].spawn.ports.http: \"eighty\": write a port as 8080"},
		{"  - expect: {namespaces: [x]}\n", "steps[0].expect.namespaces: selects the namespaces of a truth table"},
	} {
		_, err := scenarios.Parse(filepath.Join(dir, "s.yaml"), []byte(head+tc.step))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant it to say %q", strings.TrimSpace(tc.step), err, tc.want)
		}
	}
}
