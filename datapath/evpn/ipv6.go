package evpn

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// IPv6 on a leaf: the tenant side of the fabric is dual-stack, the
// underlay stays IPv4 (VXLAN between IPv4 loopbacks, as in most EVPN
// fabrics). A type-2 route carries a MAC with one IP of either family;
// a host with both addresses has two (RFC 7432 §7.2, as FRR advertises
// them). The leaf answers neighbour solicitations where it answers ARP:
// for the anycast gateway's IPv6 address and, from type-2 MAC/IPv6
// routes, for known hosts (ND suppression); it routes IPv6 between
// subnets by symmetric IRB over the same L3 VNI, with /128 host routes
// and type-5 IPv6 prefixes.

// Trace rules of the IPv6 side.
const (
	RuleNDSuppress = "nd-suppress"
	RuleNDGateway  = "nd-gateway"
)

const (
	etherIPv6   = 0x86dd
	ipv6Len     = 40
	protoICMPv6 = 58
)

// ipv6Header returns the IPv6 header of an untagged frame and the end of
// its payload, or ok=false when the frame is not a well-formed IPv6
// packet.
func ipv6Header(b []byte) (ip []byte, end int, ok bool) {
	if len(b) < ethLen+ipv6Len || binary.BigEndian.Uint16(b[12:14]) != etherIPv6 || b[ethLen]>>4 != 6 {
		return nil, 0, false
	}
	end = ethLen + ipv6Len + int(binary.BigEndian.Uint16(b[ethLen+4:ethLen+6]))
	if end > len(b) {
		return nil, 0, false
	}
	return b[ethLen : ethLen+ipv6Len], end, true
}

func addr16(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b[:16])) }

// ndpOf reads the neighbour discovery message an IPv6 frame carries
// (no extension headers, hop limit 255 as RFC 4861 requires).
func ndpOf(f, ip []byte, end int) (frame.NDP, bool) {
	const icmp = ethLen + ipv6Len
	if ip[6] != protoICMPv6 || ip[7] != 255 || end < icmp+4 || f[icmp+1] != 0 {
		return frame.NDP{}, false
	}
	return frame.ParseNDP(f[icmp], f[icmp+4:end])
}

// suppressND answers a neighbour solicitation for the anycast gateway's
// IPv6 address, or for a known binding of n (a type-2 MAC/IPv6 route), on
// the leaf itself, as suppressARP does for ARP. It reports false when
// the frame must be flooded: not a solicitation, a target the leaf does
// not know, or duplicate address detection (from ::).
func (l *Leaf) suppressND(ev datapath.Event, in portVLAN, n *network, f []byte, out datapath.Output) bool {
	ip, end, ok := ipv6Header(f)
	if !ok {
		return false
	}
	nd, ok := ndpOf(f, ip, end)
	src := addr16(ip[8:24])
	if !ok || nd.Type != layers.ICMPv6TypeNeighborSolicitation || src.IsUnspecified() {
		return false
	}
	mac, rule, flags := MAC{}, RuleNDSuppress, uint8(frame.NASolicited|frame.NAOverride)
	switch m, ok := l.arp[ipKey{n.VNI, nd.Target}]; {
	case n.Gateway6.IsValid() && nd.Target == n.Gateway6:
		mac, rule, flags = l.cfg.GatewayMAC, RuleNDGateway, flags|frame.NARouter
	case ok:
		if pv, local := l.local[n.key(m)]; local && pv.port == in.port {
			// The target sits behind the asker's own port: it answers
			// itself (see suppressARP).
			l.drop(ev, out, datapath.ReasonSplitHorizon, RuleNDSuppress+":local")
			return true
		}
		mac = m
	default:
		return false
	}
	l.advertise(ev, in, f, src, nd, mac, rule, flags, out)
	return true
}

