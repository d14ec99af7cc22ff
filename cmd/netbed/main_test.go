package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagsAnywhere: every command takes its flags before, between or
// after its file arguments; 'report merge', 'report diff' and 'up' refused
// them after the files before netbed moved to cobra.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	rep := filepath.Join(dir, "r.json")
	if err := os.WriteFile(rep, []byte(`{"title":"t","runs":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(examplesDir, "spine-leaf-2x4.clab.yml")
	cases := []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"merge flag after files", []string{"report", "merge", rep, rep, "-o", filepath.Join(dir, "m")}, 0, "# t", ""},
		{"merge flag before files", []string{"report", "merge", "-o", filepath.Join(dir, "m2"), rep}, 0, "# t", ""},
		{"diff flag after files", []string{"report", "diff", rep, rep, "--max-slowdown", "2"}, 0, "No change", ""},
		{"diff flag between files", []string{"report", "diff", rep, "--max-slowdown=2", rep}, 0, "No change", ""},
		{"diff bad flag value after files", []string{"report", "diff", rep, rep, "--max-slowdown", "0.5"}, 2, "", "factor above 1"},
		// up reads its file and flags before it needs root: a missing file
		// fails the same way with the flag on either side.
		{"up flag after file", []string{"up", "/nonexistent/lab.clab.yml", "--workers", "2", "-q"}, 1, "", "lab.clab.yml"},
		{"up unknown flag after file", []string{"up", topo, "--nope"}, 2, "", "unknown flag: --nope"},
		{"validate flag-less", []string{"validate", "../../scenarios/library/spine-failure.yaml"}, 0, "ok", ""},
		{"validate a generation on a topology it cannot use", []string{"validate", "testdata/role-mismatch.yaml"}, 1, "",
			"role-mismatch.yaml:3: topology: topology spine-leaf has spine1 (role spine), leaf1 (role leaf): vlan's fabric is built from hosts and tor"},
		{"run on another lab", []string{"run", "--backend", "sim", "-q", "--format", "json", "--topology", "../../topologies/examples/spine-leaf-2x4.clab.yml", "../../scenarios/library/leaf-failure.yaml"}, 0,
			`"topology": "spine-leaf-2x4: 14 nodes`, ""},
		{"run on a lab a generation cannot use", []string{"run", "--backend", "sim", "-q", "--gen", "evpn", "--topology", "../../topologies/examples/three-tier.clab.yml", "../../scenarios/library/leaf-failure.yaml"}, 1, "",
			`leaf-failure.yaml: --topology ../../topologies/examples/three-tier.clab.yml: topology three-tier has core1 (role core), fw1 (role firewall), agg1 (role aggregation), tor1 (role tor): evpn's fabric is built from hosts and leaf, spine, border only; give it a lab of its own with --topology evpn=FILE`},
		{"run on a lab that lacks a node the steps name", []string{"run", "--backend", "sim", "-q", "--topology", "evpn=../../topologies/examples/three-tier.clab.yml", "../../scenarios/library/leaf-failure.yaml"}, 1, "",
			`leaf-failure.yaml:13: steps[1].fail.node: no node "leaf1" in topology three-tier`},
		{"--topology for a generation the scenario does not run", []string{"run", "--backend", "sim", "-q", "--topology", "vlan=../../topologies/examples/three-tier.clab.yml", "../../scenarios/library/leaf-failure.yaml"}, 2, "",
			`does not run generation vlan`},
		// Run anyway, it fails at the fabric's start, and says so once.
		{"run a generation on a topology it cannot use", []string{"run", "--backend", "sim", "-q", "--out", filepath.Join(dir, "rm"), "testdata/role-mismatch.yaml"}, 1, "",
			`start sim backend for vlan: build vlan fabric: node "spine1"`},
		{"show go-style flag after file", []string{"topo", "show", topo, "-links=false"}, 0, "validation: ok", ""},
		{"show double-dash flag before file", []string{"topo", "show", "--links=false", topo}, 0, "validation: ok", ""},
		{"go-style --o still works", []string{"topo", "export", topo, "--o", filepath.Join(dir, "e.clab.yml")}, 0, "wrote", ""},
		{"everything after -- is an argument", []string{"topo", "show", "--", "-links=false"}, 1, "", "-links=false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(c.args...)
			if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errs, c.err) {
				t.Errorf("netbed %s: exit %d (want %d)\nstdout: %.300s\nstderr: %s\nwant %q in stdout, %q in stderr",
					strings.Join(c.args, " "), code, c.code, out, errs, c.out, c.err)
			}
		})
	}
	if _, out, _ := runCLI("topo", "show", topo, "-links=false"); strings.Contains(out, "\nlinks:") {
		t.Errorf("-links=false after the file was not applied:\n%s", out)
	}
}

