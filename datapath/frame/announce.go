package frame

import (
	"net"
	"net/netip"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/frame/gratuitous"
)

// Frames an instance (or its hypervisor) sends when it attaches to a port,
// so that every MAC table on the way learns where it is now and every
// neighbour cache updates its entry. Each has the instance's MAC as its
// Ethernet source and goes to a broadcast or all-nodes address.

// EthernetTypeRARP is the ethertype of Reverse ARP (RFC 903).
const EthernetTypeRARP layers.EthernetType = gratuitous.EthertypeRARP

// AllNodesMAC is the Ethernet address of ff02::1, the IPv6 all-nodes group.
var AllNodesMAC = gratuitous.AllNodesMAC

// GratuitousARP builds the announcement Linux sends when an address comes
// up (arp_notify) and `arping -U` sends: a broadcast ARP request whose
// sender and target are both ip, with a zero target hardware address
// (gratuitous.ARP).
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte { return gratuitous.ARP(mac, ip) }

// RARPAnnounce builds the frame QEMU's announce_self sends after a live
// migration (and OVS on a bond failover): a broadcast RARP "reverse
// request" (opcode 3) with the MAC as sender and target and no addresses
// (gratuitous.RARP).
func RARPAnnounce(mac net.HardwareAddr) []byte { return gratuitous.RARP(mac) }

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
// link-layer address option (gratuitous.NA).
func UnsolicitedNA(mac net.HardwareAddr, target netip.Addr) []byte { return gratuitous.NA(mac, target) }
