package evpn

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Networks used by the fabric tests: tenant red has two subnets, tenant
// blue reuses red's first subnet.
var (
	netRed1 = datapath.NetworkSpec{Name: "red1", Tenant: "red", Subnet: netip.MustParsePrefix("10.0.1.0/24"),
		Gateway: netip.MustParseAddr("10.0.1.1"), VLAN: 10, VNI: 10010}
	netRed2 = datapath.NetworkSpec{Name: "red2", Tenant: "red", Subnet: netip.MustParsePrefix("10.0.2.0/24"),
		Gateway: netip.MustParseAddr("10.0.2.1"), VLAN: 20, VNI: 10020}
	netBlue1 = datapath.NetworkSpec{Name: "blue1", Tenant: "blue", Subnet: netip.MustParsePrefix("10.0.1.0/24"),
		Gateway: netip.MustParseAddr("10.0.1.1"), VLAN: 30, VNI: 10030}
)

type instDef struct {
	name, host, network string
	ip                  string // address/len
}

func (d instDef) spec(i int) datapath.InstanceSpec {
	return datapath.InstanceSpec{Name: d.name, Host: d.host, Network: d.network,
		MAC: net.HardwareAddr{0x02, 0x10, 0, 0, byte(i >> 8), byte(i)}, IP: netip.MustParsePrefix(d.ip)}
}

// testbed is a fabric loaded into the simulator with instances attached.
type testbed struct {
	f    *Fabric
	e    *sim.Engine
	ips  map[string]netip.Addr
	defs []instDef
}

func newTestbed(t *testing.T, p topologies.SpineLeafParams, defs []instDef, wrap func(datapath.Node) datapath.Node) *testbed {
	t.Helper()
	return newTestbedWith(t, p, Options{}, nil, defs, wrap)
}

// newTestbedWith is newTestbed with fabric options, and setup called on
// the fabric before any instance is attached.
func newTestbedWith(t *testing.T, p topologies.SpineLeafParams, opts Options, setup func(*Fabric), defs []instDef, wrap func(datapath.Node) datapath.Node) *testbed {
	t.Helper()
	topo, err := topologies.SpineLeaf(p)
	if err != nil {
		t.Fatal(err)
	}
	return newTestbedOn(t, topo, opts, setup, defs, wrap)
}

