package stack

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// Port is the instance's only port.
const Port = "eth0"

// PendingLimit is how many packets wait for one unresolved next hop; a
// further packet drops the oldest (arp-unresolved). Linux bounds the queue
// by bytes (unres_qlen_bytes, 208 KiB by default), a few hundred small
// packets; 256 lets a burst of probes to every peer wait for one gateway.
const PendingLimit = 256

// EphemeralBase is where the source ports of probes start. UDP datagrams to
// a port at or above it are never echoed, so two instances cannot echo a
// stray reply back and forth forever.
const EphemeralBase = 32768

// Proto is the protocol of a probe.
type Proto uint8

// Probe protocols.
const (
	ICMP Proto = iota + 1
	UDP
	TCP
)

func (p Proto) String() string {
	switch p {
	case ICMP:
		return "icmp"
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	}
	return "proto?"
}

// ProbeSpec describes one probe. ID is carried in the packet (8 bytes of
// payload, big-endian; for ICMP also id = ID>>16, seq = ID; a TCP answer
// acknowledges uint32(ID)+1) so that captures on real interfaces can
// correlate it (userspace.ProbeIDOf reads it back from a raw frame). DstPort defaults to 7 for UDP and 80
// for TCP.
type ProbeSpec struct {
	Proto   Proto
	Dst     netip.Addr
	DstPort uint16
	ID      uint64
}

// ReplyKind says what answered a probe.
type ReplyKind string

// Reply kinds.
const (
	ReplyEcho   ReplyKind = "echo-reply" // ICMP echo reply
	ReplyUDP    ReplyKind = "udp-echo"
	ReplySynAck ReplyKind = "syn-ack" // TCP port open
	ReplyRST    ReplyKind = "rst"     // TCP port closed
)

// Reply is one answer to a probe the instance sent.
type Reply struct {
	ID   uint64
	Time time.Duration
	Kind ReplyKind
	From netip.Addr
}

// Context is the runtime's metadata of the frame being processed (the
// simulator's probe ID and frame lineage); opaque to the instance.
type Context struct {
	Probe    uint64
	Ref, Aux int64
}

// Resumer is an optional interface of a datapath.Output whose runtime
// carries metadata alongside frames. The instance saves the context when it
// queues a packet behind ARP resolution and resumes it when it finally sends
// the packet, so that the packet keeps belonging to the probe (or reply)
// that created it rather than to the ARP reply that released it.
type Resumer interface {
	Context() Context
	Resume(c Context)
}

type pending struct {
	frame []byte // Ethernet frame with the destination MAC to be filled in
	ctx   Context
	has   bool
}

type outstanding struct {
	id    uint64
	proto Proto
}

// Instance is a VM or pod IP stack: one port, eth0, an IPv4 address and,
// dual-stack, an IPv6 one (SetIPv6) beside its link-local address. It
// resolves IPv4 next hops with ARP and IPv6 ones with neighbour discovery,
// into one neighbour cache. It is a datapath.Node; like every node it is
// not safe for concurrent use.
type Instance struct {
	name  string
	mac   net.HardwareAddr
	mac6  [6]byte
	ip    netip.Prefix
	gw    netip.Addr
	ip6   netip.Prefix // zero: IPv4 only
	gw6   netip.Addr
	ll    netip.Addr // IPv6 link-local address
	ports []string
	open  map[uint16]bool

	arp     map[netip.Addr][6]byte
	lastARP arpHit // the entry of arp found last
	pending map[netip.Addr][]pending
	probes  map[replyKey]outstanding
	replies []Reply    // Replies: log made into Replies when asked
	log     []replyRec // replies received since
	onReply func(Reply)
	parser  *frame.Parser
	ipID    uint16
	buf     []byte // frame being built; Send copies it

	// Buffers of released packets and emptied queues, reused by the next
	// packets that wait for ARP.
	spare   [][]byte
	spareQs [][]pending
}

var _ datapath.Node = (*Instance)(nil)

// DefaultOpenPorts are the TCP ports an instance answers with SYN-ACK.
var DefaultOpenPorts = []uint16{22, 80, 443}

