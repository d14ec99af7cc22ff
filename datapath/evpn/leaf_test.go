package evpn

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
)

// rec is a recording datapath.Output.
type rec struct {
	sends  []sent
	events []datapath.Event
}

type sent struct {
	port  int
	frame []byte
}

func (r *rec) Forward(port int, b []byte) { r.Send(port, b) }
func (r *rec) Send(port int, f []byte) {
	r.sends = append(r.sends, sent{port, bytes.Clone(f)})
}
func (r *rec) Trace(ev datapath.Event) { r.events = append(r.events, ev) }

type discard struct{}

func (o discard) Forward(port int, b []byte) { o.Send(port, b) }

func (discard) Send(int, []byte)     {}
func (discard) Trace(datapath.Event) {}

// Leaf under test: ports 0, 1 face hosts; 2, 3 face spines.
const (
	pHost1, pHost2, pUp1, pUp2 = 0, 1, 2, 3
)

var (
	gwMAC   = DefaultGatewayMAC
	rmac1   = MAC{2, 0xaa, 0, 0, 0, 1}
	rmac2   = MAC{2, 0xaa, 0, 0, 0, 2}
	spine1  = MAC{2, 0xbb, 0, 0, 0, 1}
	spine2  = MAC{2, 0xbb, 0, 0, 0, 2}
	macC    = MAC{2, 0, 0, 0, 0, 0xc}
	macD    = MAC{2, 0, 0, 0, 0, 0xd}
	ipC     = netip.MustParseAddr("10.0.2.30")
	ipD     = netip.MustParseAddr("10.0.2.40")
	gw1     = netip.MustParseAddr("10.0.1.1")
	gw2     = netip.MustParseAddr("10.0.2.1")
	net100  = Network{VNI: 100, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: gw1}
	net200  = Network{VNI: 200, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: gw2}
	leafCfg = LeafConfig{
		Name: "leaf1", Ports: []string{"eth1", "eth2", "up1", "up2"},
		PortMACs: []MAC{{2, 1, 0, 0, 0, 0}, {2, 1, 0, 0, 0, 1}, {2, 1, 0, 0, 0, 2}, {2, 1, 0, 0, 0, 3}},
		Uplinks:  []int{pUp1, pUp2}, VTEP: vtep1, RouterMAC: rmac1, GatewayMAC: gwMAC,
	}
)

// testLeaf builds leaf1 with VNI 100 on host port 0 VLAN 10 and VNI 200 on
// host port 1 VLAN 20 (one tenant), A and D local, B and C behind vtep2.
func testLeaf(t testing.TB) (*Leaf, *RouteTable) {
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
	must(l.AddNetwork(net100))
	must(l.AddNetwork(net200))
	must(l.ConfigurePort(pHost1, 10, 100))
	must(l.ConfigurePort(pHost2, 20, 200))
	must(l.BindLocal(pHost1, 10, macA))
	must(l.BindLocal(pHost2, 20, macD))
	for _, r := range []Route{
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ipA, VTEP: vtep1, RouterMAC: rmac1},
		{Type: MACIP, VNI: 200, L3VNI: 50001, MAC: macD, IP: ipD, VTEP: vtep1, RouterMAC: rmac1},
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macB, IP: ipB, VTEP: vtep2, RouterMAC: rmac2},
		{Type: MACIP, VNI: 200, L3VNI: 50001, MAC: macC, IP: ipC, VTEP: vtep2, RouterMAC: rmac2},
		{Type: InclusiveMulticast, VNI: 100, VTEP: vtep1},
		{Type: InclusiveMulticast, VNI: 100, VTEP: vtep2},
		{Type: InclusiveMulticast, VNI: 200, VTEP: vtep2},
		{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.0.0/16"), VTEP: vtep2, RouterMAC: rmac2},
	} {
		must(tb.Add(r))
	}
	return l, tb
}

func ipHdr(src, dst MAC, s, d netip.Addr) frame.IPv4 {
	return frame.IPv4{SrcMAC: src[:], DstMAC: dst[:], Src: s, Dst: d}
}

