package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/topologies"
)

// TestControllerServe runs `netbed controller serve`'s server, creates a
// network through the client, shuts it down as SIGTERM would, and finds the
// network in the store afterwards.
func TestControllerServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- serveController(ctx, path, "127.0.0.1:0", time.Second, nil, &controller.ClusterPool{CIDR: netip.MustParsePrefix("10.244.0.0/16"), MaskBits: 24}, nil, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output; serve returned %v", <-errc)
	}
	_, url, ok := strings.Cut(lines.Text(), "serving ")
	if !ok {
		t.Fatalf("unexpected first line %q", lines.Text())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	c := api.NewClient(url, nil)
	if _, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: "kept", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 10}}); err != nil {
		t.Fatal(err)
	}
	// --cluster-cidr 10.244.0.0/16 --node-mask 24: node blocks.
	if n, _, err := c.EnsureNode(ctx, "host1"); err != nil || n.PodCIDR.String() != "10.244.0.0/24" {
		t.Errorf("node block: %+v %v", n, err)
	}
	// A second controller on the same store is refused while the first runs.
	if err := serveController(ctx, path, "127.0.0.1:0", 50*time.Millisecond, nil, nil, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second controller on a busy store: %v", err)
	}
	// A long-poll in flight does not hold the shutdown.
	if _, err := c.CreateSubnet(ctx, controller.SubnetRequest{Network: "kept", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePort(ctx, controller.PortRequest{Name: "p", Network: "kept", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	wrote := make(chan struct{})
	var once sync.Once
	go func() {
		tctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) },
		})
		_, err := c.WaitPort(tctx, "p", controller.StatusActiveActive)
		waited <- err
	}()
	<-wrote
	start := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	if err := <-waited; err == nil {
		t.Error("long-poll of a port never ACTIVE_ACTIVE returned no error")
	}
	t.Logf("shutdown with a long-poll in flight took %v", time.Since(start))
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := controller.New(st, nil, nil)
	defer svc.Close()
	if n, err := svc.GetNetwork(context.Background(), "kept"); err != nil || n.Segment.ID != 10 {
		t.Errorf("network after restart: %+v %v", n, err)
	}
}

func TestControllerUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"controller"}, &out, &errb); code != 2 {
		t.Errorf("netbed controller without serve: exit %d, want 2 (%s)", code, errb.String())
	}
	if code := run([]string{"controller", "serve", "extra"}, &out, &errb); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}

// TestControllerServeWithCNC: with a topology the CNC runs inside the
// server: a port bound to a host gets its overlay ACTIVE from the CNC, and
// with the agent's underlay report the port is ACTIVE_ACTIVE.
func TestControllerServeWithCNC(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- serveController(ctx, filepath.Join(t.TempDir(), "ctl.db"), "127.0.0.1:0", time.Second, topo, nil, nil, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output; serve returned %v", <-errc)
	}
	_, url, _ := strings.Cut(lines.Text(), "serving ")
	go func() {
		for lines.Scan() {
		}
	}()
	c := api.NewClient(url, nil)
	if _, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: "n", Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 5000}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSubnet(ctx, controller.SubnetRequest{Network: "n", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePort(ctx, controller.PortRequest{Name: "p", Network: "n", Host: "host1"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := c.SetUnderlayState(ctx, "p", controller.StateUpdate{State: s, Host: "host1"}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	p, err := c.WaitPort(wctx, "p", controller.StatusActiveActive)
	if err != nil {
		t.Fatalf("port never ACTIVE_ACTIVE: %v", err)
	}
	if p.OverlayState != controller.StateActive {
		t.Errorf("overlay %s", p.OverlayState)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A controller started with --parent shuts down when the process
// that started it is gone, as a netns run's controller does when the run
// is killed.
func TestControllerExitsWithParent(t *testing.T) {
	netbedOnPath(t)
	dir := t.TempDir()
	sh := exec.Command("sh", "-c", "netbed controller serve --parent $$ --store "+dir+"/c.db --listen unix:"+dir+"/c.sock >"+dir+"/log 2>&1 & echo $!")
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid %q: %v", out, err)
	}
	alive := func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		return len(f) > 0 && f[0] != "Z"
	}
	for deadline := time.Now().Add(10 * time.Second); alive(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			log, _ := os.ReadFile(dir + "/log")
			t.Fatalf("the controller outlived its parent by 10s; log:\n%s", log)
		}
	}
	if log, _ := os.ReadFile(dir + "/log"); !bytes.Contains(log, []byte("shutting down")) {
		t.Errorf("the controller did not shut down gracefully; log:\n%s", log)
	}
}

// TestControllerEtcdTLSFlags: the etcd TLS flags are checked before the
// store is opened, each mistake a usage error (exit 2) naming the flag.
func TestControllerEtcdTLSFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", filepath.Join(t.TempDir(), "c.db"), "--etcd-ca", "ca.crt"}, "are for an etcd store"},
		{[]string{"--store", "etcd://127.0.0.1:1", "--etcd-cert", "c.crt", "--etcd-key", "c.key"}, "--etcd-ca) is required"},
		{[]string{"--store", "etcd://127.0.0.1:1", "--etcd-ca", "/nonexistent/ca.crt"}, "/nonexistent/ca.crt"},
		{[]string{"--store", "etcd://127.0.0.1:1", "--etcd-ca", "ca.crt", "--etcd-cert", "c.crt"}, "(--etcd-key) together"},
	} {
		var out, errb strings.Builder
		code := run(append([]string{"controller", "serve", "--listen", "unix:" + filepath.Join(t.TempDir(), "s")}, c.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}
