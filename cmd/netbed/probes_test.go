package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/netbed/netbed/reports"
)

// TestRunProbesFile: --probes writes every probe of every run, one JSON
// line each, with its run and its path.
func TestRunProbesFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "probes.jsonl")
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "-q", "--backend", "sim", "--gen", "evpn,ebpf", "--out", dir, "--probes", file,
		"../../scenarios/library/cross-subnet-hops.yaml"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	perGen := map[string]int{}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var l probeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.Scenario != "cross-subnet-hops" || l.Backend != "sim" || l.From != "web-1" || len(l.Path) == 0 {
			t.Errorf("line %q", sc.Text())
		}
		perGen[l.Generation]++
	}
	rep, err := readReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Runs {
		if n := reports.StatsOf(r).Sent; n == 0 || perGen[r.Generation] != n {
			t.Errorf("%s: %d lines, the run sent %d probes", r.Generation, perGen[r.Generation], n)
		}
	}
}