// New returns an instance with address ip (address and prefix length) and
// default gateway gw (the zero Addr for none).
func New(name string, mac net.HardwareAddr, ip netip.Prefix, gw netip.Addr) *Instance {
	in := &Instance{
		name: name, mac: append(net.HardwareAddr(nil), mac...), ip: ip, gw: gw,
		ports:   []string{Port},
		open:    map[uint16]bool{},
		arp:     map[netip.Addr][6]byte{},
		pending: map[netip.Addr][]pending{},
		probes:  map[replyKey]outstanding{},
		parser:  frame.NewParser(),
		buf:     make([]byte, 0, 128),
	}
	copy(in.mac6[:], mac)
	in.ll = frame.LinkLocal(in.mac)
	for _, p := range DefaultOpenPorts {
		in.open[p] = true
	}
	return in
}

// Name returns the instance name.
func (in *Instance) Name() string { return in.name }

// Ports returns ["eth0"].
func (in *Instance) Ports() []string { return in.ports }

// MAC returns the instance's MAC address.
func (in *Instance) MAC() net.HardwareAddr { return in.mac }

// Addr returns the instance's address with its prefix length.
func (in *Instance) Addr() netip.Prefix { return in.ip }

// Gateway returns the default gateway.
func (in *Instance) Gateway() netip.Addr { return in.gw }

// SetIPv6 gives the instance the IPv6 address ip (address and prefix
// length) and IPv6 default gateway gw (the zero Addr for none) beside its
// IPv4 one: the instance is then dual-stack.
func (in *Instance) SetIPv6(ip netip.Prefix, gw netip.Addr) { in.ip6, in.gw6 = ip, gw }

// Addr6 returns the instance's IPv6 address with its prefix length, or the
// zero Prefix when it has none.
func (in *Instance) Addr6() netip.Prefix { return in.ip6 }

// Gateway6 returns the IPv6 default gateway.
func (in *Instance) Gateway6() netip.Addr { return in.gw6 }

// src returns the instance's address of dst's family.
func (in *Instance) src(dst netip.Addr) netip.Addr {
	if dst.Is6() {
		return in.ip6.Addr()
	}
	return in.ip.Addr()
}

// mine reports whether a is one of the instance's own addresses.
func (in *Instance) mine(a netip.Addr) bool {
	return a.IsValid() && (a == in.ip.Addr() || a == in.ip6.Addr() || a == in.ll)
}

// SetOpenPorts replaces the TCP ports that answer SYN with SYN-ACK.
func (in *Instance) SetOpenPorts(ports ...uint16) {
	clear(in.open)
	for _, p := range ports {
		in.open[p] = true
	}
}

// OnReply sets a function called for every probe reply received.
func (in *Instance) OnReply(f func(Reply)) { in.onReply = f }

// Replies returns the probe replies received so far, in arrival order.
func (in *Instance) Replies() []Reply {
	for _, r := range in.log {
		in.replies = append(in.replies, r.reply())
	}
	in.log = in.log[:0]
	return in.replies
}

// replyRec is a Reply as the instance keeps it until asked: no pointers,
// so the garbage collector never scans the record of a long run.
type replyRec struct {
	id   uint64
	time time.Duration
	from [16]byte
	v4   bool
	kind uint8 // index into replyKinds
}

var replyKinds = [...]ReplyKind{ReplyEcho, ReplyUDP, ReplySynAck, ReplyRST}

func (r replyRec) reply() Reply {
	from := netip.AddrFrom16(r.from)
	if r.v4 {
		from = from.Unmap()
	}
	return Reply{ID: r.id, Time: r.time, Kind: replyKinds[r.kind], From: from}
}

// Neighbor returns the cached MAC of ip (ARP or neighbour discovery).
func (in *Instance) Neighbor(ip netip.Addr) (net.HardwareAddr, bool) {
	m, ok := in.arp[ip]
	if !ok {
		return nil, false
	}
	return net.HardwareAddr(m[:]), true
}

// FlushARP empties the ARP cache (packets waiting for ARP stay queued).
func (in *Instance) FlushARP() {
	clear(in.arp)
	in.lastARP = arpHit{}
}

