package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/netbed/netbed/datapath/frame"
)

// The instance builds its frames by hand into one reused buffer, so that
// answering a probe allocates nothing (gopacket's serializer allocates a
// few times per layer). The layouts are the standard ones, checked against
// gopacket's decoder in the tests; checksums are computed in full.

const (
	minFrame = 60 // Ethernet minimum without FCS: shorter frames are padded
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	arpLen   = 28

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// pseudoSum is the partial sum of the IPv4 or IPv6 pseudo-header (the
// family of src).
func pseudoSum(src, dst netip.Addr, proto uint8, n int) uint32 {
	sum := uint32(proto) + uint32(n)
	for _, a := range [2]netip.Addr{src, dst} {
		if a.Is4() {
			b := a.As4()
			sum += (uint32(b[0])<<8 | uint32(b[1])) + (uint32(b[2])<<8 | uint32(b[3]))
			continue
		}
		b := a.As16()
		for i := 0; i < 16; i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	return sum
}

// ethernet appends an Ethernet header.
func ethernet(b []byte, dst, src [6]byte, etype uint16) []byte {
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	return binary.BigEndian.AppendUint16(b, etype)
}

// arpFrame builds an ARP request or reply.
func (in *Instance) arpFrame(op uint16, dstMAC, tha [6]byte, spa, tpa netip.Addr) []byte {
	b := ethernet(in.buf[:0], dstMAC, in.mac6, 0x0806)
	b = binary.BigEndian.AppendUint16(b, 1)      // Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, in.mac6[:]...)
	s, t := spa.As4(), tpa.As4()
	b = append(b, s[:]...)
	b = append(b, tha[:]...)
	b = append(b, t[:]...)
	return in.pad(b)
}

// pad zero-pads b to the Ethernet minimum and keeps it as the buffer.
func (in *Instance) pad(b []byte) []byte {
	if n := minFrame - len(b); n > 0 {
		b = append(b, make([]byte, n)...) // zeroes in place: no allocation
	}
	in.buf = b
	return b
}

// ipFrame starts an IP frame to dst (destination MAC left zero, filled
// in by sendIP): IPv4, or IPv6 from the instance's IPv6 address when dst
// is IPv6.
func (in *Instance) ipFrame(dst netip.Addr, proto uint8, l4len int) []byte {
	if dst.Is6() {
		return in.ip6Frame([6]byte{}, in.src(dst), dst, proto, 64, l4len)
	}
	b := ethernet(in.buf[:0], [6]byte{}, in.mac6, 0x0800)
	in.ipID++
	src, d := in.ip.Addr().As4(), dst.As4()
	h := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(ipv4Len+l4len))
	b = binary.BigEndian.AppendUint16(b, in.ipID)
	b = binary.BigEndian.AppendUint16(b, 0x4000) // don't fragment
	b = append(b, 64, proto, 0, 0)
	b = append(b, src[:]...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint16(b[h+10:], checksum(0, b[h:h+ipv4Len]))
	return b
}

// ip6Frame starts an IPv6 frame from src to dst with the given hop limit.
func (in *Instance) ip6Frame(dmac [6]byte, src, dst netip.Addr, next, hops uint8, l4len int) []byte {
	b := ethernet(in.buf[:0], dmac, in.mac6, 0x86dd)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(l4len))
	b = append(b, next, hops)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	return append(b, d[:]...)
}

// icmpEcho builds an echo request (or reply) carrying payload: ICMPv6
// (with its pseudo-header checksum) when dst is IPv6.
func (in *Instance) icmpEcho(dst netip.Addr, reply bool, id, seq uint16, payload []byte) []byte {
	proto, typ := byte(protoICMP), byte(8)
	switch {
	case dst.Is6() && reply:
		proto, typ = protoICMPv6, 129
	case dst.Is6():
		proto, typ = protoICMPv6, 128
	case reply:
		typ = 0
	}
	b := in.ipFrame(dst, proto, 8+len(payload))
	o := len(b)
	b = append(b, typ, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = append(b, payload...)
	var sum uint32
	if dst.Is6() {
		sum = pseudoSum(in.src(dst), dst, protoICMPv6, len(b)-o)
	}
	binary.BigEndian.PutUint16(b[o+2:], checksum(sum, b[o:]))
	return in.pad(b)
}

// nsFrame builds a neighbour solicitation for target, from the instance's
// global address (its link-local one for a link-local target), to the
// target's solicited-node group, with the source link-layer option.
func (in *Instance) nsFrame(target netip.Addr) []byte {
	src := in.ip6.Addr()
	if target.IsLinkLocalUnicast() || !src.IsValid() {
		src = in.ll
	}
	group := frame.SolicitedNode(target)
	b := in.ip6Frame(frame.MulticastMAC(group), src, group, protoICMPv6, 255, 32)
	o := len(b)
	b = append(b, 135, 0, 0, 0, 0, 0, 0, 0)
	t := target.As16()
	b = append(b, t[:]...)
	b = append(b, 1, 1) // source link-layer address, 8 bytes
	b = append(b, in.mac6[:]...)
	binary.BigEndian.PutUint16(b[o+2:], checksum(pseudoSum(src, group, protoICMPv6, len(b)-o), b[o:]))
	return in.pad(b)
}

// naFrame builds a solicited neighbour advertisement for target (one of
// the instance's addresses) to (dmac, dst), override set, with the target
// link-layer option.
func (in *Instance) naFrame(target netip.Addr, dmac [6]byte, dst netip.Addr) []byte {
	b := in.ip6Frame(dmac, target, dst, protoICMPv6, 255, 32)
	o := len(b)
	flags := byte(frame.NAOverride)
	if !dst.IsMulticast() {
		flags |= frame.NASolicited
	}
	b = append(b, 136, 0, 0, 0, flags, 0, 0, 0)
	t := target.As16()
	b = append(b, t[:]...)
	b = append(b, 2, 1) // target link-layer address, 8 bytes
	b = append(b, in.mac6[:]...)
	binary.BigEndian.PutUint16(b[o+2:], checksum(pseudoSum(target, dst, protoICMPv6, len(b)-o), b[o:]))
	return in.pad(b)
}

// udp builds a UDP datagram.
func (in *Instance) udp(dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	n := 8 + len(payload)
	b := in.ipFrame(dst, protoUDP, n)
	o := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, 0, 0)
	b = append(b, payload...)
	c := checksum(pseudoSum(in.src(dst), dst, protoUDP, n), b[o:])
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[o+6:], c)
	return in.pad(b)
}

// TCP flag bits.
const (
	tcpFIN = 1 << 0
	tcpSYN = 1 << 1
	tcpRST = 1 << 2
	tcpACK = 1 << 4
)

// tcp builds a TCP segment without options.
func (in *Instance) tcp(dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	n := 20 + len(payload)
	b := in.ipFrame(dst, protoTCP, n)
	o := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	b = append(b, 5<<4, flags)
	b = binary.BigEndian.AppendUint16(b, 65535) // window
	b = append(b, 0, 0, 0, 0)                   // checksum, urgent pointer
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[o+16:], checksum(pseudoSum(in.src(dst), dst, protoTCP, n), b[o:]))
	return in.pad(b)
}
