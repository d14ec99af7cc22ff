package vlan

import (
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// FuzzReceive feeds arbitrary frames to every gen-1 node type on every
// kind of port: no panic, at least one trace event per frame, and frames
// sent only on the node's ports.
func FuzzReceive(f *testing.F) {
	h1 := frame.IPv4{SrcMAC: mac1, DstMAC: mac2, Src: ip1, Dst: ip3}
	f.Add(uint8(0), frame.ARPRequest(mac1, ip1, ip2))
	f.Add(uint8(1), frame.PushVLAN(nil, frame.UDP(h1, 1, 2, []byte("x")), 100))
	f.Add(uint8(2), frame.TCP(h1, 1, 80, 1, 0, frame.TCPFlags{SYN: true}, nil))
	f.Add(uint8(3), frame.PushVLAN(nil, icmp(mac1, MACFor("core1"), ip1, ip3), 100))
	f.Add(uint8(4), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 100, 0x08, 0x06})
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		host := NewHost("h1", []string{"eth1", "eth2"}, HostOptions{Stock: sel&8 != 0,
			SecurityGroups: []SecurityGroup{{Name: "g", Rules: []SGRule{{Direction: Ingress, Proto: ProtoTCP, PortMin: 80, PortMax: 80}}}},
			DefaultIngress: Drop})
		host.AttachInstance("vm1", 100)
		host.AttachInstance("vm2", 100)
		sw := newTestSwitch()
		core := NewCore("core1", []string{"p0", "p1", "fw"}, MACFor("core1"), 0, 0)
		core.SetTrunk(0, 100, 200)
		core.SetTrunk(1, 100, 200)
		core.SetFirewall(2, MACFor("fw1"))
		if err := core.AddSVI("a", 100, netip.MustParsePrefix("10.0.1.0/24"), netip.MustParseAddr("10.0.1.1")); err != nil {
			t.Fatal(err)
		}
		fw := NewFirewall("fw1", []string{"eth1"}, MACFor("fw1"), nil, Accept)
		nodes := []datapath.Node{host, sw, core, fw}
		n := nodes[int(sel)%len(nodes)]
		port := int(sel>>4) % len(n.Ports())
		var r rec
		n.Receive(0, port, b, &r)
		if len(r.evs) == 0 {
			t.Fatalf("%s port %d: no trace event for %x", n.Name(), port, b)
		}
		for _, s := range r.sent {
			if s.port < 0 || s.port >= len(n.Ports()) {
				t.Fatalf("%s sent on port %d of %d", n.Name(), s.port, len(n.Ports()))
			}
		}
	})
}
