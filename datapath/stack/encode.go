package stack

import (
	"encoding/binary"
	"net/netip"
)

// The instance builds its frames by hand into one reused buffer, so that
// answering a probe allocates nothing (gopacket's serializer allocates a
// few times per layer). The layouts are the standard ones, checked against
// gopacket's decoder in the tests; checksums are computed in full.

const (
	minFrame = 60 // Ethernet minimum without FCS: shorter frames are padded
	ethLen   = 14
	ipv4Len  = 20
	arpLen   = 28

	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
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

// pseudoSum is the partial sum of the IPv4 pseudo-header.
func pseudoSum(src, dst [4]byte, proto uint8, n int) uint32 {
	be := binary.BigEndian
	return uint32(be.Uint16(src[0:2])) + uint32(be.Uint16(src[2:4])) +
		uint32(be.Uint16(dst[0:2])) + uint32(be.Uint16(dst[2:4])) +
		uint32(proto) + uint32(n)
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
	for len(b) < minFrame {
		b = append(b, 0)
	}
	in.buf = b
	return b
}

// ipFrame starts an IPv4 frame to dst (destination MAC left zero, filled
// in by sendIP) and returns it with the offset of the L4 header.
func (in *Instance) ipFrame(dst netip.Addr, proto uint8, l4len int) []byte {
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

// icmpEcho builds an echo request (or reply) carrying payload.
func (in *Instance) icmpEcho(dst netip.Addr, reply bool, id, seq uint16, payload []byte) []byte {
	b := in.ipFrame(dst, protoICMP, 8+len(payload))
	o := len(b)
	typ := byte(8)
	if reply {
		typ = 0
	}
	b = append(b, typ, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[o+2:], checksum(0, b[o:]))
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
	c := checksum(pseudoSum(in.ip.Addr().As4(), dst.As4(), protoUDP, n), b[o:])
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
	binary.BigEndian.PutUint16(b[o+16:], checksum(pseudoSum(in.ip.Addr().As4(), dst.As4(), protoTCP, n), b[o:]))
	return in.pad(b)
}
