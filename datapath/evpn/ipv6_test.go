package evpn

import (
	"fmt"
	"net"
	"net/netip"
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

var (
	gw61  = netip.MustParseAddr("fd00:1::1")
	gw62  = netip.MustParseAddr("fd00:2::1")
	ip6A  = netip.MustParseAddr("fd00:1::a")
	ip6B  = netip.MustParseAddr("fd00:1::b")
	ip6C  = netip.MustParseAddr("fd00:2::c")
	ip6D  = netip.MustParseAddr("fd00:2::d")
	pfx6  = netip.MustParsePrefix("fd99::/48")
	in6   = netip.MustParseAddr("fd99::7")
	net61 = Network{VNI: 100, L3VNI: 50001, Subnet: net100.Subnet, Gateway: gw1,
		Subnet6: netip.MustParsePrefix("fd00:1::/64"), Gateway6: gw61}
	net62 = Network{VNI: 200, L3VNI: 50001, Subnet: net200.Subnet, Gateway: gw2,
		Subnet6: netip.MustParsePrefix("fd00:2::/64"), Gateway6: gw62}
)

// testLeaf6 is testLeaf with both networks dual-stack: every host has a
// type-2 route with its IPv6 address beside the IPv4 one, and vtep2
// announces an IPv6 type-5 prefix (fd99::/48) beside its IPv4 one.
func testLeaf6(t testing.TB) (*Leaf, *RouteTable) {
	t.Helper()
	tb := NewRouteTable()
	l, err := NewLeaf(leafCfg, tb)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.SetUnderlayRoute(vtep2, []NextHop{{pUp1, spine1}, {pUp2, spine2}}))
	must(l.AddNetwork(net61))
	must(l.AddNetwork(net62))
	must(l.ConfigurePort(pHost1, 10, 100))
	must(l.ConfigurePort(pHost2, 20, 200))
	must(l.BindLocal(pHost1, 10, macA))
	must(l.BindLocal(pHost2, 20, macD))
	for _, r := range []Route{
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ipA, VTEP: vtep1, RouterMAC: rmac1},
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ip6A, VTEP: vtep1, RouterMAC: rmac1},
		{Type: MACIP, VNI: 200, L3VNI: 50001, MAC: macD, IP: ip6D, VTEP: vtep1, RouterMAC: rmac1},
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macB, IP: ip6B, VTEP: vtep2, RouterMAC: rmac2},
		{Type: MACIP, VNI: 200, L3VNI: 50001, MAC: macC, IP: ip6C, VTEP: vtep2, RouterMAC: rmac2},
		{Type: InclusiveMulticast, VNI: 100, VTEP: vtep2},
		{Type: IPPrefix, L3VNI: 50001, Prefix: pfx6, VTEP: vtep2, RouterMAC: rmac2},
	} {
		must(tb.Add(r))
	}
	return l, tb
}

// solicit is a neighbour solicitation for target from (mac, src), tagged
// with vid.
func solicit(mac MAC, src, target netip.Addr, vid uint16) []byte {
	return tagged(frame.NeighborSolicitation(mac[:], src, target), vid)
}

