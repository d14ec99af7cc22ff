package vlan

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

var update = flag.Bool("update", false, "rewrite the golden traces in testdata/")

// instances of the test fabric: name, host, network, address.
var testInstances = []struct{ name, host, net, ip string }{
	{"a1", "host1", "net-a", "10.0.1.11"},
	{"a2", "host1", "net-a", "10.0.1.12"},
	{"a3", "host3", "net-a", "10.0.1.13"},
	{"b1", "host3", "net-b", "10.0.2.21"},
	{"b2", "host2", "net-b", "10.0.2.22"},
	{"b3", "host1", "net-b", "10.0.2.23"},
}

var testNets = []datapath.NetworkSpec{
	{Name: "net-a", Subnet: netip.MustParsePrefix("10.0.1.0/24"), VLAN: 100},
	{Name: "net-b", Subnet: netip.MustParsePrefix("10.0.2.0/24"), VLAN: 200},
}

type bed struct {
	f   *Fabric
	e   *sim.Engine
	ips map[string]netip.Addr
}

// newBed builds the seed's three-tier fabric (one pod, two racks of two
// hosts, ToR pairs, an aggregation pair, two cores and a firewall) with the
// test networks and instances, loaded into the simulator.
func newBed(t *testing.T, opts Options) *bed {
	t.Helper()
	topo, err := topologies.ThreeTier(topologies.ThreeTierParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range testNets {
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
	for _, in := range testInstances {
		b.add(t, in.name, in.host, in.net, in.ip)
	}
	t.Cleanup(func() {
		if c, err := e.Conservation(); err != nil {
			t.Errorf("conservation: %v (%+v)", err, c)
		}
	})
	return b
}

func (b *bed) add(t *testing.T, name, host, network, addr string) {
	t.Helper()
	ip := netip.MustParseAddr(addr)
	if _, err := b.e.AddInstance(b.f, datapath.InstanceSpec{Name: name, Host: host, Network: network,
		IP: netip.PrefixFrom(ip, 24)}); err != nil {
		t.Fatal(err)
	}
	b.ips[name] = ip
}

func names() []string {
	var out []string
	for _, in := range testInstances {
		out = append(out, in.name)
	}
	return out
}

// warm sends one probe between every pair so that ARP caches and MAC
// tables are filled, then forgets the trace.
func (b *bed) warm(t *testing.T) {
	t.Helper()
	if _, err := b.e.AllPairs(b.e.Now(), 100*time.Microsecond, names(), stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
		t.Fatal(err)
	}
	b.e.ResetTrace()
}

func (b *bed) probe(t *testing.T, from, to string) sim.Result {
	t.Helper()
	id, err := b.e.Probe(b.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: stack.ICMP, Dst: b.ips[to]})
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
	return r
}

func subnetOf(name string) string {
	for _, in := range testInstances {
		if in.name == name {
			return in.net
		}
	}
	return ""
}

func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("trace differs from %s (go test -update rewrites it)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func pathText(r sim.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s -> %s: %d hops, %d switch hops\n", r.From, r.To, r.Hops, r.SwitchHops)
	b.WriteString("# forward\n")
	for _, d := range r.Forward.Devices() {
		b.WriteString(d + "\n")
	}
	b.WriteString("# return\n")
	for _, d := range r.Return.Devices() {
		b.WriteString(d + "\n")
	}
	return b.String()
}

