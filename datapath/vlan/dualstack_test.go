package vlan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// newDualBed is newBed with every test network dual-stack (fd00:1::/64,
// fd00:2::/64; gateways ::1 on the core) and every instance holding an
// IPv6 address beside its IPv4 one.
func newDualBed(t *testing.T, opts Options) (*bed, map[string]netip.Addr) {
	t.Helper()
	topo, err := topologies.ThreeTier(topologies.ThreeTierParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range testNets {
		n.Subnet6 = netip.MustParsePrefix(fmt.Sprintf("fd00:%d::/64", i+1))
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	e := sim.New(1)
	e.SetEventLimit(5_000_000)
	if err := e.Load(f, sim.UniformDelay(2*time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	b := &bed{f: f, e: e, ips: map[string]netip.Addr{}}
	v6 := map[string]netip.Addr{}
	for i, in := range testInstances {
		ip := netip.MustParseAddr(in.ip)
		n := map[string]int{"net-a": 1, "net-b": 2}[in.net]
		ip6 := netip.MustParseAddr(fmt.Sprintf("fd00:%d::%d", n, 0x10+i))
		if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: in.name, Host: in.host, Network: in.net,
			IP: netip.PrefixFrom(ip, 24), IP6: netip.PrefixFrom(ip6, 64)}); err != nil {
			t.Fatal(err)
		}
		b.ips[in.name], v6[in.name] = ip, ip6
	}
	t.Cleanup(func() {
		if c, err := e.Conservation(); err != nil {
			t.Errorf("conservation: %v (%+v)", err, c)
		}
	})
	return b, v6
}

// Gen 1 carries IPv6 on the provider networks as it carries IPv4: every
// pair answers over both families, cold (neighbour discovery at the source
// and at the core holds the packet), and an IPv6 probe crosses the same
// devices as the IPv4 probe between the same pair (18 hops between
// subnets, 24 with stock OpenStack's per-instance bridge), the gateway on
// the core.
func TestDualStackPaths(t *testing.T) {
	for _, stock := range []bool{false, true} {
		t.Run(fmt.Sprint("stock=", stock), func(t *testing.T) {
			b, v6 := newDualBed(t, Options{Stock: stock})
			for _, from := range names() {
				for _, to := range names() {
					if from == to {
						continue
					}
					var rs [2]sim.Result
					for i, dst := range []netip.Addr{v6[to], b.ips[to]} {
						id, err := b.e.Probe(b.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: stack.ICMP, Dst: dst})
						if err != nil {
							t.Fatal(err)
						}
						if err := b.e.RunUntilIdle(); err != nil {
							t.Fatal(err)
						}
						if rs[i], err = b.e.Result(id); err != nil {
							t.Fatal(err)
						}
						if !rs[i].Replied {
							t.Fatalf("%s -> %s (%s): not answered: dropped at %s/%s %s %s", from, to, dst, rs[i].DropNode, rs[i].DropDevice, rs[i].Reason, rs[i].Rule)
						}
					}
					if !slices.Equal(rs[0].Forward.Devices(), rs[1].Forward.Devices()) {
						t.Errorf("%s -> %s: IPv6 path %v, IPv4 path %v", from, to, rs[0].Forward.Devices(), rs[1].Forward.Devices())
					}
					if subnetOf(from) != subnetOf(to) {
						if want := map[bool]int{false: 18, true: 24}[stock]; rs[0].Hops != want {
							t.Errorf("%s -> %s over IPv6: %d hops, want %d", from, to, rs[0].Hops, want)
						}
					}
				}
			}
			core := b.f.Core("core1")
			if n := core.ARPCount(b.e.Now()); n != 2*len(testInstances) {
				t.Errorf("core1 holds %d neighbour entries, want %d (one per address)", n, 2*len(testInstances))
			}
		})
	}
}

// A network's IPv6 subnet is checked like its IPv4 one, and an instance's
// IPv6 address must lie in it.
func TestDualStackErrors(t *testing.T) {
	topo, err := topologies.ThreeTier(topologies.ThreeTierParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := []datapath.NetworkSpec{
		{Name: "v4-as-v6", Subnet: netip.MustParsePrefix("10.0.1.0/24"), VLAN: 100, Subnet6: netip.MustParsePrefix("10.0.9.0/24")},
		{Name: "gw-outside", Subnet: netip.MustParsePrefix("10.0.1.0/24"), VLAN: 100, Subnet6: netip.MustParsePrefix("fd00:1::/64"), Gateway6: netip.MustParseAddr("fd00:2::1")},
	}
	for _, n := range bad {
		if err := f.AddNetwork(n); err == nil {
			t.Errorf("AddNetwork(%s) accepted", n.Name)
		}
	}
	ok := datapath.NetworkSpec{Name: "a", Subnet: netip.MustParsePrefix("10.0.1.0/24"), VLAN: 100, Subnet6: netip.MustParsePrefix("fd00:1::/64")}
	if err := f.AddNetwork(ok); err != nil {
		t.Fatal(err)
	}
	over := datapath.NetworkSpec{Name: "b", Subnet: netip.MustParsePrefix("10.0.2.0/24"), VLAN: 200, Subnet6: netip.MustParsePrefix("fd00:1::/48")}
	if err := f.AddNetwork(over); err == nil {
		t.Error("overlapping IPv6 subnet accepted")
	}
	if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: "x", Host: "host1", Network: "a",
		IP: netip.MustParsePrefix("10.0.1.5/24"), IP6: netip.MustParsePrefix("fd00:9::5/64")}); err == nil {
		t.Error("instance with an IPv6 address outside its network accepted")
	}
}