// wantAdvert checks that s is the leaf's solicited advertisement of
// (mac, target) to (dmac, dst) on port, tagged vid, with the router flag
// when router is set.
func wantAdvert(t *testing.T, s sent, port int, vid uint16, mac MAC, target netip.Addr, dmac MAC, dst netip.Addr, router bool) {
	t.Helper()
	if s.port != port {
		t.Fatalf("advertisement sent on port %d, want %d", s.port, port)
	}
	p := parse(t, s.frame)
	if !p.Has(layers.LayerTypeDot1Q) || p.Dot1Q.VLANIdentifier != vid {
		t.Errorf("advertisement not tagged %d: %v", vid, p.Decoded)
	}
	if MACOf(p.Eth.SrcMAC) != mac || MACOf(p.Eth.DstMAC) != dmac {
		t.Errorf("advertisement %v -> %v, want %v -> %v", p.Eth.SrcMAC, p.Eth.DstMAC, mac, dmac)
	}
	if !p.Has(layers.LayerTypeICMPv6) || p.IP6.HopLimit != 255 {
		t.Fatalf("not ICMPv6 with hop limit 255: %v", p.Decoded)
	}
	if got, _ := netip.AddrFromSlice(p.IP6.DstIP); got != dst {
		t.Errorf("advertisement to %v, want %v", got, dst)
	}
	nd, ok := frame.ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload)
	if !ok || nd.Type != layers.ICMPv6TypeNeighborAdvertisement {
		t.Fatalf("not a neighbour advertisement: %v", p.ICMP6.TypeCode)
	}
	if nd.Target != target || !nd.HasLL || MAC(nd.LLAddr) != mac {
		t.Errorf("advertises %v at %v, want %v at %v", nd.Target, MAC(nd.LLAddr), target, mac)
	}
	if want := uint8(frame.NASolicited | frame.NAOverride); nd.Flags&want != want || (nd.Flags&frame.NARouter != 0) != router {
		t.Errorf("flags %#x, want solicited, override and router=%v", nd.Flags, router)
	}
}

// The leaf answers neighbour solicitations where it answers ARP: for the
// anycast gateway's IPv6 address (router flag set), and from type-2
// MAC/IPv6 routes for known hosts, local or remote (ND suppression); an
// unknown target, or duplicate address detection, is replicated to the
// VNI's VTEPs; a target behind the asker's own port is left to answer
// itself.
func TestLeafNDSuppression(t *testing.T) {
	type want struct {
		mac    MAC
		router bool
		rule   string
	}
	cases := []struct {
		name        string
		src, target netip.Addr
		port        int
		vid         uint16
		from        MAC
		want        *want // nil: not answered
		flooded     bool
	}{
		{"gateway", ip6A, gw61, pHost1, 10, macA, &want{gwMAC, true, RuleNDGateway}, false},
		{"gateway-other-subnet", ip6D, gw62, pHost2, 20, macD, &want{gwMAC, true, RuleNDGateway}, false},
		{"remote-host", ip6A, ip6B, pHost1, 10, macA, &want{macB, false, RuleNDSuppress}, false},
		{"unknown-host", ip6A, netip.MustParseAddr("fd00:1::99"), pHost1, 10, macA, nil, true},
		{"dad", netip.IPv6Unspecified(), ip6A, pHost1, 10, macA, nil, true},
		{"own-port", ip6B, ip6A, pHost1, 10, macB, nil, false},
		{"ipv4-gateway-is-not-ipv6", ip6A, netip.MustParseAddr("::ffff:10.0.1.1"), pHost1, 10, macA, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, _ := testLeaf6(t)
			var r rec
			l.Receive(0, c.port, solicit(c.from, c.src, c.target, c.vid), &r)
			if len(r.events) == 0 {
				t.Fatal("no trace event")
			}
			ev := r.events[0]
			switch {
			case c.want != nil:
				if len(r.sends) != 1 {
					t.Fatalf("sent %d frames, want the advertisement", len(r.sends))
				}
				wantAdvert(t, r.sends[0], c.port, c.vid, c.want.mac, c.target, c.from, c.src, c.want.router)
				if ev.Rule != c.want.rule || ev.Kind != datapath.KindSwitch {
					t.Errorf("traced %s %s, want %s on a switch crossing", ev.Kind, ev.Rule, c.want.rule)
				}
			case c.flooded:
				if ev.Action != datapath.ActFlood || len(r.sends) == 0 {
					t.Errorf("traced %s %s with %d frames sent, want it flooded", ev.Action, ev.Rule, len(r.sends))
				}
			default:
				if ev.Action != datapath.ActDrop || len(r.sends) != 0 {
					t.Errorf("traced %s %s with %d frames sent, want it left to the target", ev.Action, ev.Rule, len(r.sends))
				}
			}
		})
	}
	// A unicast solicitation for the gateway (a host confirming it is
	// still reachable) is answered too.
	l, _ := testLeaf6(t)
	var r rec
	ns := frame.NeighborSolicitation(macA[:], ip6A, gw61)
	copy(ns[0:6], gwMAC[:])
	l.Receive(0, pHost1, tagged(ns, 10), &r)
	if len(r.sends) != 1 {
		t.Fatalf("unicast solicitation for the gateway: sent %d frames (%v)", len(r.sends), r.events)
	}
	wantAdvert(t, r.sends[0], pHost1, 10, gwMAC, gw61, macA, ip6A, true)
}

