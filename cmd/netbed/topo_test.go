package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

var updateExamples = flag.Bool("update-examples", false, "rewrite topologies/examples from 'netbed topo gen'")

const examplesDir = "../../topologies/examples"

// examples are the shipped topology files and the commands that make them.
var examples = []struct {
	file string
	args []string
	// expectations beyond "loads and validates"
	roles map[topologies.Role]int
	azs   int
}{
	{"three-tier.clab.yml", []string{"topo", "gen", "three-tier", "-name", "three-tier", "-pods", "1", "-racks", "2", "-hosts", "2"},
		map[topologies.Role]int{topologies.RoleCore: 2, topologies.RoleFirewall: 1, topologies.RoleAggregation: 2, topologies.RoleToR: 4, topologies.RoleHost: 4}, 0},
	{"spine-leaf-2x4.clab.yml", []string{"topo", "gen", "spine-leaf", "-name", "spine-leaf-2x4", "-spines", "2", "-leaves", "4", "-hosts", "2"},
		map[topologies.Role]int{topologies.RoleSpine: 2, topologies.RoleLeaf: 4, topologies.RoleHost: 8}, 0},
	{"multi-az.clab.yml", []string{"topo", "gen", "multi-az", "-name", "multi-az", "-azs", "2", "-spines", "2", "-leaves", "2", "-hosts", "2", "-borders", "2"},
		map[topologies.Role]int{topologies.RoleSpine: 4, topologies.RoleLeaf: 4, topologies.RoleHost: 8, topologies.RoleBorder: 4}, 2},
}

func topoCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestExamplesAreGenerated keeps the shipped examples true: regenerating
// each with its command gives the same bytes, and each loads and validates.
func TestExamplesAreGenerated(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			path := filepath.Join(examplesDir, ex.file)
			code, out, errs := topoCLI(ex.args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", ex.args, code, errs)
			}
			if *updateExamples {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			shipped, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/netbed -run TestExamplesAreGenerated -update-examples)", err)
			}
			if out != string(shipped) {
				t.Errorf("%s differs from 'netbed %s'; regenerate it with -update-examples", path, strings.Join(ex.args, " "))
			}
			topo, rep, err := clab.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Empty() {
				t.Errorf("shipped example needed inference:\n%s", rep)
			}
			got := map[topologies.Role]int{}
			azs := map[string]bool{}
			for _, n := range topo.Nodes {
				got[n.Role]++
				if n.AZ != "" {
					azs[n.AZ] = true
				}
			}
			for r, c := range ex.roles {
				if got[r] != c {
					t.Errorf("%d %s nodes, want %d", got[r], r, c)
				}
			}
			if len(got) != len(ex.roles) || len(azs) != ex.azs {
				t.Errorf("roles %v (want %v), %d AZs (want %d)", got, ex.roles, len(azs), ex.azs)
			}
			// -o writes the same bytes as stdout.
			tmp := filepath.Join(t.TempDir(), ex.file)
			if code, _, errs := topoCLI(append(ex.args, "-o", tmp)...); code != 0 {
				t.Fatalf("with -o: exit %d: %s", code, errs)
			}
			if b, _ := os.ReadFile(tmp); !bytes.Equal(b, shipped) {
				t.Errorf("-o output differs from stdout output")
			}
		})
	}
}

