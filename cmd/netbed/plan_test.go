package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netbed/netbed/plan"
)

// TestPlanCommand: netbed plan of a tiny fabric writes plan.md, .html and
// .json; --shard plans every n-th generation.
func TestPlanCommand(t *testing.T) {
	out := t.TempDir()
	tiny := []string{"plan", "-q", "--zones", "2", "--nodes-per-zone", "4", "--hosts-per-leaf", "2", "--spines", "2",
		"--instances-per-zone", "8", "--instances-per-network", "4", "--out", out}
	var stdout, stderr bytes.Buffer
	if code := run(tiny, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"plan.md", "plan.html", "plan.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, want := range []string{"## vlan", "## evpn", "## ebpf", "Blast radius"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	stdout.Reset()
	if code := run(append(tiny, "--shard", "1/3"), &stdout, &stderr); code != 0 {
		t.Fatalf("shard: exit %d: %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "## evpn") || strings.Contains(s, "## vlan") || strings.Contains(s, "## ebpf") {
		t.Errorf("shard 1/3 of vlan,evpn,ebpf planned:\n%s", s)
	}
}

// TestPlanMerge: the shards of a plan, merged in any order, are the
// whole plan; a missing or a repeated shard is refused by name.
func TestPlanMerge(t *testing.T) {
	dir := t.TempDir()
	tiny := []string{"plan", "-q", "--zones", "1", "--nodes-per-zone", "4", "--hosts-per-leaf", "2", "--spines", "2",
		"--instances-per-zone", "8", "--instances-per-network", "4"}
	planTo := func(name string, extra ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		var stdout, stderr bytes.Buffer
		if code := run(append(append(tiny, "--out", out), extra...), &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr.String())
		}
		return filepath.Join(out, "plan.json")
	}
	whole := planTo("whole")
	s0, s1, s2 := planTo("s0", "--shard", "0/3"), planTo("s1", "--shard", "1/3"), planTo("s2", "--shard", "2/3")

	merged := filepath.Join(dir, "merged")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"plan", "merge", s2, s0, s1, "-o", merged}, &stdout, &stderr); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr.String())
	}
	gens := func(path string) []plan.Gen {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.ReadJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if p.Shard != nil {
			t.Errorf("%s: still says it is shard %v", path, *p.Shard)
		}
		for i := range p.Gens {
			p.Gens[i].Elapsed = 0 // wall time
		}
		return p.Gens
	}
	want, got := gens(whole), gens(filepath.Join(merged, "plan.json"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged shards differ from the whole plan:\n got %+v\nwant %+v", got, want)
	}

	for _, c := range []struct {
		files []string
		want  string
	}{
		{[]string{s0, s2}, "shard 1/3 missing"},
		{[]string{s0, s1, s1, s2}, "shard 1/3 is given twice"},
		{[]string{s0, s1, s2, whole}, "not (written without --shard)"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(append([]string{"plan", "merge"}, c.files...), &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("merge %v: exit %d, %q; want an error with %q", c.files, code, stderr.String(), c.want)
		}
	}
}

// TestPlanVPC: --gen vpc plans the public cloud (a small storm here).
func TestPlanVPC(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"plan", "-q", "--gen", "vpc", "--nodes-per-zone", "4", "--hosts-per-leaf", "2", "--instance-type", "t3.medium", "--warm-ip-target", "3"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"## vpc (public cloud)", "on 4 t3.medium nodes (15 a node)", "| no warm pool |", "| WARM_ENI_TARGET=1 |", "| WARM_IP_TARGET=3 MINIMUM_IP_TARGET=0 |"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "## vlan") {
		t.Error("--gen vpc planned vlan too")
	}
}
