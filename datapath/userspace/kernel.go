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
// an ARP packet whose target protocol address is one of the interface's
// addresses (a request is broadcast: the kernel answers it, the node must
// not flood it), or an IPv4 packet to one of them sent to the interface's
// MAC (a BGP session's segments). An interface without addresses owns
// nothing: a node model may use its kernel MAC as its own (gen 3's host
// side of a pod's veth is the pod's gateway, as Cilium's lxc devices
// are). Frames the kernel sends never reach the node: its sockets ignore
// outgoing frames (PACKET_IGNORE_OUTGOING), and a peer node's socket sees
// them as addressed to its own kernel, or as ARP for its kernel's address.
func (k *kernelSide) owns(b []byte) bool {
	if len(k.addrs) == 0 || len(b) < 14 {
		return false
	}
	switch {
	case b[12] == 0x08 && b[13] == 0x06 && len(b) >= 14+28:
		// ARP for IPv4 over Ethernet: the target protocol address is
		// the last 4 of its 28 bytes.
		arp := b[14:]
		if arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0 || arp[4] != 6 || arp[5] != 4 {
			return false
		}
		return k.has(netip.AddrFrom4([4]byte(arp[24:28])))
	case b[12] == 0x08 && b[13] == 0x00 && len(b) >= 14+20:
		return [6]byte(b[0:6]) == k.mac && k.has(netip.AddrFrom4([4]byte(b[14+16:14+20])))
	}
	return false
}

func (k *kernelSide) has(a netip.Addr) bool {
	for _, x := range k.addrs {
		if x == a {
			return true
		}
	}
	return false
}
