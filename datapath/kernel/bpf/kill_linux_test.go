package bpf

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// The child process of TestKilledLeavesNothingAttached.
const (
	childLabEnv   = "NETBED_KBPF_TEST_LAB"   // lab to attach to
	childStateEnv = "NETBED_KBPF_TEST_STATE" // its state root
	childReady    = "fabric built, kill me now"
)

// childBuild attaches to the lab, builds gen 3 on it and waits to be
// killed (TestMain runs it in the child process).
func childBuild() int {
	lab, err := netns.AttachLab(os.Getenv(childLabEnv), &netns.Options{StateRoot: os.Getenv(childStateEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	model, err := gen3.New(lab.Topology, gen3.Options{Mode: gen3.Tunnel})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f := New(Options{})
	if err := f.Build(context.Background(), kernel.Env{Lab: lab, Topology: lab.Topology, Model: model, StateDir: os.TempDir()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(childReady)
	select {} // until SIGKILL
}

// tcxPrograms counts the TCX ingress programs on node's link dev.
func tcxPrograms(t *testing.T, lab *netns.Lab, node, dev string) int {
	t.Helper()
	h, err := lab.Handle(node)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s %s: %v", node, dev, err)
	}
	n := 0
	if err := lab.Do(node, func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: lk.Attrs().Index, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		n = len(res.Programs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKilledLeavesNothingAttached: a process that built the fabric and
// is killed with SIGKILL leaves no program attached (nothing is pinned:
// the TCX links die with its file descriptors), so `netbed down` has
// only the lab's namespaces to remove.
func TestKilledLeavesNothingAttached(t *testing.T) {
	testutil.RequireRoot(t)
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name(testPrefix + "-"), Spines: 1, Leaves: 1, HostsPerLeaf: 2})
	if err != nil {
		t.Fatal(err)
	}
	opt := &netns.Options{StateRoot: t.TempDir()}
	t.Cleanup(func() {
		if _, err := netns.Destroy(tp.Name, opt); err != nil {
			t.Errorf("destroy lab: %v", err)
		}
	})
	lab, _, err := netns.Deploy(context.Background(), tp, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childLabEnv+"="+tp.Name, childStateEnv+"="+opt.StateRoot)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), childReady) {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatal("the child exited before building the fabric")
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child did not build the fabric in 30 s")
	}
	if n := tcxPrograms(t, lab, "host1", gen3.DevCiliumVXLAN); n != 2 {
		t.Fatalf("host1 cilium_vxlan has %d TCX programs while the child runs, want 2 (policy, bpf_overlay)", n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The kernel releases the links as it closes the dead process's
	// files; poll briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		for _, host := range []string{"host1", "host2"} {
			left += tcxPrograms(t, lab, host, gen3.DevCiliumVXLAN)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d TCX programs still attached 5 s after the child was killed", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