// Type-2 routes with an IPv6 address become ND bindings and /128 host
// routes, type-5 IPv6 prefixes VRF prefixes, the subnet6 a connected
// prefix; withdrawing them removes them, and a flush and re-import
// brings them back.
func TestLeafType2IPv6(t *testing.T) {
	l, tb := testLeaf6(t)
	check := func(when string) {
		t.Helper()
		e, ok := l.LookupIP(50001, ip6B)
		if !ok || e.Prefix != netip.PrefixFrom(ip6B, 128) || e.Local || !slices.Equal(e.VTEPs, []netip.Addr{vtep2}) || !slices.Equal(e.RouterMACs, []MAC{rmac2}) {
			t.Errorf("%s: %v -> %+v %v, want a /128 host route via %v", when, ip6B, e, ok, vtep2)
		}
		if e, ok := l.LookupIP(50001, ip6A); !ok || !e.Local || e.MAC != macA || e.VNI != 100 {
			t.Errorf("%s: %v -> %+v %v, want the local host", when, ip6A, e, ok)
		}
		if e, ok := l.LookupIP(50001, in6); !ok || e.Prefix != pfx6 || !slices.Equal(e.VTEPs, []netip.Addr{vtep2}) {
			t.Errorf("%s: %v -> %+v %v, want type-5 %v", when, in6, e, ok, pfx6)
		}
		if e, ok := l.LookupIP(50001, netip.MustParseAddr("fd00:2::99")); !ok || !e.Connected || e.VNI != 200 {
			t.Errorf("%s: unknown host of subnet6 -> %+v %v, want connected fd00:2::/64", when, e, ok)
		}
		s := l.State()
		var nbr []Neighbor
		for _, n := range s.Networks {
			nbr = append(nbr, n.ARP...)
		}
		if !slices.Contains(nbr, Neighbor{ip6B, macB}) || !slices.Contains(nbr, Neighbor{ip6A, macA}) {
			t.Errorf("%s: suppression bindings %v lack the IPv6 ones", when, nbr)
		}
	}
	check("imported")
	before := l.Tables()
	// Host routes: A, D, B, C over IPv6, A over IPv4. Prefixes: two
	// subnets and two subnet6s connected, one type-5.
	if before.HostRoutes != 5 || before.Prefixes != 5 || before.ARP != 5 {
		t.Errorf("tables %+v: want 5 host routes, 5 prefixes, 5 bindings", before)
	}
	if err := tb.Withdraw(Route{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macB, IP: ip6B, VTEP: vtep2}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Withdraw(Route{Type: IPPrefix, L3VNI: 50001, Prefix: pfx6, VTEP: vtep2}); err != nil {
		t.Fatal(err)
	}
	if e, ok := l.LookupIP(50001, ip6B); !ok || !e.Connected {
		t.Errorf("withdrawn: %v -> %+v %v, want only the connected subnet6", ip6B, e, ok)
	}
	if e, ok := l.LookupIP(50001, in6); ok {
		t.Errorf("withdrawn: %v -> %+v, want no route", in6, e)
	}
	if after := l.Tables(); after.HostRoutes != 4 || after.Prefixes != 4 || after.ARP != 4 {
		t.Errorf("withdrawn: tables %+v", after)
	}
	for _, r := range []Route{
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macB, IP: ip6B, VTEP: vtep2, RouterMAC: rmac2},
		{Type: IPPrefix, L3VNI: 50001, Prefix: pfx6, VTEP: vtep2, RouterMAC: rmac2},
	} {
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, pv := range []struct {
		port int
		vlan uint16
	}{{pHost1, 10}, {pHost2, 20}} {
		if err := l.UnconfigurePort(pv.port, pv.vlan); err != nil {
			t.Fatal(err)
		}
	}
	if tt := l.Tables(); tt.HostRoutes != 0 || tt.Prefixes != 0 || tt.ARP != 0 {
		t.Errorf("flushed: tables %+v", tt)
	}
	if err := l.ConfigurePort(pHost1, 10, 100); err != nil {
		t.Fatal(err)
	}
	if err := l.ConfigurePort(pHost2, 20, 200); err != nil {
		t.Fatal(err)
	}
	// The local bindings went with the flush; the table's routes come back.
	if err := l.BindLocal(pHost1, 10, macA); err != nil {
		t.Fatal(err)
	}
	check("re-imported")
}

// The leaf routes IPv6 as it routes IPv4: to a remote host by symmetric
// IRB over the L3 VNI (hop limit one less, inner MACs rewritten to the
// router MACs), to a type-5 prefix, to a local host in another subnet,
// and the egress leaf delivers a routed packet it decapsulates; the
// gateway answers an echo to its IPv6 address.
func TestLeafRoutesIPv6(t *testing.T) {
	echo := func(dst netip.Addr, dmac MAC) []byte {
		return frame.ICMPEcho(frame.IPv4{SrcMAC: macA[:], DstMAC: dmac[:], Src: ip6A, Dst: dst, TTL: 64}, false, 7, 1, []byte("v6"))
	}
	t.Run("remote-host", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		l.Receive(0, pHost1, tagged(echo(ip6C, gwMAC), 10), &r)
		if len(r.sends) != 1 {
			t.Fatalf("sent %d frames (%v)", len(r.sends), r.events)
		}
		inner := echo(ip6C, gwMAC)
		copy(inner[0:6], rmac2[:])
		copy(inner[6:12], rmac1[:])
		inner[ethLen+7]--
		wantVXLAN(t, r.sends[0], 50001, vtep2, inner)
		if ev := r.events[0]; ev.Kind != datapath.KindVTEP || ev.Rule != RuleRouteRemote {
			t.Errorf("traced %s %s", ev.Kind, ev.Rule)
		}
	})
	t.Run("type-5", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		l.Receive(0, pHost1, tagged(echo(in6, gwMAC), 10), &r)
		if len(r.sends) != 1 || r.events[0].Rule != RulePrefix {
			t.Fatalf("sent %d frames (%v), want one by %s", len(r.sends), r.events, RulePrefix)
		}
		inner := echo(in6, gwMAC)
		copy(inner[0:6], rmac2[:])
		copy(inner[6:12], rmac1[:])
		inner[ethLen+7]--
		wantVXLAN(t, r.sends[0], 50001, vtep2, inner)
	})
	t.Run("local-other-subnet", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		l.Receive(0, pHost1, tagged(echo(ip6D, gwMAC), 10), &r)
		if len(r.sends) != 1 || r.sends[0].port != pHost2 || r.events[0].Rule != RuleRouteLocal {
			t.Fatalf("sent %v (%v), want port %d by %s", r.sends, r.events, pHost2, RuleRouteLocal)
		}
		p := parse(t, r.sends[0].frame)
		if p.Dot1Q.VLANIdentifier != 20 || MACOf(p.Eth.DstMAC) != macD || MACOf(p.Eth.SrcMAC) != gwMAC || p.IP6.HopLimit != 63 {
			t.Errorf("routed frame vlan %d %v -> %v hop limit %d", p.Dot1Q.VLANIdentifier, p.Eth.SrcMAC, p.Eth.DstMAC, p.IP6.HopLimit)
		}
	})
	t.Run("decap", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		inner := frame.ICMPEcho(frame.IPv4{SrcMAC: rmac2[:], DstMAC: rmac1[:], Src: ip6C, Dst: ip6A, TTL: 63}, false, 7, 1, nil)
		l.Receive(0, pUp1, vxlanFrom(pUp1, 50001, inner), &r)
		if len(r.sends) != 1 || r.sends[0].port != pHost1 {
			t.Fatalf("sent %v (%v), want port %d", r.sends, r.events, pHost1)
		}
		p := parse(t, r.sends[0].frame)
		if MACOf(p.Eth.DstMAC) != macA || MACOf(p.Eth.SrcMAC) != gwMAC || p.IP6.HopLimit != 62 {
			t.Errorf("delivered %v -> %v hop limit %d", p.Eth.SrcMAC, p.Eth.DstMAC, p.IP6.HopLimit)
		}
	})
	t.Run("unknown-host-of-subnet6", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		l.Receive(0, pHost1, tagged(echo(netip.MustParseAddr("fd00:2::99"), gwMAC), 10), &r)
		if len(r.sends) != 0 || r.events[0].Reason != datapath.ReasonNoARP {
			t.Errorf("sent %d frames (%v), want a glean drop", len(r.sends), r.events)
		}
	})
	t.Run("gateway-echo", func(t *testing.T) {
		l, _ := testLeaf6(t)
		var r rec
		l.Receive(0, pHost1, tagged(echo(gw61, gwMAC), 10), &r)
		if len(r.sends) != 1 || r.sends[0].port != pHost1 {
			t.Fatalf("sent %v (%v)", r.sends, r.events)
		}
		p := parse(t, r.sends[0].frame)
		src, _ := netip.AddrFromSlice(p.IP6.SrcIP)
		if !p.Has(layers.LayerTypeICMPv6) || p.ICMP6.TypeCode.Type() != layers.ICMPv6TypeEchoReply || src != gw61 {
			t.Errorf("reply %v from %v", p.Decoded, src)
		}
	})
}

