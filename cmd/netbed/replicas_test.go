package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/election"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/controller/store/etcdstore"
	"github.com/netbed/netbed/internal/etcdtest"
)

// replicaSet runs `netbed controller serve` replicas on one etcd cluster,
// each a process of its own (this test binary acting as netbed).
type replicaSet struct {
	t       testing.TB
	etcd    *etcdtest.Cluster
	topo    string
	prefix  string
	extra   []string // more flags for every replica
	mu      sync.Mutex
	procs   []*exec.Cmd
	urls    []string
	logs    []*strings.Builder
	clients []*api.Client
}

func startReplicas(t testing.TB, c *etcdtest.Cluster, n int, topo string, extra ...string) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, etcd: c, topo: topo, prefix: "/" + filepath.Base(t.TempDir()) + "/", extra: extra}
	rs.procs = make([]*exec.Cmd, n)
	rs.urls = make([]string, n)
	rs.logs = make([]*strings.Builder, n)
	rs.clients = make([]*api.Client, n)
	t.Cleanup(func() {
		for i := range rs.procs {
			rs.kill(i)
		}
		if t.Failed() {
			for i, l := range rs.logs {
				rs.mu.Lock()
				t.Logf("--- replica-%d ---\n%s", i+1, l)
				rs.mu.Unlock()
			}
		}
	})
	for i := range n {
		rs.start(i)
	}
	return rs
}

func (rs *replicaSet) name(i int) string { return fmt.Sprintf("replica-%d", i+1) }

func (rs *replicaSet) start(i int) {
	rs.t.Helper()
	args := []string{"controller", "serve", "--store", rs.etcd.URL(), "--etcd-prefix", rs.prefix,
		"--replica", rs.name(i), "--listen", "127.0.0.1:0", "--leader-ttl", "1s", "--etcd-max-txn-ops", fmt.Sprint(etcdtest.MaxTxnOps)}
	args = append(args, rs.extra...)
	if rs.topo != "" {
		args = append(args, "--topology", rs.topo)
	}
	cmd, u, log := spawnController(rs.t, &rs.mu, rs.name(i), args)
	rs.mu.Lock()
	rs.procs[i], rs.urls[i], rs.logs[i], rs.clients[i] = cmd, u, log, api.NewClient(u, nil)
	rs.mu.Unlock()
}

// spawnController starts `netbed controller serve args` as a process (this
// test binary acting as netbed) and returns it once it serves, with its
// URL and its output (written under mu).
func spawnController(t testing.TB, mu *sync.Mutex, name string, args []string) (*exec.Cmd, string, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunCLI+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &strings.Builder{}
	cmd.Stderr = &lockedWriter{mu: mu, w: log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if _, u, ok := strings.Cut(line, "serving "); ok {
				urlc <- u
			}
		}
		close(urlc)
	}()
	select {
	case u, ok := <-urlc:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("%s exited before serving:\n%s", name, log)
		}
		return cmd, u, log
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not serve within 20s:\n%s", name, log)
	}
	return nil, "", nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// kill sends replica i SIGKILL.
func (rs *replicaSet) kill(i int) {
	rs.mu.Lock()
	cmd := rs.procs[i]
	rs.procs[i] = nil
	rs.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
}

func (rs *replicaSet) client(i int) *api.Client {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.clients[i]
}

