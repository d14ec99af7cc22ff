package vpcipam

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/datapath/vpc/ipamd"
	"github.com/netbed/netbed/topologies"
)

var podNet = netip.MustParsePrefix("10.9.0.0/24")

type rig struct {
	ipam  *IPAM
	cloud *cloud.Model
	fab   *vpc.Fabric
	ctl   *controller.Service
	steps map[string][]string
}

// newRig runs the IPAM over the real controller service (bbolt store),
// the cloud model on a step clock and a real vpc fabric of three VMs.
func newRig(t *testing.T, limits *cloud.Limits, opts Options) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "c.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, controller.SystemClock{})
	t.Cleanup(func() { svc.Close(); st.Close() })
	topo, err := topologies.VPC(topologies.VPCParams{Hosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	fab, err := vpc.New(topo, vpc.Options{Slots: 16})
	if err != nil {
		t.Fatal(err)
	}
	if limits == nil {
		limits = cloud.DefaultLimits()
	}
	clk := &cloud.StepClock{}
	c := cloud.New(clk, limits)
	r := &rig{cloud: c, fab: fab, ctl: svc, steps: map[string][]string{}}
	opts.Mark = func(inst, step string) { r.steps[inst] = append(r.steps[inst], step) }
	if r.ipam, err = New(c, limits, svc, fab, clk, opts); err != nil {
		t.Fatal(err)
	}
	if err := fab.AddSubnet(podNet); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNetwork(ctx, controller.NetworkRequest{Name: "pods", Labels: []string{"prod"}, Tenant: "default"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSubnet(ctx, controller.SubnetRequest{Network: "pods", CIDR: podNet}); err != nil {
		t.Fatal(err)
	}
	if err := r.ipam.AddNetwork(ctx, "pods", podNet); err != nil {
		t.Fatal(err)
	}
	for _, h := range fab.Hosts() {
		if err := r.ipam.AddNode(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// holder returns the VM whose ENI holds a in the data plane.
func (r *rig) holder(t *testing.T, a netip.Addr) string {
	t.Helper()
	eni, ok := r.fab.Router().Holder(a)
	if !ok {
		t.Fatalf("%v is on no ENI", a)
	}
	for _, h := range r.fab.Hosts() {
		n, _ := r.fab.Host(h)
		for _, e := range n.ENIs() {
			if e.ID == eni {
				return h
			}
		}
	}
	t.Fatalf("ENI %s of %v is on no VM", eni, a)
	return ""
}

func TestAllocateFromCloud(t *testing.T) {
	r := newRig(t, nil, Options{})
	ctx := context.Background()
	a, err := r.ipam.Allocate(ctx, "web-1", "host1", "pods", "")
	if err != nil {
		t.Fatal(err)
	}
	if !podNet.Contains(a.IP) || r.holder(t, a.IP) != "host1" {
		t.Fatalf("address %v on %s", a.IP, r.holder(t, a.IP))
	}
	want := []string{"cloud:AssignPrivateIpAddresses", "2-ipam-cloud", "3-port-recorded"}
	if !slices.Equal(r.steps["web-1"], want) {
		t.Errorf("steps %v, want %v", r.steps["web-1"], want)
	}
	p, err := r.ctl.GetPort(ctx, "web-1")
	if err != nil || p.IPs[0].Address != a.IP || p.Host != "host1" {
		t.Fatalf("port %+v, %v", p, err)
	}
	b, err := r.ipam.Allocate(ctx, "web-2", "host1", "", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if b.IP == a.IP || r.cloud.Stats().Calls["AssignPrivateIpAddresses"] != 2 {
		t.Errorf("second pod %v (first %v), %d assign calls", b.IP, a.IP, r.cloud.Stats().Calls["AssignPrivateIpAddresses"])
	}
	if err := r.ipam.Release(ctx, "web-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.fab.Router().Holder(b.IP); ok {
		t.Errorf("%v still on an ENI after release without a warm pool", b.IP)
	}
	if _, err := r.ctl.GetPort(ctx, "web-2"); err == nil {
		t.Error("port kept after release")
	}
	if _, err := r.ipam.Allocate(ctx, "x", "host1", "other", ""); err == nil {
		t.Error("a pod of another network got an address")
	}
}

// TestWarmPool: with a warm target the node's addresses are on its ENI
// before the pod comes, and the pod's spawn calls the cloud not at all.
func TestWarmPool(t *testing.T) {
	r := newRig(t, nil, Options{Pool: ipamd.Config{WarmIPTarget: 3}})
	ctx := context.Background()
	calls := r.cloud.Stats().Calls
	a, err := r.ipam.Allocate(ctx, "web-1", "host2", "pods", "")
	if err != nil {
		t.Fatal(err)
	}
	after := r.cloud.Stats().Calls
	for k, v := range after {
		if calls[k] != v {
			t.Errorf("%s called %d times during a warm spawn", k, v-calls[k])
		}
	}
	if !slices.Equal(r.steps["web-1"], []string{"2-ipam-warm-pool", "3-port-recorded"}) {
		t.Errorf("steps %v", r.steps["web-1"])
	}
	if r.holder(t, a.IP) != "host2" {
		t.Errorf("warm address on %s", r.holder(t, a.IP))
	}
	if err := r.ipam.Refill(ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	if got := r.cloud.Stats().Calls["AssignPrivateIpAddresses"] - after["AssignPrivateIpAddresses"]; got != 1 {
		t.Errorf("refill made %d assign calls, want 1", got)
	}
}

// TestDriftMovesAddress: the pod's port keeps its address; the cloud
// reassigns it to an ENI of the new node, and its floating IP follows.
func TestDriftMovesAddress(t *testing.T) {
	r := newRig(t, nil, Options{})
	ctx := context.Background()
	a, err := r.ipam.Allocate(ctx, "db-1", "host1", "pods", "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := r.ipam.AttachFloating(ctx, "db-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.fab.Edge().Floating(a.IP); !ok || got != pub {
		t.Fatalf("floating %v at the edge, want %v", got, pub)
	}
	b, err := r.ipam.Allocate(ctx, "db-1", "host3", "pods", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.IP != a.IP || !b.Moved || r.holder(t, a.IP) != "host3" {
		t.Fatalf("after drift: %v moved %v on %s", b.IP, b.Moved, r.holder(t, a.IP))
	}
	if !slices.Contains(r.steps["db-1"], "2-ipam-address-moved") {
		t.Errorf("steps %v", r.steps["db-1"])
	}
	addr, err := r.cloud.DescribeAddress(ctx, r.ipam.floating["db-1"].alloc)
	if err != nil || addr.ENI != b.ENI || addr.PrivateIP != a.IP {
		t.Errorf("floating IP after drift: %+v, %v; want on %s", addr, err, b.ENI)
	}
	if got, ok := r.fab.Edge().Floating(a.IP); !ok || got != pub {
		t.Errorf("floating %v at the edge after drift, want %v", got, pub)
	}
	if err := r.ipam.DetachFloating(ctx, "db-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.fab.Edge().Floating(a.IP); ok {
		t.Error("floating IP kept at the edge after detach")
	}
}

// TestNodeFull: a t3.nano has 2 ENIs of 2 addresses, room for two pods;
// the second takes a new ENI (created and attached on its spawn), the
// third finds the node full, which its timeline says.
func TestNodeFull(t *testing.T) {
	r := newRig(t, nil, Options{InstanceType: "t3.nano"})
	ctx := context.Background()
	for _, p := range []string{"p-1", "p-2"} {
		if _, err := r.ipam.Allocate(ctx, p, "host1", "pods", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"cloud:CreateNetworkInterface", "cloud:AttachNetworkInterface"} {
		if !slices.Contains(r.steps["p-2"], s) {
			t.Errorf("timeline of p-2 %v lacks %s", r.steps["p-2"], s)
		}
	}
	n, _ := r.fab.Host("host1")
	if len(n.ENIs()) != 2 || n.ENIs()[1].Device() != "ens6" {
		t.Errorf("host1's ENIs in the data plane: %+v", n.ENIs())
	}
	_, err := r.ipam.Allocate(ctx, "p-3", "host1", "pods", "")
	if !errors.Is(err, ipamd.ErrNodeFull) || !strings.Contains(err.Error(), "host1") {
		t.Fatalf("third pod on a t3.nano: %v, want the node full", err)
	}
	if len(r.steps["p-3"]) == 0 || !strings.HasPrefix(r.steps["p-3"][len(r.steps["p-3"])-1], "limit:node-full (t3.nano: 2 ENIs x 2 addresses, max pods 4)") {
		t.Errorf("timeline of p-3: %v", r.steps["p-3"])
	}
	if _, err := r.ctl.GetPort(ctx, "p-3"); err == nil {
		t.Error("a port was recorded for the pod that got no address")
	}
}

// TestThrottledRetried: a bucket of one AssignPrivateIpAddresses token
// refilling at one a second: the second pod's call is throttled, retried
// after backoff, and succeeds; its timeline shows the throttling.
func TestThrottledRetried(t *testing.T) {
	l := cloud.DefaultLimits()
	act := l.Actions["AssignPrivateIpAddresses"]
	act.Class, act.Bucket = "", cloud.Bucket{Capacity: 1, Refill: 1}
	l.Actions["AssignPrivateIpAddresses"] = act
	r := newRig(t, l, Options{})
	ctx := context.Background()
	for _, p := range []string{"a-1", "a-2"} {
		if _, err := r.ipam.Allocate(ctx, p, "host1", "pods", ""); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(r.steps["a-2"], "throttled:AssignPrivateIpAddresses") || slices.Contains(r.steps["a-1"], "throttled:AssignPrivateIpAddresses") {
		t.Errorf("timelines: a-1 %v, a-2 %v", r.steps["a-1"], r.steps["a-2"])
	}
	if r.cloud.Stats().Throttled["AssignPrivateIpAddresses"] == 0 {
		t.Error("the cloud counted no throttled call")
	}
}