func tagged(f []byte, vid uint16) []byte { return frame.PushVLAN(nil, f, vid) }

// vxlanFrom builds a VXLAN packet from vtep2 to leaf1's port p.
func vxlanFrom(p int, vni uint32, inner []byte) []byte {
	return frame.VXLANEncap(frame.IPv4{SrcMAC: spine1[:], DstMAC: leafCfg.PortMACs[p][:], Src: vtep2, Dst: vtep1, TTL: 63}, vni, inner)
}

func parse(t *testing.T, f []byte) *frame.Parsed {
	t.Helper()
	p, err := frame.NewParser().Parse(f)
	if err != nil {
		t.Fatalf("parse sent frame: %v", err)
	}
	return p
}

// wantVXLAN checks an encapsulated frame sent on an uplink.
func wantVXLAN(t *testing.T, s sent, vni uint32, dst netip.Addr, inner []byte) {
	t.Helper()
	if s.port != pUp1 && s.port != pUp2 {
		t.Fatalf("sent on port %d, want an uplink", s.port)
	}
	p := parse(t, s.frame)
	if !p.IsVXLAN() || p.VXLAN.VNI != vni {
		t.Fatalf("not VXLAN in VNI %d: %v", vni, p.Decoded)
	}
	if got := netip.AddrFrom4([4]byte(p.IP4.DstIP.To4())); got != dst {
		t.Errorf("outer dst %v, want %v", got, dst)
	}
	if got := netip.AddrFrom4([4]byte(p.IP4.SrcIP.To4())); got != vtep1 {
		t.Errorf("outer src %v, want %v", got, vtep1)
	}
	wantMAC := spine1
	if s.port == pUp2 {
		wantMAC = spine2
	}
	if MACOf(p.Eth.DstMAC) != wantMAC || MACOf(p.Eth.SrcMAC) != leafCfg.PortMACs[s.port] {
		t.Errorf("outer MACs %v -> %v, want %v -> %v", p.Eth.SrcMAC, p.Eth.DstMAC, leafCfg.PortMACs[s.port], wantMAC)
	}
	if p.IP4.Checksum != ipChecksumOf(s.frame[14:34]) {
		t.Errorf("outer IPv4 checksum wrong")
	}
	if inner != nil && !bytes.Equal(p.VXLAN.Payload, inner) {
		t.Errorf("inner frame\n got %x\nwant %x", p.VXLAN.Payload, inner)
	}
}

func ipChecksumOf(h []byte) uint16 {
	c := bytes.Clone(h)
	c[10], c[11] = 0, 0
	return inetsum.IPv4Header(c)
}

// routed returns f (untagged IPv4) as a router forwards it: new MACs,
// TTL - 1, checksum patched.
func routed(f []byte, src, dst MAC) []byte {
	g := bytes.Clone(f)
	copy(g[0:6], dst[:])
	copy(g[6:12], src[:])
	g[22]--
	g[24], g[25] = 0, 0
	cs := inetsum.IPv4Header(g[14:34])
	g[24], g[25] = byte(cs>>8), byte(cs)
	return g
}

