package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/userspace"
)

// Decoder finds the probe ID and innermost flow of captured frames with
// gopacket's DecodingLayerParser, one pass per encapsulation level (the
// outer packet is checked before its VXLAN payload is decoded). A Decoder
// is not safe for concurrent use.
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
		&d.eth, &d.dot1q, &d.ip4, &d.udp, &d.tcp, &d.icmp, &d.arp, &d.payload)
	d.dlp.IgnoreUnsupported = true
	return d
}

// Decoded is what Decode found in one frame.
type Decoded struct {
	// Probe is the ID the frame carries (0: none), read as
	// userspace.ProbeIDOf reads it.
	Probe uint64
	// Flow is the innermost IP flow, valid when HasFlow.
	Flow    userspace.Flow
	HasFlow bool
	ARP     bool // ARP or IPv6 neighbour discovery
	VXLAN   bool
	VLAN    uint16 // outermost 802.1Q tag, 0 if none
}

// Decode decodes b. It allocates nothing once warm.
func (d *Decoder) Decode(b []byte) Decoded {
	var out Decoded
	for depth := 0; depth < 3; depth++ {
		// Errors only say that decoding stopped early (at VXLAN, which
		// is decoded below, or at an unsupported layer); what was
		// decoded is still valid.
		_ = d.dlp.DecodeLayers(b, &d.decoded)
		for _, lt := range d.decoded {
			switch lt {
			case layers.LayerTypeDot1Q:
				if out.VLAN == 0 && depth == 0 {
					out.VLAN = d.dot1q.VLANIdentifier
				}
			case layers.LayerTypeARP:
				out.ARP = true
			}
		}
		if !has(d.decoded, layers.LayerTypeIPv4) {
			out.ARP = out.ARP || frame.IsResolution(b) // IPv6 neighbour discovery
			if f, ok := userspace.FlowOf(b); ok && f.Dst.Is6() {
				// IPv6 (which the layers above leave undecoded): the
				// raw reader the datapath uses finds its flow and ID.
				out.Flow, out.HasFlow = f, true
				out.Probe, _ = userspace.ProbeIDOf(b)
			}
			return out
		}
		// Only well-formed, unfragmented packets carry probes (the rules
		// userspace.ProbeIDOf applies).
		ip := &d.ip4
		if ip.Version != 4 || ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 ||
			len(ip.Contents)+len(ip.Payload) != int(ip.Length) ||
			binary.BigEndian.Uint16(ip.Contents[2:4]) != ip.Length { // gopacket reads length 0 as "all" (TSO)
			return out
		}
		if ip.Protocol == layers.IPProtocolUDP && has(d.decoded, layers.LayerTypeUDP) &&
			d.udp.DstPort == layers.UDPPort(frame.VXLANPort) && int(d.udp.Length) == len(d.ip4.Payload) &&
			len(d.udp.Payload) >= 8 {
			if err := d.vxlan.DecodeFromBytes(d.udp.Payload, gopacket.NilDecodeFeedback); err != nil {
				return out
			}
			out.VXLAN = true
			b = d.vxlan.Payload
			continue
		}
		return d.transport(out)
	}
	return out
}

// transport reads the flow and probe ID from the decoded innermost packet.
func (d *Decoder) transport(out Decoded) Decoded {
	var pl []byte
	f := userspace.Flow{Proto: uint8(d.ip4.Protocol)}
	f.Src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
	f.Dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
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
		if !has(d.decoded, layers.LayerTypeUDP) || int(d.udp.Length) != len(d.ip4.Payload) {
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
	}
	out.Flow, out.HasFlow = f, true
	if len(pl) == userspace.ProbePayloadLen {
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