// arpHit is the neighbour cache entry found last: nearly every packet an
// instance sends goes to its gateway, and comparing an address is
// cheaper than hashing it.
type arpHit struct {
	ip  netip.Addr
	mac [6]byte
	ok  bool
}

// setARP writes the neighbour cache entry of ip.
func (in *Instance) setARP(ip netip.Addr, mac [6]byte) {
	in.arp[ip] = mac
	if in.lastARP.ok && in.lastARP.ip == ip {
		in.lastARP.mac = mac
	}
}

// lookupARP returns the neighbour cache entry of ip.
func (in *Instance) lookupARP(ip netip.Addr) ([6]byte, bool) {
	if in.lastARP.ok && in.lastARP.ip == ip {
		return in.lastARP.mac, true
	}
	mac, ok := in.arp[ip]
	if ok {
		in.lastARP = arpHit{ip: ip, mac: mac, ok: true}
	}
	return mac, ok
}

// Pending reports whether a packet of probe id is still queued behind an
// unresolved ARP entry.
func (in *Instance) Pending(id uint64) bool {
	for _, q := range in.pending {
		for _, p := range q {
			if p.has && p.ctx.Probe == id {
				return true
			}
		}
	}
	return false
}

// PendingCount returns how many packets wait for ARP resolution.
func (in *Instance) PendingCount() int {
	n := 0
	for _, q := range in.pending {
		n += len(q)
	}
	return n
}

// SetPortState is a no-op: an instance keeps its caches when its link
// flaps; call Announce after it moves.
func (in *Instance) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {}

// Announce sends what a Linux guest sends when its link has moved
// (netdev_notify_peers, as virtio-net's guest announce triggers after a
// live migration) or when its interface comes up with arp_notify and
// ndisc_notify set: a gratuitous ARP for its address (a broadcast request
// whose sender and target are both the address, as `arping -U` sends) and
// an unsolicited neighbour advertisement, override flag set, to ff02::1
// for its IPv6 link-local address, and one for its global IPv6 address
// when it has one. Every MAC table on the way learns where the instance
// is now; neighbours update the entries they hold.
func (in *Instance) Announce(now time.Duration, out datapath.Output) {
	a := in.ip.Addr()
	in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "arp:gratuitous")
	out.Send(0, in.arpFrame(1, bcast, [6]byte{}, a, a))
	in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "ndisc:unsolicited-na")
	out.Send(0, frame.UnsolicitedNA(in.mac, in.ll))
	if in.ip6.IsValid() {
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "ndisc:unsolicited-na")
		out.Send(0, frame.UnsolicitedNA(in.mac, in.ip6.Addr()))
	}
}

// AnnounceSelf sends one round of what a hypervisor sends for a VM that
// has just been live-migrated to it (QEMU's announce_self): a RARP from
// the VM's MAC. QEMU writes it into the VM's tap, so it leaves on the
// instance's link like the guest's own frames.
func (in *Instance) AnnounceSelf(now time.Duration, out datapath.Output) {
	in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "rarp:announce")
	out.Send(0, frame.RARPAnnounce(in.mac))
}

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (in *Instance) trace(out datapath.Output, act datapath.Action, r datapath.Reason, rule string) {
	ev := datapath.Event{Node: in.name, Device: Port, Kind: datapath.KindNIC, Action: act, Reason: r, Rule: rule}
	if act == datapath.ActOriginate {
		ev.OutPort = Port
	} else {
		ev.InPort = Port
	}
	out.Trace(ev)
}

// replyKey identifies an outstanding probe by what its reply carries: the
// protocol, the remote address, and the ICMP id and sequence or the remote
// and local ports. Plain bytes and words, no padding: the map hashes and
// compares it as one block of memory.
type replyKey struct {
	remote [16]byte // As16
	x      uint64   // protocol, IPv4 flag, a, b
}

func probeKey(proto Proto, remote netip.Addr, a, b uint16) replyKey {
	x := uint64(proto)<<40 | uint64(a)<<16 | uint64(b)
	if remote.Is4() {
		x |= 1 << 32 // apart from the same address IPv4-mapped
	}
	return replyKey{remote.As16(), x}
}

// srcPort is the ephemeral source port of probe id.
func srcPort(id uint64) uint16 {
	return uint16(EphemeralBase + id%(65536-EphemeralBase))
}

