package vlan

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
)

// DefaultARPTimeout is how long the core keeps an ARP entry (the usual
// hardware default of four hours).
const DefaultARPTimeout = 4 * time.Hour

// PendingLimit is how many packets wait in the core for one unresolved
// next hop; a further one drops the oldest (arp-unresolved).
const PendingLimit = 3

type svi struct {
	vlan   uint16
	name   string
	subnet netip.Prefix
	gw     netip.Addr
	rule   string
	// subnet6 and gw6 are the SVI's IPv6 prefix and gateway on a
	// dual-stack network (zero: IPv4 only).
	subnet6 netip.Prefix
	gw6     netip.Addr
}

type arpEntry struct {
	mac  [6]byte
	vlan uint16
	seen time.Duration
}

type heldPacket struct {
	frame []byte // untagged Ethernet frame, destination MAC to fill in
	vlan  uint16
	in    string
	rule  string
	ctx   stack.Context
	has   bool
}

// Core is a core router: an L2 switch like the others (it is in the
// spanning tree, and the root of it when it holds the gateways) with a
// switched virtual interface (SVI) per network holding the gateway IP and
// the router's MAC. It answers ARP for its gateways, keeps an ARP cache of
// instances, and routes between VLANs (TTL decremented, MACs rewritten);
// packets to addresses outside every network go to the firewall beside it.
type Core struct {
	*Switch
	mac     [6]byte
	svis    map[uint16]*svi
	list    []*svi // longest prefix first
	arp     map[netip.Addr]arpEntry
	arpTTL  time.Duration
	pending map[netip.Addr][]heldPacket
	fwPort  int
	fwMAC   [6]byte
	parser  *frame.Parser
	rbuf    []byte
}

var _ datapath.Node = (*Core)(nil)

// NewCore returns a core router with the given ports and router MAC.
func NewCore(name string, ports []string, mac net.HardwareAddr, macAgeing, arpTimeout time.Duration) *Core {
	if arpTimeout == 0 {
		arpTimeout = DefaultARPTimeout
	}
	sw := NewSwitch(name, ports, macAgeing)
	sw.kind = datapath.KindRouter
	c := &Core{Switch: sw, mac: [6]byte(mac), svis: map[uint16]*svi{}, arp: map[netip.Addr]arpEntry{},
		arpTTL: arpTimeout, pending: map[netip.Addr][]heldPacket{}, fwPort: -1,
		parser: frame.NewParser(), rbuf: make([]byte, 0, 2048)}
	return c
}

// MAC returns the router MAC that every SVI uses.
func (c *Core) MAC() net.HardwareAddr { return net.HardwareAddr(c.mac[:]) }

// AddSVI configures the gateway gw of subnet on vlan (the seed's manual
// step on the core for every new network).
func (c *Core) AddSVI(name string, vlan uint16, subnet netip.Prefix, gw netip.Addr) error {
	if _, dup := c.svis[vlan]; dup {
		return fmt.Errorf("add gateway %s on %s: vlan %d: %w", gw, c.name, vlan, ErrExists)
	}
	s := &svi{vlan: vlan, name: name, subnet: subnet.Masked(), gw: gw, rule: "route:" + name}
	c.svis[vlan] = s
	c.list = append(c.list, s)
	slices.SortStableFunc(c.list, func(a, b *svi) int { return b.subnet.Bits() - a.subnet.Bits() })
	return nil
}

// AddSVI6 gives the SVI on vlan an IPv6 gateway gw6 of subnet6 beside its
// IPv4 one: the core then answers neighbour solicitations for gw6 and
// routes IPv6 between the VLANs that have one.
func (c *Core) AddSVI6(vlan uint16, subnet6 netip.Prefix, gw6 netip.Addr) error {
	s := c.svis[vlan]
	if s == nil {
		return fmt.Errorf("add IPv6 gateway %s on %s: vlan %d: %w", gw6, c.name, vlan, ErrNotFound)
	}
	if !subnet6.Addr().Is6() || !subnet6.Contains(gw6) {
		return fmt.Errorf("add IPv6 gateway %s on %s: subnet %v: %w", gw6, c.name, subnet6, ErrBadAddress)
	}
	s.subnet6, s.gw6 = subnet6.Masked(), gw6
	return nil
}