// leader returns the replica that runs the CNC ("" when none).
func (rs *replicaSet) leader(t *testing.T) string {
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: rs.etcd.Endpoints(), Prefix: rs.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := election.Leader(ctx, st.Client(), st.Prefix()+"cnc")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitLeader waits until a replica other than not leads the CNC.
func (rs *replicaSet) waitLeader(t *testing.T, not string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if l := rs.leader(t); l != "" && l != not {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica but %q leads the CNC after 20s", not)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// transient reports whether err may go away on another replica or later:
// the replica is gone, or etcd was briefly unavailable.
func transient(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status == 503 || ae.Code == "internal" || ae.Code == "canceled"
	}
	return err != nil
}

// ledger is what the clients were told: the ports created and the
// addresses allocated and released, each acknowledged.
type ledger struct {
	retries atomic.Int64 // calls repeated, on another replica or later
	mu      sync.Mutex
	ports   map[string]controller.Port // live acknowledged ports by name
	held    map[netip.Addr]string      // acknowledged allocations -> holder
}

// storm runs workers clients, each on replica w%n and moving to the next
// replica when its own fails, for rounds rounds: create a port (bound to a
// host when hosts is set, with the agent's underlay reports), allocate two
// addresses, and every other round release them and delete the previous
// port. Hooks run between rounds (to kill something mid-storm).
func storm(t *testing.T, rs *replicaSet, workers, rounds int, hosts []string, mid func(done int)) *ledger {
	ctx := context.Background()
	lg := &ledger{ports: map[string]controller.Port{}, held: map[netip.Addr]string{}}
	n := len(rs.clients)
	var doneMu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur := w % n
			call := func(what string, f func(c *api.Client, retry bool) error) bool {
				for attempt := 0; ; attempt++ {
					err := f(rs.client(cur), attempt > 0)
					if err == nil {
						return true
					}
					if !transient(err) || attempt == 100 {
						t.Errorf("worker %d: %s: %v", w, what, err)
						return false
					}
					lg.retries.Add(1)
					cur = (cur + 1) % n
					time.Sleep(50 * time.Millisecond)
				}
			}
			var prev string
			var prevAddrs []netip.Addr
			for i := range rounds {
				name := fmt.Sprintf("w%02d-%03d", w, i)
				req := controller.PortRequest{Name: name, Network: "n"}
				if hosts != nil {
					req.Host = hosts[(w+i)%len(hosts)]
				}
				var p controller.Port
				if !call("create port "+name, func(c *api.Client, retry bool) (err error) {
					if retry { // the first try's outcome may be unknown
						p, _, err = c.EnsurePort(ctx, req)
						return err
					}
					p, err = c.CreatePort(ctx, req)
					return err
				}) {
					return
				}
				lg.mu.Lock()
				lg.ports[name] = p
				lg.mu.Unlock()
				if hosts != nil {
					for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
						if !call("underlay "+name, func(c *api.Client, _ bool) error {
							_, err := c.SetUnderlayState(ctx, name, controller.StateUpdate{State: s, Host: req.Host})
							return err
						}) {
							return
						}
					}
				}
				holder := "h-" + name
				var got []controller.Allocation
				if !call("allocate for "+holder, func(c *api.Client, retry bool) (err error) {
					if retry {
						// An allocation of unknown outcome is given back
						// before asking again (a client that lost the
						// answer would do the same, or leak).
						if _, all, err := rs.heldBy(c, holder); err == nil && len(all) > 0 {
							got = all
							return nil
						} else if err != nil {
							return err
						}
					}
					got, err = c.AllocateBatch(ctx, controller.AllocRequest{Network: "n", Count: 2, Holder: holder})
					return err
				}) {
					return
				}
				lg.mu.Lock()
				for _, a := range got {
					lg.held[a.Address] = holder
				}
				lg.mu.Unlock()
				if i%2 == 1 {
					if !call("release "+prev, func(c *api.Client, _ bool) error {
						err := c.Release(ctx, "n", prevAddrs, "h-"+prev)
						if errors.Is(err, ipam.ErrNotAllocated) {
							return nil // an earlier try of this release did it
						}
						return err
					}) {
						return
					}
					if !call("delete port "+prev, func(c *api.Client, _ bool) error {
						_, err := c.DeletePort(ctx, prev)
						if errors.Is(err, controller.ErrNotFound) {
							return nil
						}
						return err
					}) {
						return
					}
					lg.mu.Lock()
					delete(lg.ports, prev)
					for _, a := range prevAddrs {
						delete(lg.held, a)
					}
					lg.mu.Unlock()
				}
				prev = name
				prevAddrs = nil
				for _, a := range got {
					prevAddrs = append(prevAddrs, a.Address)
				}
				doneMu.Lock()
				done++
				d := done
				doneMu.Unlock()
				if mid != nil {
					mid(d)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls repeated after a failure", lg.retries.Load())
	return lg
}

// heldBy reads from the store which addresses holder holds (for a retried
// allocation whose first try's outcome is unknown).
func (rs *replicaSet) heldBy(_ *api.Client, holder string) (bool, []controller.Allocation, error) {
	d, err := rs.dump()
	if err != nil {
		return false, nil, err
	}
	var out []controller.Allocation
	for k, h := range d[ipam.BucketAddrs] {
		if h == holder {
			a, _ := netip.AddrFromSlice([]byte(k[strings.IndexByte(k, 0)+1:]))
			out = append(out, controller.Allocation{Address: a, Holder: holder})
		}
	}
	return len(out) > 0, out, nil
}

func (rs *replicaSet) dump() (map[string]map[string]string, error) {
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: rs.etcd.Endpoints(), Prefix: rs.prefix, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return store.Dump(context.Background(), st, controller.Buckets...)
}

// checkExact compares the store with the ledger: every acknowledged port
// and allocation is there, nothing else holds an address, no address is
// held twice, and the service's own consistency check passes.
func checkExact(t *testing.T, rs *replicaSet, c *api.Client, lg *ledger) {
	t.Helper()
	ctx := context.Background()
	if problems, err := c.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("store check: %v %v", problems, err)
	}
	ports, err := c.ListPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]controller.Port{}
	for _, p := range ports {
		byName[p.Name] = p
	}
	want := map[netip.Addr]string{}
	for name, p := range lg.ports {
		got, ok := byName[name]
		if !ok {
			t.Errorf("acknowledged port %s lost", name)
			continue
		}
		if got.ID != p.ID {
			t.Errorf("port %s: id %s, acknowledged %s (created twice?)", name, got.ID, p.ID)
		}
		for _, ip := range got.IPs {
			want[ip.Address] = "port:" + got.ID
		}
	}
	for name := range byName {
		if _, ok := lg.ports[name]; !ok {
			t.Errorf("port %s in the store, never acknowledged or deleted", name)
		}
	}
	for a, h := range lg.held {
		if o, dup := want[a]; dup {
			t.Errorf("address %v acknowledged to %s and to %s", a, h, o)
		}
		want[a] = h
	}
	d, err := rs.dump()
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Addr]string{}
	for k, h := range d[ipam.BucketAddrs] {
		a, _ := netip.AddrFromSlice([]byte(k[strings.IndexByte(k, 0)+1:]))
		if o, dup := have[a]; dup {
			t.Errorf("address %v held twice: %s and %s", a, o, h)
		}
		have[a] = h
	}
	for a, h := range want {
		if have[a] != h {
			t.Errorf("address %v: acknowledged to %s, store says %q", a, h, have[a])
		}
	}
	for a, h := range have {
		if _, ok := want[a]; !ok {
			t.Errorf("address %v held by %s, never acknowledged (leak)", a, h)
		}
	}
	t.Logf("%d ports, %d addresses held, all as acknowledged", len(byName), len(have))
}