func TestLeafReceive(t *testing.T) {
	icmpAB := frame.ICMPEcho(ipHdr(macA, macB, ipA, ipB), false, 1, 1, []byte("ab"))
	icmpAC := frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, ipC), false, 1, 2, []byte("ac"))
	icmpAD := frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, ipD), false, 1, 3, []byte("ad"))
	icmpBA := frame.ICMPEcho(ipHdr(macB, macA, ipB, ipA), true, 1, 1, []byte("ba"))
	icmpCD := frame.ICMPEcho(ipHdr(rmac2, rmac1, ipC, ipD), false, 1, 4, []byte("cd"))
	ext := netip.MustParseAddr("192.168.7.7")
	icmpExt := frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, ext), false, 1, 5, []byte("ext"))
	icmpGlean := frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, netip.MustParseAddr("10.0.2.99")), false, 1, 6, nil)
	icmpNoRoute := frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, netip.MustParseAddr("172.16.0.1")), false, 1, 7, nil)
	arpB := frame.ARPRequest(macA[:], ipA, ipB)
	arpGW := frame.ARPRequest(macA[:], ipA, gw1)
	arpUnknown := frame.ARPRequest(macA[:], ipA, netip.MustParseAddr("10.0.1.99"))
	bcast := frame.ARPRequest(macB[:], ipB, netip.MustParseAddr("10.0.1.98"))

	cases := []struct {
		name    string
		port    int
		in      []byte
		kind    datapath.DeviceKind
		act     datapath.Action
		reason  datapath.Reason
		rule    string
		nsent   int
		check   func(t *testing.T, s []sent)
		upAfter bool // no frame may leave on an uplink
	}{
		{"bridge-to-remote-mac", pHost1, tagged(icmpAB, 10), datapath.KindVTEP, datapath.ActEncap, "", RuleFDBRemote, 1,
			func(t *testing.T, s []sent) { wantVXLAN(t, s[0], 100, vtep2, icmpAB) }, false},
		{"route-to-remote-subnet-symmetric-irb", pHost1, tagged(icmpAC, 10), datapath.KindVTEP, datapath.ActEncap, "", RuleRouteRemote, 1,
			func(t *testing.T, s []sent) { wantVXLAN(t, s[0], 50001, vtep2, routed(icmpAC, rmac1, rmac2)) }, false},
		{"route-to-type5-prefix", pHost1, tagged(icmpExt, 10), datapath.KindVTEP, datapath.ActEncap, "", RulePrefix, 1,
			func(t *testing.T, s []sent) { wantVXLAN(t, s[0], 50001, vtep2, routed(icmpExt, rmac1, rmac2)) }, false},
		{"route-glean-unknown-host", pHost1, tagged(icmpGlean, 10), datapath.KindRouter, datapath.ActDrop, datapath.ReasonNoARP, RuleGlean, 0, nil, true},
		{"gateway-answers-echo", pHost1, tagged(frame.ICMPEcho(ipHdr(macA, gwMAC, ipA, gw1), false, 3, 4, []byte("gw")), 10),
			datapath.KindRouter, datapath.ActDeliver, "", RuleGatewayEcho, 1,
			func(t *testing.T, s []sent) {
				want := tagged(frame.ICMPEcho(ipHdr(gwMAC, macA, gw1, ipA), true, 3, 4, []byte("gw")), 10)
				if s[0].port != pHost1 || !bytes.Equal(s[0].frame, want) {
					t.Errorf("echo reply on %d\n got %x\nwant %x", s[0].port, s[0].frame, want)
				}
			}, true},
		{"gateway-consumes-udp", pHost1, tagged(frame.UDP(ipHdr(macA, gwMAC, ipA, gw1), 5, 6, nil), 10),
			datapath.KindRouter, datapath.ActDrop, datapath.ReasonNotForMe, "gateway:local", 0, nil, true},
		{"route-no-route", pHost1, tagged(icmpNoRoute, 10), datapath.KindRouter, datapath.ActDrop, datapath.ReasonNoRoute, "", 0, nil, true},
		{"route-to-local-subnet", pHost1, tagged(icmpAD, 10), datapath.KindRouter, datapath.ActRoute, "", RuleRouteLocal, 1,
			func(t *testing.T, s []sent) {
				if s[0].port != pHost2 || !bytes.Equal(s[0].frame, tagged(routed(icmpAD, gwMAC, macD), 20)) {
					t.Errorf("sent %d %x", s[0].port, s[0].frame)
				}
			}, true},
		{"arp-suppressed-for-remote-binding", pHost1, tagged(arpB, 10), datapath.KindSwitch, datapath.ActForward, "", RuleARPSuppress, 1,
			func(t *testing.T, s []sent) {
				want := tagged(frame.ARPReply(macB[:], ipB, macA[:], ipA), 10)
				if s[0].port != pHost1 || !bytes.Equal(s[0].frame, want) {
					t.Errorf("reply on %d\n got %x\nwant %x", s[0].port, s[0].frame, want)
				}
			}, true},
		{"arp-for-binding-behind-the-same-port-left-to-it", pHost1, tagged(frame.ARPRequest([]byte{2, 0, 0, 0, 0, 0x77}, netip.MustParseAddr("10.0.1.77"), ipA), 10),
			datapath.KindSwitch, datapath.ActDrop, datapath.ReasonSplitHorizon, RuleARPSuppress + ":local", 0, nil, true},
		{"arp-for-anycast-gateway", pHost1, tagged(arpGW, 10), datapath.KindSwitch, datapath.ActForward, "", RuleARPGateway, 1,
			func(t *testing.T, s []sent) {
				want := tagged(frame.ARPReply(gwMAC[:], gw1, macA[:], ipA), 10)
				if !bytes.Equal(s[0].frame, want) {
					t.Errorf("reply\n got %x\nwant %x", s[0].frame, want)
				}
			}, true},
		{"arp-unknown-ingress-replicated", pHost1, tagged(arpUnknown, 10), datapath.KindVTEP, datapath.ActFlood, "", RuleFlood, 1,
			func(t *testing.T, s []sent) { wantVXLAN(t, s[0], 100, vtep2, arpUnknown) }, false},
		{"gratuitous-arp-flooded", pHost1, tagged(frame.ARPRequest(macA[:], ipA, ipA), 10), datapath.KindVTEP, datapath.ActFlood, "", RuleFlood, 1,
			func(t *testing.T, s []sent) { wantVXLAN(t, s[0], 100, vtep2, frame.ARPRequest(macA[:], ipA, ipA)) }, false},
		{"unmapped-vlan-dropped", pHost1, tagged(icmpAB, 99), datapath.KindSwitch, datapath.ActDrop, datapath.ReasonVLANMismatch, RuleNoPort, 0, nil, true},
		{"untagged-dropped", pHost1, icmpAB, datapath.KindSwitch, datapath.ActDrop, datapath.ReasonVLANMismatch, RuleNoPort, 0, nil, true},
		{"decap-bridged", pUp1, vxlanFrom(pUp1, 100, icmpBA), datapath.KindVTEP, datapath.ActDecap, "", RuleFDBLocal, 1,
			func(t *testing.T, s []sent) {
				if s[0].port != pHost1 || !bytes.Equal(s[0].frame, tagged(icmpBA, 10)) {
					t.Errorf("sent %d %x", s[0].port, s[0].frame)
				}
			}, true},
		{"decap-routed-symmetric-irb", pUp2, vxlanFrom(pUp2, 50001, icmpCD), datapath.KindVTEP, datapath.ActDecap, "", RuleRouteRemote, 1,
			func(t *testing.T, s []sent) {
				if s[0].port != pHost2 || !bytes.Equal(s[0].frame, tagged(routed(icmpCD, gwMAC, macD), 20)) {
					t.Errorf("sent %d %x", s[0].port, s[0].frame)
				}
			}, true},
		{"decap-bum-local-only", pUp1, vxlanFrom(pUp1, 100, bcast), datapath.KindVTEP, datapath.ActFlood, "", RuleFlood, 1,
			func(t *testing.T, s []sent) {
				if s[0].port != pHost1 || !bytes.Equal(s[0].frame, tagged(bcast, 10)) {
					t.Errorf("sent %d %x", s[0].port, s[0].frame)
				}
			}, true},
		{"transit-to-other-vtep", pUp1, frame.VXLANEncap(frame.IPv4{SrcMAC: spine1[:], DstMAC: leafCfg.PortMACs[pUp1][:], Src: netip.MustParseAddr("10.255.0.9"), Dst: vtep2, TTL: 9}, 100, icmpBA),
			datapath.KindRouter, datapath.ActRoute, "", "underlay:" + vtep2.String(), 1,
			func(t *testing.T, s []sent) {
				p := parse(t, s[0].frame)
				if !p.IsVXLAN() || p.IP4.TTL != 8 || p.IP4.Checksum != ipChecksumOf(s[0].frame[14:34]) {
					t.Errorf("transit packet: ttl %d vxlan %v", p.IP4.TTL, p.IsVXLAN())
				}
			}, false},
		{"decap-unknown-vni", pUp1, vxlanFrom(pUp1, 300, icmpBA), datapath.KindVTEP, datapath.ActDrop, datapath.ReasonNoTunnel, RuleNoVNI, 0, nil, true},
		{"decap-wrong-outer-mac", pUp2, vxlanFrom(pUp1, 100, icmpBA), datapath.KindVTEP, datapath.ActDrop, datapath.ReasonNotForMe, "underlay:dst-mac", 0, nil, true},
		{"decap-l3-wrong-inner-mac", pUp1, vxlanFrom(pUp1, 50001, icmpBA), datapath.KindVTEP, datapath.ActDrop, datapath.ReasonNotForMe, "irb:inner-dst-mac", 0, nil, true},
		{"short-frame", pHost1, []byte{1, 2, 3}, datapath.KindSwitch, datapath.ActDrop, datapath.ReasonMalformed, "", 0, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, _ := testLeaf(t)
			var r rec
			// Receive may rewrite the frame it is given (datapath.Node).
			l.Receive(0, c.port, bytes.Clone(c.in), &r)
			if len(r.events) != 1 {
				t.Fatalf("events %+v, want exactly one (one device crossing)", r.events)
			}
			ev := r.events[0]
			if ev.Kind != c.kind || ev.Action != c.act || ev.Reason != c.reason || ev.Rule != c.rule || ev.Node != "leaf1" {
				t.Errorf("event %+v, want kind %s action %s reason %q rule %q", ev, c.kind, c.act, c.reason, c.rule)
			}
			if len(r.sends) != c.nsent {
				t.Fatalf("%d frames sent, want %d", len(r.sends), c.nsent)
			}
			if c.check != nil {
				c.check(t, r.sends)
			}
			for _, s := range r.sends {
				if c.upAfter && l.IsUplink(s.port) {
					t.Errorf("frame left on uplink %d", s.port)
				}
			}
		})
	}
}