// newTestbedOn is newTestbedWith on a topology of any shape.
func newTestbedOn(t *testing.T, topo *topologies.Topology, opts Options, setup func(*Fabric), defs []instDef, wrap func(datapath.Node) datapath.Node) *testbed {
	t.Helper()
	f, err := New(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(f)
	}
	for _, n := range []datapath.NetworkSpec{netRed1, netRed2, netBlue1} {
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	e := sim.New(1)
	var fab datapath.Fabric = f
	if wrap != nil {
		fab = wrapped{f, wrap}
	}
	if err := e.Load(fab, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	e.SetEventLimit(10_000_000)
	tb := &testbed{f: f, e: e, ips: map[string]netip.Addr{}, defs: defs}
	for i, d := range defs {
		if _, err := e.AddInstance(f, d.spec(i+1)); err != nil {
			t.Fatal(err)
		}
		tb.ips[d.name] = netip.MustParsePrefix(d.ip).Addr()
	}
	return tb
}

// wrapped is the fabric with every node passed through wrap (a test tap).
type wrapped struct {
	*Fabric
	wrap func(datapath.Node) datapath.Node
}

func (w wrapped) Nodes() []datapath.Node {
	var out []datapath.Node
	for _, n := range w.Fabric.Nodes() {
		out = append(out, w.wrap(n))
	}
	return out
}

// tapNode calls seen for every frame before the node handles it.
type tapNode struct {
	datapath.Node
	seen func(node string, port int, b []byte)
}

func (n tapNode) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	n.seen(n.Name(), port, b)
	n.Node.Receive(now, port, b, out)
}

func (tb *testbed) probe(t *testing.T, from, to string) sim.Result {
	t.Helper()
	id, err := tb.e.Probe(tb.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: stack.ICMP, Dst: tb.ips[to]})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.e.RunUntilIdle(); err != nil {
		t.Fatal(err)
	}
	r, err := tb.e.Result(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (tb *testbed) conserve(t *testing.T) {
	t.Helper()
	c, err := tb.e.Conservation()
	if err != nil {
		t.Fatalf("conservation: %v (drops %v)", err, c.Dropped)
	}
	if c.Injected == 0 || c.InFlight != 0 {
		t.Fatalf("conservation: injected %d, in flight %d after the run", c.Injected, c.InFlight)
	}
}

// fabricNodes lists the switch part of a path: "leaf1 spine2 leaf3".
func fabricNodes(p datapath.Path) []string {
	var out []string
	for _, e := range p {
		switch e.Kind {
		case datapath.KindSwitch, datapath.KindRouter, datapath.KindVTEP:
			if len(out) == 0 || out[len(out)-1] != e.Node {
				out = append(out, e.Node)
			}
		}
	}
	return out
}

func role(f *Fabric, node string) topologies.Role {
	if n := f.topo.Node(node); n != nil {
		return n.Role
	}
	return ""
}

// Single-homed 2 spines x 4 leaves, 2 hosts per leaf: host1, host2 on
// leaf1, host3, host4 on leaf2, ...
var pathDefs = []instDef{
	{"r1", "host1", "red1", "10.0.1.11/24"},
	{"r2", "host2", "red1", "10.0.1.12/24"}, // same leaf as r1
	{"r3", "host3", "red1", "10.0.1.13/24"}, // leaf2
	{"r4", "host7", "red2", "10.0.2.14/24"}, // leaf4, other subnet
	{"r5", "host1", "red2", "10.0.2.15/24"}, // r1's host, other subnet
	{"r6", "host2", "red2", "10.0.2.16/24"}, // r1's leaf, other subnet
}

func TestPathsAndSwitchHops(t *testing.T) {
	tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, pathDefs, nil)
	cases := []struct {
		name, from, to string
		routed         bool
	}{
		{"same-leaf-same-subnet", "r1", "r2", false},
		{"other-leaf-same-subnet", "r1", "r3", false},
		{"other-leaf-other-subnet-symmetric-irb", "r1", "r4", true},
		{"same-host-other-subnet", "r1", "r5", true},
		{"same-leaf-other-subnet", "r1", "r6", true},
		{"other-leaf-other-subnet-reverse", "r4", "r2", true},
	}
	var golden bytes.Buffer
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Twice: the first probe resolves ARP (suppressed at the
			// leaf), the second takes the warm path; both must agree.
			for round := range 2 {
				r := tb.probe(t, c.from, c.to)
				if !r.Delivered || !r.Replied || r.To != c.to {
					t.Fatalf("round %d: %s -> %s: delivered %v replied %v to %q (drop at %s/%s: %s %s)",
						round, c.from, c.to, r.Delivered, r.Replied, r.To, r.DropNode, r.DropDevice, r.Reason, r.Rule)
				}
				la, _ := tb.f.InstanceLeaf(c.from)
				lb, _ := tb.f.InstanceLeaf(c.to)
				want := 3
				if la == lb {
					want = 1
				}
				if r.SwitchHops != want || r.Return.SwitchHops() != want {
					t.Errorf("round %d: switch hops %d out, %d back; want %d (leaf %s to leaf %s)", round, r.SwitchHops, r.Return.SwitchHops(), want, la, lb)
				}
				sw := fabricNodes(r.Forward)
				if sw[0] != la || sw[len(sw)-1] != lb || (want == 3 && role(tb.f, sw[1]) != topologies.RoleSpine) {
					t.Errorf("round %d: fabric path %v, want %s -> spine -> %s", round, sw, la, lb)
				}
				// The ingress leaf routes (symmetric IRB) or bridges.
				first := firstOn(r.Forward, la)
				switch {
				case c.routed && want == 3 && (first.Kind != datapath.KindVTEP || first.Rule != RuleRouteRemote):
					t.Errorf("ingress leaf event %+v, want a VTEP routing over the L3 VNI", first)
				case c.routed && want == 1 && (first.Kind != datapath.KindRouter || first.Action != datapath.ActRoute):
					t.Errorf("ingress leaf event %+v, want a local route", first)
				case !c.routed && want == 3 && (first.Kind != datapath.KindVTEP || first.Rule != RuleFDBRemote):
					t.Errorf("ingress leaf event %+v, want VXLAN bridging", first)
				}
				if round == 1 {
					fmt.Fprintf(&golden, "%s: %s -> %s switch hops %d, hops %d\n  forward: %s\n  return:  %s\n",
						c.name, c.from, c.to, r.SwitchHops, r.Hops,
						strings.Join(r.Forward.Devices(), " "), strings.Join(r.Return.Devices(), " "))
				}
			}
		})
	}
	tb.conserve(t)
	checkGolden(t, "paths.golden", golden.Bytes())
}

