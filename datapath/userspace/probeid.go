package userspace

import (
	"encoding/binary"
	"net/netip"
)

// ProbePayloadLen is the length of the payload a probe carries: its ID,
// 8 bytes big-endian (see stack.ProbeSpec).
const ProbePayloadLen = 8

// Header sizes and protocol numbers the reader needs.
const (
	vxlanPort   = 4789 // frame.VXLANPort
	ethLen      = 14
	ipv4Len     = 20
	ipv6Len     = 40
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Flow is the innermost IP 5-tuple of a frame (IPv4 or IPv6). For ICMP echo, SrcPort is
// the echo identifier and DstPort the sequence number.
type Flow struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Reverse returns the flow of the answer.
func (f Flow) Reverse() Flow {
	r := Flow{Proto: f.Proto, Src: f.Dst, Dst: f.Src, SrcPort: f.DstPort, DstPort: f.SrcPort}
	return r
}

// l4 is the innermost IP packet of a frame: its header fields and its
// transport header and payload (up to the IP total length, without
// Ethernet padding).
type l4 struct {
	proto    uint8
	src, dst netip.Addr
	seg      []byte
}

// innerIPv4 walks a raw Ethernet frame through 802.1Q/802.1ad tags and
// VXLAN encapsulation (up to two levels) to the innermost unfragmented
// IPv4 packet, or IPv6 packet without extension headers (what probes
// are). It allocates nothing.
func innerIPv4(b []byte) (l4, bool) {
	for depth := 0; depth < 3; depth++ {
		if len(b) < ethLen {
			return l4{}, false
		}
		o := 12
		et := binary.BigEndian.Uint16(b[o:])
		for tags := 0; (et == 0x8100 || et == 0x88a8) && tags < 2; tags++ {
			o += 4
			if len(b) < o+2 {
				return l4{}, false
			}
			et = binary.BigEndian.Uint16(b[o:])
		}
		o += 2
		if et == 0x86dd {
			if len(b) < o+ipv6Len {
				return l4{}, false
			}
			ip := b[o:]
			n := int(binary.BigEndian.Uint16(ip[4:6]))
			if ip[0]>>4 != 6 || ipv6Len+n > len(ip) {
				return l4{}, false
			}
			return l4{proto: ip[6], src: netip.AddrFrom16([16]byte(ip[8:24])), dst: netip.AddrFrom16([16]byte(ip[24:40])),
				seg: ip[ipv6Len : ipv6Len+n]}, true
		}
		if et != 0x0800 || len(b) < o+ipv4Len {
			return l4{}, false
		}
		ip := b[o:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ip[0]>>4 != 4 || ihl < ipv4Len || total < ihl || total > len(ip) {
			return l4{}, false
		}
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // fragment
			return l4{}, false
		}
		p := l4{proto: ip[9], src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])), seg: ip[ihl:total]}
		if p.proto == protoUDP && len(p.seg) >= 8+8 && binary.BigEndian.Uint16(p.seg[2:4]) == vxlanPort &&
			int(binary.BigEndian.Uint16(p.seg[4:6])) == len(p.seg) {
			b = p.seg[16:] // UDP header, VXLAN header, inner frame
			continue
		}
		return p, true
	}
	return l4{}, false
}

// payload returns the transport payload and the flow of p.
func (p l4) payload() ([]byte, Flow, bool) {
	f := Flow{Proto: p.proto, Src: p.src, Dst: p.dst}
	s := p.seg
	switch p.proto {
	case protoICMP, protoICMPv6:
		if len(s) < 8 {
			return nil, f, false
		}
		f.SrcPort, f.DstPort = binary.BigEndian.Uint16(s[4:6]), binary.BigEndian.Uint16(s[6:8])
		// Only echo request and reply carry probes (ICMPv6: 128, 129).
		if p.proto == protoICMP && s[0] != 0 && s[0] != 8 || p.proto == protoICMPv6 && s[0] != 128 && s[0] != 129 {
			return nil, f, true
		}
		return s[8:], f, true
	case protoUDP:
		if len(s) < 8 || int(binary.BigEndian.Uint16(s[4:6])) != len(s) {
			return nil, f, false
		}
		f.SrcPort, f.DstPort = binary.BigEndian.Uint16(s[0:2]), binary.BigEndian.Uint16(s[2:4])
		return s[8:], f, true
	case protoTCP:
		if len(s) < 20 {
			return nil, f, false
		}
		f.SrcPort, f.DstPort = binary.BigEndian.Uint16(s[0:2]), binary.BigEndian.Uint16(s[2:4])
		off := int(s[12]>>4) * 4
		if off < 20 || off > len(s) {
			return nil, f, false
		}
		return s[off:], f, true
	}
	return nil, f, true
}

// ProbeIDOf returns the probe ID a raw Ethernet frame carries, as
// stack.Instance.Probe writes it: an ICMP echo, UDP datagram or TCP segment whose payload is
// exactly the 8-byte ID, found through VLAN tags and VXLAN encapsulation.
// It reports false for any other frame (ARP, answers without payload such
// as a SYN-ACK, ID 0). It reads the raw bytes (no decoding, nothing
// allocated): the datapath calls it on every frame.
func ProbeIDOf(b []byte) (uint64, bool) {
	p, ok := innerIPv4(b)
	if !ok {
		return 0, false
	}
	pl, _, ok := p.payload()
	if !ok || len(pl) != ProbePayloadLen {
		return 0, false
	}
	id := binary.BigEndian.Uint64(pl)
	return id, id != 0
}

// FlowOf returns the innermost IP flow of a raw Ethernet frame (through
// VLAN tags and VXLAN), so that a runtime can attribute answers that carry
// no payload (a SYN-ACK, a RST) to the probe whose flow they reverse.
func FlowOf(b []byte) (Flow, bool) {
	p, ok := innerIPv4(b)
	if !ok {
		return Flow{}, false
	}
	_, f, ok := p.payload()
	return f, ok
}
