package ipamd_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/datapath/vpc/ipamd"
)

// node is one instance with its pool, on virtual time.
type node struct {
	s    *cloud.Sched
	m    *cloud.Model
	sub  cloud.Subnet
	pool *ipamd.Pool
}

// do runs f as the only actor, to its end.
func (n *node) do(f func(ctx context.Context)) {
	n.s.Go(func() { f(context.Background()) })
	n.s.Run()
}

func newNode(t *testing.T, typ string, cfg ipamd.Config) *node {
	t.Helper()
	n := &node{s: &cloud.Sched{}}
	n.m = cloud.New(n.s, nil)
	var err error
	n.do(func(ctx context.Context) {
		if n.sub, err = n.m.CreateSubnet(ctx, netip.MustParsePrefix("10.0.0.0/20"), "a"); err != nil {
			return
		}
		var inst cloud.Instance
		if inst, err = n.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "node-1", Type: typ, Subnet: n.sub.ID}); err != nil {
			return
		}
		it, _ := n.m.Limits().InstanceType(typ)
		n.pool, err = ipamd.New(ctx, n.m, n.s, inst, it, cfg)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) reconcile(t *testing.T) {
	t.Helper()
	var err error
	n.do(func(ctx context.Context) { err = n.pool.Reconcile(ctx) })
	if err != nil {
		t.Fatal(err)
	}
}