// RemoveSVI removes the gateway on vlan and its ARP entries.
func (c *Core) RemoveSVI(vlan uint16) {
	s := c.svis[vlan]
	if s == nil {
		return
	}
	delete(c.svis, vlan)
	c.list = slices.DeleteFunc(c.list, func(x *svi) bool { return x == s })
	for ip, e := range c.arp {
		if e.vlan == vlan {
			delete(c.arp, ip)
		}
	}
}

// SetFirewall makes port a routed port towards a firewall at mac: the
// default route.
func (c *Core) SetFirewall(port int, mac net.HardwareAddr) {
	c.ports[port].mode = Routed
	c.fwPort = port
	c.fwMAC = [6]byte(mac)
}

// Neighbor returns the cached MAC of ip.
func (c *Core) Neighbor(now time.Duration, ip netip.Addr) (net.HardwareAddr, bool) {
	e, ok := c.arp[ip]
	if !ok || now-e.seen >= c.arpTTL {
		return nil, false
	}
	return net.HardwareAddr(e.mac[:]), true
}

// ARPCount returns the number of live ARP entries, for capacity reports.
func (c *Core) ARPCount(now time.Duration) int {
	n := 0
	for _, e := range c.arp {
		if now-e.seen < c.arpTTL {
			n++
		}
	}
	return n
}

// PendingCount returns how many packets wait for ARP resolution.
func (c *Core) PendingCount() int {
	n := 0
	for _, q := range c.pending {
		n += len(q)
	}
	return n
}

// Receive bridges within a VLAN, routes what is addressed to the router
// MAC, and answers ARP for the gateways.
func (c *Core) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if port >= 0 && port < len(c.ports) && c.ports[port].mode == Routed {
		c.fromFirewall(now, port, b, out)
		return
	}
	vlan, ok := c.ingress(now, port, b, out)
	if !ok {
		return
	}
	inName := c.names[port]
	if frame.DstMAC(b) == c.mac {
		c.l3(now, port, vlan, b, out)
		return
	}
	if frame.IsBroadcastOrMulticast(b) && c.svis[vlan] != nil && etherType(b) == 0x0806 {
		if c.arpBroadcast(now, port, vlan, b, out) {
			return
		}
	}
	if frame.IsBroadcastOrMulticast(b) && c.svis[vlan] != nil && c.svis[vlan].gw6.IsValid() && etherType(b) == 0x86dd {
		if c.ndMulticast(now, port, vlan, b, out) {
			return
		}
	}
	c.bridge(now, port, inName, vlan, b, datapath.ActForward, "", true, out)
}

func etherType(b []byte) uint16 {
	et := binary.BigEndian.Uint16(b[12:14])
	if et == 0x8100 && len(b) >= 18 {
		et = binary.BigEndian.Uint16(b[16:18])
	}
	return et
}

