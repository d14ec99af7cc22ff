package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestSummaryGolden: what `netbed compare` prints at the end for three
// shipped scenarios on sim, with their fixed seeds (the overview table,
// a row per scenario and generation: expected drops, faults with their
// cost, a leaf's withdrawn routes, drift outages), is
// testdata/summary.txt; refresh it with -update and review the diff.
func TestSummaryGolden(t *testing.T) {
	var args []string
	for _, s := range []string{"core-failure", "leaf-failure", "drift-ping-pong"} {
		args = append(args, filepath.Join("..", "..", "scenarios", "library", s+".yaml"))
	}
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"compare", "-q", "--backend", "sim"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	golden := filepath.Join("testdata", "summary.txt")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("summary differs from %s (run with -update and review the diff):\n%s", golden, stdout.String())
	}
}