// Probe sends the probe p. The packet leaves at once if the next hop's MAC
// is known, otherwise after ARP resolution. Replies are recorded (Replies,
// OnReply) when they arrive.
func (in *Instance) Probe(now time.Duration, out datapath.Output, p ProbeSpec) {
	var pl [8]byte
	binary.BigEndian.PutUint64(pl[:], p.ID)
	payload := pl[:]
	var b []byte
	switch p.Proto {
	case ICMP:
		id, seq := uint16(p.ID>>16), uint16(p.ID)
		in.probes[probeKey(ICMP, p.Dst, id, seq)] = outstanding{p.ID, ICMP}
		b = in.icmpEcho(p.Dst, false, id, seq, payload)
	case UDP:
		dport := p.DstPort
		if dport == 0 {
			dport = 7
		}
		sport := srcPort(p.ID)
		in.probes[probeKey(UDP, p.Dst, dport, sport)] = outstanding{p.ID, UDP}
		b = in.udp(p.Dst, sport, dport, payload)
	case TCP:
		dport := p.DstPort
		if dport == 0 {
			dport = 80
		}
		sport := srcPort(p.ID)
		in.probes[probeKey(TCP, p.Dst, dport, sport)] = outstanding{p.ID, TCP}
		b = in.tcp(p.Dst, sport, dport, uint32(p.ID), 0, tcpSYN, payload)
	default:
		in.trace(out, datapath.ActDrop, datapath.ReasonMalformed, "probe:unknown-proto")
		return
	}
	in.sendIP(out, p.Dst, b, p.Proto.rule())
}

// rule is the trace rule of a probe's first packet (a constant: no
// allocation per probe).
func (p Proto) rule() string {
	switch p {
	case ICMP:
		return "probe:icmp"
	case UDP:
		return "probe:udp"
	case TCP:
		return "probe:tcp"
	}
	return "probe:" + p.String()
}

// nextHop returns where a packet to dst goes on the link.
func (in *Instance) nextHop(dst netip.Addr) (netip.Addr, bool) {
	if dst.Is6() {
		switch {
		case !in.ip6.IsValid():
			return netip.Addr{}, false
		case in.ip6.Contains(dst) || dst.IsLinkLocalUnicast():
			return dst, true
		case in.gw6.IsValid():
			return in.gw6, true
		}
		return netip.Addr{}, false
	}
	if in.ip.Contains(dst) {
		return dst, true
	}
	if in.gw.IsValid() {
		return in.gw, true
	}
	return netip.Addr{}, false
}

// sendIP sends the IP frame b (its destination MAC still to be set)
// towards dst, resolving the next hop first when needed: by ARP for IPv4,
// by a neighbour solicitation for IPv6.
func (in *Instance) sendIP(out datapath.Output, dst netip.Addr, b []byte, rule string) {
	nh, ok := in.nextHop(dst)
	if !ok {
		in.trace(out, datapath.ActDrop, datapath.ReasonNoRoute, "route:none")
		return
	}
	if mac, ok := in.lookupARP(nh); ok {
		copy(b[0:6], mac[:])
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, rule)
		out.Send(0, b)
		return
	}
	p := pending{frame: append(in.spareFrame(), b...)}
	if r, ok := out.(Resumer); ok {
		p.ctx, p.has = r.Context(), true
	}
	q, ok := in.pending[nh]
	if !ok && len(in.spareQs) > 0 {
		q = in.spareQs[len(in.spareQs)-1]
		in.spareQs = in.spareQs[:len(in.spareQs)-1]
	}
	if len(q) >= PendingLimit {
		in.trace(out, datapath.ActDrop, datapath.ReasonNoARP, "arp:queue-full")
		in.recycle(q[0].frame)
		q = append(q[:0], q[1:]...)
	}
	in.pending[nh] = append(q, p)
	// Ask again for every packet queued: there are no timers in a node, so
	// this is the retry.
	if nh.Is6() {
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "ndisc:solicit")
		out.Send(0, in.nsFrame(nh))
		return
	}
	in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "arp:request")
	out.Send(0, in.arpFrame(1, bcast, [6]byte{}, in.ip.Addr(), nh))
}