// arpBroadcast handles an ARP broadcast in a VLAN with a gateway. A request
// for the gateway is answered and consumed (the core does not flood it on:
// it is the only device that owns the address); anything else refreshes
// known entries (gratuitous ARP after a move) and is bridged on.
func (c *Core) arpBroadcast(now time.Duration, port int, vlan uint16, b []byte, out datapath.Output) bool {
	p, err := c.parser.Parse(b)
	if err != nil || !p.Has(layers.LayerTypeARP) {
		return false
	}
	a := &p.ARP
	spa, ok1 := netip.AddrFromSlice(a.SourceProtAddress)
	tpa, ok2 := netip.AddrFromSlice(a.DstProtAddress)
	if !ok1 || !ok2 || len(a.SourceHwAddress) != 6 {
		return false
	}
	s := c.svis[vlan]
	sha := [6]byte(a.SourceHwAddress)
	if a.Operation != layers.ARPRequest || tpa != s.gw {
		if e, known := c.arp[spa]; known && s.subnet.Contains(spa) {
			e.mac, e.vlan, e.seen = sha, vlan, now
			c.arp[spa] = e
		}
		return false
	}
	if s.subnet.Contains(spa) {
		c.arp[spa] = arpEntry{mac: sha, vlan: vlan, seen: now}
	}
	c.trace(now, out, c.names[port], "", datapath.ActDeliver, datapath.ReasonNone, "svi:arp-request")
	c.trace(now, out, "", c.names[port], datapath.ActOriginate, datapath.ReasonNone, "svi:arp-reply")
	reply := frame.ARPReply(c.mac[:], s.gw, a.SourceHwAddress, spa)
	c.bridge(now, -1, "", vlan, reply, datapath.ActForward, "", false, out)
	c.release(now, spa, out)
	return true
}

// l3 handles a frame addressed to the router MAC: an ARP reply to the
// core, or an IPv4 packet to route.
func (c *Core) l3(now time.Duration, port int, vlan uint16, b []byte, out datapath.Output) {
	inName := c.names[port]
	p, err := c.parser.Parse(b)
	if err != nil {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonMalformed, "parse")
		return
	}
	s := c.svis[vlan]
	if s == nil {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNoRoute, "svi:none")
		return
	}
	if p.Has(layers.LayerTypeARP) {
		a := &p.ARP
		spa, ok := netip.AddrFromSlice(a.SourceProtAddress)
		if !ok || len(a.SourceHwAddress) != 6 || !s.subnet.Contains(spa) {
			c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "svi:arp-other")
			return
		}
		c.arp[spa] = arpEntry{mac: [6]byte(a.SourceHwAddress), vlan: vlan, seen: now}
		c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:arp-reply")
		c.release(now, spa, out)
		return
	}
	if p.Has(layers.LayerTypeIPv6) && s.gw6.IsValid() {
		c.l3v6(now, port, vlan, s, b, p, out)
		return
	}
	if !p.Has(layers.LayerTypeIPv4) {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "svi:not-ipv4")
		return
	}
	dst, _ := netip.AddrFromSlice(p.IP4.DstIP)
	if c.gatewayOwning(dst) != nil {
		c.toGateway(now, inName, vlan, p, out)
		return
	}
	// The IPv4 header starts after the Ethernet (and 802.1Q) header.
	off := 14
	if binary.BigEndian.Uint16(b[12:14]) == 0x8100 {
		off = 18
	}
	c.route(now, inName, dst, b, off, out)
}

// gatewayOwning returns the SVI whose gateway address is ip.
func (c *Core) gatewayOwning(ip netip.Addr) *svi {
	for _, s := range c.list {
		if s.gw == ip {
			return s
		}
	}
	return nil
}

// toGateway answers an ICMP echo request to a gateway address; anything
// else addressed to the core is consumed.
func (c *Core) toGateway(now time.Duration, inName string, vlan uint16, p *frame.Parsed, out datapath.Output) {
	if !p.Has(layers.LayerTypeICMPv4) || p.ICMP4.TypeCode.Type() != layers.ICMPv4TypeEchoRequest {
		c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:local")
		return
	}
	c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:icmp-echo-request")
	src, _ := netip.AddrFromSlice(p.IP4.SrcIP)
	dst, _ := netip.AddrFromSlice(p.IP4.DstIP)
	reply := frame.ICMPEcho(frame.IPv4{SrcMAC: c.mac[:], DstMAC: p.Eth.SrcMAC, Src: dst, Dst: src},
		true, p.ICMP4.Id, p.ICMP4.Seq, append([]byte(nil), p.Payload...))
	c.trace(now, out, "", inName, datapath.ActOriginate, datapath.ReasonNone, "svi:icmp-echo-reply")
	c.bridge(now, -1, "", vlan, reply, datapath.ActForward, "", false, out)
}