// TestSeedPaths reproduces the seed's table for gen 1: the devices of
// Fig. 5 (or 6) out and back, and the hop counts.
func TestSeedPaths(t *testing.T) {
	cases := []struct {
		name     string
		stock    bool
		from, to string
		wantHops int // -1: only the golden trace decides
	}{
		{"cross-subnet", false, "a1", "b1", 18},
		{"cross-subnet-stock", true, "a1", "b1", 24},
		{"cross-subnet-same-host", false, "a1", "b3", 18},
		{"same-subnet-same-host", false, "a1", "a2", -1},
		{"same-subnet-same-host-stock", true, "a1", "a2", -1},
		{"same-subnet-other-rack", false, "a1", "a3", -1},
		// No warm-up: ARP at the source and at the core hold the packet,
		// which keeps its path when released.
		{"cross-subnet-cold", false, "b2", "a3", 18},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t, Options{Stock: c.stock})
			if !strings.HasSuffix(c.name, "-cold") {
				b.warm(t)
			}
			r := b.probe(t, c.from, c.to)
			if !r.Delivered || !r.Replied {
				t.Fatalf("probe %s -> %s: delivered %v replied %v, dropped at %s/%s %s %s",
					c.from, c.to, r.Delivered, r.Replied, r.DropNode, r.DropDevice, r.Reason, r.Rule)
			}
			if c.wantHops >= 0 && r.Hops != c.wantHops {
				t.Errorf("hops = %d, want %d; path %v", r.Hops, c.wantHops, r.Forward.Devices())
			}
			if got, back := r.Forward.Devices(), r.Return.Devices(); len(got) != len(back) {
				t.Errorf("forward %d devices, return %d", len(got), len(back))
			}
			// The same devices, with the instance ends swapped, come back.
			fwd := r.Forward.Devices()
			ret := slices.Clone(r.Return.Devices())
			slices.Reverse(ret)
			if len(fwd) == len(ret) && !slices.Equal(fwd[1:len(fwd)-1], ret[1:len(ret)-1]) {
				t.Errorf("return path is not the forward path reversed:\n%v\n%v", fwd, ret)
			}
			// Cross-subnet paths meet the gateway core once; same-subnet never.
			crosses := strings.Count(strings.Join(fwd, " "), "core1")
			if want := map[bool]int{true: 1, false: 0}[subnetOf(c.from) != subnetOf(c.to)]; crosses != want {
				t.Errorf("core1 on the path %d times, want %d", crosses, want)
			}
			golden(t, c.name, pathText(r))
		})
	}
}

// crossSubnet reports whether the ordered pair (i, j) of names() is in
// different networks.
func crossSubnet(i, j int) bool { return testInstances[i].net != testInstances[j].net }

