package vpc

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var (
	nodeNet = netip.MustParsePrefix("172.31.0.0/20")
	podNet  = netip.MustParsePrefix("10.9.0.0/24")
)

type env struct {
	f *Fabric
	e *sim.Engine
}

// newEnv builds a VPC of three VMs, each with a primary ENI in the node
// subnet (device 0) and one ENI in the pod subnet (device 1).
func newEnv(t *testing.T) *env {
	t.Helper()
	topo, err := topologies.VPC(topologies.VPCParams{Hosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Slots: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{nodeNet, podNet} {
		if err := f.AddSubnet(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range f.Hosts() {
		for dev, sub := range []netip.Prefix{nodeNet, podNet} {
			id := fmt.Sprintf("eni-%s-%d", h, dev)
			primary := sub.Addr().Next().Next().Next().Next()
			for range 10*i + dev {
				primary = primary.Next()
			}
			if err := f.AttachENI(h, ENI{ID: id, Index: dev, MAC: DeviceMAC(h, id), Subnet: sub, Primary: primary}); err != nil {
				t.Fatal(err)
			}
		}
	}
	v := &env{f: f, e: sim.New(1)}
	if err := v.e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	v.e.SetEventLimit(1_000_000)
	return v
}

// pod assigns ip to host's pod-subnet ENI and wires the pod.
func (v *env) pod(t *testing.T, name, host, ip string) {
	t.Helper()
	a := netip.MustParseAddr(ip)
	if err := v.f.AssignAddress("eni-"+host+"-1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.AddInstance(v.f, datapath.InstanceSpec{Name: name, Host: host, IP: netip.PrefixFrom(a, 32)}); err != nil {
		t.Fatal(err)
	}
}

func (v *env) probe(t *testing.T, from string, dst netip.Addr, proto stack.Proto, port uint16) sim.Result {
	t.Helper()
	id, err := v.e.Probe(v.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: proto, Dst: dst, DstPort: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.RunUntilIdle(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Conservation(); err != nil {
		t.Fatal(err)
	}
	r, err := v.e.Result(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (v *env) addr(t *testing.T, name string) netip.Addr {
	t.Helper()
	in, ok := v.f.Instance(name)
	if !ok {
		t.Fatalf("no instance %q", name)
	}
	return in.Addr().Addr()
}

func render(r sim.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "delivered=%v replied=%v hops=%d switch_hops=%d reason=%q rule=%q drop=%s/%s\n",
		r.Delivered, r.Replied, r.Hops, r.SwitchHops, r.Reason, r.Rule, r.DropNode, r.DropDevice)
	for _, sec := range []struct {
		name string
		p    datapath.Path
	}{{"forward", r.Forward}, {"return", r.Return}} {
		fmt.Fprintf(&b, "%s:\n", sec.name)
		devs := sec.p.Devices()
		for i, ev := range sec.p {
			fmt.Fprintf(&b, "  %-26s %-8s %-8s %s\n", devs[i], ev.Kind, ev.Action, ev.Rule)
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if string(want) != got {
		t.Errorf("path differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestPodToPod: pods on two VMs reach each other by their VPC addresses
// with no overlay: veth, the sender's ENI (its policy rule), the VPC
// router's security groups and route table, the receiver's ENI, veth.
func TestPodToPod(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	v.pod(t, "b", "host2", "10.9.0.20")
	v.pod(t, "c", "host1", "10.9.0.11")
	for _, tc := range []struct {
		name, from, to string
		proto          stack.Proto
		hops, sw       int
	}{
		{"cross-node-icmp", "a", "b", stack.ICMP, 8, 1},
		{"cross-node-tcp", "b", "a", stack.TCP, 8, 1},
		{"same-node", "a", "c", stack.ICMP, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := v.probe(t, tc.from, v.addr(t, tc.to), tc.proto, 80)
			if !r.Delivered || !r.Replied {
				t.Fatalf("not delivered:\n%s", render(r))
			}
			if r.Hops != tc.hops || r.SwitchHops != tc.sw {
				t.Errorf("hops %d, switch hops %d; want %d, %d\n%s", r.Hops, r.SwitchHops, tc.hops, tc.sw, render(r))
			}
			golden(t, tc.name, render(r))
		})
	}
}

// TestUnassignedAddressDropped: the VPC delivers only to addresses on an
// ENI; a pod whose address was released is unreachable at the router.
func TestUnassignedAddressDropped(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	r := v.probe(t, "a", netip.MustParseAddr("10.9.0.99"), stack.ICMP, 0)
	if r.Delivered || r.Reason != datapath.ReasonNoRoute || r.DropNode != "vpc-router" || r.Rule != "unassigned:10.9.0.99" {
		t.Fatalf("want a no-route drop at the router:\n%s", render(r))
	}
	// Outside the VPC's subnets, with the internet gateway: out to it, and
	// dropped there (a has no floating IP).
	r = v.probe(t, "a", netip.MustParseAddr("8.8.8.8"), stack.ICMP, 0)
	if r.Delivered || r.DropNode != "igw" || r.Rule != "igw:no-floating-ip:10.9.0.10" {
		t.Fatalf("want a drop at the internet gateway:\n%s", render(r))
	}
}

// TestDriftKeepsAddress: the pod leaves host2, its address moves to an
// ENI of host3 (the cloud's reassignment), and the pod is wired there
// with the same address.
func TestDriftKeepsAddress(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	v.pod(t, "b", "host2", "10.9.0.20")
	before := v.addr(t, "b")
	if err := v.e.RemoveInstance(v.f, "b"); err != nil {
		t.Fatal(err)
	}
	if r := v.probe(t, "a", before, stack.ICMP, 0); r.Delivered {
		t.Fatalf("delivered to a removed pod:\n%s", render(r))
	}
	// Wiring on host3 before the address moves fails: it is host2's.
	_, err := v.e.AddInstance(v.f, datapath.InstanceSpec{Name: "b", Host: "host3", IP: netip.PrefixFrom(before, 32)})
	if !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("add on host3 before the move: %v, want ErrNotAssigned", err)
	}
	v.pod(t, "b", "host3", before.String())
	if got := v.addr(t, "b"); got != before {
		t.Fatalf("address %v after drift, want %v", got, before)
	}
	r := v.probe(t, "a", before, stack.ICMP, 0)
	if !r.Delivered || !r.Replied {
		t.Fatalf("not delivered after drift:\n%s", render(r))
	}
	if !strings.Contains(strings.Join(r.Forward.Devices(), " "), "host3/ens6") {
		t.Errorf("path does not end on host3's ENI: %v", r.Forward.Devices())
	}
}

// TestFloatingIP: a client outside the VPC reaches a pod by its floating
// IP (one-to-one NAT at the internet gateway), gets the answer from the
// floating IP, and no longer once it is disassociated.
func TestFloatingIP(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "b", "host2", "10.9.0.20")
	if _, err := v.e.AddInstance(v.f, datapath.InstanceSpec{Name: "client", Host: "internet"}); err != nil {
		t.Fatal(err)
	}
	if got := v.addr(t, "client"); got != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("client address %v", got)
	}
	fip := netip.MustParseAddr("203.0.113.10")
	if err := v.f.AssociateFloatingIP(fip, v.addr(t, "b")); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []stack.Proto{stack.ICMP, stack.TCP, stack.UDP} {
		r := v.probe(t, "client", fip, proto, 7)
		if !r.Delivered || !r.Replied {
			t.Fatalf("%v to the floating IP not answered:\n%s", proto, render(r))
		}
		if proto == stack.ICMP {
			golden(t, "floating-ip", render(r))
		}
	}
	// The private address is not reachable from outside.
	if r := v.probe(t, "client", v.addr(t, "b"), stack.ICMP, 0); r.Delivered {
		t.Fatalf("private address reached from outside:\n%s", render(r))
	}
	if err := v.f.DisassociateFloatingIP(fip); err != nil {
		t.Fatal(err)
	}
	r := v.probe(t, "client", fip, stack.ICMP, 0)
	if r.Delivered || r.DropNode != "igw" {
		t.Fatalf("floating IP still reachable after disassociation:\n%s", render(r))
	}
}

// TestSecurityGroups: with only tcp/80 allowed in, ICMP from another pod
// is dropped at the receiving ENI's group, TCP to 80 passes, and replies
// to what a pod sent itself pass as established.
func TestSecurityGroups(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	v.pod(t, "b", "host2", "10.9.0.20")
	if err := v.f.SetSecurityGroup(SecurityGroup{ID: DefaultGroup, Ingress: []Rule{{Proto: protoTCP, FromPort: 80, ToPort: 80, CIDR: podNet}}}); err != nil {
		t.Fatal(err)
	}
	r := v.probe(t, "a", v.addr(t, "b"), stack.ICMP, 0)
	if r.Delivered || r.Reason != datapath.ReasonPolicy || r.DropDevice != DevSGIn || r.Rule != "sg:eni-host2-1:no-ingress-rule" {
		t.Fatalf("want a policy drop at sg-in:\n%s", render(r))
	}
	r = v.probe(t, "a", v.addr(t, "b"), stack.TCP, 80)
	if !r.Delivered || !r.Replied {
		t.Fatalf("tcp/80 not answered:\n%s", render(r))
	}
	r = v.probe(t, "a", v.addr(t, "b"), stack.TCP, 81)
	if r.Delivered {
		t.Fatalf("tcp/81 delivered:\n%s", render(r))
	}
	if err := v.f.SetSecurityGroup(SecurityGroup{ID: "sg-bad", Ingress: []Rule{{FromPort: 9, ToPort: 1, CIDR: podNet}}}); err == nil {
		t.Fatal("an empty port range was accepted")
	}
}

// TestSourceDestCheck: a frame from an ENI with a source address that is
// not on that ENI is dropped, as the provider's check does.
func TestSourceDestCheck(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	v.pod(t, "b", "host2", "10.9.0.20")
	// Move a's address to host3 behind the node's back: a now sends from
	// an address its ENI no longer has.
	if err := v.f.AssignAddress("eni-host3-1", v.addr(t, "a")); err != nil {
		t.Fatal(err)
	}
	r := v.probe(t, "a", v.addr(t, "b"), stack.ICMP, 0)
	if r.Delivered || r.Reason != datapath.ReasonPolicy || r.Rule != "src-dst-check:eni-host2-1" && r.Rule != "src-dst-check:eni-host1-1" {
		t.Fatalf("want a source/destination check drop:\n%s", render(r))
	}
}

func TestFabricErrors(t *testing.T) {
	v := newEnv(t)
	if err := v.f.AddSubnet(netip.MustParsePrefix("10.9.0.128/25")); err == nil || !strings.Contains(err.Error(), "10.9.0.0/24") {
		t.Errorf("overlapping subnet: %v", err)
	}
	if _, _, err := v.f.AddInstance(datapath.InstanceSpec{Name: "x", Host: "host1"}); err == nil {
		t.Error("a pod without an address was added")
	}
	if _, _, err := v.f.AddInstance(datapath.InstanceSpec{Name: "x", Host: "host9", IP: netip.MustParsePrefix("10.9.0.3/32")}); err == nil {
		t.Error("a pod on an unknown host was added")
	}
	if err := v.f.AssignAddress("eni-host1-1", netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("an address outside the VPC was assigned")
	}
	v.pod(t, "a", "host1", "10.9.0.10")
	if err := v.f.DetachENI("eni-host1-1"); !errors.Is(err, ErrInUse) {
		t.Errorf("detach an ENI with a pod: %v", err)
	}
	if err := v.f.AddNetwork(datapath.NetworkSpec{Name: "v6", Subnet: netip.MustParsePrefix("10.30.0.0/24"), Subnet6: netip.MustParsePrefix("fd00::/64")}); !errors.Is(err, datapath.ErrNoIPv6) {
		t.Errorf("an IPv6 subnet: %v", err)
	}
	spine, _ := topologies.SpineLeaf(topologies.SpineLeafParams{})
	if _, err := New(spine, Options{}); err == nil || !strings.Contains(err.Error(), "vpc-router") {
		t.Errorf("vpc on spine-leaf: %v", err)
	}
}

func TestRewriteChecksums(t *testing.T) {
	// A UDP packet's checksums stay valid through a rewrite, checked by
	// recomputing them from scratch.
	in := stack.New("x", DeviceMAC("x", "eth0"), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	_ = in
	b := udpFrame(t)
	ihl, _ := ipv4(b)
	rewrite(b, ihl, true, [4]byte{203, 0, 113, 7})
	if !checksumsOK(b) {
		t.Fatal("checksums wrong after rewrite")
	}
}

// TestAuthorizeRevokeIngress: rules added to and removed from a group
// decide the next connection; an established flow goes on after its rule
// is revoked; a duplicate or a missing rule is EC2's error.
func TestAuthorizeRevokeIngress(t *testing.T) {
	v := newEnv(t)
	v.pod(t, "a", "host1", "10.9.0.10")
	v.pod(t, "b", "host2", "10.9.0.20")
	all := Rule{CIDR: netip.MustParsePrefix("0.0.0.0/0")}
	if err := v.f.RevokeIngress(DefaultGroup, all); err != nil {
		t.Fatal(err)
	}
	if r := v.probe(t, "a", v.addr(t, "b"), stack.TCP, 443); r.Delivered || r.Rule != "sg:eni-host2-1:no-ingress-rule" {
		t.Fatalf("tcp/443 after the revoke:\n%s", render(r))
	}
	https := Rule{Proto: protoTCP, FromPort: 443, ToPort: 443, CIDR: podNet}
	if err := v.f.AuthorizeIngress(DefaultGroup, https); err != nil {
		t.Fatal(err)
	}
	if r := v.probe(t, "a", v.addr(t, "b"), stack.TCP, 443); !r.Delivered || !r.Replied {
		t.Fatalf("tcp/443 after the authorize:\n%s", render(r))
	}
	if r := v.probe(t, "a", v.addr(t, "b"), stack.ICMP, 0); r.Delivered {
		t.Fatalf("icmp delivered with only tcp/443 allowed:\n%s", render(r))
	}
	if err := v.f.AuthorizeIngress(DefaultGroup, https); !errors.Is(err, ErrDuplicateRule) {
		t.Errorf("authorize twice: %v", err)
	}
	if err := v.f.RevokeIngress(DefaultGroup, all); !errors.Is(err, ErrNoSuchRule) {
		t.Errorf("revoke a missing rule: %v", err)
	}
	if err := v.f.AuthorizeIngress("sg-none", https); !errors.Is(err, ErrNotFound) {
		t.Errorf("authorize in a missing group: %v", err)
	}
}