// Stock OpenStack's security groups filter IPv6 as ip6tables does with
// the same rules: a rule's remote prefix matches its own family only, an
// icmp rule matches ICMPv6, neighbour discovery passes, and the default
// drops what no rule accepts.
func TestSecurityGroupIPv6(t *testing.T) {
	ops := SecurityGroup{Name: "ops", Rules: []SGRule{
		{Direction: Ingress, Proto: ProtoICMP, Remote: netip.MustParsePrefix("fd00:1::/64"), Action: Drop},
		{Direction: Ingress, Proto: ProtoICMP, Remote: netip.MustParsePrefix("10.0.0.0/8"), Action: Accept},
		{Direction: Ingress, Proto: ProtoICMP, Remote: netip.MustParsePrefix("fd00:2::/64"), Action: Accept},
		{Direction: Ingress, Proto: ProtoTCP, PortMin: 443, PortMax: 443, Action: Accept},
	}}
	b, v6 := newDualBed(t, Options{Stock: true, SecurityGroups: []SecurityGroup{ops}, DefaultIngress: Drop})
	cases := []struct {
		from, to string
		proto    stack.Proto
		port     uint16
		v6       bool
		reply    bool
		rule     string
	}{
		{"a1", "b1", stack.ICMP, 0, true, false, "sg:ops:1"}, // from fd00:1::/64: dropped
		{"a1", "b1", stack.ICMP, 0, false, true, ""},         // the same pair over IPv4: accepted
		{"b2", "b1", stack.ICMP, 0, true, true, ""},          // from fd00:2::/64
		{"a1", "b1", stack.TCP, 443, true, true, ""},         // any remote, either family
		{"a1", "b1", stack.TCP, 22, true, false, "sg:default:ingress"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%s-%d-v6=%v", c.from, c.to, c.proto, c.port, c.v6), func(t *testing.T) {
			dst := b.ips[c.to]
			if c.v6 {
				dst = v6[c.to]
			}
			id, err := b.e.Probe(b.e.Now()+time.Millisecond, c.from, stack.ProbeSpec{Proto: c.proto, Dst: dst, DstPort: c.port})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			r, err := b.e.Result(id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Replied != c.reply {
				t.Fatalf("replied %v, want %v (drop %s/%s %s %s)", r.Replied, c.reply, r.DropNode, r.DropDevice, r.Reason, r.Rule)
			}
			if !c.reply && (r.Rule != c.rule || r.Reason != datapath.ReasonPolicy || r.DropDevice != "qbr-"+c.to) {
				t.Errorf("dropped at %s by %q (%s), want qbr-%s by %q", r.DropDevice, r.Rule, r.Reason, c.to, c.rule)
			}
		})
	}
	if n := b.f.Host("host3").SGCounters("b1")["sg:ops:1"]; n == 0 {
		t.Errorf("rule sg:ops:1 of b1 never counted: %v", b.f.Host("host3").SGCounters("b1"))
	}
}