func TestLeafECMPRehash(t *testing.T) {
	l, _ := testLeaf(t)
	perPort := func() map[int]int {
		n := map[int]int{}
		for i := range 64 {
			f := frame.UDP(ipHdr(macA, macB, ipA, ipB), uint16(1000+i), 7, nil)
			var r rec
			l.Receive(0, pHost1, tagged(f, 10), &r)
			for _, s := range r.sends {
				n[s.port]++
			}
		}
		return n
	}
	both := perPort()
	if both[pUp1] == 0 || both[pUp2] == 0 || both[pUp1]+both[pUp2] != 64 {
		t.Fatalf("64 flows spread %v, want both uplinks used", both)
	}
	l.SetPortState(0, pUp1, false, discard{})
	if got := perPort(); got[pUp2] != 64 {
		t.Errorf("with up1 down: %v, want all 64 on up2", got)
	}
	l.SetPortState(0, pUp2, false, discard{})
	var r rec
	l.Receive(0, pHost1, tagged(frame.UDP(ipHdr(macA, macB, ipA, ipB), 1, 7, nil), 10), &r)
	if len(r.sends) != 0 || r.events[0].Reason != datapath.ReasonNoRoute {
		t.Errorf("with both uplinks down: sends %d event %+v, want no-route drop", len(r.sends), r.events[0])
	}
	l.SetPortState(0, pUp1, true, discard{})
	l.SetPortState(0, pUp2, true, discard{})
	if got := perPort(); fmt.Sprint(got) != fmt.Sprint(both) {
		t.Errorf("after restore %v, want the original spread %v", got, both)
	}
}