// dualDefs are pathDefs with an IPv6 address each (fd00:N::<host part>).
var dualDefs = pathDefs

func ip6Of(d instDef) netip.Addr {
	p := netip.MustParsePrefix(d.ip).Addr().As4()
	return netip.AddrFrom16([16]byte{0xfd, 7: p[2], 15: p[3]})
}

// newDualTestbed is newTestbed with red1 and red2 dual-stack
// (fd00:0:0:1::/64, fd00:0:0:2::/64) and every instance holding an IPv6
// address beside its IPv4 one; it returns the IPv6 addresses.
func newDualTestbed(t *testing.T, p topologies.SpineLeafParams, opts Options, defs []instDef, wrap func(datapath.Node) datapath.Node) (*testbed, map[string]netip.Addr) {
	t.Helper()
	topo, err := topologies.SpineLeaf(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []datapath.NetworkSpec{netRed1, netRed2} {
		n.Subnet6 = netip.MustParsePrefix(fmt.Sprintf("fd00:0:0:%d::/64", i+1))
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
	v6 := map[string]netip.Addr{}
	for i, d := range defs {
		s := d.spec(i + 1)
		s.IP6 = netip.PrefixFrom(ip6Of(d), 64)
		if _, err := e.AddInstance(f, s); err != nil {
			t.Fatal(err)
		}
		tb.ips[d.name], v6[d.name] = s.IP.Addr(), s.IP6.Addr()
	}
	return tb, v6
}

// leavesOf is fabricNodes with every spine named "spine".
func leavesOf(f *Fabric, p datapath.Path) []string {
	out := fabricNodes(p)
	for i, n := range out {
		if role(f, n) == topologies.RoleSpine {
			out[i] = "spine"
		}
	}
	return out
}

func (tb *testbed) probeAddr(t *testing.T, from string, dst netip.Addr) sim.Result {
	t.Helper()
	id, err := tb.e.Probe(tb.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: stack.ICMP, Dst: dst})
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

// On a dual-stack fabric every pair answers over IPv6, cold (neighbour
// discovery answered by the ingress leaf), and an IPv6 probe crosses the
// same devices, with the same hop and switch-hop counts, as the IPv4 one
// between the same pair: same leaf, same subnet across the fabric, and
// between subnets by symmetric IRB.
func TestDualStackPaths(t *testing.T) {
	tb, v6 := newDualTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, Options{}, dualDefs, nil)
	for _, from := range dualDefs {
		for _, to := range dualDefs {
			if from == to {
				continue
			}
			r6 := tb.probeAddr(t, from.name, v6[to.name])
			r4 := tb.probeAddr(t, from.name, tb.ips[to.name])
			if !r6.Replied || !r4.Replied {
				t.Errorf("%s -> %s over IPv6: %v; over IPv4: %v", from.name, to.name, r6, r4)
				continue
			}
			// The spine may differ: ECMP hashes each flow.
			if r6.Hops != r4.Hops || r6.SwitchHops != r4.SwitchHops ||
				!slices.Equal(leavesOf(tb.f, r6.Forward), leavesOf(tb.f, r4.Forward)) {
				t.Errorf("%s -> %s: IPv6 %d hops (%d switch) via %v, IPv4 %d (%d) via %v", from.name, to.name,
					r6.Hops, r6.SwitchHops, fabricNodes(r6.Forward), r4.Hops, r4.SwitchHops, fabricNodes(r4.Forward))
			}
		}
	}
	// r1 (leaf1) to r4 (leaf4, red2): leaf -> spine -> leaf.
	r := tb.probeAddr(t, "r1", v6["r4"])
	if got := fabricNodes(r.Forward); len(got) != 3 || r.SwitchHops != 3 {
		t.Errorf("r1 -> r4 over IPv6: %d switch hops via %v, want leaf1 spine leaf4", r.SwitchHops, got)
	}
	tb.conserve(t)
}

// A dual-stack instance has two type-2 routes, one per address, and
// removing it withdraws both; an IPv6 address outside the network's
// subnet6, or on an IPv4-only network, is refused.
func TestDualStackInstanceRoutes(t *testing.T) {
	tb, v6 := newDualTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, Options{}, dualDefs[:2], nil)
	routes := func() (n4, n6 int) {
		for _, r := range tb.f.Table().Routes() {
			switch {
			case r.Type == MACIP && r.IP.Is4():
				n4++
			case r.Type == MACIP && r.IP.Is6():
				n6++
			}
		}
		return
	}
	if n4, n6 := routes(); n4 != 2 || n6 != 2 {
		t.Fatalf("%d IPv4 and %d IPv6 type-2 routes, want 2 and 2", n4, n6)
	}
	if r, ok := tb.f.Table().Lookup(netRed1.VNI, MAC{0x02, 0x10, 0, 0, 0, 1}, v6["r1"]); !ok || r.L3VNI == 0 || r.RouterMAC == (MAC{}) {
		t.Errorf("r1's IPv6 route %v %v: want one with the L3 VNI and router MAC", r, ok)
	}
	if err := tb.f.RemoveInstance("r1"); err != nil {
		t.Fatal(err)
	}
	if n4, n6 := routes(); n4 != 1 || n6 != 1 {
		t.Errorf("after removing r1: %d IPv4 and %d IPv6 type-2 routes, want 1 and 1", n4, n6)
	}
	for _, c := range []struct{ name, network, ip6 string }{
		{"outside-subnet6", "red1", "fd00:0:0:9::5/64"},
		{"gateway", "red1", "fd00:0:0:1::1/64"},
		{"ipv4-only-network", "blue1", "fd00:0:0:1::5/64"},
		{"duplicate", "red1", v6["r2"].String() + "/64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.network == "blue1" {
				if err := tb.f.AddNetwork(netBlue1); err != nil {
					t.Fatal(err)
				}
			}
			s := datapath.InstanceSpec{Name: "x-" + c.name, Host: "host3", Network: c.network,
				MAC: net.HardwareAddr{2, 0x20, 0, 0, 0, 1}, IP: netip.MustParsePrefix("10.0.1.77/24"),
				IP6: netip.MustParsePrefix(c.ip6)}
			if _, _, err := tb.f.AddInstance(s); err == nil {
				t.Errorf("%s accepted", s.IP6)
			}
		})
	}
	// The removed r1's IPv6 address is free again.
	s := datapath.InstanceSpec{Name: "r1-again", Host: "host3", Network: "red1",
		MAC: net.HardwareAddr{2, 0x20, 0, 0, 0, 2}, IP: netip.MustParsePrefix("10.0.1.78/24"),
		IP6: netip.PrefixFrom(v6["r1"], 64)}
	if _, _, err := tb.f.AddInstance(s); err != nil {
		t.Errorf("AddInstance with removed r1's IPv6 address: %v", err)
	}
}

