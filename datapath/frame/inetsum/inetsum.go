// Package inetsum computes the Internet checksum (RFC 1071). It imports
// only the standard library, so that packages kept light (the CNI
// plugin's datapath/frame/gratuitous) share it with datapath/frame.
package inetsum

import "encoding/binary"

// IPv4Header is the Internet checksum (RFC 1071) of an IPv4 header h
// whose checksum field is zero; over a header with a correct checksum it
// is 0. The usual 20-byte header is summed unrolled: it is on the hot path
// of every routing node.
func IPv4Header(h []byte) uint16 {
	var s uint32
	if len(h) == 20 {
		be := binary.BigEndian
		s = uint32(be.Uint16(h[0:])) + uint32(be.Uint16(h[2:])) + uint32(be.Uint16(h[4:])) +
			uint32(be.Uint16(h[6:])) + uint32(be.Uint16(h[8:])) + uint32(be.Uint16(h[10:])) +
			uint32(be.Uint16(h[12:])) + uint32(be.Uint16(h[14:])) + uint32(be.Uint16(h[16:])) +
			uint32(be.Uint16(h[18:]))
	} else {
		for i := 0; i+1 < len(h); i += 2 {
			s += uint32(h[i])<<8 | uint32(h[i+1])
		}
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// Sum is the Internet checksum (RFC 1071) of b, an odd last byte
// padded with zero: an ICMP message's, its checksum field zero.
func Sum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