// How many emptied buffers and queues an instance keeps for reuse.
const (
	maxSpareFrames = 64
	maxSpareQueues = 4
)

// recycle keeps the buffer of a packet that left the queue.
func (in *Instance) recycle(b []byte) {
	if len(in.spare) < maxSpareFrames {
		in.spare = append(in.spare, b[:0])
	}
}

// spareFrame returns an empty buffer for a packet to queue.
func (in *Instance) spareFrame() []byte {
	if n := len(in.spare); n > 0 {
		b := in.spare[n-1]
		in.spare = in.spare[:n-1]
		return b
	}
	return make([]byte, 0, 128)
}

// release sends the packets that waited for nh, now at mac.
func (in *Instance) release(out datapath.Output, nh netip.Addr, mac [6]byte) {
	q := in.pending[nh]
	if len(q) == 0 {
		return
	}
	delete(in.pending, nh)
	r, resumable := out.(Resumer)
	var saved Context
	if resumable {
		saved = r.Context()
	}
	for _, p := range q {
		if resumable && p.has {
			r.Resume(p.ctx)
		}
		copy(p.frame[0:6], mac[:])
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "arp:resolved")
		out.Send(0, p.frame)
		in.recycle(p.frame)
	}
	clear(q)
	if len(in.spareQs) < maxSpareQueues {
		in.spareQs = append(in.spareQs, q[:0])
	}
	if resumable {
		r.Resume(saved)
	}
}

// Receive handles one frame arriving on eth0.
func (in *Instance) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if len(b) < ethLen {
		in.trace(out, datapath.ActDrop, datapath.ReasonMalformed, "parse")
		return
	}
	// Unicast to someone else (a flood copy) needs no decoding.
	if frame.DstMAC(b) != in.mac6 && !frame.IsBroadcastOrMulticast(b) {
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "mac")
		return
	}
	if in.icmpFast(now, b, out) {
		return
	}
	in.receiveDecoded(now, b, out)
}

// icmpFast handles the frames probes are made of, untagged IPv4 ICMP
// without options or fragments, by reading fixed offsets. It reports
// false, having done nothing, for any other frame, which is then decoded.
// On the frames it takes it reads the same fields the decoder would and
// decides as receiveDecoded does (a fuzz target checks the two agree).
func (in *Instance) icmpFast(now time.Duration, b []byte, out datapath.Output) bool {
	be := binary.BigEndian
	if len(b) < ethLen+ipv4Len+8 || be.Uint16(b[12:14]) != 0x0800 || b[14]&0x0f != 5 || b[23] != protoICMP ||
		be.Uint16(b[20:22])&0x3fff != 0 { // more fragments, or an offset
		return false
	}
	n := int(be.Uint16(b[16:18])) // IP total length: the rest is padding
	if n < ipv4Len+8 || ethLen+n > len(b) {
		return false
	}
	if netip.AddrFrom4([4]byte(b[30:34])) != in.ip.Addr() {
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ip")
		return true
	}
	icmp := b[ethLen+ipv4Len : ethLen+n]
	in.receiveICMP(now, netip.AddrFrom4([4]byte(b[26:30])), icmp[0], be.Uint16(icmp[4:6]), be.Uint16(icmp[6:8]), icmp[8:], out)
	return true
}

// receiveDecoded handles a frame for this instance through the decoder.
func (in *Instance) receiveDecoded(now time.Duration, b []byte, out datapath.Output) {
	p, err := in.parser.Parse(b)
	if err != nil {
		in.trace(out, datapath.ActDrop, datapath.ReasonMalformed, "parse")
		return
	}
	if p.Has(layers.LayerTypeDot1Q) {
		in.trace(out, datapath.ActDrop, datapath.ReasonVLANMismatch, "tagged")
		return
	}
	switch {
	case p.Has(layers.LayerTypeARP):
		in.receiveARP(now, p, out)
	case p.Has(layers.LayerTypeIPv4):
		in.receiveIPv4(now, p, out)
	case p.Has(layers.LayerTypeIPv6):
		in.receiveIPv6(now, p, out)
	default:
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ethertype")
	}
}

