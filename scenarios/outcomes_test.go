package scenarios_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// outcome is what a run of a shipped scenario must reproduce, whatever
// the run path keeps in memory: every probe's outcome and path, every
// check, the report table's figures, drops and table sizes.
type outcome struct {
	Probes  []reports.Probe
	Checks  []reports.Check
	Summary reports.Summary
}

// TestLibraryOutcomesUnchanged replays every shipped scenario for every
// generation on sim and compares its outcome with testdata/outcomes/,
// recorded (-update) by the run path that kept every probe in full in
// memory: the lean run path gives the same verdicts, hops, paths and
// report figures.
func TestLibraryOutcomesUnchanged(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			name := strings.TrimSuffix(filepath.Base(f), ".yaml") + "." + string(gen)
			t.Run(name, func(t *testing.T) {
				var all []reports.Probe
				run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed),
					scenarios.Options{OnProbe: func(p reports.Probe) { all = append(all, p) }})
				if err != nil {
					t.Fatal(err)
				}
				// Every probe the run sent is in its figures and, in a run
				// this small, kept in full.
				if n := reports.StatsOf(run).Sent; n != len(all) || n > 1000 || len(run.Probes) != n {
					t.Errorf("%d probes sent, %d in the figures, %d kept in full", len(all), n, len(run.Probes))
				}
				for i := range min(len(all), len(run.Probes)) {
					// What an expectation wants is known when a truth
					// table sends a probe, and after a traffic step's.
					kept, sent := run.Probes[i], all[i]
					kept.Expect, sent.Expect = "", ""
					if !reflect.DeepEqual(kept, sent) {
						t.Errorf("probe %d kept as %+v, sent as %+v", i, kept, all[i])
					}
				}
				got, err := json.MarshalIndent(outcome{Probes: run.Probes, Checks: run.Checks, Summary: reports.Summarize(run)}, "", " ")
				if err != nil {
					t.Fatal(err)
				}
				// The report from the run's figures is the report from its
				// probes, as reports read before the figures existed.
				old := *run
				old.ProbeStats = nil
				for _, write := range []func(io.Writer, *reports.Report) error{reports.WriteMarkdown, reports.WriteHTML, reports.WriteOverview} {
					var a, b bytes.Buffer
					if err := write(&a, &reports.Report{Runs: []*reports.Run{run}}); err != nil {
						t.Fatal(err)
					}
					if err := write(&b, &reports.Report{Runs: []*reports.Run{&old}}); err != nil {
						t.Fatal(err)
					}
					if a.String() != b.String() {
						t.Errorf("the report from the run's figures differs from the report from its probes:\n%s", firstDiff(b.String(), a.String()))
					}
				}
				golden := filepath.Join("testdata", "outcomes", name+".json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v: a new scenario's outcome is recorded by go test ./scenarios -run TestLibraryOutcomesUnchanged -update", err)
				}
				if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
					t.Errorf("outcome differs from %s (if the change is meant, -update records it):\n%s", golden, firstDiff(string(want), string(got)))
				}
			})
		}
	}
}

// firstDiff shows the first line where got departs from want.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d:\nwant: %s\ngot:  %s", i+1, w[i], g[i])
		}
	}
	return fmt.Sprintf("lengths differ: want %d lines, got %d", len(w), len(g))
}