// TestHelpEveryCommand: -h on every command and subcommand exits 0 and
// lists that command's own flags.
func TestHelpEveryCommand(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			path := strings.Fields(sub.CommandPath())[1:]
			if sub.Name() != "help" && !slices.Contains(path, "completion") {
				n++
				t.Run(strings.Join(path, " "), func(t *testing.T) {
					code, out, errs := runCLI(append(path, "-h")...)
					if code != 0 || !strings.Contains(out, "Usage: netbed "+strings.Join(path, " ")) {
						t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
					}
					sub.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
						if !strings.Contains(out, "--"+f.Name) {
							t.Errorf("help lacks --%s:\n%s", f.Name, out)
						}
					})
				})
			}
			walk(sub)
		}
	}
	walk(newRoot(nil, nil))
	if n < 20 {
		t.Errorf("only %d commands walked", n)
	}
}

func TestVersion(t *testing.T) {
	// In a test binary the build info has no module version: "devel".
	want := regexp.MustCompile(`^netbed \S+ \(.*go1\.\d+.*\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := runCLI(args...)
		if code != 0 || !want.MatchString(out) {
			t.Errorf("netbed %v: exit %d, %q %q", args, code, out, errs)
		}
	}
	version = "v1.2.3-4-gabcdef"
	t.Cleanup(func() { version = "" })
	if _, out, _ := runCLI("version"); !strings.HasPrefix(out, "netbed v1.2.3-4-gabcdef (") {
		t.Errorf("-ldflags version not shown: %q", out)
	}
}

func TestCompletion(t *testing.T) {
	for sh, want := range map[string]string{"bash": "__start_netbed", "zsh": "#compdef netbed", "fish": "complete -c netbed"} {
		code, out, errs := runCLI("completion", sh)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %s, no %q in %.200s", sh, code, errs, want, out)
		}
	}
	// Cobra's completion protocol: subcommands of topo gen, and flags.
	if _, out, _ := runCLI("__complete", "topo", "gen", ""); !strings.Contains(out, "spine-leaf") || !strings.Contains(out, "multi-az") {
		t.Errorf("fabric completion: %q", out)
	}
	if _, out, _ := runCLI("__complete", "run", "--back"); !strings.Contains(out, "--backend") {
		t.Errorf("flag completion: %q", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errs := runCLI("lbas")
	if code != 2 || !strings.Contains(errs, `unknown command "lbas"`) || !strings.Contains(errs, "labs") {
		t.Errorf("exit %d, %s", code, errs)
	}
	if code, out, _ := runCLI(); code != 0 || !strings.Contains(out, "labs") || !strings.Contains(out, "completion") {
		t.Errorf("netbed without arguments: exit %d\n%s", code, out)
	}
}

// TestValidateAllProblems: validate reports every problem of every file,
// one per line starting with file:line:, and exits 1; good files say ok.
func TestValidateAllProblems(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	src := `name: bad
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
networks: [{name: web, subnet: 10.0.1.0/24}]
steps:
  - spawn: {name: web, count: 1, network: web, hosts: [host9]}
  - traffic: {from: [web-1], to: [db-1], tag: x}
  - expect: {tag: z}
`
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := "../../scenarios/library/spine-failure.yaml"
	code, out, errs := runCLI("validate", bad, good, empty)
	want := []string{
		bad + `:6: steps[0].spawn.hosts[0]: "host9" is not a host of topology spine-leaf (hosts: host1, host2)`,
		bad + `:7: steps[1].traffic.to[0]: "db-1" matches no instance spawned before this step`,
		bad + `:8: steps[2].expect.tag: "z" is set by no traffic step before this one (tags set before it: x)`,
		empty + `: empty file; a scenario needs at least name, topology and steps`,
		"netbed validate: 4 problem(s) in 2 of 3 file(s), listed above",
	}
	if code != 1 || strings.TrimSpace(errs) != strings.Join(want, "\n") || !strings.Contains(out, good+": ok") {
		t.Errorf("exit %d\nstdout: %s\nstderr:\n%s\nwant stderr:\n%s", code, out, errs, strings.Join(want, "\n"))
	}
}

// TestDocsNameRealCommands: the commands docs/design.md's layout and the
// README's examples name are commands netbed has (the design once listed
// a `plan` command that did not exist).
func TestDocsNameRealCommands(t *testing.T) {
	have := map[string]bool{}
	for _, c := range newRoot(nil, nil).Commands() {
		have[c.Name()] = true
	}
	design, err := os.ReadFile("../../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := regexp.MustCompile(`(?s)the CLI: (.*?) \(netbed -h`).FindSubmatch(design)
	if listed == nil {
		t.Fatal("docs/design.md: no 'the CLI: ... (netbed -h' list of commands")
	}
	names := strings.FieldsFunc(string(listed[1]), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The command lines in the README's code blocks.
	for i, block := range strings.Split(string(readme), "```") {
		if i%2 == 0 {
			continue
		}
		for _, m := range regexp.MustCompile(`(?m)^netbed ([a-z][a-z-]*)`).FindAllStringSubmatch(block, -1) {
			names = append(names, m[1])
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %v", names)
	}
	for _, n := range names {
		if !have[n] {
			t.Errorf("the docs name `netbed %s`, which does not exist", n)
		}
	}
}