func (in *Instance) receiveARP(now time.Duration, p *frame.Parsed, out datapath.Output) {
	a := &p.ARP
	spa, ok1 := netip.AddrFromSlice(a.SourceProtAddress)
	tpa, ok2 := netip.AddrFromSlice(a.DstProtAddress)
	if !ok1 || !ok2 || len(a.SourceHwAddress) != 6 {
		in.trace(out, datapath.ActDrop, datapath.ReasonMalformed, "arp")
		return
	}
	sha := [6]byte(a.SourceHwAddress)
	me := in.ip.Addr()
	switch {
	case a.Operation == layers.ARPRequest && tpa == me && spa != me:
		// Linux creates the neighbour entry of whoever asks for it.
		in.setARP(spa, sha)
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "arp:request")
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "arp:reply")
		out.Send(0, in.arpFrame(2, sha, sha, me, spa))
		in.release(out, spa, sha)
	case a.Operation == layers.ARPReply && tpa == me:
		in.setARP(spa, sha)
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "arp:reply")
		in.release(out, spa, sha)
	default:
		// Someone else's ARP, or a gratuitous one: update an existing
		// entry (arp_accept=0 behaviour), but the frame was not for us.
		if _, known := in.arp[spa]; known && spa != me {
			in.setARP(spa, sha)
		}
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "arp:other")
	}
}

func (in *Instance) receiveIPv4(now time.Duration, p *frame.Parsed, out datapath.Output) {
	ip := &p.IP4
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	if dst != in.ip.Addr() {
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ip")
		return
	}
	if p.Has(layers.LayerTypeICMPv4) {
		ic := &p.ICMP4
		in.receiveICMP(now, src, ic.TypeCode.Type(), ic.Id, ic.Seq, ic.Payload, out)
		return
	}
	in.receiveL4(now, src, p, out)
}

// receiveIPv6 handles an IPv6 packet: neighbour discovery, echo, and the
// same UDP and TCP answers as over IPv4.
func (in *Instance) receiveIPv6(now time.Duration, p *frame.Parsed, out datapath.Output) {
	ip := &p.IP6
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	if p.Has(layers.LayerTypeICMPv6) {
		ic := &p.ICMP6
		typ := ic.TypeCode.Type()
		if nd, ok := frame.ParseNDP(typ, ic.Payload); ok {
			in.receiveNDP(now, p, src, dst, nd, out)
			return
		}
		if !in.mine(dst) || !in.ip6.IsValid() {
			in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ip6")
			return
		}
		switch typ {
		case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
			if len(ic.Payload) < 4 {
				in.trace(out, datapath.ActDrop, datapath.ReasonMalformed, "icmp6")
				return
			}
			be := binary.BigEndian
			t := uint8(layers.ICMPv4TypeEchoRequest)
			if typ == layers.ICMPv6TypeEchoReply {
				t = layers.ICMPv4TypeEchoReply
			}
			in.receiveICMP(now, src, t, be.Uint16(ic.Payload[0:2]), be.Uint16(ic.Payload[2:4]), ic.Payload[4:], out)
		default:
			in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "icmp6:other")
		}
		return
	}
	if !in.mine(dst) || !in.ip6.IsValid() {
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ip6")
		return
	}
	in.receiveL4(now, src, p, out)
}