// route forwards the IPv4 packet at offset off (14 or more) of the frame b
// it arrived in to dst: into the VLAN of the network holding dst, or to
// the firewall for anything else. The routed frame is built in place in
// b (datapath.Node's contract).
func (c *Core) route(now time.Duration, inName string, dst netip.Addr, b []byte, off int, out datapath.Output) {
	ip := b[off:]
	if len(ip) < 20 {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonMalformed, "ip:short")
		return
	}
	if ip[8] <= 1 {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonTTL, "ip:ttl")
		return
	}
	var target *svi
	for _, s := range c.list {
		if s.subnet.Contains(dst) {
			target = s
			break
		}
	}
	// Build the routed frame: untagged Ethernet, router MAC as source,
	// TTL one less with the checksum updated incrementally (RFC 1624).
	f := b[off-14:]
	clear(f[0:6])
	copy(f[6:12], c.mac[:])
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	decTTL(f[14:])
	if target == nil {
		if c.fwPort < 0 || !c.ports[c.fwPort].up {
			c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNoRoute, "route:none")
			return
		}
		copy(f[0:6], c.fwMAC[:])
		c.trace(now, out, inName, c.names[c.fwPort], datapath.ActRoute, datapath.ReasonNone, "route:default")
		out.Forward(c.fwPort, f)
		return
	}
	if e, ok := c.arp[dst]; ok && e.vlan == target.vlan && now-e.seen < c.arpTTL {
		copy(f[0:6], e.mac[:])
		c.bridge(now, -1, inName, target.vlan, f, datapath.ActRoute, target.rule, true, out)
		return
	}
	c.hold(now, inName, target, dst, f, out)
}

// hold queues a copy of the routed frame f behind ARP resolution of dst
// and asks for dst in the target VLAN.
func (c *Core) hold(now time.Duration, inName string, target *svi, dst netip.Addr, f []byte, out datapath.Output) {
	h := heldPacket{frame: append([]byte(nil), f...), vlan: target.vlan, in: inName, rule: target.rule}
	if r, ok := out.(stack.Resumer); ok {
		h.ctx, h.has = r.Context(), true
	}
	q := c.pending[dst]
	if len(q) >= PendingLimit {
		// The oldest packet is dropped, in its own context.
		r, resumable := out.(stack.Resumer)
		if resumable && q[0].has {
			r.Resume(q[0].ctx)
		}
		c.trace(now, out, q[0].in, "", datapath.ActDrop, datapath.ReasonNoARP, "arp:queue-full")
		if resumable && h.has {
			r.Resume(h.ctx)
		}
		q = append(q[:0], q[1:]...)
	}
	c.pending[dst] = append(q, h)
	if dst.Is6() {
		c.trace(now, out, inName, "", datapath.ActOriginate, datapath.ReasonNone, "ndisc:solicit")
		req := frame.NeighborSolicitation(c.mac[:], target.gw6, dst)
		c.bridge(now, -1, "", target.vlan, req, datapath.ActForward, "", false, out)
		return
	}
	c.trace(now, out, inName, "", datapath.ActOriginate, datapath.ReasonNone, "arp:request")
	req := frame.ARPRequest(c.mac[:], target.gw, dst)
	c.bridge(now, -1, "", target.vlan, req, datapath.ActForward, "", false, out)
}

