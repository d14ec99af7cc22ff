package userspace

import (
	"net"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath/frame"
)

// TestKernelOwns is the rule the runtime applies before a node sees a
// frame: what is addressed to the node's own kernel (ARP for its
// interface's addresses, IPv4 to them at its MAC) is the kernel's alone;
// everything else, broadcast included, is the node's, and so is all of an
// interface the kernel holds no address on (a model may use its MAC).
func TestKernelOwns(t *testing.T) {
	kmac := net.HardwareAddr{0x7e, 1, 2, 3, 4, 5}
	k := kernelSide{mac: [6]byte(kmac), addrs: []netip.Addr{mustAddr("169.254.0.1")}}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	arp := func(dst net.HardwareAddr, op uint16, target string) []byte {
		b := make([]byte, 14+28)
		copy(b[0:6], dst)
		copy(b[6:12], other)
		b[12], b[13] = 0x08, 0x06
		copy(b[14:], []byte{0, 1, 8, 0, 6, 4, 0, byte(op)})
		copy(b[14+8:], other)
		copy(b[14+14:], []byte{169, 254, 0, 0})
		tpa := mustAddr(target).As4()
		copy(b[14+24:], tpa[:])
		return b
	}
	ipTo := func(dst net.HardwareAddr, to string) []byte {
		return frame.UDP(frame.IPv4{SrcMAC: other, DstMAC: dst, Src: mustAddr("169.254.0.0"), Dst: mustAddr(to)}, 179, 40000, []byte("x"))
	}
	ip := func(dst net.HardwareAddr) []byte { return ipTo(dst, "169.254.0.1") }
	cases := []struct {
		name  string
		frame []byte
		k     kernelSide
		want  bool
	}{
		{"to the interface's MAC (a BGP segment)", ip(kmac), k, true},
		{"ARP request for a kernel address", arp(bcast, 1, "169.254.0.1"), k, true},
		{"ARP reply to the kernel", arp(kmac, 2, "169.254.0.1"), k, true},
		{"ARP request for another address", arp(bcast, 1, "10.0.0.1"), k, false},
		{"to a model's MAC", ip(other), k, false},
		{"broadcast IP", ip(bcast), k, false},
		{"to the interface's MAC, routed through (another address)", ipTo(kmac, "10.9.0.2"), k, false},
		{"to the MAC of an interface without addresses (gen 3's lxc)", ip(kmac), kernelSide{mac: [6]byte(kmac)}, false},
		{"ARP with no kernel address", arp(bcast, 1, "169.254.0.1"), kernelSide{mac: [6]byte(kmac)}, false},
		{"VLAN-tagged ARP (the kernel's interface is untagged)", frame.PushVLAN(nil, arp(bcast, 1, "169.254.0.1"), 100), k, false},
		{"no kernel side known", ip(kmac), kernelSide{}, false},
		{"runt", []byte{1, 2, 3}, k, false},
		{"truncated ARP", arp(bcast, 1, "169.254.0.1")[:30], k, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.k.owns(c.frame); got != c.want {
				t.Errorf("owns = %v, want %v", got, c.want)
			}
		})
	}
}