// TestFaults: a ToR failure with bonding loses no reachability; a failure
// of the core holding the gateways cuts every cross-subnet pair and no
// same-subnet pair; restoring it brings everything back.
func TestFaults(t *testing.T) {
	cases := []struct {
		name      string
		fail      []string
		wantReach func(i, j int) bool
	}{
		{"none", nil, func(i, j int) bool { return true }},
		{"tor1", []string{"tor1"}, func(i, j int) bool { return true }},
		{"tor1-and-tor3", []string{"tor1", "tor3"}, func(i, j int) bool { return true }},
		{"agg1", []string{"agg1"}, func(i, j int) bool { return true }},
		{"core2", []string{"core2"}, func(i, j int) bool { return true }},
		{"core1", []string{"core1"}, func(i, j int) bool { return !crossSubnet(i, j) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t, Options{})
			b.warm(t)
			for _, n := range c.fail {
				if err := b.e.SetNodeState(b.e.Now()+time.Millisecond, n, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.e.Run(b.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			// Every bond is active on a NIC whose ToR is alive.
			for _, h := range []string{"host1", "host2", "host3", "host4"} {
				nic := b.f.Host(h).ActiveUplink()
				peer, _, _ := b.f.topo.Peer(topologies.Endpoint{Node: h, Iface: nic})
				if slices.Contains(c.fail, peer.Node) {
					t.Errorf("%s bond still active on %s towards failed %s", h, nic, peer.Node)
				}
			}
			m, err := b.e.AllPairs(b.e.Now(), 100*time.Microsecond, names(), stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			for i := range m.Names {
				for j := range m.Names {
					if i != j && m.Reach[i][j] != c.wantReach(i, j) {
						t.Errorf("%s -> %s reachable %v, want %v", m.Names[i], m.Names[j], m.Reach[i][j], c.wantReach(i, j))
					}
				}
			}
			if t.Failed() {
				t.Logf("matrix:\n%s", m)
			}
			if len(c.fail) == 0 {
				return
			}
			// Restore: everything is reachable again.
			for _, n := range c.fail {
				if err := b.e.SetNodeState(b.e.Now()+time.Millisecond, n, true); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.e.Run(b.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			m, err = b.e.AllPairs(b.e.Now(), 100*time.Microsecond, names(), stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.Reachable(), len(names())*(len(names())-1); got != want {
				t.Errorf("after restore %d pairs reachable, want %d:\n%s", got, want, m)
			}
		})
	}
}

// TestVLANFlooding: a broadcast reaches every instance of its VLAN and
// nothing else: no instance of another VLAN, no host without an instance
// in the VLAN (ToR host ports carry only their hosts' VLANs).
func TestVLANFlooding(t *testing.T) {
	cases := []struct {
		from      string
		target    string
		wantInst  []string
		wantHosts []string
	}{
		{"a1", "10.0.1.99", []string{"a2", "a3"}, []string{"host1", "host3"}},
		{"b2", "10.0.2.99", []string{"b1", "b3"}, []string{"host1", "host2", "host3"}},
		{"a3", "10.0.1.98", []string{"a1", "a2"}, []string{"host1", "host3"}},
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			b := newBed(t, Options{})
			b.warm(t)
			in, _ := b.e.Node(c.from)
			inst := in.(*stack.Instance)
			req := frame.ARPRequest(inst.MAC(), b.ips[c.from], netip.MustParseAddr(c.target))
			const probe = 4242
			err := b.e.Do(b.e.Now()+time.Millisecond, c.from, probe, func(now time.Duration, out datapath.Output) {
				out.Trace(datapath.Event{Node: c.from, Device: stack.Port, Kind: datapath.KindNIC, OutPort: stack.Port, Action: datapath.ActOriginate})
				out.Send(0, req)
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			gotInst, gotHosts := map[string]bool{}, map[string]bool{}
			for _, ev := range b.e.Trace() {
				if ev.Probe != probe {
					continue
				}
				if _, isInst := b.ips[ev.Node]; isInst && ev.Node != c.from {
					gotInst[ev.Node] = true
				}
				if strings.HasPrefix(ev.Node, "host") {
					gotHosts[ev.Node] = true
					if strings.HasPrefix(ev.Device, PrefixTap) && subnetOf(strings.TrimPrefix(ev.Device, PrefixTap)) != subnetOf(c.from) {
						t.Errorf("flood crossed into %s/%s", ev.Node, ev.Device)
					}
				}
			}
			if got := sortedKeys(gotInst); !slices.Equal(got, c.wantInst) {
				t.Errorf("instances reached %v, want %v", got, c.wantInst)
			}
			if got := sortedKeys(gotHosts); !slices.Equal(got, c.wantHosts) {
				t.Errorf("hosts reached %v, want %v", got, c.wantHosts)
			}
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSecurityGroupDeny: in the stock model a deny rule drops the probe on
// the destination's qbr and the verdict names the rule.
func TestSecurityGroupDeny(t *testing.T) {
	ops := SecurityGroup{Name: "ops", Rules: []SGRule{
		{Direction: Ingress, Proto: ProtoICMP, Remote: netip.MustParsePrefix("10.0.1.0/24"), Action: Drop},
		{Direction: Ingress, Action: Accept},
	}}
	cases := []struct {
		from, to  string
		wantReply bool
		wantDev   string
		wantRule  string
	}{
		{"a1", "b1", false, "qbr-b1", "sg:ops:1"},
		{"a1", "a3", false, "qbr-a3", "sg:ops:1"},
		{"b2", "b1", true, "", ""},
		{"b2", "a3", true, "", ""},
	}
	b := newBed(t, Options{Stock: true, SecurityGroups: []SecurityGroup{ops}, DefaultIngress: Drop})
	for _, c := range cases {
		t.Run(c.from+"-"+c.to, func(t *testing.T) {
			r := b.probe(t, c.from, c.to)
			if r.Replied != c.wantReply {
				t.Fatalf("replied %v, want %v (drop %s/%s %s %s)", r.Replied, c.wantReply, r.DropNode, r.DropDevice, r.Reason, r.Rule)
			}
			if c.wantReply {
				return
			}
			if r.DropDevice != c.wantDev || r.Rule != c.wantRule || r.Reason != datapath.ReasonPolicy {
				t.Errorf("dropped at %s/%s by %q (%s), want %s by %q (policy-deny)", r.DropNode, r.DropDevice, r.Rule, r.Reason, c.wantDev, c.wantRule)
			}
		})
	}
	host := b.f.Host("host3")
	if n := host.SGCounters("b1")["sg:ops:1"]; n == 0 {
		t.Errorf("rule sg:ops:1 of b1 never counted: %v", host.SGCounters("b1"))
	}
}

// TestMACAgeing: learned entries age out of every switch and br-int; the
// next probe floods, still arrives, and the tables relearn.
func TestMACAgeing(t *testing.T) {
	const ageing = 20 * time.Second
	b := newBed(t, Options{MACAgeing: ageing})
	b.warm(t)
	learned := b.f.MACCounts(b.e.Now())
	for _, n := range []string{"tor1", "agg1", "core1", "host1"} {
		if learned[n] == 0 {
			t.Fatalf("%s learned nothing after warm-up: %v", n, learned)
		}
	}
	if err := b.e.Run(b.e.Now() + ageing); err != nil {
		t.Fatal(err)
	}
	for n, c := range b.f.MACCounts(b.e.Now()) {
		if c != 0 {
			t.Errorf("%s still has %d live entries after %v", n, c, ageing)
		}
	}
	r := b.probe(t, "a1", "a3")
	if !r.Replied {
		t.Fatalf("probe after ageing: dropped at %s/%s %s", r.DropNode, r.DropDevice, r.Reason)
	}
	floods := 0
	for _, ev := range r.Forward {
		if ev.Action == datapath.ActFlood {
			floods++
		}
	}
	if floods == 0 {
		t.Errorf("no flood on the forward path after ageing: %v", r.Forward.Devices())
	}
	if c := b.f.MACCounts(b.e.Now())["tor3"]; c == 0 {
		t.Errorf("tor3 did not relearn")
	}
}

// TestChurn: instances leave and join while the simulation runs; a host's
// ToR ports start and stop carrying a VLAN with its instances.
func TestChurn(t *testing.T) {
	b := newBed(t, Options{TapSlots: 4})
	b.warm(t)
	// host4 has no instance: its ToR ports carry no VLAN.
	tor3 := b.f.Switch("tor3")
	port := slices.Index(tor3.Ports(), portFacing(t, b, "tor3", "host4"))
	if tor3.Allowed(port, 200) {
		t.Fatalf("tor3 carries VLAN 200 to empty host4")
	}
	if err := b.e.RemoveInstance(b.f, "b1"); err != nil {
		t.Fatal(err)
	}
	delete(b.ips, "b1")
	b.add(t, "b4", "host4", "net-b", "10.0.2.24")
	if !tor3.Allowed(port, 200) {
		t.Errorf("tor3 does not carry VLAN 200 to host4 after b4 joined")
	}
	for _, to := range []string{"a1", "b2", "b3"} {
		if r := b.probe(t, "b4", to); !r.Replied {
			t.Errorf("b4 -> %s: dropped at %s/%s %s", to, r.DropNode, r.DropDevice, r.Reason)
		}
	}
	if err := b.e.RemoveInstance(b.f, "b4"); err != nil {
		t.Fatal(err)
	}
	if tor3.Allowed(port, 200) {
		t.Errorf("tor3 still carries VLAN 200 to host4 after its last instance left")
	}
	// A full host refuses instances.
	for i, name := range []string{"x1", "x2"} {
		_, _, err := b.f.AddInstance(datapath.InstanceSpec{Name: name, Host: "host1", Network: "net-a",
			IP: netip.MustParsePrefix(fmt.Sprintf("10.0.1.%d/24", 50+i))})
		if want := i == 1; errors.Is(err, ErrHostFull) != want {
			t.Errorf("add %s to host1 (3 of 4 slots used before): err %v, want full %v", name, err, want)
		}
	}
}

func portFacing(t *testing.T, b *bed, sw, host string) string {
	t.Helper()
	for _, l := range b.f.topo.Links {
		if l.A.Node == sw && l.B.Node == host {
			return l.A.Iface
		}
		if l.B.Node == sw && l.A.Node == host {
			return l.B.Iface
		}
	}
	t.Fatalf("no link %s - %s", sw, host)
	return ""
}

// TestOutside: traffic to an address outside every network is routed by
// the gateway core to the firewall beside it, which lets it out or drops
// it by rule.
func TestOutside(t *testing.T) {
	rules := []FirewallRule{{Dst: netip.MustParsePrefix("192.0.2.0/24"), Action: Drop}}
	cases := []struct {
		dst      string
		wantDrop bool
		wantRule string
	}{
		{"198.51.100.7", false, "fw:default"},
		{"192.0.2.9", true, "fw:1"},
	}
	b := newBed(t, Options{FirewallRules: rules})
	b.warm(t)
	for _, c := range cases {
		t.Run(c.dst, func(t *testing.T) {
			b.ips["outside"] = netip.MustParseAddr(c.dst)
			r := b.probe(t, "a1", "outside")
			if c.wantDrop {
				if r.Delivered || r.DropNode != "fw1" || r.Rule != c.wantRule || r.Reason != datapath.ReasonPolicy {
					t.Errorf("delivered %v, dropped at %s by %q (%s), want fw1 by %q", r.Delivered, r.DropNode, r.Rule, r.Reason, c.wantRule)
				}
				return
			}
			if !r.Delivered || r.To != "fw1" || r.Forward[len(r.Forward)-1].Rule != c.wantRule {
				t.Fatalf("delivered %v to %q, want fw1 (%s); path %v", r.Delivered, r.To, c.wantRule, r.Forward.Devices())
			}
			devs := r.Forward.Devices()
			if devs[len(devs)-2] != "core1" {
				t.Errorf("firewall not reached from the gateway core: %v", devs)
			}
		})
	}
}

func TestBuildAndAPIErrors(t *testing.T) {
	topo, err := topologies.ThreeTier(topologies.ThreeTierParams{})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := topologies.SpineLeaf(topologies.SpineLeafParams{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(sl, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("spine-leaf: err %v, want ErrUnsupported", err)
	}
	if _, err := New(topo, Options{GatewayCore: "core9"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing gateway core: err %v, want ErrNotFound", err)
	}
	f, err := New(topo, Options{GatewayCore: "core2"})
	if err != nil {
		t.Fatal(err)
	}
	if f.GatewayCore().Name() != "core2" {
		t.Errorf("gateway core %s, want core2", f.GatewayCore().Name())
	}
	if fs, err := New(topo, Options{Stock: true}); err != nil || fs.Generation() != GenerationStock {
		t.Errorf("stock fabric: %v, generation %q", err, fs.Generation())
	}
	if f.Generation() != "vlan" || len(f.Nodes()) != len(topo.Nodes) || len(f.Wires()) != len(topo.Links) {
		t.Errorf("generation %q, %d nodes, %d wires", f.Generation(), len(f.Nodes()), len(f.Wires()))
	}
	p := netip.MustParsePrefix
	netCases := []struct {
		name string
		n    datapath.NetworkSpec
		want error
	}{
		{"ok", datapath.NetworkSpec{Name: "n1", Subnet: p("10.1.0.0/24"), VLAN: 10}, nil},
		{"dup-name", datapath.NetworkSpec{Name: "n1", Subnet: p("10.2.0.0/24"), VLAN: 11}, ErrExists},
		{"dup-vlan", datapath.NetworkSpec{Name: "n2", Subnet: p("10.2.0.0/24"), VLAN: 10}, ErrExists},
		{"vlan-0", datapath.NetworkSpec{Name: "n3", Subnet: p("10.3.0.0/24"), VLAN: 0}, ErrBadVLAN},
		{"vlan-4095", datapath.NetworkSpec{Name: "n3", Subnet: p("10.3.0.0/24"), VLAN: 4095}, ErrBadVLAN},
		{"overlap", datapath.NetworkSpec{Name: "n4", Subnet: p("10.1.0.128/25"), VLAN: 12}, ErrExists},
		{"gw-outside", datapath.NetworkSpec{Name: "n5", Subnet: p("10.5.0.0/24"), VLAN: 13, Gateway: netip.MustParseAddr("10.6.0.1")}, ErrBadAddress},
	}
	for _, c := range netCases {
		t.Run("network-"+c.name, func(t *testing.T) {
			err := f.AddNetwork(c.n)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
	instCases := []struct {
		name string
		s    datapath.InstanceSpec
		want error
	}{
		{"ok", datapath.InstanceSpec{Name: "vm1", Host: "host1", Network: "n1", IP: p("10.1.0.5/24")}, nil},
		{"dup", datapath.InstanceSpec{Name: "vm1", Host: "host1", Network: "n1", IP: p("10.1.0.6/24")}, ErrExists},
		{"no-host", datapath.InstanceSpec{Name: "vm2", Host: "tor1", Network: "n1", IP: p("10.1.0.6/24")}, ErrNotFound},
		{"no-net", datapath.InstanceSpec{Name: "vm2", Host: "host1", Network: "nx", IP: p("10.1.0.6/24")}, ErrNotFound},
		{"ip-outside", datapath.InstanceSpec{Name: "vm2", Host: "host1", Network: "n1", IP: p("10.9.0.6/24")}, ErrBadAddress},
	}
	for _, c := range instCases {
		t.Run("instance-"+c.name, func(t *testing.T) {
			_, _, err := f.AddInstance(c.s)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
	if err := f.RemoveInstance("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
	// The tree blocks exactly the redundant links: links - (switches - 1).
	sw := 0
	for _, n := range topo.Nodes {
		if isL2(n.Role) {
			sw++
		}
	}
	trunks := len(f.trunks) / 2
	if got, want := len(f.BlockedLinks()), trunks-(sw-1); got != want {
		t.Errorf("%d blocked links %v, want %d", got, f.BlockedLinks(), want)
	}
}

// TestDeterministic: the same scenario twice gives byte-identical traces,
// failover and tree recomputation included.
func TestDeterministic(t *testing.T) {
	run := func() string {
		b := newBed(t, Options{Stock: true})
		b.warm(t)
		if err := b.e.SetNodeState(b.e.Now()+time.Millisecond, "tor1", false); err != nil {
			t.Fatal(err)
		}
		if _, err := b.e.AllPairs(b.e.Now()+2*time.Millisecond, 50*time.Microsecond, names(), stack.ProbeSpec{Proto: stack.TCP}); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := b.e.WriteTrace(&sb); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	a, b := run(), run()
	if a != b || len(a) == 0 {
		t.Errorf("two runs differ (%d and %d bytes)", len(a), len(b))
	}
}

func TestCapacity(t *testing.T) {
	b := newBed(t, Options{})
	b.warm(t)
	c := b.f.Capacity(b.e.Now())
	if c.VLANs != len(testNets) || c.Instances != len(testInstances) {
		t.Errorf("vlans %d instances %d", c.VLANs, c.Instances)
	}
	// The gateway core knows every instance's MAC and address after
	// all-pairs probes (cross-subnet traffic meets it), core2 no address.
	if c.ARP["core1"] != len(testInstances) || c.ARP["core2"] != 0 {
		t.Errorf("ARP entries %v, want core1 %d", c.ARP, len(testInstances))
	}
	if c.MAC["core1"] < len(testInstances) {
		t.Errorf("core1 MAC entries %d < %d instances", c.MAC["core1"], len(testInstances))
	}
	if c.Blocked == 0 {
		t.Errorf("no blocked link in a dual-homed fabric")
	}
}

// TestLinkFaults: single link failures in the dual-homed fabric lose no
// pair; the bond or the spanning tree routes around them.
func TestLinkFaults(t *testing.T) {
	cases := []struct {
		name       string
		a, b       string // the link's ends
		wantActive map[string]string
	}{
		{"host1-tor1", "host1", "tor1", map[string]string{"host1": "eth2"}},
		{"tor1-agg1", "tor1", "agg1", nil},
		{"agg1-core1", "agg1", "core1", nil},
		{"tor3-agg1", "tor3", "agg1", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t, Options{})
			b.warm(t)
			w := -1
			for _, l := range b.f.topo.Links {
				if (l.A.Node == c.a && l.B.Node == c.b) || (l.A.Node == c.b && l.B.Node == c.a) {
					ifaces := b.f.topo.Interfaces(l.A.Node)
					wi, err := b.e.Wire(datapath.PortRef{Node: l.A.Node, Port: slices.Index(ifaces, l.A.Iface)})
					if err != nil {
						t.Fatal(err)
					}
					w = wi
				}
			}
			if w < 0 {
				t.Fatalf("no link %s - %s", c.a, c.b)
			}
			blockedBefore := b.f.BlockedLinks()
			if err := b.e.SetLinkState(b.e.Now()+time.Millisecond, w, false); err != nil {
				t.Fatal(err)
			}
			if err := b.e.Run(b.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			for h, nic := range c.wantActive {
				if got := b.f.Host(h).ActiveUplink(); got != nic {
					t.Errorf("%s active on %s, want %s", h, got, nic)
				}
			}
			m, err := b.e.AllPairs(b.e.Now(), 100*time.Microsecond, names(), stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.Reachable(), len(names())*(len(names())-1); got != want {
				t.Errorf("%d of %d pairs reachable; blocked before %v, after %v:\n%s", got, want, blockedBefore, b.f.BlockedLinks(), m)
			}
		})
	}
}

// TestHandBuiltAccessFabric: a topology built with the graph API, access
// switches instead of ToRs, single-homed hosts, no firewall, a triangle of
// switches that the tree must break.
func TestHandBuiltAccessFabric(t *testing.T) {
	topo := &topologies.Topology{Name: "small"}
	for _, n := range []struct {
		name string
		role topologies.Role
	}{{"core", topologies.RoleCore}, {"acc1", topologies.RoleAccess}, {"acc2", topologies.RoleAccess},
		{"h1", topologies.RoleHost}, {"h2", topologies.RoleHost}} {
		topo.AddNode(n.name, n.role)
	}
	topo.Connect("h1", "eth0", "acc1", "e1")
	topo.Connect("h2", "eth0", "acc2", "e1")
	topo.Connect("acc1", "e2", "core", "e1")
	topo.Connect("acc2", "e2", "core", "e2")
	topo.Connect("acc1", "e3", "acc2", "e3") // loop
	f, err := New(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.BlockedLinks(); !slices.Equal(got, []string{"acc1-acc2"}) {
		t.Fatalf("blocked %v, want [acc1-acc2]", got)
	}
	for _, n := range testNets {
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	e := sim.New(7)
	e.SetEventLimit(1_000_000)
	if err := e.Load(f, nil, sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	specs := []datapath.InstanceSpec{
		{Name: "x", Host: "h1", Network: "net-a", IP: netip.MustParsePrefix("10.0.1.5/24")},
		{Name: "y", Host: "h2", Network: "net-b", IP: netip.MustParsePrefix("10.0.2.5/24")},
		{Name: "z", Host: "h2", Network: "net-a", IP: netip.MustParsePrefix("10.0.1.6/24")},
	}
	var ns []string
	for _, s := range specs {
		if _, err := e.AddInstance(f, s); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, s.Name)
	}
	m, err := e.AllPairs(0, 100*time.Microsecond, ns, stack.ProbeSpec{Proto: stack.UDP})
	if err != nil {
		t.Fatal(err)
	}
	if m.Reachable() != 6 {
		t.Errorf("reachable %d of 6:\n%s", m.Reachable(), m)
	}
	// Breaking acc2's uplink unblocks the loop link.
	w, err := e.Wire(datapath.PortRef{Node: "acc2", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetLinkState(e.Now()+time.Millisecond, w, false); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(e.Now() + 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := f.BlockedLinks(); len(got) != 0 {
		t.Errorf("blocked after failure %v, want none", got)
	}
	m, err = e.AllPairs(e.Now(), 100*time.Microsecond, ns, stack.ProbeSpec{Proto: stack.TCP})
	if err != nil {
		t.Fatal(err)
	}
	if m.Reachable() != 6 {
		t.Errorf("after failure reachable %d of 6:\n%s", m.Reachable(), m)
	}
	if _, err := e.Conservation(); err != nil {
		t.Error(err)
	}
}

func TestNetworks(t *testing.T) {
	b := newBed(t, Options{})
	got := b.f.Networks()
	if len(got) != len(testNets) {
		t.Fatalf("%d networks, want %d", len(got), len(testNets))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].VLAN >= got[i].VLAN {
			t.Errorf("networks not sorted by VLAN: %v", got)
		}
	}
	for _, n := range testNets {
		s, ok := b.f.Network(n.Name)
		if !ok || s.VLAN != n.VLAN || !s.Gateway.IsValid() || !s.Subnet.Contains(s.Gateway) {
			t.Errorf("network %s: %+v %v", n.Name, s, ok)
		}
	}
	if _, ok := b.f.Network("nope"); ok {
		t.Error("unknown network found")
	}
}
