package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLabCommandsUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"up"}, 2, "exactly one topology file"},
		{[]string{"up", "a.yml", "b.yml"}, 2, "exactly one topology file"},
		{[]string{"up", filepath.Join(t.TempDir(), "missing.clab.yml")}, 1, "missing.clab.yml"},
		{[]string{"down"}, 2, "--lab name, or --all"},
		{[]string{"down", "--all", "--lab", "x"}, 2, "--lab name, or --all"},
		{[]string{"down", "--all", "f.yml"}, 2, "--lab name, or --all"},
		{[]string{"doctor", "extra"}, 2, "unexpected arguments"},
		{[]string{"up", "-h"}, 0, ""}, // help goes to stdout: TestHelpEveryCommand
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}
}

func TestDoctorCommand(t *testing.T) {
	code, stdout, stderr := runCLI("doctor", "--require", "sim")
	if code != 0 || !strings.Contains(stdout, "BACKEND") || !strings.Contains(stdout, "sim") {
		t.Fatalf("doctor: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI("doctor", "--require", "warp"); code != 2 || !strings.Contains(stderr, `unknown backend "warp"`) {
		t.Errorf("doctor --require warp: exit %d, %s", code, stderr)
	}
	// The kernel backend runs where its needs are met (root here: CI),
	// and doctor says which generations it runs.
	code, stdout, stderr = runCLI("doctor", "--require", "kernel")
	if want := map[bool]int{true: 0, false: 1}[os.Geteuid() == 0]; code != want {
		t.Errorf("doctor --require kernel: exit %d, want %d\n%s%s", code, want, stdout, stderr)
	}
	for _, g := range []string{"GENERATION ON KERNEL", "ebpf ", "ebpf-direct ", "vlan "} {
		if !strings.Contains(stdout, g) {
			t.Errorf("doctor does not list %q:\n%s", g, stdout)
		}
	}
	// and over which address families.
	for _, l := range strings.Split(stdout, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch want := map[string]string{"evpn": "IPv4, IPv6", "vlan": "IPv4, IPv6", "ebpf": "IPv4, IPv6", "ebpf-direct": "IPv4"}[f[0]]; {
		case want == "":
		case !strings.Contains(l, want) || want == "IPv4" && strings.Contains(l, "IPv6"):
			t.Errorf("doctor: %s runs over %s on kernel, says %q", f[0], want, l)
		}
	}
	// The test binary's directory has no plugin, nor has $CNI_PATH here
	// (nor /opt/cni/bin, unless this machine installed one).
	t.Setenv("CNI_PATH", "")
	if _, err := os.Stat("/opt/cni/bin/netbed-cni"); err != nil {
		if _, stdout, _ := runCLI("doctor"); !strings.Contains(stdout, "CNI plugin: not found") {
			t.Errorf("doctor without the plugin around:\n%s", stdout)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "netbed-cni"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CNI_PATH", dir)
	if _, stdout, _ := runCLI("doctor"); !strings.Contains(stdout, "CNI plugin: "+filepath.Join(dir, "netbed-cni")) {
		t.Errorf("doctor with the plugin in $CNI_PATH:\n%s", stdout)
	}
}

func TestUpDown(t *testing.T) {
	testutil.RequireRoot(t)
	lab := testutil.Name("nbtest-cli")
	file := filepath.Join(t.TempDir(), "lab.clab.yml")
	yml := fmt.Sprintf(`name: %s
topology:
  nodes:
    spine1: {kind: linux, labels: {netbed.role: spine}}
    leaf1: {kind: linux, labels: {netbed.role: leaf}}
    leaf2: {kind: linux, labels: {netbed.role: leaf}}
    host1: {kind: linux, labels: {netbed.role: host}}
  links:
    - endpoints: ["spine1:eth1", "leaf1:eth1"]
    - endpoints: ["spine1:eth2", "leaf2:eth1"]
    - endpoints: ["host1:eth1", "leaf1:eth2"]
`, lab)
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runCLI("down", "--lab", lab) })
	nsPath := "/run/netns/clab-" + lab + "-leaf1"

	steps := []struct {
		args     []string
		code     int
		want     string // in stdout, or in stderr when code != 0
		nsExists bool
	}{
		{[]string{"up", file}, 0, "4 nodes (4 created, 0 present), 3 links (3 created", true},
		{[]string{"up", file}, 0, "4 nodes (0 created, 4 present), 3 links (0 created, 3 present", true},
		{[]string{"down", file}, 0, "removed " + lab + ": 4 namespaces", false},
		// Nothing left to match: down says so and fails.
		{[]string{"down", "--lab", lab}, 1, "no lab matches", false},
		{[]string{"down", file}, 1, "no lab " + lab + " on this machine", false},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI(s.args...)
		out := stdout
		if s.code != 0 {
			out = stderr
		}
		if code != s.code || !strings.Contains(out, s.want) {
			t.Fatalf("netbed %s: exit %d\nstdout %s\nstderr %s\nwant %q", strings.Join(s.args, " "), code, stdout, stderr, s.want)
		}
		if _, err := os.Stat(nsPath); (err == nil) != s.nsExists {
			t.Errorf("after netbed %s: %s exists=%v, want %v", strings.Join(s.args, " "), nsPath, err == nil, s.nsExists)
		}
		if s.args[0] == "up" {
			// This process deployed it: its owner is alive.
			if r, ok := labsRow(t, lab); !ok || r.Backend != "topology" || r.Nodes != 4 || len(r.Namespaces) != 4 || r.Owner != "alive" || r.AgeSeconds <= 0 {
				t.Errorf("netbed labs: %+v (found %v)", r, ok)
			}
		}
	}
	if _, ok := labsRow(t, lab); ok {
		t.Errorf("netbed labs lists %s after down", lab)
	}
}

// labsRow returns lab's row of 'netbed labs --json'.
func labsRow(t *testing.T, lab string) (labRow, bool) {
	t.Helper()
	code, stdout, stderr := runCLI("labs", "--json")
	if code != 0 {
		t.Fatalf("netbed labs: exit %d: %s", code, stderr)
	}
	var rows []labRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("netbed labs --json: %v in %q", err, stdout)
	}
	for _, r := range rows {
		if r.Name == lab {
			return r, true
		}
	}
	return labRow{}, false
}
