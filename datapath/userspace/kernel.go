package userspace

import (
	"net"
	"net/netip"
)

// kernelSide is what the node's own kernel holds on a port's interface:
// the interface's MAC and its IPv4 addresses (a BGP session's /31, for
// example). An AF_PACKET socket only copies frames: whatever is addressed
// to the kernel has reached it through the normal stack already, so the
// node must neither forward it nor trace it nor count it as a drop.
type kernelSide struct {
	mac   [6]byte
	addrs []netip.Addr
}

// kernelSideOf reads ifi's MAC and IPv4 addresses; it runs inside the
// interface's namespace.
func kernelSideOf(ifi *net.Interface) kernelSide {
	var k kernelSide
	copy(k.mac[:], ifi.HardwareAddr)
	as, err := ifi.Addrs()
	if err != nil {
		return k
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				k.addrs = append(k.addrs, ip.Unmap())
			}
		}
	}
	return k
}

// owns reports whether frame b, read on the port, is the kernel's alone:
// a frame to the interface's own MAC (no node model uses the kernel's
// MACs: theirs are synthetic), or an ARP packet whose target protocol
// address is one of the interface's addresses (a request is broadcast:
// the kernel answers it, the node must not flood it). Frames the kernel
// sends never reach the node: its sockets ignore outgoing frames
// (PACKET_IGNORE_OUTGOING), and a peer node's socket sees them as
// addressed to its own kernel, or as ARP for its kernel's address.
func (k *kernelSide) owns(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	if k.mac != ([6]byte{}) && [6]byte(b[0:6]) == k.mac {
		return true
	}
	if len(k.addrs) == 0 || b[12] != 0x08 || b[13] != 0x06 || len(b) < 14+28 {
		return false
	}
	// ARP for IPv4 over Ethernet: the target protocol address is the
	// last 4 of its 28 bytes.
	arp := b[14:]
	if arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0 || arp[4] != 6 || arp[5] != 4 {
		return false
	}
	tpa := netip.AddrFrom4([4]byte(arp[24:28]))
	for _, a := range k.addrs {
		if a == tpa {
			return true
		}
	}
	return false
}
