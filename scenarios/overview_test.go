package scenarios_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestOverviewGolden: the report overview of the shipped scenarios whose
// rows carry expected drops, faults, a controller outage, drift outages
// and policy verdicts, for their fixed seeds on sim, is
// testdata/overview.md (refresh with -update and review the diff). The
// runs carry their scenario's description into the report.
func TestOverviewGolden(t *testing.T) {
	rep := &reports.Report{Title: "overview"}
	for _, name := range []string{"controller-restart", "core-failure", "drift-ping-pong", "leaf-failure", "policy-verdicts"} {
		s, err := scenarios.Load(filepath.Join("library", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
			if err != nil {
				t.Fatalf("%s/%s: %v", name, gen, err)
			}
			if run.Description != s.Description || run.Description == "" {
				t.Errorf("%s/%s: run description %q, want the scenario's", name, gen, run.Description)
			}
			rep.Runs = append(rep.Runs, run)
		}
	}
	var got bytes.Buffer
	if err := reports.WriteOverview(&got, rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "overview.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("overview differs from %s (run with -update and review the diff):\n%s", golden, got.String())
	}
}
