package evpn

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/datapath/l3"
)

// NextHop is one underlay next hop: the local port and the MAC of the
// neighbour's interface at the other end (pre-resolved, as ARP on a
// point-to-point fabric link would).
type NextHop struct {
	Port int
	MAC  MAC
}

// underlay is the IPv4 FIB of a fabric node's underlay: loopback /32s to
// ECMP next-hop sets. A next hop whose port is down is skipped, which
// rehashes the flows that used it over the remaining ones.
type underlay struct {
	self   netip.Addr
	fib    map[uint32]*ecmpGroup // by destination IPv4, big-endian
	portUp []bool
	live   []int // scratch: live next-hop indices
}

type ecmpGroup struct {
	dst  netip.Addr
	nhs  []NextHop
	rule string // "underlay:<dst>"
}

func newUnderlay(self netip.Addr, ports int) underlay {
	u := underlay{self: self, fib: map[uint32]*ecmpGroup{}, portUp: make([]bool, ports)}
	for i := range u.portUp {
		u.portUp[i] = true
	}
	return u
}

func (u *underlay) setRoute(dst netip.Addr, nhs []NextHop) error {
	if !dst.Is4() {
		return fmt.Errorf("set underlay route to %s: destination must be IPv4", dst)
	}
	for _, nh := range nhs {
		if nh.Port < 0 || nh.Port >= len(u.portUp) {
			return fmt.Errorf("set underlay route to %s: port %d out of range", dst, nh.Port)
		}
	}
	if len(nhs) == 0 {
		delete(u.fib, key4(dst))
		return nil
	}
	u.fib[key4(dst)] = &ecmpGroup{dst: dst, nhs: slices.Clone(nhs), rule: "underlay:" + dst.String()}
	return nil
}

// lookup picks the next hop for dst among the live ones by hash.
func (u *underlay) lookup(dst netip.Addr, hash uint32) (NextHop, *ecmpGroup, bool) {
	g := u.fib[key4(dst)]
	if g == nil {
		return NextHop{}, nil, false
	}
	u.live = u.live[:0]
	for i, nh := range g.nhs {
		if u.portUp[nh.Port] {
			u.live = append(u.live, i)
		}
	}
	if len(u.live) == 0 {
		return NextHop{}, g, false
	}
	return g.nhs[u.live[hash%uint32(len(u.live))]], g, true
}

// Underlay frame layout (untagged Ethernet, IPv4 without options on the
// encap side, UDP, VXLAN).
const (
	ethLen    = 14
	ipv4Len   = 20
	udpLen    = 8
	vxlanLen  = 8
	encapLen  = ethLen + ipv4Len + udpLen + vxlanLen
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	etherVLAN = 0x8100
	protoUDP  = 17
	vxlanPort = 4789
)

// innerSourcePort derives the VXLAN UDP source port from the inner
// frame's flow (RFC 7348 §5): addresses, protocol and L4 ports of an IPv4
// or IPv6 packet, the MAC addresses of anything else, so that the fabric's ECMP
// keeps a flow on one path and spreads flows over all of them.
func innerSourcePort(inner []byte) uint16 {
	return 49152 + uint16(l3.FlowHash(2166136261, inner)%16384)
}

// encap writes into dst (reused) an Ethernet/IPv4/UDP/VXLAN packet from
// (srcMAC, src) to (dstMAC, dst) carrying inner in vni, with UDP source port
// sport (innerSourcePort of inner). The UDP checksum is
// zero, as RFC 7348 recommends for IPv4 and VTEPs send.
func encap(dst []byte, srcMAC, dstMAC MAC, src, dstIP netip.Addr, sport uint16, vni uint32, inner []byte) []byte {
	n := encapLen + len(inner)
	if cap(dst) < n {
		dst = make([]byte, n, n+256)
	}
	b := dst[:n]
	copy(b[0:6], dstMAC[:])
	copy(b[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(b[12:14], etherIPv4)
	ip := b[ethLen : ethLen+ipv4Len]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4Len+udpLen+vxlanLen+len(inner)))
	binary.BigEndian.PutUint16(ip[4:6], 0)      // ID
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = protoUDP
	ip[10], ip[11] = 0, 0
	s4, d4 := src.As4(), dstIP.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], inetsum.IPv4Header(ip))
	udp := b[ethLen+ipv4Len : ethLen+ipv4Len+udpLen]
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], vxlanPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+vxlanLen+len(inner)))
	udp[6], udp[7] = 0, 0
	vx := b[ethLen+ipv4Len+udpLen : encapLen]
	vx[0], vx[1], vx[2], vx[3] = 0x08, 0, 0, 0
	vx[4], vx[5], vx[6], vx[7] = byte(vni>>16), byte(vni>>8), byte(vni), 0
	copy(b[encapLen:], inner)
	return b
}

// decTTL decrements the TTL of the IPv4 header ip and patches its checksum
// incrementally (RFC 1624). It reports false when the TTL is exhausted.
func decTTL(ip []byte) bool {
	if ip[8] <= 1 {
		return false
	}
	old := binary.BigEndian.Uint16(ip[8:10])
	ip[8]--
	nw := binary.BigEndian.Uint16(ip[8:10])
	sum := uint32(^binary.BigEndian.Uint16(ip[10:12])) + uint32(^old) + uint32(nw)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(sum))
	return true
}

// ipv4Header returns the IPv4 header of an untagged frame and the offset of
// its payload, or ok=false when the frame is not a well-formed IPv4 packet.
func ipv4Header(b []byte) (ip []byte, payload int, ok bool) {
	if len(b) < ethLen+ipv4Len || binary.BigEndian.Uint16(b[12:14]) != etherIPv4 {
		return nil, 0, false
	}
	ihl := int(b[ethLen]&0x0f) * 4
	if b[ethLen]>>4 != 4 || ihl < ipv4Len || len(b) < ethLen+ihl {
		return nil, 0, false
	}
	tot := int(binary.BigEndian.Uint16(b[ethLen+2 : ethLen+4]))
	if tot < ihl || ethLen+tot > len(b) {
		return nil, 0, false
	}
	return b[ethLen : ethLen+ihl], ethLen + ihl, true
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// key4 is an IPv4 address as a map key (cheaper to hash than netip.Addr).
func key4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
