package scenarios_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestReachRecorded: a run records each round of probes with how many
// of its flows it reached (reports.Run.Reach, the report's flows-reached
// plot): core-failure's four cross-subnet flows all reached before the
// core fails and none after, the two same-subnet flows still reached;
// drift-ping-pong's background stream a round per 10 ms.
func TestReachRecorded(t *testing.T) {
	runOf := func(name string) *reports.Run {
		s, err := scenarios.Load(filepath.Join("library", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		run, err := scenarios.Run(context.Background(), s, s.Generations[0], simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	run := runOf("core-failure")
	var got []string
	for _, r := range run.Reach {
		got = append(got, fmt.Sprintf("%s %d/%d", r.Tag, r.Reached, r.Flows))
	}
	if want := []string{"before 4/4", "cross 0/4", "same 2/2"}; !slices.Equal(got, want) {
		t.Errorf("core-failure rounds %v, want %v", got, want)
	}
	if f := run.Faults; len(f) != 1 || !(run.Reach[0].At < f[0].At && f[0].At <= run.Reach[1].At) {
		t.Errorf("rounds at %v, %v; fault %+v between them", run.Reach[0].At, run.Reach[1].At, f)
	}
	stream := 0
	for _, r := range runOf("drift-ping-pong").Reach {
		if r.Tag == "stream" {
			stream++
		}
	}
	if stream != 500 { // 5 s at 100 rounds per second
		t.Errorf("drift-ping-pong: %d stream rounds, want 500", stream)
	}
}