// solicitation reports whether b carries a neighbour solicitation,
// directly (with or without a VLAN tag) or inside VXLAN.
func solicitation(ps *frame.Parser, b []byte) bool {
	p, err := ps.Parse(b)
	if err != nil {
		return false
	}
	if p.IsVXLAN() {
		p = p.Inner
	}
	return p.Has(layers.LayerTypeICMPv6) && p.ICMP6.TypeCode.Type() == layers.ICMPv6TypeNeighborSolicitation
}

// ND suppression across the fabric, as TestARPSuppression for ARP: a
// solicitation for a known host (remote or on the same leaf) or for the
// gateway is answered by the ingress leaf and never leaves it; one for an
// unknown address is replicated to the VNI's VTEPs.
func TestNDSuppression(t *testing.T) {
	defs := []instDef{
		{"a", "host1", "red1", "10.0.1.21/24"},
		{"b", "host5", "red1", "10.0.1.22/24"},
		{"c", "host3", "red2", "10.0.2.23/24"},
		{"d", "host2", "red1", "10.0.1.24/24"}, // a's leaf
	}
	cases := []struct {
		name, from string
		dst        netip.Addr
		wantNS     bool // a solicitation leaves the ingress leaf
		wantReach  bool
	}{
		{"known-binding-same-subnet", "a", ip6Of(defs[1]), false, true},
		{"known-binding-same-leaf", "a", ip6Of(defs[3]), false, true},
		{"gateway-for-other-subnet", "a", ip6Of(defs[2]), false, true},
		{"unknown-address-is-replicated", "a", netip.MustParseAddr("fd00:0:0:1::99"), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := frame.NewParser()
			ns := 0
			tb, _ := newDualTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, Options{}, defs,
				func(n datapath.Node) datapath.Node {
					return tapNode{n, func(node string, port int, b []byte) {
						fromLeaf := strings.HasPrefix(node, "spine") ||
							strings.HasPrefix(node, "host") && !strings.HasPrefix(n.Ports()[port], "tap-")
						if fromLeaf && solicitation(ps, b) {
							ns++
						}
					}}
				})
			r := tb.probeAddr(t, c.from, c.dst)
			if r.Replied != c.wantReach {
				t.Errorf("replied %v, want %v: %v", r.Replied, c.wantReach, r)
			}
			if (ns > 0) != c.wantNS {
				t.Errorf("%d solicitations left a leaf, want any: %v", ns, c.wantNS)
			}
			tb.conserve(t)
		})
	}
}