// release routes the packets that waited for ip, now resolved.
func (c *Core) release(now time.Duration, ip netip.Addr, out datapath.Output) {
	q := c.pending[ip]
	if len(q) == 0 {
		return
	}
	delete(c.pending, ip)
	e := c.arp[ip]
	r, resumable := out.(stack.Resumer)
	var saved stack.Context
	if resumable {
		saved = r.Context()
	}
	for _, h := range q {
		if resumable && h.has {
			r.Resume(h.ctx)
		}
		copy(h.frame[0:6], e.mac[:])
		c.bridge(now, -1, h.in, h.vlan, h.frame, datapath.ActRoute, h.rule, true, out)
	}
	if resumable {
		r.Resume(saved)
	}
}

// fromFirewall routes a packet coming back from the firewall.
func (c *Core) fromFirewall(now time.Duration, port int, b []byte, out datapath.Output) {
	inName := c.names[port]
	if !c.ports[port].up {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonPortDown, "port:down")
		return
	}
	if len(b) < 34 || frame.DstMAC(b) != c.mac || etherType(b) != 0x0800 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "routed:not-ipv4")
		return
	}
	dst := netip.AddrFrom4([4]byte(b[30:34]))
	c.route(now, inName, dst, b, 14, out)
}

// decTTL decrements the TTL of the IPv4 header h and patches its checksum
// (RFC 1624: HC' = ~(~HC + ~m + m')).
func decTTL(h []byte) {
	old := binary.BigEndian.Uint16(h[8:10])
	h[8]--
	nw := binary.BigEndian.Uint16(h[8:10])
	sum := uint32(^binary.BigEndian.Uint16(h[10:12])) + uint32(^old) + uint32(nw)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:12], ^uint16(sum))
}

// ndMulticast handles an IPv6 multicast frame in a VLAN with an IPv6
// gateway, as arpBroadcast does ARP: a neighbour solicitation for the
// gateway is answered (router flag set) and consumed; an advertisement
// refreshes a known entry (an instance that moved) and is bridged on.
func (c *Core) ndMulticast(now time.Duration, port int, vlan uint16, b []byte, out datapath.Output) bool {
	p, err := c.parser.Parse(b)
	if err != nil || !p.Has(layers.LayerTypeICMPv6) {
		return false
	}
	nd, ok := frame.ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload)
	if !ok || !nd.HasLL {
		return false
	}
	s := c.svis[vlan]
	src, _ := netip.AddrFromSlice(p.IP6.SrcIP)
	if nd.Type != layers.ICMPv6TypeNeighborSolicitation || nd.Target != s.gw6 {
		if e, known := c.arp[nd.Target]; known && s.subnet6.Contains(nd.Target) && nd.Flags&frame.NAOverride != 0 {
			e.mac, e.vlan, e.seen = nd.LLAddr, vlan, now
			c.arp[nd.Target] = e
		}
		return false
	}
	c.answerNS(now, port, vlan, s, src, nd, out)
	return true
}

// answerNS answers a solicitation for the gateway s.gw6 from src and
// learns the asker.
func (c *Core) answerNS(now time.Duration, port int, vlan uint16, s *svi, src netip.Addr, nd frame.NDP, out datapath.Output) {
	if s.subnet6.Contains(src) {
		c.arp[src] = arpEntry{mac: nd.LLAddr, vlan: vlan, seen: now}
	}
	c.trace(now, out, c.names[port], "", datapath.ActDeliver, datapath.ReasonNone, "svi:ndisc-solicit")
	c.trace(now, out, "", c.names[port], datapath.ActOriginate, datapath.ReasonNone, "svi:ndisc-advert")
	reply := frame.NeighborAdvertisement(c.mac[:], s.gw6, nd.LLAddr[:], src, frame.NARouter|frame.NASolicited|frame.NAOverride)
	c.bridge(now, -1, "", vlan, reply, datapath.ActForward, "", false, out)
	c.release(now, src, out)
}

