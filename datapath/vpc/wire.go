package vpc

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/netbed/netbed/datapath/frame/inetsum"
)

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
)

// ipv4 checks that b is an untagged Ethernet frame with a sane IPv4 header
// and returns the header length.
func ipv4(b []byte) (ihl int, ok bool) {
	if len(b) < 34 || b[14]>>4 != 4 {
		return 0, false
	}
	ihl = int(b[14]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(b[16:18]))
	if ihl < 20 || len(b) < 14+ihl || tot < ihl || tot > len(b)-14 {
		return 0, false
	}
	return ihl, true
}

func src4(b []byte) [4]byte { return [4]byte(b[26:30]) }
func dst4(b []byte) [4]byte { return [4]byte(b[30:34]) }

func addr(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }

// flow is a connection's key as a stateful firewall tracks it: addresses,
// protocol and ports (the echo identifier for ICMP).
type flow struct {
	src, dst   [4]byte
	proto      uint8
	sport, dpt uint16
}

func (f flow) reverse() flow {
	return flow{src: f.dst, dst: f.src, proto: f.proto, sport: f.dpt, dpt: f.sport}
}

// flowOf returns b's flow key; ihl is its IPv4 header length.
func flowOf(b []byte, ihl int) flow {
	f := flow{src: src4(b), dst: dst4(b), proto: b[23]}
	l4 := b[14+ihl:]
	switch f.proto {
	case protoTCP, protoUDP:
		if len(l4) >= 4 {
			f.sport, f.dpt = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		}
	case protoICMP:
		if len(l4) >= 8 && (l4[0] == 8 || l4[0] == 0) {
			f.sport = binary.BigEndian.Uint16(l4[4:6])
			f.dpt = f.sport
		}
	}
	return f
}

// decTTL decrements the TTL of the IPv4 packet in b (a Linux host routing
// it) and fixes the header checksum; false when the TTL ran out.
func decTTL(b []byte, ihl int) bool {
	if b[22] <= 1 {
		return false
	}
	b[22]--
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:26], inetsum.IPv4Header(b[14:14+ihl]))
	return true
}

// rewrite replaces the source (dst false) or destination address of the
// IPv4 packet in b with a, fixing the header checksum and the TCP or UDP
// checksum, whose pseudo-header holds the address (RFC 1624's incremental
// update).
func rewrite(b []byte, ihl int, dst bool, a [4]byte) {
	off := 26
	if dst {
		off = 30
	}
	old := [4]byte(b[off : off+4])
	copy(b[off:off+4], a[:])
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:26], inetsum.IPv4Header(b[14:14+ihl]))
	l4 := b[14+ihl:]
	var ck int
	switch b[23] {
	case protoTCP:
		ck = 16
	case protoUDP:
		ck = 6
	default:
		return
	}
	if len(l4) < ck+2 {
		return
	}
	sum := binary.BigEndian.Uint16(l4[ck:])
	if b[23] == protoUDP && sum == 0 {
		return // no checksum
	}
	s := uint32(^sum)
	for i := 0; i < 4; i += 2 {
		s += uint32(^binary.BigEndian.Uint16(old[i:]))
		s += uint32(binary.BigEndian.Uint16(a[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	sum = ^uint16(s)
	if b[23] == protoUDP && sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(l4[ck:], sum)
}

// setMACs sets the frame's destination and source MAC.
func setMACs(b []byte, dst, src [6]byte) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
}

// arpRequest returns the target and sender of an ARP request in b.
func arpRequest(b []byte) (tpa netip.Addr, sha net.HardwareAddr, spa netip.Addr, ok bool) {
	if len(b) < 42 || binary.BigEndian.Uint16(b[20:22]) != 1 {
		return netip.Addr{}, nil, netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b[38:42])), net.HardwareAddr(b[22:28]), netip.AddrFrom4([4]byte(b[28:32])), true
}

func fnv32(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// DeviceMAC derives a locally administered MAC for a device (an ENI, a
// pod's veth) of a node.
func DeviceMAC(node, device string) net.HardwareAddr {
	h := fnv32(2166136261, []byte(node))
	h2 := fnv32(h^0x9e3779b9, []byte(device))
	return net.HardwareAddr{0x0e, byte(h2 >> 24), byte(h2 >> 16), byte(h2 >> 8), byte(h2), byte(h>>8) ^ byte(h2>>4)}
}