func TestLeafImportFollowsPortConfig(t *testing.T) {
	l, tb := testLeaf(t)
	if _, ok := l.LookupMAC(200, macC); !ok {
		t.Fatal("remote MAC C in VNI 200 not imported")
	}
	if err := l.UnconfigurePort(pHost2, 20); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.LookupMAC(200, macC); ok {
		t.Error("VNI 200 still has MAC C after its last port went")
	}
	if _, ok := l.LookupMAC(200, macD); ok {
		t.Error("local binding of D survived unconfiguring its port")
	}
	// The tenant VRF stays (VNI 100 is still there) and keeps host routes.
	if e, ok := l.LookupIP(50001, ipC); !ok || e.Local || len(e.VTEPs) != 1 || e.VTEPs[0] != vtep2 {
		t.Errorf("LookupIP(C) = %+v %v", e, ok)
	}
	if err := l.UnconfigurePort(pHost1, 10); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.LookupIP(50001, ipC); ok {
		t.Error("VRF 50001 still imported without any of its VNIs")
	}
	if n := l.Tables(); n != (LeafTables{Underlay: 1}) {
		t.Errorf("tables after unconfiguring everything: %+v", n)
	}
	// Reconfiguring re-imports from the table.
	if err := l.ConfigurePort(pHost2, 20, 200); err != nil {
		t.Fatal(err)
	}
	if e, ok := l.LookupMAC(200, macC); !ok || e.VTEP != vtep2 {
		t.Errorf("re-import: LookupMAC(C) = %+v %v", e, ok)
	}
	if got := l.Tables(); got.FloodVTEPs != 1 || got.RemoteMACs != 1 || got.HostRoutes != 4 {
		t.Errorf("re-import tables %+v (routes %d)", got, tb.Counts().Total())
	}
	// Errors.
	for _, n := range []Network{
		{VNI: 400, L3VNI: 100, Subnet: netip.MustParsePrefix("10.4.0.0/24"), Gateway: netip.MustParseAddr("10.4.0.1")},
		{VNI: 50001, L3VNI: 50009, Subnet: netip.MustParsePrefix("10.4.0.0/24"), Gateway: netip.MustParseAddr("10.4.0.1")},
		{VNI: 400, L3VNI: 50001, Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1")},
		{VNI: 400, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.4.0.0/24"), Gateway: netip.MustParseAddr("10.5.0.1")},
		{VNI: 100, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.4.0.0/24"), Gateway: netip.MustParseAddr("10.4.0.1")},
	} {
		if err := l.AddNetwork(n); err == nil {
			t.Errorf("AddNetwork(%+v) succeeded", n)
		}
	}
	if err := l.AddNetwork(Network{VNI: 100, L3VNI: 50001, Subnet: netip.MustParsePrefix("10.0.1.77/24"), Gateway: gw1}); err != nil {
		t.Errorf("re-adding network 100 with an unmasked subnet: %v", err)
	}
	if err := l.ConfigurePort(pUp1, 10, 100); err == nil {
		t.Error("configuring an uplink as access succeeded")
	}
	if err := l.ConfigurePort(pHost2, 20, 100); err == nil {
		t.Error("remapping a (port, VLAN) to another VNI succeeded")
	}
	if err := l.ConfigurePort(pHost2, 30, 777); err == nil {
		t.Error("configuring an unknown VNI succeeded")
	}
}

func TestEncapMatchesFrameBuilder(t *testing.T) {
	inners := [][]byte{
		frame.ICMPEcho(ipHdr(macA, macB, ipA, ipB), false, 1, 1, []byte("x")),
		frame.ARPRequest(macA[:], ipA, ipB),
		frame.UDP(ipHdr(macA, macB, ipA, ipB), 5, 6, make([]byte, 1000)),
	}
	for i, inner := range inners {
		want := frame.VXLANEncap(frame.IPv4{SrcMAC: spine1[:], DstMAC: spine2[:], Src: vtep1, Dst: vtep2}, 4242, inner)
		got := encap(nil, spine1, spine2, vtep1, vtep2, innerSourcePort(inner), 4242, inner)
		// Identical but for the UDP source port (the leaf hashes the inner
		// flow's L4 ports too) and checksum (a VTEP leaves it zero).
		if len(got) != len(want) || !bytes.Equal(got[:34], want[:34]) || !bytes.Equal(got[36:40], want[36:40]) || !bytes.Equal(got[42:], want[42:]) {
			t.Errorf("inner %d: encap differs from frame.VXLANEncap\n got %x\nwant %x", i, got, want)
		}
		if got[40] != 0 || got[41] != 0 {
			t.Errorf("inner %d: UDP checksum %x, want 0", i, got[40:42])
		}
		if p := parse(t, got); p.VXLAN.VNI != 4242 || !p.Has(layers.LayerTypeUDP) {
			t.Errorf("inner %d: parse %v", i, p.Decoded)
		}
	}
}

func TestSourcePortFollowsTheFlow(t *testing.T) {
	h := ipHdr(macA, macB, ipA, ipB)
	cases := []struct {
		name string
		a, b []byte
		same bool
	}{
		{"same-flow-other-ip-id", frame.UDP(frame.IPv4{SrcMAC: macA[:], DstMAC: macB[:], Src: ipA, Dst: ipB, ID: 1}, 1000, 7, []byte("x")),
			frame.UDP(frame.IPv4{SrcMAC: macA[:], DstMAC: macB[:], Src: ipA, Dst: ipB, ID: 2}, 1000, 7, []byte("yy")), true},
		{"other-source-port", frame.UDP(h, 1000, 7, nil), frame.UDP(h, 1001, 7, nil), false},
		{"other-protocol", frame.UDP(h, 1000, 80, nil), frame.TCP(h, 1000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil), false},
		{"arp-by-macs", frame.ARPRequest(macA[:], ipA, ipB), frame.ARPRequest(macA[:], ipA, ipC), true},
	}
	for _, c := range cases {
		if got := innerSourcePort(c.a) == innerSourcePort(c.b); got != c.same {
			t.Errorf("%s: same source port %v, want %v", c.name, got, c.same)
		}
		if p := innerSourcePort(c.a); p < 49152 {
			t.Errorf("%s: source port %d outside the dynamic range", c.name, p)
		}
	}
}

func TestDecTTL(t *testing.T) {
	for _, ttl := range []uint8{64, 2, 255, 128} {
		f := frame.ICMPEcho(frame.IPv4{SrcMAC: macA[:], DstMAC: macB[:], Src: ipA, Dst: ipB, TTL: ttl, ID: uint16(ttl) * 77}, false, 1, 1, nil)
		ip := f[14:34]
		if !decTTL(ip) {
			t.Fatalf("ttl %d: refused", ttl)
		}
		if ip[8] != ttl-1 || ipChecksumOf(ip) != uint16(ip[10])<<8|uint16(ip[11]) {
			t.Errorf("ttl %d: got ttl %d, checksum %x want %x", ttl, ip[8], ip[10:12], ipChecksumOf(ip))
		}
	}
	f := frame.ICMPEcho(frame.IPv4{SrcMAC: macA[:], DstMAC: macB[:], Src: ipA, Dst: ipB, TTL: 1}, false, 1, 1, nil)
	if decTTL(f[14:34]) {
		t.Error("ttl 1 forwarded")
	}
}

func FuzzLeafReceive(f *testing.F) {
	f.Add(0, tagged(frame.ICMPEcho(ipHdr(macA, macB, ipA, ipB), false, 1, 1, nil), 10))
	f.Add(0, tagged(frame.ARPRequest(macA[:], ipA, ipB), 10))
	f.Add(2, vxlanFrom(pUp1, 100, frame.ARPRequest(macB[:], ipB, ipA)))
	f.Add(3, vxlanFrom(pUp2, 50001, frame.ICMPEcho(ipHdr(rmac2, rmac1, ipC, ipD), false, 1, 4, nil)))
	f.Add(1, []byte{})
	// IPv6 (for the dual-stack leaf): a solicitation, a routed echo, an
	// echo to the gateway, a routed packet from the L3 VNI.
	f.Add(0, solicit(macA, ip6A, ip6B, 10))
	f.Add(0, tagged(frame.ICMPEcho(ipHdr(macA, gwMAC, ip6A, ip6C), false, 1, 1, nil), 10))
	f.Add(0, tagged(frame.ICMPEcho(ipHdr(macA, gwMAC, ip6A, gw61), false, 1, 1, []byte("x")), 10))
	f.Add(2, vxlanFrom(pUp1, 50001, frame.ICMPEcho(ipHdr(rmac2, rmac1, ip6C, ip6A), false, 1, 4, nil)))
	l4, _ := testLeaf(f)
	l6, _ := testLeaf6(f)
	f.Fuzz(func(t *testing.T, port int, b []byte) {
		for _, l := range []*Leaf{l4, l6} {
			var r rec
			l.Receive(0, port, b, &r)
			if len(r.events) != 1 {
				t.Fatalf("%s: %d events for one frame, want 1", l.Name(), len(r.events))
			}
			ev := r.events[0]
			if (ev.Action == datapath.ActDrop) != (len(r.sends) == 0) {
				t.Fatalf("event %+v with %d sends: every frame is sent or dropped with a reason", ev, len(r.sends))
			}
			if ev.Action == datapath.ActDrop && ev.Reason == "" {
				t.Fatalf("drop without a reason: %+v", ev)
			}
		}
	})
}

// TestLeafSession: a leaf's routes go through its Adj-RIB-Out. While its
// session is down they are out of the table (and advertising more only
// fills the Adj-RIB-Out); when it comes back they return, except a MAC
// that another VTEP advertised since (MAC mobility), which stays there.
func TestLeafSession(t *testing.T) {
	tb := NewRouteTable()
	l, err := NewLeaf(leafCfg, tb)
	if err != nil {
		t.Fatal(err)
	}
	macE, macF := MAC{2, 0, 0, 0, 0, 0xe}, MAC{2, 0, 0, 0, 0, 0xf}
	mine := []Route{
		{Type: MACIP, VNI: 100, MAC: macE, VTEP: vtep1},
		{Type: MACIP, VNI: 100, MAC: macF, VTEP: vtep1},
		{Type: InclusiveMulticast, VNI: 100, VTEP: vtep1},
		{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.0.0/16"), VTEP: vtep1, RouterMAC: rmac1},
	}
	for _, r := range mine {
		if err := l.Advertise(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Advertise(Route{Type: MACIP, VNI: 100, MAC: macC, VTEP: vtep2}); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("advertising another VTEP's route: %v, want ErrInvalidRoute", err)
	}
	if got := tb.Counts().Total(); got != 4 {
		t.Fatalf("%d routes in the table, want 4", got)
	}
	// macF moves to vtep2.
	if err := tb.Add(Route{Type: MACIP, VNI: 100, MAC: macF, VTEP: vtep2}); err != nil {
		t.Fatal(err)
	}
	if n := l.SetSession(false); n != 3 {
		t.Errorf("session down withdrew %d routes, want 3", n)
	}
	if c := tb.CountsByVTEP()[vtep1]; c.Total() != 0 {
		t.Errorf("routes via vtep1 with its session down: %+v", c)
	}
	late := Route{Type: MACIP, VNI: 100, MAC: MAC{2, 0, 0, 0, 0, 0x10}, VTEP: vtep1}
	if err := l.Advertise(late); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Lookup(100, late.MAC, netip.Addr{}); ok {
		t.Error("a route advertised while the session is down reached the table")
	}
	if n := l.SetSession(true); n != 4 {
		t.Errorf("session up advertised %d routes, want 4", n)
	}
	if r, ok := tb.Lookup(100, macF, netip.Addr{}); !ok || r.VTEP != vtep2 {
		t.Errorf("moved MAC after the session came back: %v %v, want via %s", r, ok, vtep2)
	}
	if _, ok := tb.Lookup(100, late.MAC, netip.Addr{}); !ok {
		t.Error("the route advertised while down is missing after the session came back")
	}
	if err := l.Withdraw(mine[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("withdrawing the moved MAC: %v, want ErrNotFound", err)
	}
}