// advertise sends the solicited advertisement of (mac, nd.Target) to the
// asker of a solicitation from src.
func (l *Leaf) advertise(ev datapath.Event, in portVLAN, f []byte, src netip.Addr, nd frame.NDP, mac MAC, rule string, flags uint8, out datapath.Output) {
	dmac := net.HardwareAddr(f[6:12])
	if nd.HasLL {
		dmac = nd.LLAddr[:]
	}
	reply := frame.NeighborAdvertisement(mac[:], nd.Target, dmac, src, flags)
	l.obuf = pushVLAN(l.obuf, reply, in.vlan)
	ev.Action, ev.Rule, ev.OutPort = datapath.ActForward, rule, l.cfg.Ports[in.port]
	out.Trace(ev)
	out.Send(in.port, l.obuf)
}

// route6 is route for an IPv6 packet addressed to the gateway MAC: a
// solicitation for the gateway (a host confirming the gateway is still
// reachable sends it unicast), an echo to the gateway, or a packet to
// route in n's tenant VRF to a local host (KindRouter) or by symmetric
// IRB over the L3 VNI (KindVTEP), as route does IPv4.
func (l *Leaf) route6(ev datapath.Event, n *network, in portVLAN, f []byte, out datapath.Output) {
	ev.Kind = datapath.KindRouter
	ip, end, ok := ipv6Header(f)
	if !ok {
		l.drop(ev, out, datapath.ReasonMalformed, "gateway:not-ipv6")
		return
	}
	if nd, ok := ndpOf(f, ip, end); ok {
		if src := addr16(ip[8:24]); nd.Type == layers.ICMPv6TypeNeighborSolicitation && n.Gateway6.IsValid() &&
			nd.Target == n.Gateway6 && !src.IsUnspecified() {
			l.advertise(ev, in, f, src, nd, l.cfg.GatewayMAC, RuleNDGateway, frame.NARouter|frame.NASolicited|frame.NAOverride, out)
			return
		}
		l.drop(ev, out, datapath.ReasonNotForMe, "gateway:ndisc-other")
		return
	}
	dst := addr16(ip[24:40])
	if n.Gateway6.IsValid() && dst == n.Gateway6 {
		l.gatewayEcho6(ev, in, f, ip, end, out)
		return
	}
	if ip[7] <= 1 {
		l.drop(ev, out, datapath.ReasonTTL, "")
		return
	}
	ip[7]-- // IPv6 has no header checksum
	v := l.vrfs[n.L3VNI]
	if h, ok := v.hosts6[dst]; ok {
		l.routeHost(ev, v, h, f, out)
		return
	}
	pr, _, ok := v.prefix6.LookupAddr(dst)
	l.routePrefix(ev, v, pr, ok, f, out)
}

// gatewayEcho6 answers an ICMPv6 echo request to the anycast gateway's
// IPv6 address; anything else to it is consumed.
func (l *Leaf) gatewayEcho6(ev datapath.Event, in portVLAN, f, ip []byte, end int, out datapath.Output) {
	const icmp = ethLen + ipv6Len
	if ip[6] != protoICMPv6 || end < icmp+8 || f[icmp] != layers.ICMPv6TypeEchoRequest || f[icmp+1] != 0 {
		l.drop(ev, out, datapath.ReasonNotForMe, "gateway:local")
		return
	}
	reply := frame.ICMPv6Echo(frame.IPv4{SrcMAC: l.cfg.GatewayMAC[:], DstMAC: net.HardwareAddr(f[6:12]),
		Src: addr16(ip[24:40]), Dst: addr16(ip[8:24])}, true,
		binary.BigEndian.Uint16(f[icmp+4:icmp+6]), binary.BigEndian.Uint16(f[icmp+6:icmp+8]), f[icmp+8:end])
	ev.Action, ev.Rule, ev.OutPort = datapath.ActDeliver, RuleGatewayEcho, l.cfg.Ports[in.port]
	out.Trace(ev)
	out.Send(in.port, pushVLAN(l.obuf, reply, in.vlan))
}

