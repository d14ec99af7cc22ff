package frame

import (
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// IPv6 neighbour discovery (RFC 4861): what IPv6 uses where IPv4 uses ARP.
// A node asks for a neighbour's link-layer address with a neighbour
// solicitation to the target's solicited-node multicast group and is
// answered by a unicast, solicited neighbour advertisement.

// NA flags (the first byte of an advertisement's body).
const (
	NARouter    = 0x80
	NASolicited = 0x40
	NAOverride  = 0x20
)

// SolicitedNode returns the solicited-node multicast address of a
// (ff02::1:ffXX:XXXX with the low 24 bits of a).
func SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// MulticastMAC returns the Ethernet address of the IPv6 multicast group a
// (33:33 and the group's low 32 bits, RFC 2464).
func MulticastMAC(a netip.Addr) [6]byte {
	b := a.As16()
	return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// NeighborSolicitation builds a solicitation from (sha, src) for target,
// sent to target's solicited-node group, with the source link-layer
// address option.
func NeighborSolicitation(sha net.HardwareAddr, src, target netip.Addr) []byte {
	group := SolicitedNode(target)
	gmac := MulticastMAC(group)
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: src.AsSlice(), DstIP: group.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: sha}}}
	ls := Ethernet(sha, gmac[:], layers.EthernetTypeIPv6, 0)
	return mustSerialize(append(ls, ip, icmp, ns)...)
}

// NeighborAdvertisement builds a solicited advertisement from (sha,
// target) to (dmac, dst) with the given flags (NASolicited, NAOverride,
// NARouter) and the target link-layer address option.
func NeighborAdvertisement(sha net.HardwareAddr, target netip.Addr, dmac net.HardwareAddr, dst netip.Addr, flags uint8) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: target.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{Flags: flags, TargetAddress: target.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: sha}}}
	ls := Ethernet(sha, dmac, layers.EthernetTypeIPv6, 0)
	return mustSerialize(append(ls, ip, icmp, na)...)
}

// NDP is a neighbour solicitation or advertisement read from an ICMPv6
// message's body.
type NDP struct {
	Type   uint8 // layers.ICMPv6TypeNeighborSolicitation or ...Advertisement
	Flags  uint8 // an advertisement's flags
	Target netip.Addr
	// LLAddr is the source (solicitation) or target (advertisement)
	// link-layer address option; zero when absent.
	LLAddr [6]byte
	HasLL  bool
}

// ParseNDP reads a neighbour solicitation or advertisement from the ICMPv6
// type and the bytes after the ICMPv6 header (Parsed.ICMP6.Payload). It
// reports false for any other message or a truncated one.
func ParseNDP(typ uint8, body []byte) (NDP, bool) {
	if (typ != layers.ICMPv6TypeNeighborSolicitation && typ != layers.ICMPv6TypeNeighborAdvertisement) || len(body) < 20 {
		return NDP{}, false
	}
	n := NDP{Type: typ, Target: netip.AddrFrom16([16]byte(body[4:20]))}
	if typ == layers.ICMPv6TypeNeighborAdvertisement {
		n.Flags = body[0]
	}
	want := uint8(layers.ICMPv6OptSourceAddress)
	if typ == layers.ICMPv6TypeNeighborAdvertisement {
		want = uint8(layers.ICMPv6OptTargetAddress)
	}
	for o := body[20:]; len(o) >= 8; {
		l := int(o[1]) * 8
		if l == 0 || l > len(o) {
			break
		}
		if o[0] == want && l >= 8 {
			n.LLAddr, n.HasLL = [6]byte(o[2:8]), true
		}
		o = o[l:]
	}
	return n, true
}

// ICMPv6Echo builds an ICMPv6 echo request (reply when reply is set) from
// h, whose addresses are IPv6.
func ICMPv6Echo(h IPv4, reply bool, id, seq uint16, payload []byte) []byte {
	typ := uint8(layers.ICMPv6TypeEchoRequest)
	if reply {
		typ = layers.ICMPv6TypeEchoReply
	}
	ls := h.layers(layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ls[len(ls)-1].(gopacket.NetworkLayer)); err != nil {
		panic(err)
	}
	ls = append(ls, icmp, &layers.ICMPv6Echo{Identifier: id, SeqNumber: seq}, gopacket.Payload(payload))
	return mustSerialize(ls...)
}

// IsResolution reports whether a raw frame (untagged, or with one 802.1Q
// or 802.1ad tag) is address resolution: ARP, or an IPv6 neighbour
// solicitation or advertisement, which IPv6 uses where IPv4 uses ARP.
func IsResolution(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	off := 12
	et := uint16(b[12])<<8 | uint16(b[13])
	if (et == 0x8100 || et == 0x88a8) && len(b) >= 18 {
		off = 16
		et = uint16(b[16])<<8 | uint16(b[17])
	}
	if et == 0x86dd {
		ip := off + 2
		return len(b) >= ip+41 && b[ip+6] == uint8(layers.IPProtocolICMPv6) &&
			(b[ip+40] == layers.ICMPv6TypeNeighborSolicitation || b[ip+40] == layers.ICMPv6TypeNeighborAdvertisement)
	}
	return et == 0x0806
}
