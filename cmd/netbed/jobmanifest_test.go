package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// TestJobManifest: the Indexed Job that docs/ ships is a valid Job (read
// strictly by the API's own types) whose shard count, completions and
// parallelism agree, whose pods run `netbed compare` without --shard (the
// index comes from JOB_COMPLETION_INDEX), and whose merge step merges
// every shard's report.
func TestJobManifest(t *testing.T) {
	data, err := os.ReadFile("../../docs/kubernetes/shards-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]batchv1.Job{}
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if !bytes.Contains(doc, []byte("kind: Job")) {
			continue
		}
		var j batchv1.Job
		if err := yaml.UnmarshalStrict(doc, &j); err != nil {
			t.Fatalf("job: %v", err)
		}
		jobs[j.Name] = j
	}
	sh, ok := jobs["netbed-shards"]
	if !ok {
		t.Fatal("no netbed-shards job")
	}
	s := sh.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || s.Parallelism == nil {
		t.Fatalf("shards job: %+v; want an Indexed Job with completions and parallelism", s)
	}
	c := s.Template.Spec.Containers[0]
	shards := ""
	for _, e := range c.Env {
		if e.Name == envShards {
			shards = e.Value
		}
	}
	args := strings.Join(c.Args, " ")
	if want := strconv.Itoa(int(*s.Completions)); shards != want || *s.Parallelism != *s.Completions {
		t.Errorf("%s=%q, completions %d, parallelism %d: want all equal", envShards, shards, *s.Completions, *s.Parallelism)
	}
	if !strings.Contains(args, "netbed compare") || strings.Contains(args, "--shard") || !strings.Contains(args, "shard-$JOB_COMPLETION_INDEX") {
		t.Errorf("shards job runs %q: want netbed compare, the index from the environment, a directory per shard", args)
	}
	m, ok := jobs["netbed-merge"]
	if !ok || !strings.Contains(strings.Join(m.Spec.Template.Spec.Containers[0].Args, " "), "netbed report merge /results/shard-*/report.json") {
		t.Errorf("merge job: %+v", m.Spec.Template.Spec.Containers)
	}
}