func TestTopoShow(t *testing.T) {
	code, out, errs := topoCLI("topo", "show", filepath.Join(examplesDir, "multi-az.clab.yml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"lab multi-az: 20 nodes", "namespaces clab-multi-az-<node>", "border", "az1 ", "az2 ",
		"az1-border1:eth3", "delay 500us", "validation: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	// An invalid topology is shown with its problems and exits non-zero.
	bad := filepath.Join(t.TempDir(), "bad.clab.yml")
	src := "name: bad\ntopology:\n  nodes:\n    leaf1: {kind: linux}\n    spine1: {kind: linux}\n    lonely: {kind: linux, labels: {netbed.role: host}}\n  links:\n    - endpoints: [leaf1:eth1, spine1:eth1]\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = topoCLI("topo", "show", "-links=false", bad)
	if code != 1 || !strings.Contains(out, "validation: 1 problem(s)") || !strings.Contains(out, "lonely") || !strings.Contains(errs, "not a valid topology") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// TestTopoImportHostsPerLeaf: --hosts-per-leaf puts hosts below every leaf
// of a Clos from containerlab generate, which has none, flag after the file.
func TestTopoImportHostsPerLeaf(t *testing.T) {
	in := "../../topologies/clab/testdata/generated-srl-2tier.clab.yml"
	out := filepath.Join(t.TempDir(), "with-hosts.clab.yml")
	code, stdout, errs := topoCLI("topo", "import", in, "-o", out, "--hosts-per-leaf", "2")
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	for _, want := range []string{"note ignored: debug", "has no host nodes below its leaves", "added 8 hosts, 2 below every leaf: host1 host2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("import output lacks %q:\n%s", want, stdout)
		}
	}
	topo, _, err := clab.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if hosts := topo.NodesByRole(topologies.RoleHost); len(hosts) != 8 || !slices.Contains(topo.Neighbors("node1-4"), "host8") {
		t.Errorf("imported file: %d hosts, node1-4 neighbours %v", len(hosts), topo.Neighbors("node1-4"))
	}
	if code, _, errs := topoCLI("topo", "import", in, "--hosts-per-leaf", "-1"); code != 2 || !strings.Contains(errs, "must not be negative") {
		t.Errorf("negative hosts per leaf: exit %d: %s", code, errs)
	}
}

func TestTopoImportExport(t *testing.T) {
	dir := t.TempDir()
	in := "../../topologies/clab/testdata/generated-srl-3tier.clab.yml"
	out := filepath.Join(dir, "imported.clab.yml")
	code, stdout, errs := topoCLI("topo", "import", in, "-o", out)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "node1-1: role leaf (from group tier-1") || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("import did not print its inferences:\n%s", stdout)
	}
	topo, rep, err := clab.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Empty() || topo.Node("node2-1").Role != topologies.RoleSpine || topo.Node("node2-1").Kind != "srl" {
		t.Errorf("imported file: report %q, node2-1 %+v", rep, topo.Node("node2-1"))
	}
	// Import to stdout: the file on stdout, the report on stderr.
	code, stdout, errs = topoCLI("topo", "import", in)
	if code != 0 || !strings.HasPrefix(stdout, "# yaml-language-server") || !strings.Contains(errs, "inferred node3-1") {
		t.Errorf("import to stdout: exit %d\nstdout:\n%.200s\nstderr:\n%s", code, stdout, errs)
	}
	// Export normalises; exporting the normalised file again changes nothing.
	out2 := filepath.Join(dir, "exported.clab.yml")
	if code, _, errs := topoCLI("topo", "export", "-o", out2, out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Errorf("export of an imported file changed it")
	}
}

func TestTopoErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"topo"}, 2, "needs a subcommand"},
		{[]string{"topo", "frobnicate"}, 2, "unknown topo subcommand"},
		{[]string{"topo", "gen"}, 2, "needs a fabric"},
		{[]string{"topo", "gen", "ring"}, 2, "unknown fabric \"ring\""},
		{[]string{"topo", "gen", "spine-leaf", "-leaves", "3", "-dual-homed"}, 2, "leaves must be even"},
		{[]string{"topo", "gen", "spine-leaf", "-host-rate", "fast"}, 2, "rate \"fast\""},
		{[]string{"topo", "gen", "three-tier", "-pods", "-1"}, 2, "pods must be at least 1"},
		{[]string{"topo", "gen", "spine-leaf", "extra"}, 2, "unexpected argument"},
		{[]string{"topo", "show"}, 2, "exactly one topology file"},
		{[]string{"topo", "show", "/nonexistent/x.clab.yml"}, 1, "no such file"},
		{[]string{"topo", "export", filepath.Join(examplesDir, "three-tier.clab.yml")}, 2, "needs -o"},
		{[]string{"topo", "import", "../../topologies/clab/schema/clab.schema.json"}, 1, "clab.schema.json:"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, errs := topoCLI(c.args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, c.code, errs, c.want)
			}
		})
	}
}
