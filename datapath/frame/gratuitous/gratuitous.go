package gratuitous

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/netbed/netbed/datapath/frame/inetsum"
)

// Ethertypes of the frames built here.
const (
	EthertypeARP  = 0x0806
	EthertypeRARP = 0x8035 // Reverse ARP (RFC 903)
	EthertypeIPv6 = 0x86dd
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// AllNodesMAC is the Ethernet address of ff02::1, the IPv6 all-nodes group.
var AllNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}

// minFrame is the shortest Ethernet frame without its FCS; shorter ones
// are padded with zeros, as a NIC pads them.
const minFrame = 60

// ARP builds the announcement Linux sends when an address comes up
// (arp_notify) and `arping -U` sends: a broadcast ARP request whose
// sender and target are both ip, with a zero target hardware address.
func ARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	return arp(EthertypeARP, 1, mac, ip.As4(), ip.As4())
}

// RARP builds the frame QEMU's announce_self sends after a live
// migration (and OVS on a bond failover): a broadcast RARP "reverse
// request" (opcode 3) with the MAC as sender and target and no addresses.
func RARP(mac net.HardwareAddr) []byte {
	return arp(EthertypeRARP, 3, mac, [4]byte{}, [4]byte{})
}

// arp builds a broadcast ARP-format frame (Ethernet, IPv4) of ethertype
// etype and opcode op. A request's target hardware address is zero, a
// reverse request's the sender's.
func arp(etype, op uint16, mac net.HardwareAddr, spa, tpa [4]byte) []byte {
	b := make([]byte, 0, minFrame)
	b = append(b, Broadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, etype)
	b = binary.BigEndian.AppendUint16(b, 1)      // hardware: Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // protocol: IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, mac...)
	b = append(b, spa[:]...)
	if op == 3 {
		b = append(b, mac...)
	} else {
		b = append(b, 0, 0, 0, 0, 0, 0)
	}
	b = append(b, tpa[:]...)
	return pad(b)
}

func pad(b []byte) []byte {
	for len(b) < minFrame {
		b = append(b, 0)
	}
	return b
}

// NA builds the unsolicited neighbour advertisement (RFC 4861 7.2.6)
// Linux sends for an address when its interface comes up or moves
// (ndisc_notify, netdev_notify_peers): from target to ff02::1, hop limit
// 255, the override flag set and not solicited, with the target
// link-layer address option.
func NA(mac net.HardwareAddr, target netip.Addr) []byte {
	allNodes := netip.MustParseAddr("ff02::1").As16()
	src := target.As16()
	// ICMPv6: type 136, code 0, checksum, flags (override), reserved,
	// target, option 2 (target link-layer address) of one 8-byte unit.
	icmp := []byte{136, 0, 0, 0, 0x20, 0, 0, 0}
	icmp = append(icmp, src[:]...)
	icmp = append(icmp, 2, 1)
	icmp = append(icmp, mac...)
	// The checksum covers the pseudo-header (RFC 8200 8.1): source,
	// destination, upper-layer length, next header.
	var ph []byte
	ph = append(ph, src[:]...)
	ph = append(ph, allNodes[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(icmp)))
	ph = append(ph, 0, 0, 0, 58)
	binary.BigEndian.PutUint16(icmp[2:], inetsum.Sum(append(ph, icmp...)))

	b := make([]byte, 0, 14+40+len(icmp))
	b = append(b, AllNodesMAC...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, EthertypeIPv6)
	b = append(b, 0x60, 0, 0, 0) // version 6, no class or flow label
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, 58, 255) // next header ICMPv6, hop limit 255
	b = append(b, src[:]...)
	b = append(b, allNodes[:]...)
	return append(b, icmp...)
}