// l3v6 handles an IPv6 frame addressed to the router MAC on SVI s:
// neighbour discovery with the gateway, an echo to the gateway, or a
// packet to route into the VLAN of the network holding its destination.
// IPv6 beyond the networks is not routed (the firewall's default route
// is IPv4's).
func (c *Core) l3v6(now time.Duration, port int, vlan uint16, s *svi, b []byte, p *frame.Parsed, out datapath.Output) {
	inName := c.names[port]
	src, _ := netip.AddrFromSlice(p.IP6.SrcIP)
	dst, _ := netip.AddrFromSlice(p.IP6.DstIP)
	if p.Has(layers.LayerTypeICMPv6) {
		if nd, ok := frame.ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload); ok {
			switch {
			case nd.Type == layers.ICMPv6TypeNeighborSolicitation && nd.Target == s.gw6 && nd.HasLL:
				c.answerNS(now, port, vlan, s, src, nd, out)
			case nd.Type == layers.ICMPv6TypeNeighborAdvertisement && nd.HasLL && s.subnet6.Contains(nd.Target):
				c.arp[nd.Target] = arpEntry{mac: nd.LLAddr, vlan: vlan, seen: now}
				c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:ndisc-advert")
				c.release(now, nd.Target, out)
			default:
				c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "svi:ndisc-other")
			}
			return
		}
	}
	if dst == s.gw6 || c.gatewayOwning6(dst) {
		if !p.Has(layers.LayerTypeICMPv6) || p.ICMP6.TypeCode.Type() != layers.ICMPv6TypeEchoRequest || len(p.ICMP6.Payload) < 4 {
			c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:local")
			return
		}
		c.trace(now, out, inName, "", datapath.ActDeliver, datapath.ReasonNone, "svi:icmp-echo-request")
		pl := p.ICMP6.Payload
		reply := frame.ICMPEcho(frame.IPv4{SrcMAC: c.mac[:], DstMAC: p.Eth.SrcMAC, Src: dst, Dst: src},
			true, binary.BigEndian.Uint16(pl[0:2]), binary.BigEndian.Uint16(pl[2:4]), append([]byte(nil), pl[4:]...))
		c.trace(now, out, "", inName, datapath.ActOriginate, datapath.ReasonNone, "svi:icmp-echo-reply")
		c.bridge(now, -1, "", vlan, reply, datapath.ActForward, "", false, out)
		return
	}
	off := 14
	if binary.BigEndian.Uint16(b[12:14]) == 0x8100 {
		off = 18
	}
	ip := b[off:]
	if len(ip) < 40 {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonMalformed, "ip6:short")
		return
	}
	if ip[7] <= 1 {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonTTL, "ip6:hop-limit")
		return
	}
	var target *svi
	for _, t := range c.list {
		if t.gw6.IsValid() && t.subnet6.Contains(dst) {
			target = t
			break
		}
	}
	if target == nil {
		c.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNoRoute, "route6:none")
		return
	}
	// The routed frame: untagged, router MAC as source, hop limit one
	// less (IPv6 has no header checksum).
	c.rbuf = append(c.rbuf[:0], make([]byte, 12)...)
	c.rbuf = binary.BigEndian.AppendUint16(c.rbuf, 0x86dd)
	c.rbuf = append(c.rbuf, ip...)
	c.rbuf[14+7]--
	copy(c.rbuf[6:12], c.mac[:])
	if e, ok := c.arp[dst]; ok && e.vlan == target.vlan && now-e.seen < c.arpTTL {
		copy(c.rbuf[0:6], e.mac[:])
		c.bridge(now, -1, inName, target.vlan, c.rbuf, datapath.ActRoute, target.rule, true, out)
		return
	}
	c.hold(now, inName, target, dst, c.rbuf, out)
}

// gatewayOwning6 reports whether ip is the IPv6 gateway of some SVI.
func (c *Core) gatewayOwning6(ip netip.Addr) bool {
	for _, s := range c.list {
		if s.gw6.IsValid() && s.gw6 == ip {
			return true
		}
	}
	return false
}