func firstOn(p datapath.Path, node string) datapath.Event {
	for _, e := range p {
		if e.Node == node {
			return e
		}
	}
	return datapath.Event{}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// arpRequest reports whether b carries an ARP request, directly (with or
// without a VLAN tag) or inside VXLAN.
func arpRequest(ps *frame.Parser, b []byte) bool {
	p, err := ps.Parse(b)
	if err != nil {
		return false
	}
	if p.IsVXLAN() {
		p = p.Inner
	}
	return p.Has(layers.LayerTypeARP) && p.ARP.Operation == layers.ARPRequest
}

func TestARPSuppression(t *testing.T) {
	defs := []instDef{
		{"a", "host1", "red1", "10.0.1.21/24"},
		{"b", "host5", "red1", "10.0.1.22/24"},
		{"c", "host3", "red2", "10.0.2.23/24"},
		{"d", "host2", "red1", "10.0.1.24/24"}, // a's leaf
	}
	cases := []struct {
		name, from string
		dst        netip.Addr
		wantARP    bool // an ARP request leaves the ingress leaf
		wantReach  bool
	}{
		{"known-binding-same-subnet", "a", netip.MustParseAddr("10.0.1.22"), false, true},
		{"known-binding-same-leaf", "a", netip.MustParseAddr("10.0.1.24"), false, true},
		{"gateway-for-other-subnet", "a", netip.MustParseAddr("10.0.2.23"), false, true},
		{"unknown-address-is-replicated", "a", netip.MustParseAddr("10.0.1.99"), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := frame.NewParser()
			arps := 0
			tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, defs,
				func(n datapath.Node) datapath.Node {
					return tapNode{n, func(node string, port int, b []byte) {
						// What spines receive, and what hosts receive on
						// their uplinks, came out of a leaf.
						fromLeaf := strings.HasPrefix(node, "spine") ||
							strings.HasPrefix(node, "host") && !strings.HasPrefix(n.Ports()[port], "tap-")
						if fromLeaf && arpRequest(ps, b) {
							arps++
						}
					}}
				})
			id, err := tb.e.Probe(time.Millisecond, c.from, stack.ProbeSpec{Proto: stack.ICMP, Dst: c.dst})
			if err != nil {
				t.Fatal(err)
			}
			if err := tb.e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			r, _ := tb.e.Result(id)
			if r.Replied != c.wantReach {
				t.Errorf("replied %v, want %v (drop %s %s)", r.Replied, c.wantReach, r.Reason, r.Rule)
			}
			if (arps > 0) != c.wantARP {
				t.Errorf("%d ARP requests left a leaf, want any: %v", arps, c.wantARP)
			}
			tb.conserve(t)
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	defs := []instDef{
		{"red-a", "host1", "red1", "10.0.1.10/24"},
		{"red-b", "host3", "red1", "10.0.1.20/24"},
		{"red-c", "host5", "red2", "10.0.2.30/24"},
		{"blue-a", "host2", "blue1", "10.0.1.20/24"}, // red-b's address, other tenant
		{"blue-b", "host7", "blue1", "10.0.1.10/24"}, // red-a's address
		{"blue-c", "host6", "blue1", "10.0.1.40/24"},
	}
	tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, defs, nil)
	cases := []struct {
		from string
		dst  string // address
		want string // instance that must answer, "" for none
	}{
		{"red-a", "10.0.1.20", "red-b"},
		{"blue-b", "10.0.1.20", "blue-a"},
		{"blue-a", "10.0.1.10", "blue-b"},
		{"red-b", "10.0.1.10", "red-a"},
		{"red-a", "10.0.2.30", "red-c"},
		{"red-a", "10.0.1.40", ""},  // blue-c's address: not in red
		{"blue-a", "10.0.2.30", ""}, // red's other subnet: no route in blue
		{"blue-c", "10.0.1.20", "blue-a"},
	}
	for _, c := range cases {
		t.Run(c.from+"->"+c.dst, func(t *testing.T) {
			id, err := tb.e.Probe(tb.e.Now()+time.Millisecond, c.from, stack.ProbeSpec{Proto: stack.ICMP, Dst: netip.MustParseAddr(c.dst)})
			if err != nil {
				t.Fatal(err)
			}
			if err := tb.e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			r, _ := tb.e.Result(id)
			if c.want == "" {
				if r.Delivered || r.Replied {
					t.Errorf("reached %q across tenants", r.To)
				}
				return
			}
			if !r.Replied || r.To != c.want {
				t.Errorf("delivered to %q (replied %v), want %q; drop %s %s", r.To, r.Replied, c.want, r.Reason, r.Rule)
			}
		})
	}
	tb.conserve(t)
}

func TestSpineFailure(t *testing.T) {
	defs := []instDef{
		{"i1", "host1", "red1", "10.0.1.11/24"},
		{"i2", "host3", "red1", "10.0.1.12/24"},
		{"i3", "host5", "red2", "10.0.2.13/24"},
		{"i4", "host8", "red2", "10.0.2.14/24"},
		{"i5", "host2", "red2", "10.0.2.15/24"},
	}
	names := []string{"i1", "i2", "i3", "i4", "i5"}
	n := len(names)
	cases := []struct {
		name      string
		params    topologies.SpineLeafParams
		fail      []string
		wantReach int // ordered pairs
	}{
		{"all-up", topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, nil, n * (n - 1)},
		{"one-spine-down", topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, []string{"spine1"}, n * (n - 1)},
		{"one-of-four-spines-down", topologies.SpineLeafParams{Spines: 4, Leaves: 4, HostsPerLeaf: 2}, []string{"spine3"}, n * (n - 1)},
		{"one-spine-down-dual-homed", topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2, DualHomed: true}, []string{"spine2"}, n * (n - 1)},
		// Control: with every spine down only same-leaf pairs remain
		// (i1 and i5 share leaf1).
		{"all-spines-down", topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, []string{"spine1", "spine2"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, c.params, defs, nil)
			// Warm up ARP caches, then fail, then probe every pair.
			if _, err := tb.e.AllPairs(time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
				t.Fatal(err)
			}
			for _, s := range c.fail {
				if err := tb.e.SetNodeState(tb.e.Now()+time.Millisecond, s, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Reachable(); got != c.wantReach {
				t.Errorf("%d pairs reachable, want %d:\n%s", got, c.wantReach, m)
			}
			// No probe crossed a failed spine.
			for i := range m.IDs {
				for j, id := range m.IDs[i] {
					if i == j {
						continue
					}
					r, _ := tb.e.Result(id)
					for _, ev := range r.Forward {
						for _, s := range c.fail {
							if ev.Node == s {
								t.Errorf("probe %s -> %s crossed failed %s", names[i], names[j], s)
							}
						}
					}
				}
			}
			tb.conserve(t)
		})
	}
}

func TestDriftMovesEntries(t *testing.T) {
	defs := []instDef{
		{"pod", "host1", "red1", "10.0.1.50/24"},
		{"client", "host3", "red1", "10.0.1.60/24"},
		{"router-client", "host7", "red2", "10.0.2.70/24"},
	}
	tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, defs, nil)
	spec := defs[0].spec(1)
	mac := MACOf(spec.MAC)
	for _, from := range []string{"client", "router-client"} {
		if r := tb.probe(t, from, "pod"); !r.Replied {
			t.Fatalf("before drift: %s cannot reach pod", from)
		}
	}
	oldLeaf, _ := tb.f.InstanceLeaf("pod")
	if err := tb.e.RemoveInstance(tb.f, "pod"); err != nil {
		t.Fatal(err)
	}
	spec.Host = "host5" // leaf3
	if _, err := tb.e.AddInstance(tb.f, spec); err != nil {
		t.Fatal(err)
	}
	newLeaf, _ := tb.f.InstanceLeaf("pod")
	if oldLeaf == newLeaf {
		t.Fatalf("drift stayed on %s", oldLeaf)
	}
	lo, _ := tb.f.Leaf(oldLeaf)
	ln, _ := tb.f.Leaf(newLeaf)
	l3vni, _ := tb.f.L3VNI("red")
	ip := netip.MustParseAddr("10.0.1.50")
	cases := []struct {
		name  string
		leaf  *Leaf
		local bool
	}{{"old-leaf", lo, false}, {"new-leaf", ln, true}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := c.leaf.LookupMAC(netRed1.VNI, mac)
			if c.local && (!ok || !e.Local) {
				t.Errorf("MAC: %+v %v, want a local entry", e, ok)
			}
			if !c.local && ok && (e.Local || e.VTEP != ln.VTEP()) {
				t.Errorf("MAC: %+v, want gone or pointing at %s", e, ln.VTEP())
			}
			h, ok := c.leaf.LookupIP(l3vni, ip)
			if c.local && (!ok || !h.Local) {
				t.Errorf("host route %+v %v, want local", h, ok)
			}
			if !c.local && ok && (h.Local || h.Prefix.Bits() != 32 && !h.Connected) {
				t.Errorf("host route %+v, want no local route", h)
			}
		})
	}
	if got := tb.f.Table().Counts(); got.MACIP != 3 {
		t.Errorf("type-2 routes after drift: %d, want 3", got.MACIP)
	}
	capa := tb.f.Capacity()
	if capa.Instances != 3 || capa.Leaves[oldLeaf].LocalMACs != 0 || capa.Leaves[newLeaf].LocalMACs != 1 {
		t.Errorf("capacity after drift: %d instances, local MACs old %d new %d", capa.Instances, capa.Leaves[oldLeaf].LocalMACs, capa.Leaves[newLeaf].LocalMACs)
	}
	for s, n := range capa.SpineFIB {
		if n != len(capa.Leaves)+len(capa.SpineFIB) {
			t.Errorf("%s underlay FIB has %d routes, want one per fabric loopback (%d)", s, n, len(capa.Leaves)+len(capa.SpineFIB))
		}
	}
	if r, ok := tb.f.Table().Lookup(netRed1.VNI, mac, ip); !ok || r.VTEP != ln.VTEP() {
		t.Errorf("type-2 route %v %v, want next hop %s", r, ok, ln.VTEP())
	}
	// The old leaf keeps no port configuration for the network (no other
	// instance of it on host1): its L2 VNI is gone there.
	if lo.Tables().LocalMACs != 0 {
		t.Errorf("old leaf still has %d local MACs", lo.Tables().LocalMACs)
	}
	for _, from := range []string{"client", "router-client"} {
		r := tb.probe(t, from, "pod")
		if !r.Replied || r.To != "pod" {
			t.Errorf("after drift: %s -> pod replied %v", from, r.Replied)
		}
		if sw := fabricNodes(r.Forward); sw[len(sw)-1] != newLeaf {
			t.Errorf("after drift: path %v does not end at %s", sw, newLeaf)
		}
	}
	tb.conserve(t)
}