// routeDecap6 is routeDecap for an inner IPv6 packet.
func (l *Leaf) routeDecap6(ev datapath.Event, v *vrf, f []byte, out datapath.Output) {
	ip, _, ok := ipv6Header(f)
	if !ok {
		l.drop(ev, out, datapath.ReasonMalformed, "irb:not-ip")
		return
	}
	h, ok := v.hosts6[addr16(ip[24:40])]
	if !ok || !h.local {
		l.drop(ev, out, datapath.ReasonNoRoute, RuleGlean)
		return
	}
	if ip[7] <= 1 {
		l.drop(ev, out, datapath.ReasonTTL, "")
		return
	}
	ip[7]--
	l.deliverDecap(ev, h, f, out)
}

// prefixes6 is a VRF's IPv6 longest-prefix-match table, the IPv6 twin of
// l3.FIB (which is IPv4's): one map per prefix length in use, probed
// from the longest, so that a lookup allocates nothing.
type prefixes6 struct {
	byLen map[int]map[netip.Prefix]*prefixRoute
	lens  []int // longest first
	n     int
}

func newPrefixes6() *prefixes6 { return &prefixes6{byLen: map[int]map[netip.Prefix]*prefixRoute{}} }

func (t *prefixes6) Get(p netip.Prefix) (*prefixRoute, bool) {
	v, ok := t.byLen[p.Bits()][p.Masked()]
	return v, ok
}

func (t *prefixes6) Insert(p netip.Prefix, v *prefixRoute) error {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return fmt.Errorf("prefix %v: not IPv6", p)
	}
	m := t.byLen[p.Bits()]
	if m == nil {
		m = map[netip.Prefix]*prefixRoute{}
		t.byLen[p.Bits()] = m
		t.lens = append(t.lens, p.Bits())
		slices.SortFunc(t.lens, func(a, b int) int { return b - a })
	}
	if _, ok := m[p.Masked()]; !ok {
		t.n++
	}
	m[p.Masked()] = v
	return nil
}

func (t *prefixes6) Delete(p netip.Prefix) bool {
	m := t.byLen[p.Bits()]
	if _, ok := m[p.Masked()]; !ok {
		return false
	}
	delete(m, p.Masked())
	t.n--
	if len(m) == 0 {
		delete(t.byLen, p.Bits())
		t.lens = slices.DeleteFunc(t.lens, func(b int) bool { return b == p.Bits() })
	}
	return true
}

func (t *prefixes6) LookupAddr(a netip.Addr) (*prefixRoute, netip.Prefix, bool) {
	if !a.Is6() {
		return nil, netip.Prefix{}, false
	}
	for _, bits := range t.lens {
		p := netip.PrefixFrom(a, bits).Masked()
		if v, ok := t.byLen[bits][p]; ok {
			return v, p, true
		}
	}
	return nil, netip.Prefix{}, false
}

func (t *prefixes6) Len() int { return t.n }

// Walk calls fn for every prefix, longest first, then by address.
func (t *prefixes6) Walk(fn func(p netip.Prefix, v *prefixRoute) bool) {
	for _, bits := range t.lens {
		keys := make([]netip.Prefix, 0, len(t.byLen[bits]))
		for p := range t.byLen[bits] {
			keys = append(keys, p)
		}
		slices.SortFunc(keys, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		for _, p := range keys {
			if !fn(p, t.byLen[bits][p]) {
				return
			}
		}
	}
}

// prefixTable is what a VRF's IPv4 (l3.FIB) and IPv6 (prefixes6)
// prefix tables share.
type prefixTable interface {
	Get(netip.Prefix) (*prefixRoute, bool)
	Insert(netip.Prefix, *prefixRoute) error
	Delete(netip.Prefix) bool
	Walk(func(netip.Prefix, *prefixRoute) bool)
}

// table returns v's prefix table for p's family.
func (v *vrf) table(p netip.Prefix) prefixTable {
	if p.Addr().Is6() {
		return v.prefix6
	}
	return v.prefix
}
