package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies/netns"
)

// envRunCLI makes the test binary act as netbed (TestMain), so that a
// test can run `netbed run` as a process of its own and SIGKILL it.
const envRunCLI = "NETBED_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunCLI) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if netbedDir != "" {
		os.RemoveAll(netbedDir)
	}
	os.Exit(code)
}

// TestDownAfterKill: a `netbed run --backend netns` process killed with
// SIGKILL in the middle of its run leaves its lab: namespaces, state and
// temporary directories (controller store, CNI state and cache, captures).
// `netbed labs` shows its owner gone, and `netbed down --lab` with a name
// as `ip netns list` shows it, or `down --all`, removes all of it.
func TestDownAfterKill(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	plugins := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(plugins, "netbed-cni"), "github.com/netbed/netbed/cmd/netbed-cni").CombinedOutput(); err != nil {
		t.Fatalf("go build netbed-cni: %v\n%s", err, out)
	}
	for _, how := range []string{"lab", "all"} {
		t.Run(how, func(t *testing.T) {
			lab, st := killedRun(t, plugins)
			if r, ok := labsRow(t, lab); !ok || r.Owner != "gone" || r.Backend != "netns" || len(r.TempDirs) != len(st.TempDirs) {
				t.Errorf("netbed labs after the kill: %+v (found %v)", r, ok)
			}
			var code int
			var stdout, stderr string
			switch how {
			case "lab":
				// As `ip netns list` shows a node of the lab.
				code, stdout, stderr = runCLI("down", "--lab", st.Namespaces[0])
			case "all":
				// --all, limited to this lab: other tests' labs on the
				// machine are not this test's to remove.
				downAllOptions = &netns.Options{Match: func(l string) bool { return l == lab }}
				t.Cleanup(func() { downAllOptions = nil })
				code, stdout, stderr = runCLI("down", "--all")
			}
			if code != 0 || !strings.Contains(stdout, "removed "+lab) || !strings.Contains(stdout, fmt.Sprintf("%d temporary directories", len(st.TempDirs))) {
				t.Errorf("down: exit %d\n%s%s", code, stdout, stderr)
			}
			if left := labNamespaces("clab-" + lab); len(left) > 0 {
				t.Errorf("namespaces left: %v", left)
			}
			for _, d := range st.TempDirs {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("temporary directory left: %s", d)
				}
			}
			if _, err := os.Stat(filepath.Join(netns.StateRoot, lab)); err == nil {
				t.Errorf("state of %s left", lab)
			}
		})
	}
}

// killedRun starts `netbed run --backend netns` on a scenario of pods as
// a process, SIGKILLs it once its lab records the CNI cache (its pods are
// being attached), and returns the lab's name and state.
func killedRun(t *testing.T, plugins string) (string, *netns.State) {
	t.Helper()
	name := testutil.Name("kill-")
	file := filepath.Join(t.TempDir(), "kill.yaml")
	src := `name: ` + name + `
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
seed: 1
networks:
  - {name: pods, subnet: 10.9.0.0/24}
steps:
  - spawn: {name: app, kind: pod, count: 2, network: pods, hosts: [host1, host2]}
  - at: 120s
    traffic: {proto: icmp, from: [app-1], to: [app-2]}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", file, "--backend", "netns", "-q")
	cmd.Env = append(os.Environ(), envRunCLI+"=1", "CNI_PATH="+plugins)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	prefix := "nb-" + name + "-evpn-"
	lab := ""
	var st *netns.State
	t.Cleanup(func() {
		if lab != "" {
			netns.Destroy(lab, nil)
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		if lab == "" {
			ents, _ := os.ReadDir(netns.StateRoot)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), prefix) {
					lab = e.Name()
				}
			}
		}
		if lab != "" {
			if b, err := os.ReadFile(filepath.Join(netns.StateRoot, lab, "state.json")); err == nil {
				var s netns.State
				if json.Unmarshal(b, &s) == nil && hasDir(s.TempDirs, "netbed-cni-cache-") {
					st = &s
					break
				}
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("netbed run ended before it was killed (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run never recorded its CNI cache (lab %q):\n%s", lab, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	// What the kill left: namespaces and every directory it recorded.
	if len(labNamespaces("clab-"+lab)) == 0 {
		t.Fatalf("the killed run left no namespace of %s", lab)
	}
	for _, want := range []string{"netbed-cni-", "netbed-store-", "-pcap-"} {
		if !hasDir(st.TempDirs, want) {
			t.Errorf("state records no %s directory: %v", want, st.TempDirs)
		}
	}
	for _, d := range st.TempDirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("recorded directory %s: %v", d, err)
		}
	}
	return lab, st
}

func hasDir(dirs []string, part string) bool {
	for _, d := range dirs {
		if strings.Contains(filepath.Base(d), part) {
			return true
		}
	}
	return false
}

func TestMatchLab(t *testing.T) {
	labs := []netns.LabInfo{
		{Name: "spine-leaf", Prefix: "clab-spine-leaf-", Namespaces: []string{"clab-spine-leaf-leaf1", "clab-spine-leaf-spine1"}},
		{Name: "spine-leaf-2", Prefix: "clab-spine-leaf-2-", Namespaces: []string{"clab-spine-leaf-2-leaf1"}},
		{Name: "nb-x-evpn-1a2b", Prefix: "clab-nb-x-evpn-1a2b-"},
	}
	cases := []struct{ in, want string }{
		{"spine-leaf", "spine-leaf"},
		{"clab-spine-leaf", "spine-leaf"},               // as containerlab names the lab
		{"clab-spine-leaf-leaf1", "spine-leaf"},         // a namespace of ip netns list
		{"clab-spine-leaf-2-leaf1", "spine-leaf-2"},     // not the shorter lab's
		{"clab-spine-leaf-2", "spine-leaf-2"},           // exact before prefix
		{"clab-nb-x-evpn-1a2b-host3", "nb-x-evpn-1a2b"}, // a node whose namespace is gone
		{"clab-spine-leaf-2-leaf9", "spine-leaf-2"},     // the longest prefix wins
		{"leaf1", ""},
		{"clab-other", ""},
	}
	for _, c := range cases {
		got, ok := matchLab(labs, c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("matchLab(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}