func TestFabricErrors(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork(netRed1); err != nil {
		t.Fatal(err)
	}
	good := instDef{"x", "host1", "red1", "10.0.1.5/24"}.spec(1)
	netCases := []struct {
		name string
		n    datapath.NetworkSpec
		want error
	}{
		{"duplicate-name", netRed1, ErrExists},
		{"same-vni", datapath.NetworkSpec{Name: "n", Tenant: "t", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1"), VLAN: 99, VNI: netRed1.VNI}, ErrExists},
		{"overlap-same-tenant", datapath.NetworkSpec{Name: "n", Tenant: "red", Subnet: netip.MustParsePrefix("10.0.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.1"), VLAN: 99, VNI: 99}, ErrExists},
		{"gateway-outside", datapath.NetworkSpec{Name: "n", Tenant: "t", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.8.0.1"), VLAN: 99, VNI: 99}, ErrBadSpec},
		{"vlan-zero", datapath.NetworkSpec{Name: "n", Tenant: "t", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1"), VNI: 99}, ErrBadSpec},
	}
	for _, c := range netCases {
		if err := f.AddNetwork(c.n); !errors.Is(err, c.want) {
			t.Errorf("AddNetwork %s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, _, err := f.AddInstance(good); err != nil {
		t.Fatal(err)
	}
	bad := func(mod func(*datapath.InstanceSpec)) datapath.InstanceSpec {
		s := instDef{"y", "host2", "red1", "10.0.1.6/24"}.spec(2)
		mod(&s)
		return s
	}
	instCases := []struct {
		name string
		s    datapath.InstanceSpec
		want error
	}{
		{"duplicate-name", good, ErrExists},
		{"same-ip-same-tenant", bad(func(s *datapath.InstanceSpec) { s.IP = good.IP }), ErrExists},
		{"same-mac-same-vni", bad(func(s *datapath.InstanceSpec) { s.MAC = good.MAC }), ErrExists},
		{"no-network", bad(func(s *datapath.InstanceSpec) { s.Network = "nope" }), ErrBadSpec},
		{"ip-outside", bad(func(s *datapath.InstanceSpec) { s.IP = netip.MustParsePrefix("10.7.0.5/24") }), ErrBadSpec},
		{"not-a-host", bad(func(s *datapath.InstanceSpec) { s.Host = "spine1" }), ErrBadSpec},
		{"multicast-mac", bad(func(s *datapath.InstanceSpec) { s.MAC = net.HardwareAddr{1, 0, 0, 0, 0, 1} }), ErrBadSpec},
	}
	for _, c := range instCases {
		if _, _, err := f.AddInstance(c.s); !errors.Is(err, c.want) {
			t.Errorf("AddInstance %s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := f.RemoveInstance("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveInstance unknown: %v", err)
	}
	// A failed AddInstance left nothing behind: one instance, one type-2.
	if c := f.Table().Counts(); c.MACIP != 1 || c.InclusiveMulticast != 1 {
		t.Errorf("table after failed adds: %+v", c)
	}
	// A removed instance's MAC and IP are free again, for another name.
	if err := f.RemoveInstance(good.Name); err != nil {
		t.Fatal(err)
	}
	again := bad(func(s *datapath.InstanceSpec) { s.IP, s.MAC = good.IP, good.MAC })
	if _, _, err := f.AddInstance(again); err != nil {
		t.Errorf("AddInstance with a removed instance's MAC and IP: %v", err)
	}
	for _, c := range []struct {
		name string
		mod  func(*datapath.InstanceSpec)
	}{
		{"same-ip", func(s *datapath.InstanceSpec) { s.IP = again.IP }},
		{"same-mac", func(s *datapath.InstanceSpec) { s.MAC = again.MAC }},
	} {
		s := bad(c.mod)
		s.Name = "z"
		if _, _, err := f.AddInstance(s); !errors.Is(err, ErrExists) {
			t.Errorf("AddInstance %s as the re-added instance: %v, want %v", c.name, err, ErrExists)
		}
	}
	bad3 := &topologies.Topology{Name: "bad"}
	bad3.AddNode("c1", topologies.RoleCore)
	if _, err := New(bad3, Options{}); !errors.Is(err, ErrBadFabric) {
		t.Errorf("New on a core-only topology: %v", err)
	}
}

func TestLeafFailure(t *testing.T) {
	defs := []instDef{
		{"i1", "host1", "red1", "10.0.1.11/24"},
		{"i2", "host3", "red1", "10.0.1.12/24"},
		{"i3", "host5", "red2", "10.0.2.13/24"},
		{"i4", "host8", "red2", "10.0.2.14/24"},
		{"i5", "host2", "red2", "10.0.2.15/24"},
	}
	names := []string{"i1", "i2", "i3", "i4", "i5"}
	cases := []struct {
		name      string
		dual      bool
		wantReach int
		wantMoved []string // instances whose type-2 must now point elsewhere
	}{
		// Dual-homed: leaf1's hosts fail over to leaf2, which learns their
		// MACs from the bond's announcements and re-advertises them.
		{"dual-homed", true, 20, []string{"i1", "i2", "i5"}},
		// Single-homed control: i1 and i5 sit on leaf1 alone.
		{"single-homed", false, 6, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2, DualHomed: c.dual}, defs, nil)
			if _, err := tb.e.AllPairs(time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
				t.Fatal(err)
			}
			before := map[string]string{}
			for _, n := range names {
				before[n], _ = tb.f.InstanceLeaf(n)
			}
			if err := tb.e.SetNodeState(tb.e.Now()+time.Millisecond, "leaf1", false); err != nil {
				t.Fatal(err)
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			for _, n := range c.wantMoved {
				now, _ := tb.f.InstanceLeaf(n)
				if before[n] != "leaf1" || now != "leaf2" {
					t.Errorf("%s advertised by %s, then %s; want leaf1 then leaf2", n, before[n], now)
				}
			}
			m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Reachable(); got != c.wantReach {
				t.Errorf("%d pairs reachable, want %d:\n%s", got, c.wantReach, m)
			}
			tb.conserve(t)
			// Removing a moved instance withdraws the route where it is now.
			if err := tb.e.RemoveInstance(tb.f, "i1"); err != nil {
				t.Fatal(err)
			}
			if c := tb.f.Table().Counts(); c.MACIP != len(names)-1 {
				t.Errorf("type-2 routes after removing i1: %d, want %d", c.MACIP, len(names)-1)
			}
		})
	}
}

func TestMultiAZThroughBorderLeaves(t *testing.T) {
	topo, err := topologies.MultiAZ(topologies.MultiAZParams{AZs: 2, BorderLeaves: 2,
		Fabric: topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []datapath.NetworkSpec{netRed1, netRed2} {
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	defs := []instDef{
		{"a", "az1-host1", "red1", "10.0.1.11/24"},
		{"b", "az2-host2", "red1", "10.0.1.2/24"},
		{"c", "az2-host1", "red2", "10.0.2.3/24"},
	}
	tb := &testbed{f: f, e: e, ips: map[string]netip.Addr{}, defs: defs}
	for i, d := range defs {
		if _, err := e.AddInstance(f, d.spec(i+1)); err != nil {
			t.Fatal(err)
		}
		tb.ips[d.name] = netip.MustParsePrefix(d.ip).Addr()
	}
	want := []topologies.Role{topologies.RoleLeaf, topologies.RoleSpine, topologies.RoleBorder,
		topologies.RoleBorder, topologies.RoleSpine, topologies.RoleLeaf}
	for _, to := range []string{"b", "c"} {
		r := tb.probe(t, "a", to)
		if !r.Replied || r.To != to {
			t.Fatalf("a -> %s across AZs: replied %v (drop %s %s %s)", to, r.Replied, r.DropNode, r.Reason, r.Rule)
		}
		sw := fabricNodes(r.Forward)
		var roles []topologies.Role
		for _, n := range sw {
			roles = append(roles, role(f, n))
		}
		if fmt.Sprint(roles) != fmt.Sprint(want) || r.SwitchHops != len(want) {
			t.Errorf("a -> %s: fabric path %v (%v), %d switch hops; want roles %v", to, sw, roles, r.SwitchHops, want)
		}
	}
	tb.conserve(t)
}

func TestDeterministicTrace(t *testing.T) {
	run := func() []byte {
		tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2, DualHomed: true}, pathDefs, nil)
		names := make([]string, len(pathDefs))
		for i, d := range pathDefs {
			names[i] = d.name
		}
		if _, err := tb.e.AllPairs(time.Millisecond, 3*time.Microsecond, names, stack.ProbeSpec{Proto: stack.UDP}); err != nil {
			t.Fatal(err)
		}
		if err := tb.e.SetNodeState(tb.e.Now()+time.Millisecond, "spine1", false); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.e.AllPairs(tb.e.Now()+2*time.Millisecond, 3*time.Microsecond, names, stack.ProbeSpec{Proto: stack.TCP}); err != nil {
			t.Fatal(err)
		}
		tb.conserve(t)
		var b bytes.Buffer
		if err := tb.e.WriteTrace(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b := run(), run()
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("two runs gave different traces (%d and %d bytes)", len(a), len(b))
	}
}

// TestExternalOverlay drives the leaves as the controller's CNC does: the
// fabric only plugs instances into their hosts; port mappings, bindings
// and type-2 routes come from outside.
func TestExternalOverlay(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{ExternalOverlay: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork(netRed1); err != nil {
		t.Fatal(err)
	}
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	defs := []instDef{{"a", "host1", "red1", "10.0.1.11/24"}, {"b", "host5", "red1", "10.0.1.12/24"}}
	tb := &testbed{f: f, e: e, ips: map[string]netip.Addr{}, defs: defs}
	for i, d := range defs {
		if _, err := e.AddInstance(f, d.spec(i+1)); err != nil {
			t.Fatal(err)
		}
		tb.ips[d.name] = netip.MustParsePrefix(d.ip).Addr()
	}
	if c := f.Table().Counts(); c.Total() != 0 {
		t.Fatalf("fabric advertised routes itself: %+v", c)
	}
	if _, _, err := f.AddInstance(instDef{"dup", "host2", "red1", "10.0.1.11/24"}.spec(9)); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate IP accepted in external mode: %v", err)
	}
	if r := tb.probe(t, "a", "b"); r.Replied {
		t.Fatal("reachable before the controller programmed the overlay")
	}
	// The CNC's steps: map VLAN → VNI on the host's leaf port, bind the
	// MAC on the active leaf, advertise type 2.
	l3vni, _ := f.L3VNI("red")
	for i, d := range defs {
		leaf, _ := f.Leaf(f.HostLeaves(d.host)[0])
		port := portTo(t, f, leaf.Name(), d.host)
		if err := leaf.ConfigurePort(port, netRed1.VLAN, netRed1.VNI); err != nil {
			t.Fatal(err)
		}
		mac := MACOf(d.spec(i + 1).MAC)
		if err := leaf.BindLocal(port, netRed1.VLAN, mac); err != nil {
			t.Fatal(err)
		}
		if err := f.Table().Add(Route{Type: MACIP, VNI: netRed1.VNI, L3VNI: l3vni, MAC: mac, IP: tb.ips[d.name], VTEP: leaf.VTEP(), RouterMAC: leaf.RouterMAC()}); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.InstanceLeaf(d.name); got != leaf.Name() {
			t.Errorf("InstanceLeaf(%s) = %q, want %s", d.name, got, leaf.Name())
		}
	}
	if r := tb.probe(t, "a", "b"); !r.Replied || r.SwitchHops != 3 {
		t.Errorf("after programming: replied %v, switch hops %d", r.Replied, r.SwitchHops)
	}
	if err := e.RemoveInstance(f, "b"); err != nil {
		t.Fatal(err)
	}
	if c := f.Table().Counts(); c.MACIP != 2 {
		t.Errorf("RemoveInstance touched the controller's routes: %+v", c)
	}
	tb.conserve(t)
}

func TestHostSlots(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{TapSlots: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork(netRed1); err != nil {
		t.Fatal(err)
	}
	h, _ := f.Host("host1")
	up := len(h.Ports())
	for i := range 3 {
		d := instDef{fmt.Sprintf("s%d", i), "host1", "red1", fmt.Sprintf("10.0.1.%d/24", 10+i)}
		_, w, err := f.AddInstance(d.spec(i + 1))
		switch {
		case i < 2 && (err != nil || w.B.Port != up+i):
			t.Errorf("instance %d: port %d, err %v; want port %d", i, w.B.Port, err, up+i)
		case i == 2 && !errors.Is(err, ErrHostFull):
			t.Errorf("third instance on a 2-slot host: %v, want ErrHostFull", err)
		}
	}
	if c := f.Capacity(); c.Instances != 2 || c.Routes.MACIP != 2 {
		t.Errorf("after a refused attach: %+v", c)
	}
	// A freed slot is reused.
	if err := f.RemoveInstance("s0"); err != nil {
		t.Fatal(err)
	}
	if _, w, err := f.AddInstance(instDef{"s9", "host1", "red1", "10.0.1.99/24"}.spec(9)); err != nil || w.B.Port != up {
		t.Errorf("re-attach: port %d err %v, want the freed port %d", w.B.Port, err, up)
	}
}

// TestLeafFailureWithdrawsItsRoutes fails a leaf and, after the failure
// detection time, tells the fabric's control plane as a runtime does: the
// leaf's BGP session drops, so its type-2, type-3 and type-5 routes leave
// the table and every other leaf drops the MACs, host routes, prefixes
// and flood entries that pointed at its VTEP. Restoring it advertises
// them again. Dual-homed hosts' instances stay reachable: their bonds
// fail over and the other leaf re-advertises them before the session
// times out.
func TestLeafFailureWithdrawsItsRoutes(t *testing.T) {
	defs := []instDef{
		{"i1", "host1", "red1", "10.0.1.11/24"},
		{"i2", "host3", "red1", "10.0.1.12/24"},
		{"i3", "host5", "red2", "10.0.2.13/24"},
		{"i4", "host8", "red2", "10.0.2.14/24"},
		{"i5", "host2", "red2", "10.0.2.15/24"},
	}
	names := []string{"i1", "i2", "i3", "i4", "i5"}
	type5 := netip.MustParsePrefix("192.168.0.0/16")
	for _, dual := range []bool{false, true} {
		t.Run(fmt.Sprintf("dual-homed=%v", dual), func(t *testing.T) {
			tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2, DualHomed: dual}, defs, nil)
			// Traffic first, so that the hosts' bridges know their
			// instances and the bonds announce them on failover.
			if _, err := tb.e.AllPairs(time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
				t.Fatal(err)
			}
			leaf1, _ := tb.f.Leaf("leaf1")
			l3vni, _ := tb.f.L3VNI("red")
			if err := leaf1.Advertise(Route{Type: IPPrefix, L3VNI: l3vni, Prefix: type5, VTEP: leaf1.VTEP(), RouterMAC: leaf1.RouterMAC()}); err != nil {
				t.Fatal(err)
			}
			others := []string{"leaf2", "leaf3", "leaf4"}
			before := map[string]LeafTables{}
			for _, n := range others {
				l, _ := tb.f.Leaf(n)
				before[n] = l.Tables()
			}
			routesBefore := tb.f.Table().Counts()
			if c := tb.f.Table().CountsByVTEP()[leaf1.VTEP()]; c.MACIP == 0 || c.InclusiveMulticast == 0 || c.IPPrefix != 1 {
				t.Fatalf("leaf1 originates %+v before the failure; want type 2, 3 and 5 routes", c)
			}

			fail := tb.e.Now() + time.Millisecond
			if err := tb.e.SetNodeState(fail, "leaf1", false); err != nil {
				t.Fatal(err)
			}
			if err := tb.e.Run(fail + tb.f.FailureDetection()); err != nil {
				t.Fatal(err)
			}
			tb.f.NodeStateChanged("leaf1", false)

			if c, ok := tb.f.Table().CountsByVTEP()[leaf1.VTEP()]; ok {
				t.Errorf("routes via failed leaf1 still in the table: %+v", c)
			}
			i1mac := MACOf(defs[0].spec(1).MAC)
			for _, n := range others {
				l, _ := tb.f.Leaf(n)
				if e, ok := l.LookupMAC(netRed1.VNI, i1mac); ok && e.VTEP == leaf1.VTEP() {
					t.Errorf("%s still sends i1's MAC to leaf1", n)
				}
				if e, ok := l.LookupIP(l3vni, tb.ips["i5"]); ok && slices.Contains(e.VTEPs, leaf1.VTEP()) {
					t.Errorf("%s still routes i5 (%v) to leaf1", n, tb.ips["i5"])
				}
				if e, ok := l.LookupIP(l3vni, netip.MustParseAddr("192.168.1.1")); ok {
					t.Errorf("%s still routes leaf1's type-5 prefix: %+v", n, e)
				}
			}
			// leaf2 carries red1 and red2 in both cases; in the single-homed
			// case everything it knew of leaf1 is gone.
			l2, _ := tb.f.Leaf("leaf2")
			after := l2.Tables()
			if !dual {
				b := before["leaf2"]
				if after.RemoteMACs >= b.RemoteMACs || after.HostRoutes >= b.HostRoutes || after.FloodVTEPs >= b.FloodVTEPs || after.Prefixes >= b.Prefixes {
					t.Errorf("leaf2's tables did not shrink: before %+v, after %+v", b, after)
				}
			}
			m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			want := 6 // i2, i3, i4 among themselves
			if dual {
				want = 20
			}
			if got := m.Reachable(); got != want {
				t.Errorf("%d pairs reachable after the withdrawal, want %d:\n%s", got, want, m)
			}

			if err := tb.e.SetNodeState(tb.e.Now()+time.Millisecond, "leaf1", true); err != nil {
				t.Fatal(err)
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			tb.f.NodeStateChanged("leaf1", true)
			if c := tb.f.Table().CountsByVTEP()[leaf1.VTEP()]; c.IPPrefix != 1 || (!dual && c.MACIP == 0) {
				t.Errorf("leaf1 re-advertised %+v; want its type-5 route and (single-homed) its type-2 routes", c)
			}
			if !dual {
				if got := tb.f.Table().Counts(); got != routesBefore {
					t.Errorf("routes after restore %+v, before the failure %+v", got, routesBefore)
				}
				for _, n := range others {
					l, _ := tb.f.Leaf(n)
					if got := l.Tables(); got != before[n] {
						t.Errorf("%s after restore %+v, before the failure %+v", n, got, before[n])
					}
				}
				m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Reachable(); got != 20 {
					t.Errorf("%d pairs reachable after restore, want 20:\n%s", got, m)
				}
			}
			tb.conserve(t)
		})
	}
}
