package frame

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/google/gopacket/layers"
)

// Frames an instance (or its hypervisor) sends when it attaches to a port,
// so that every MAC table on the way learns where it is now and every
// neighbour cache updates its entry. Each has the instance's MAC as its
// Ethernet source and goes to a broadcast or all-nodes address.

// EthernetTypeRARP is the ethertype of Reverse ARP (RFC 903).
const EthernetTypeRARP layers.EthernetType = 0x8035

// AllNodesMAC is the Ethernet address of ff02::1, the IPv6 all-nodes group.
var AllNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}

// GratuitousARP builds the announcement Linux sends when an address comes
// up (arp_notify) and `arping -U` sends: a broadcast ARP request whose
// sender and target are both ip, with a zero target hardware address.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	return ARPRequest(mac, ip, ip)
}

// RARPAnnounce builds the frame QEMU's announce_self sends after a live
// migration (and OVS on a bond failover): a broadcast RARP "reverse
// request" (opcode 3) with the MAC as sender and target and no addresses.
func RARPAnnounce(mac net.HardwareAddr) []byte {
	b := make([]byte, 0, 60)
	b = append(b, Broadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, uint16(EthernetTypeRARP))
	b = binary.BigEndian.AppendUint16(b, 1)      // hardware: Ethernet
	b = binary.BigEndian.AppendUint16(b, 0x0800) // protocol: IPv4
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, 3) // reverse request
	b = append(b, mac...)
	b = append(b, 0, 0, 0, 0)
	b = append(b, mac...)
	b = append(b, 0, 0, 0, 0)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// LinkLocal returns the IPv6 link-local address a Linux interface with
// mac configures by default (fe80::/64 with the modified EUI-64 of mac).
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// UnsolicitedNA builds the unsolicited neighbour advertisement (RFC 4861
// 7.2.6) Linux sends for an address when its interface comes up or
// moves (ndisc_notify, netdev_notify_peers): from target to ff02::1, hop
// limit 255, the override flag set and not solicited, with the target
// link-layer address option.
func UnsolicitedNA(mac net.HardwareAddr, target netip.Addr) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: target.AsSlice(), DstIP: net.ParseIP("ff02::1")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err) // ip is an IPv6 layer
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags:         0x20, // override
		TargetAddress: target.AsSlice(),
		Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: mac}},
	}
	ls := Ethernet(mac, AllNodesMAC, layers.EthernetTypeIPv6, 0)
	return mustSerialize(append(ls, ip, icmp, na)...)
}
