package frame

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

var serializeOpts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// Serialize builds a frame from layers with lengths and checksums fixed.
func Serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts, ls...); err != nil {
		return nil, fmt.Errorf("serialize frame: %w", err)
	}
	return buf.Bytes(), nil
}

func mustSerialize(ls ...gopacket.SerializableLayer) []byte {
	b, err := Serialize(ls...)
	if err != nil {
		// Only reachable with inconsistent layers built in this file.
		panic(err)
	}
	return b
}

// Ethernet returns an Ethernet header carrying etype, tagged with vid when
// vid is not 0.
func Ethernet(src, dst net.HardwareAddr, etype layers.EthernetType, vid uint16) []gopacket.SerializableLayer {
	if vid == 0 {
		return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: etype}}
	}
	return []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: vid, Type: etype},
	}
}

// ARPRequest builds a broadcast who-has tpa from (sha, spa).
func ARPRequest(sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	ls := Ethernet(sha, Broadcast, layers.EthernetTypeARP, 0)
	ls = append(ls, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: sha, SourceProtAddress: spa.AsSlice(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: tpa.AsSlice(),
	})
	return mustSerialize(ls...)
}

// ARPReply builds a unicast reply telling tha/tpa that spa is at sha.
func ARPReply(sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	ls := Ethernet(sha, tha, layers.EthernetTypeARP, 0)
	ls = append(ls, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
		SourceHwAddress: sha, SourceProtAddress: spa.AsSlice(),
		DstHwAddress: tha, DstProtAddress: tpa.AsSlice(),
	})
	return mustSerialize(ls...)
}

// IPv4 describes the IP header of a packet to build: IPv4, or IPv6 when
// its addresses are IPv6 (TTL is then the hop limit).
type IPv4 struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.Addr
	TTL            uint8 // 0 means 64
	ID             uint16
}

func (h IPv4) layers(proto layers.IPProtocol) []gopacket.SerializableLayer {
	ttl := h.TTL
	if ttl == 0 {
		ttl = 64
	}
	if h.Src.Is6() {
		ls := Ethernet(h.SrcMAC, h.DstMAC, layers.EthernetTypeIPv6, 0)
		return append(ls, &layers.IPv6{Version: 6, NextHeader: proto, HopLimit: ttl,
			SrcIP: h.Src.AsSlice(), DstIP: h.Dst.AsSlice()})
	}
	ls := Ethernet(h.SrcMAC, h.DstMAC, layers.EthernetTypeIPv4, 0)
	return append(ls, &layers.IPv4{
		Version: 4, IHL: 5, TTL: ttl, Id: h.ID, Protocol: proto,
		Flags: layers.IPv4DontFragment, SrcIP: h.Src.AsSlice(), DstIP: h.Dst.AsSlice(),
	})
}

// ICMPEcho builds an ICMP echo request (reply when reply is set) with the
// given identifier, sequence number and payload: ICMPv6 when h's addresses
// are IPv6.
func ICMPEcho(h IPv4, reply bool, id, seq uint16, payload []byte) []byte {
	if h.Src.Is6() {
		return ICMPv6Echo(h, reply, id, seq, payload)
	}
	typ := uint8(layers.ICMPv4TypeEchoRequest)
	if reply {
		typ = layers.ICMPv4TypeEchoReply
	}
	ls := h.layers(layers.IPProtocolICMPv4)
	ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: seq}, gopacket.Payload(payload))
	return mustSerialize(ls...)
}

// UDP builds a UDP datagram.
func UDP(h IPv4, sport, dport uint16, payload []byte) []byte {
	ls := h.layers(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ls[len(ls)-1].(gopacket.NetworkLayer)); err != nil {
		panic(err)
	}
	ls = append(ls, udp, gopacket.Payload(payload))
	return mustSerialize(ls...)
}

// TCPFlags selects the flags of a TCP segment to build.
type TCPFlags struct{ SYN, ACK, RST, FIN bool }

// TCP builds a TCP segment with the given flags and sequence numbers.
func TCP(h IPv4, sport, dport uint16, seq, ack uint32, f TCPFlags, payload []byte) []byte {
	ls := h.layers(layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport),
		Seq: seq, Ack: ack, SYN: f.SYN, ACK: f.ACK, RST: f.RST, FIN: f.FIN, Window: 65535, DataOffset: 5}
	if err := tcp.SetNetworkLayerForChecksum(ls[len(ls)-1].(gopacket.NetworkLayer)); err != nil {
		panic(err)
	}
	ls = append(ls, tcp, gopacket.Payload(payload))
	return mustSerialize(ls...)
}

// VXLANEncap wraps inner in Ethernet/IPv4/UDP/VXLAN from the VTEP at
// (srcMAC, src) to the VTEP at (dstMAC, dst) with the given VNI. The UDP
// source port is derived from the inner frame's hash so that ECMP spreads
// flows, as real VTEPs do.
func VXLANEncap(outer IPv4, vni uint32, inner []byte) []byte {
	ls := outer.layers(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(49152 + flowHash(inner)%16384), DstPort: VXLANPort}
	ip := ls[len(ls)-1].(*layers.IPv4)
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	ls = append(ls, udp, &layers.VXLAN{ValidIDFlag: true, VNI: vni}, gopacket.Payload(inner))
	return mustSerialize(ls...)
}

// flowHash is FNV-1a over an untagged inner frame's flow identity: MAC
// addresses and EtherType, and for IPv4 the protocol, addresses and the
// first four bytes after the header (TCP/UDP ports), and for IPv6 the next
// header, addresses and the four bytes after the fixed header. Fields that change per
// packet (IP ID, checksum, TTL) stay out, so one flow keeps one outer
// source port and one ECMP path.
func flowHash(b []byte) uint16 {
	h := uint32(2166136261)
	mix := func(p []byte) {
		for _, c := range p {
			h ^= uint32(c)
			h *= 16777619
		}
	}
	mix(b[:min(len(b), 14)])
	if len(b) >= 34 && b[12] == 0x08 && b[13] == 0x00 {
		ihl := int(b[14]&0x0f) * 4
		mix(b[23:24]) // protocol
		mix(b[26:34]) // addresses
		if l4 := 14 + ihl; len(b) >= l4+4 {
			mix(b[l4 : l4+4])
		}
	}
	if len(b) >= 58 && b[12] == 0x86 && b[13] == 0xdd {
		mix(b[20:21]) // next header
		mix(b[22:54]) // addresses
		mix(b[54:58]) // ports, when no extension header comes first
	}
	return uint16(h ^ h>>16)
}