// receiveNDP handles a neighbour solicitation or advertisement, as Linux
// does: a solicitation for one of its addresses creates the asker's entry
// and is answered; an advertisement fills the entry it solicited and
// updates (override flag) an entry it holds; anything else is not for it.
func (in *Instance) receiveNDP(now time.Duration, p *frame.Parsed, src, dst netip.Addr, nd frame.NDP, out datapath.Output) {
	switch {
	case nd.Type == layers.ICMPv6TypeNeighborSolicitation && in.mine(nd.Target) && nd.Target != in.ip.Addr():
		if nd.HasLL && src.IsValid() && !src.IsUnspecified() {
			in.setARP(src, nd.LLAddr)
		}
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "ndisc:solicit")
		dmac, to := [6]byte(p.Eth.SrcMAC), src
		if src.IsUnspecified() { // duplicate address detection: answer all nodes
			dmac, to = [6]byte(frame.AllNodesMAC), netip.MustParseAddr("ff02::1")
		}
		in.trace(out, datapath.ActOriginate, datapath.ReasonNone, "ndisc:advert")
		out.Send(0, in.naFrame(nd.Target, dmac, to))
		if nd.HasLL {
			in.release(out, src, nd.LLAddr)
		}
	case nd.Type == layers.ICMPv6TypeNeighborAdvertisement && in.mine(dst) && nd.HasLL:
		in.setARP(nd.Target, nd.LLAddr)
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "ndisc:advert")
		in.release(out, nd.Target, nd.LLAddr)
	default:
		// An advertisement to all nodes updates an entry held, when it
		// overrides (Linux's behaviour without ndisc accept_untracked_na).
		if _, known := in.arp[nd.Target]; known && nd.HasLL && nd.Flags&frame.NAOverride != 0 && !in.mine(nd.Target) {
			in.setARP(nd.Target, nd.LLAddr)
		}
		in.trace(out, datapath.ActDrop, datapath.ReasonNotForMe, "ndisc:other")
	}
}

// receiveL4 answers a UDP or TCP packet from src to one of the instance's
// addresses, either family.
func (in *Instance) receiveL4(now time.Duration, src netip.Addr, p *frame.Parsed, out datapath.Output) {
	switch {
	case p.Has(layers.LayerTypeUDP):
		u := &p.UDP
		sport, dport := uint16(u.SrcPort), uint16(u.DstPort)
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "udp")
		if dport >= EphemeralBase {
			in.answered(now, probeKey(UDP, src, sport, dport), ReplyUDP, src)
			return
		}
		// The layer's own payload: p.Payload stays empty when gopacket
		// maps the port to an application layer (53, 443...).
		in.sendIP(out, src, in.udp(src, dport, sport, u.Payload), "udp:echo")
	case p.Has(layers.LayerTypeTCP):
		t := &p.TCP
		sport, dport := uint16(t.SrcPort), uint16(t.DstPort)
		switch {
		case t.SYN && !t.ACK:
			if in.open[dport] {
				in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "tcp:open")
				in.sendIP(out, src, in.tcp(src, dport, sport, uint32(now), t.Seq+1, tcpSYN|tcpACK, nil), "tcp:syn-ack")
			} else {
				in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "tcp:closed")
				in.sendIP(out, src, in.tcp(src, dport, sport, 0, t.Seq+1, tcpRST|tcpACK, nil), "tcp:rst")
			}
		case t.SYN && t.ACK:
			in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "tcp:syn-ack")
			in.answered(now, probeKey(TCP, src, sport, dport), ReplySynAck, src)
		case t.RST:
			in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "tcp:rst")
			in.answered(now, probeKey(TCP, src, sport, dport), ReplyRST, src)
		default:
			in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "tcp")
		}
	default:
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "ip:other")
	}
}

// receiveICMP handles an ICMP message from src to this instance.
func (in *Instance) receiveICMP(now time.Duration, src netip.Addr, typ uint8, id, seq uint16, payload []byte, out datapath.Output) {
	switch typ {
	case layers.ICMPv4TypeEchoRequest:
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "icmp:echo-request")
		in.sendIP(out, src, in.icmpEcho(src, true, id, seq, payload), "icmp:echo-reply")
	case layers.ICMPv4TypeEchoReply:
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "icmp:echo-reply")
		in.answered(now, probeKey(ICMP, src, id, seq), ReplyEcho, src)
	default:
		in.trace(out, datapath.ActDeliver, datapath.ReasonNone, "icmp:other")
	}
}

// answered records the reply to an outstanding probe, if it is one.
func (in *Instance) answered(now time.Duration, key replyKey, kind ReplyKind, from netip.Addr) {
	o, ok := in.probes[key]
	if !ok {
		return
	}
	delete(in.probes, key)
	rec := replyRec{id: o.id, time: now, from: from.As16(), v4: from.Is4(), kind: uint8(slices.Index(replyKinds[:], kind))}
	in.log = append(in.log, rec)
	if in.onReply != nil {
		in.onReply(rec.reply())
	}
}
