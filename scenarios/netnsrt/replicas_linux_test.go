package netnsrt_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/etcdtest"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
)

// TestControllerReplicasOnNetns runs the library's controller-replicas on
// netns: three replica processes on a 3-member etcd; replica-1 and an
// etcd member really get SIGKILL (their pids were alive before and are
// gone after), the run's checks pass, and Close leaves no replica or
// etcd process behind.
func TestControllerReplicasOnNetns(t *testing.T) {
	testutil.RequireRoot(t)
	etcdtest.Binary(t)
	s, err := scenarios.Load("../library/controller-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, "controller-replicas")
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()})
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	var pids []int
	want := map[string]bool{"controller/replica-1": false, "etcd/member-1": false}
	for _, f := range run.Faults {
		if _, ok := want[f.Target]; !ok || f.Restore {
			continue
		}
		want[f.Target] = true
		var pid int
		if _, err := fmt.Sscanf(f.Detail, "SIGKILL to pid %d", &pid); err != nil {
			t.Errorf("%s: detail %q; want a SIGKILL to a pid", f.Target, f.Detail)
			continue
		}
		pids = append(pids, pid)
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no fault of %s in %+v", k, run.Faults)
		}
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d was killed, yet it runs", pid)
		}
	}
	// Close (by Run) stopped the replicas and the members it restarted.
	out, _ := exec.Command("pgrep", "-f", "--replica replica-").Output()
	for _, l := range strings.Fields(string(out)) {
		cmdline, _ := exec.Command("ps", "-o", "args=", "-p", l).Output()
		if strings.Contains(string(cmdline), "--parent "+strconv.Itoa(syscall.Getpid())) {
			t.Errorf("replica left running: %s", cmdline)
		}
	}
}

// TestControllerReplicasSecureOnNetns runs controller-replicas with
// secure: true: the replicas serve TLS with tokens and client
// certificates, and the etcd members serve TLS and ask for a client
// certificate of their own CA, which the replicas present. The run itself
// fails unless the members refuse a client without a certificate and one
// with a node's (the controller's CA's) certificate, and unless the
// controller refuses a caller without credentials; replica-1 and an etcd
// member are SIGKILLed and restarted on the way, as in the plain run.
func TestControllerReplicasSecureOnNetns(t *testing.T) {
	testutil.RequireRoot(t)
	etcdtest.Binary(t)
	s, err := scenarios.Load("../library/controller-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.Controller.Secure = true
	rt := newRuntime(t, "controller-replicas-secure")
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()})
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	killed := 0
	for _, f := range run.Faults {
		if !f.Restore && strings.HasPrefix(f.Detail, "SIGKILL to pid") {
			killed++
		}
	}
	if killed != 2 {
		t.Errorf("%d processes killed, want replica-1 and etcd member-1: %+v", killed, run.Faults)
	}
}

// TestControllerCNCHandoverOnNetns runs the library's
// controller-cnc-handover on netns: the replica leading the CNC's election
// gets SIGKILL in a spawn storm without being told; the CNC must then
// report through the next leader, or the storm's ports stay in BUILD and
// the run's checks fail. The kill's fault names the replica it resolved
// to and carries the handover's time, which cannot be shorter than the
// dead leader's lease.
func TestControllerCNCHandoverOnNetns(t *testing.T) {
	testutil.RequireRoot(t)
	etcdtest.Binary(t)
	s, err := scenarios.Load("../library/controller-cnc-handover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, "controller-cnc-handover")
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()})
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	handovers := 0
	for _, f := range run.Faults {
		if f.Restore || !strings.HasPrefix(f.Target, "controller/replica-") {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(f.Detail, "SIGKILL to pid %d", &pid); err != nil {
			t.Errorf("%s: detail %q; want a SIGKILL to a pid", f.Target, f.Detail)
		} else if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d was killed, yet it runs", pid)
		}
		if f.CNCHandover < time.Second || f.CNCHandover > 30*time.Second {
			t.Errorf("%s: CNC handover %v, want between the lease (1s) and 30s", f.Target, f.CNCHandover)
		}
		handovers++
		t.Logf("%s: %s", f.Target, f)
	}
	if handovers != 1 {
		t.Errorf("%d kills of the CNC's leader with a handover, want 1: %+v", handovers, run.Faults)
	}
}