func (n *node) allocate(t *testing.T, pods ...string) {
	t.Helper()
	for _, pod := range pods {
		var err error
		n.do(func(ctx context.Context) { _, _, err = n.pool.Allocate(ctx, pod) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (n *node) release(t *testing.T, pods ...string) {
	t.Helper()
	for _, pod := range pods {
		var err error
		n.do(func(ctx context.Context) { err = n.pool.Release(ctx, pod) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

type counts struct{ ENIs, Addresses, Taken, Free int }

func (n *node) counts() counts {
	s := n.pool.Stats()
	return counts{s.ENIs, s.Addresses, s.Taken, n.pool.Free()}
}

func want(t *testing.T, n *node, step string, w counts) {
	t.Helper()
	if got := n.counts(); got != w {
		t.Errorf("%s: %+v, want %+v", step, got, w)
	}
}

// TestWarmIPTargets: WARM_IP_TARGET and MINIMUM_IP_TARGET are reached,
// kept as pods come (without an API call on a pod's spawn), and the
// surplus goes back when pods leave.
func TestWarmIPTargets(t *testing.T) {
	n := newNode(t, "m5.large", ipamd.Config{WarmIPTarget: 3, MinimumIPTarget: 5})
	n.reconcile(t)
	want(t, n, "settled", counts{ENIs: 1, Addresses: 5, Free: 5})
	calls := n.pool.Stats().Calls
	n.allocate(t, "p1", "p2", "p3", "p4")
	if got := n.pool.Stats().Calls; got != calls {
		t.Errorf("pods from the pool made %d API calls", got-calls)
	}
	want(t, n, "4 pods", counts{ENIs: 1, Addresses: 5, Taken: 4, Free: 1})
	n.reconcile(t)
	want(t, n, "refilled", counts{ENIs: 1, Addresses: 7, Taken: 4, Free: 3})
	// The pool runs dry: a pod's spawn says so and calls nothing.
	n.allocate(t, "p5", "p6", "p7")
	var err error
	n.do(func(ctx context.Context) { _, _, err = n.pool.Allocate(ctx, "p8") })
	if !errors.Is(err, ipamd.ErrNoFreeAddress) {
		t.Errorf("empty pool: %v, want ErrNoFreeAddress", err)
	}
	n.reconcile(t)
	// The primary ENI is full at 9: the pass attaches a second.
	want(t, n, "refilled again", counts{ENIs: 2, Addresses: 10, Taken: 7, Free: 3})
	n.release(t, "p1", "p2", "p3", "p4", "p5", "p6", "p7")
	n.reconcile(t)
	// Surplus: free 10 - 3 = 7, but the minimum of 5 keeps total >= 5.
	if c := n.counts(); c.Free < 3 || c.Addresses < 5 || c.Addresses > 10-1 {
		t.Errorf("after the pods left: %+v", c)
	}
	for range 4 {
		n.reconcile(t)
	}
	want(t, n, "shrunk", counts{ENIs: 2, Addresses: 5, Free: 5})
}

// TestWarmENITarget: WARM_ENI_TARGET=1 keeps a whole ENI's worth of free
// addresses: a pod taking one brings another ENI; when it leaves, the
// spare ENI is detached and deleted.
func TestWarmENITarget(t *testing.T) {
	n := newNode(t, "m5.large", ipamd.Config{WarmENITarget: 1})
	n.reconcile(t)
	want(t, n, "settled", counts{ENIs: 1, Addresses: 9, Free: 9})
	n.allocate(t, "p1")
	n.reconcile(t)
	want(t, n, "one pod", counts{ENIs: 2, Addresses: 18, Taken: 1, Free: 17})
	n.reconcile(t)
	want(t, n, "kept", counts{ENIs: 2, Addresses: 18, Taken: 1, Free: 17})
	n.release(t, "p1")
	n.reconcile(t)
	want(t, n, "pod gone", counts{ENIs: 1, Addresses: 9, Free: 9})
	st := n.m.Stats()
	if st.Calls["DetachNetworkInterface"] != 1 || st.Calls["DeleteNetworkInterface"] != 1 {
		t.Errorf("calls %v: want the spare ENI detached and deleted", st.Calls)
	}
}

// TestNoPoolAndNodeFull: without a pool, each pod's address is an API
// call; a t3.nano (2 ENIs of 2 addresses) holds 2 pods, the third finds
// the node full.
func TestNoPoolAndNodeFull(t *testing.T) {
	n := newNode(t, "t3.nano", ipamd.Config{})
	n.allocate(t, "p1")
	if c := n.m.Stats().Calls["AssignPrivateIpAddresses"]; c != 1 {
		t.Errorf("%d AssignPrivateIpAddresses for one pod", c)
	}
	n.allocate(t, "p2")
	if c := n.m.Stats().Calls; c["CreateNetworkInterface"] != 1 || c["AttachNetworkInterface"] != 1 {
		t.Errorf("second pod: calls %v, want an ENI created and attached", c)
	}
	var err error
	n.do(func(ctx context.Context) { _, _, err = n.pool.Allocate(ctx, "p3") })
	if !errors.Is(err, ipamd.ErrNodeFull) {
		t.Errorf("third pod: %v, want ErrNodeFull", err)
	}
	n.release(t, "p1")
	if c := n.m.Stats().Calls["UnassignPrivateIpAddresses"]; c != 1 {
		t.Errorf("release made %d UnassignPrivateIpAddresses", c)
	}
	want(t, n, "after release", counts{ENIs: 2, Addresses: 1, Taken: 1})
}

// TestAdopt: a drifting pod's address moves to an ENI of its new node.
func TestAdopt(t *testing.T) {
	a := newNode(t, "m5.large", ipamd.Config{WarmIPTarget: 1})
	a.reconcile(t)
	var addr netip.Addr
	var err error
	a.do(func(ctx context.Context) { addr, _, err = a.pool.Allocate(ctx, "pod") })
	if err != nil {
		t.Fatal(err)
	}
	var b *ipamd.Pool
	var eni cloud.ENIID
	a.do(func(ctx context.Context) {
		var inst cloud.Instance
		if inst, err = a.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "node-2", Type: "m5.large", Subnet: a.sub.ID}); err != nil {
			return
		}
		it, _ := a.m.Limits().InstanceType("m5.large")
		if b, err = ipamd.New(ctx, a.m, a.s, inst, it, ipamd.Config{WarmIPTarget: 1}); err != nil {
			return
		}
		eni, err = b.Adopt(ctx, "pod", addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	a.pool.Forget("pod")
	var ni cloud.NetworkInterface
	a.do(func(ctx context.Context) { ni, err = a.m.DescribeNetworkInterface(ctx, eni) })
	if err != nil || !reflect.DeepEqual(ni.Secondaries, []netip.Addr{addr}) {
		t.Errorf("new node's ENI holds %v (%v), want %v", ni.Secondaries, err, addr)
	}
	if st := b.Stats(); st.Taken != 1 || a.pool.Stats().Taken != 0 {
		t.Errorf("taken: new node %d, old %d", st.Taken, a.pool.Stats().Taken)
	}
}
