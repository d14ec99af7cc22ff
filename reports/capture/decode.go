package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/stack"
)

// Decoder finds the probe ID and innermost flow of captured frames with
// gopacket's DecodingLayerParser. VXLAN is decoded through: the inner
// frame's layers overwrite the outer ones, so what is left is the
// innermost packet. A Decoder is not safe for concurrent use.
type Decoder struct {
	dlp     *gopacket.DecodingLayerParser
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	udp     layers.UDP
	tcp     layers.TCP
	icmp    layers.ICMPv4
	vxlan   layers.VXLAN
	arp     layers.ARP
	payload gopacket.Payload
	decoded []gopacket.LayerType
}

// NewDecoder returns a Decoder for Ethernet frames.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 16)}
	d.dlp = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
		&d.eth, &d.dot1q, &d.ip4, &d.udp, &d.tcp, &d.icmp, &d.vxlan, &d.arp, &d.payload)
	d.dlp.IgnoreUnsupported = true
	return d
}

// Decoded is what Decode found in one frame.
type Decoded struct {
	// Probe is the ID the frame carries (0: none), read as
	// stack.ProbeIDOf reads it.
	Probe uint64
	// Flow is the innermost IPv4 flow, valid when HasFlow.
	Flow    stack.Flow
	HasFlow bool
	ARP     bool
	VXLAN   bool
	VLAN    uint16 // outermost 802.1Q tag, 0 if none
}

// Decode decodes b. It allocates nothing once warm.
func (d *Decoder) Decode(b []byte) Decoded {
	var out Decoded
	// Errors only say that decoding stopped early; what was decoded is
	// still valid.
	_ = d.dlp.DecodeLayers(b, &d.decoded)
	last := gopacket.LayerTypeZero
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeDot1Q:
			if out.VLAN == 0 && !out.VXLAN {
				out.VLAN = d.dot1q.VLANIdentifier
			}
		case layers.LayerTypeARP:
			out.ARP = true
		case layers.LayerTypeVXLAN:
			out.VXLAN = true
		case layers.LayerTypeIPv4:
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				return out
			}
		}
		last = lt
	}
	var pl []byte
	f := stack.Flow{}
	switch last {
	case layers.LayerTypeICMPv4, layers.LayerTypeUDP, layers.LayerTypeTCP, gopacket.LayerTypePayload:
	default:
		return out
	}
	if !has(d.decoded, layers.LayerTypeIPv4) {
		return out
	}
	f.Src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
	f.Dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
	f.Proto = uint8(d.ip4.Protocol)
	switch d.ip4.Protocol {
	case layers.IPProtocolICMPv4:
		if !has(d.decoded, layers.LayerTypeICMPv4) {
			return out
		}
		f.SrcPort, f.DstPort = d.icmp.Id, d.icmp.Seq
		if t := d.icmp.TypeCode.Type(); t == layers.ICMPv4TypeEchoRequest || t == layers.ICMPv4TypeEchoReply {
			pl = d.icmp.Payload
		}
	case layers.IPProtocolUDP:
		if !has(d.decoded, layers.LayerTypeUDP) {
			return out
		}
		f.SrcPort, f.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
		pl = d.udp.Payload
	case layers.IPProtocolTCP:
		if !has(d.decoded, layers.LayerTypeTCP) {
			return out
		}
		f.SrcPort, f.DstPort = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
		pl = d.tcp.Payload
	default:
		out.Flow, out.HasFlow = f, true
		return out
	}
	out.Flow, out.HasFlow = f, true
	if len(pl) == stack.ProbePayloadLen {
		out.Probe = binary.BigEndian.Uint64(pl)
	}
	return out
}

func has(ls []gopacket.LayerType, lt gopacket.LayerType) bool {
	for _, l := range ls {
		if l == lt {
			return true
		}
	}
	return false
}