func setupNetwork(t testing.TB, c *api.Client, segment controller.Segment) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: "n", Segment: segment}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSubnet(ctx, controller.SubnetRequest{Network: "n", CIDR: netip.MustParsePrefix("10.0.0.0/16")}); err != nil {
		t.Fatal(err)
	}
}

// TestReplicasAllocateRelease: 64 clients across 3 replicas on a 3-member
// etcd create ports, allocate and release addresses and delete ports; the
// store then holds exactly what they were told.
func TestReplicasAllocateRelease(t *testing.T) {
	c := etcdtest.Start(t, 3)
	rs := startReplicas(t, c, 3, "")
	setupNetwork(t, rs.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	lg := storm(t, rs, 64, 6, nil, nil)
	checkExact(t, rs, rs.client(2), lg)
}

func spineLeafFile(t *testing.T) (string, []string) {
	t.Helper()
	return filepath.Join("..", "..", "topologies", "examples", "spine-leaf-2x4.clab.yml"), []string{"host1", "host2", "host3", "host4"}
}

// waitAllActive waits until every acknowledged port is ACTIVE_ACTIVE.
func waitAllActive(t *testing.T, c *api.Client, lg *ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name := range lg.ports {
		if p, err := c.WaitPort(ctx, name, controller.StatusActiveActive); err != nil {
			t.Errorf("port %s not ACTIVE_ACTIVE: %v (%+v)", name, err, p.Transitions)
			return
		}
	}
}

// TestReplicasCommittersAllocateRelease is TestReplicasAllocateRelease
// with each replica committing three batches at once, each committer a
// writer of its own (--etcd-committers 3): nine writers, the same exact
// store.
func TestReplicasCommittersAllocateRelease(t *testing.T) {
	c := etcdtest.Start(t, 3)
	rs := startReplicas(t, c, 3, "", "--etcd-committers", "3")
	setupNetwork(t, rs.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	lg := storm(t, rs, 64, 6, nil, nil)
	checkExact(t, rs, rs.client(2), lg)
}

// TestReplicaKilledMidStorm: the replica running the CNC is SIGKILLed in
// the middle of an allocation storm; its clients move to the others,
// another replica takes the CNC over and finishes the ports the first left
// in BUILD: every port reaches ACTIVE_ACTIVE, the store holds exactly what
// was acknowledged.
func TestReplicaKilledMidStorm(t *testing.T) {
	c := etcdtest.Start(t, 3)
	topo, hosts := spineLeafFile(t)
	rs := startReplicas(t, c, 3, topo)
	setupNetwork(t, rs.client(0), controller.Segment{Type: controller.SegmentVXLAN, ID: 10100})
	first := rs.waitLeader(t, "")
	victim := -1
	for i := range 3 {
		if rs.name(i) == first {
			victim = i
		}
	}
	var once sync.Once
	lg := storm(t, rs, 48, 4, hosts, func(done int) {
		if done >= 48 {
			once.Do(func() { rs.kill(victim) })
		}
	})
	if lg.retries.Load() == 0 {
		t.Error("no client saw the replica die: the kill came after the storm")
	}
	next := rs.waitLeader(t, first)
	t.Logf("CNC leadership moved from %s to %s", first, next)
	live := rs.client((victim + 1) % 3)
	waitAllActive(t, live, lg)
	checkExact(t, rs, live, lg)
}

// TestEtcdMemberKilledMidStorm: etcd's raft leader is SIGKILLed in the
// middle of a storm; the replicas carry on through the other two members,
// lose nothing acknowledged and every port reaches ACTIVE_ACTIVE.
func TestEtcdMemberKilledMidStorm(t *testing.T) {
	c := etcdtest.Start(t, 3)
	topo, hosts := spineLeafFile(t)
	rs := startReplicas(t, c, 3, topo)
	setupNetwork(t, rs.client(0), controller.Segment{Type: controller.SegmentVXLAN, ID: 10100})
	rs.waitLeader(t, "")
	leader := c.Leader(t)
	var once sync.Once
	lg := storm(t, rs, 48, 4, hosts, func(done int) {
		if done >= 48 {
			once.Do(func() { c.Kill(leader) })
		}
	})
	live := rs.client(0)
	waitAllActive(t, live, lg)
	checkExact(t, rs, live, lg)
}

// TestControllerEtcdUnreachable: a replica whose etcd does not answer at
// start exits saying so; one whose etcd goes away answers 503
// store_unreachable, and after etcd is back the store is whole.
func TestControllerEtcdUnreachable(t *testing.T) {
	etcdtest.Binary(t)
	var out, errb strings.Builder
	code := run([]string{"controller", "serve", "--store", "etcd://127.0.0.1:1", "--listen", "127.0.0.1:0"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "etcd unreachable at 127.0.0.1:1") {
		t.Errorf("serve with no etcd: exit %d, stderr %q; want an error naming etcd and its address", code, errb.String())
	}

	c := etcdtest.Start(t, 3)
	rs := startReplicas(t, c, 1, "")
	cl := rs.client(0)
	setupNetwork(t, cl, controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	ctx := context.Background()
	if _, err := cl.CreatePort(ctx, controller.PortRequest{Name: "before", Network: "n"}); err != nil {
		t.Fatal(err)
	}
	c.KillAll()
	_, err := cl.CreatePort(ctx, controller.PortRequest{Name: "during", Network: "n"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "store_unreachable" {
		t.Errorf("create port with etcd down: %v, want 503 store_unreachable", err)
	}
	for i := range c.Members {
		c.Restart(i)
	}
	c.WaitHealthy(t, 20*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		problems, err := cl.Check(ctx)
		if err == nil {
			if len(problems) > 0 {
				t.Errorf("store after etcd came back: %v", problems)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller still failing 15s after etcd came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cl.GetPort(ctx, "before"); err != nil {
		t.Errorf("port made before the outage: %v", err)
	}
	if _, err := cl.CreatePort(ctx, controller.PortRequest{Name: "after", Network: "n"}); err != nil {
		t.Errorf("create after etcd came back: %v", err)
	}
}
