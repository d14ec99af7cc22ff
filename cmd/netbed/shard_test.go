package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
)

// TestShardFromIndexedJob: without --shard, a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX picks the shard, of --shards or NETBED_SHARDS;
// what is missing or out of range is a usage error naming it.
func TestShardFromIndexedJob(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		flag    string
		shards  int
		env     func(string) string
		i, n    int
		fromEnv bool
		err     string
	}{
		{"", 0, env(), 0, 1, false, ""},
		{"1/3", 0, env("JOB_COMPLETION_INDEX", "2", "NETBED_SHARDS", "4"), 1, 3, false, ""},
		{"", 4, env("JOB_COMPLETION_INDEX", "3"), 3, 4, true, ""},
		{"", 0, env("JOB_COMPLETION_INDEX", "2", "NETBED_SHARDS", "4"), 2, 4, true, ""},
		{"", 5, env("JOB_COMPLETION_INDEX", "2", "NETBED_SHARDS", "4"), 2, 5, true, ""},
		{"", 0, env("JOB_COMPLETION_INDEX", "2"), 0, 0, false, "JOB_COMPLETION_INDEX=2 is set but not the number of shards: give --shards N or NETBED_SHARDS=N"},
		{"", 0, env("JOB_COMPLETION_INDEX", "4", "NETBED_SHARDS", "4"), 0, 0, false, "JOB_COMPLETION_INDEX=4 is not below the 4 shards"},
		{"", 0, env("JOB_COMPLETION_INDEX", "x", "NETBED_SHARDS", "4"), 0, 0, false, `JOB_COMPLETION_INDEX="x" is not a shard index`},
		{"", 3, env(), 0, 0, false, "--shards 3 without --shard i/n or JOB_COMPLETION_INDEX"},
		{"1/3", 4, env(), 0, 0, false, "--shard 1/3 and --shards 4 disagree"},
	} {
		i, n, fromEnv, err := resolveShard(c.flag, c.shards, c.env)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: %v, want an error saying %s", c, err, c.err)
			}
		case err != nil || i != c.i || n != c.n || fromEnv != c.fromEnv:
			t.Errorf("%q %d: shard %d/%d (env %v), %v; want %d/%d (env %v)", c.flag, c.shards, i, n, fromEnv, err, c.i, c.n, c.fromEnv)
		}
	}
}

// TestReportMergeShards: shards run by an Indexed Job's index (the
// environment) merge into the study, in its order, with the flags after
// the files as the README writes them; a missing or a duplicated shard is
// refused, naming it.
func TestReportMergeShards(t *testing.T) {
	dir := t.TempDir()
	file := "../../scenarios/library/spine-failure.yaml" // evpn, ebpf, ebpf-direct
	var stdout, stderr bytes.Buffer
	const n = 4 // one shard more than runs: shard 3 is empty
	for i := range n {
		t.Setenv("JOB_COMPLETION_INDEX", fmt.Sprint(i))
		t.Setenv("NETBED_SHARDS", fmt.Sprint(n))
		out := filepath.Join(dir, fmt.Sprint("shard-", i))
		if code := run([]string{"compare", "-q", "--backend", "sim", "--out", out, file}, &stdout, &stderr); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr.String())
		}
	}
	shard := func(i int) string { return filepath.Join(dir, fmt.Sprint("shard-", i), "report.json") }
	merged := filepath.Join(dir, "merged")
	if code := run([]string{"report", "merge", shard(2), shard(0), shard(3), shard(1), "-o", merged}, &stdout, &stderr); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr.String())
	}
	rep, err := readReport(filepath.Join(merged, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gens []string
	for _, r := range rep.Runs {
		gens = append(gens, r.Generation)
	}
	if strings.Join(gens, ",") != "evpn,ebpf,ebpf-direct" || rep.Shard != nil {
		t.Errorf("merged runs %v (shard %v), want evpn, ebpf, ebpf-direct as one study", gens, rep.Shard)
	}
	stderr.Reset()
	if code := run([]string{"report", "merge", shard(0), shard(1), shard(3)}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "shard 2/4 missing (given: 3 of 4)") {
		t.Errorf("missing shard: exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"report", "merge", shard(0), shard(1), shard(2), shard(3), shard(1)}, &stdout, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "shard 1/4 is given twice: "+shard(1)+" and "+shard(1)) {
		t.Errorf("duplicated shard: exit %d: %s", code, stderr.String())
	}
	// A report of a whole study is not a shard.
	whole := filepath.Join(dir, "whole.json")
	data, _ := os.ReadFile(shard(0))
	r, err := reports.ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r.Shard = nil
	var b bytes.Buffer
	reports.WriteJSON(&b, r)
	os.WriteFile(whole, b.Bytes(), 0o644)
	stderr.Reset()
	if code := run([]string{"report", "merge", whole, shard(1)}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "not (written without --shard)") {
		t.Errorf("shard with a whole study: exit %d: %s", code, stderr.String())
	}
}
