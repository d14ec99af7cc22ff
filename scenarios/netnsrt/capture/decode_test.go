package capture

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/userspace"
)

func testFrames() map[string][]byte {
	h := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.0.1.5"), Dst: netip.MustParseAddr("10.0.2.6")}
	outer := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 8},
		Src: netip.MustParseAddr("10.255.0.1"), Dst: netip.MustParseAddr("10.255.0.2")}
	id := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	udp := frame.UDP(h, 40000, 7, id(0x0102030405060708))
	h6 := h
	h6.Src, h6.Dst = netip.MustParseAddr("fd00:1::5"), netip.MustParseAddr("fd00:2::6")
	return map[string][]byte{
		"icmp":        frame.ICMPEcho(h, false, 1, 2, id(42)),
		"icmp-reply":  frame.ICMPEcho(h, true, 1, 2, id(43)),
		"udp":         udp,
		"tcp-syn":     frame.TCP(h, 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, id(44)),
		"syn-ack":     frame.TCP(h, 80, 40000, 1, 2, frame.TCPFlags{SYN: true, ACK: true}, nil),
		"dot1q":       frame.PushVLAN(nil, udp, 100),
		"vxlan":       frame.VXLANEncap(outer, 10010, udp),
		"vxlan-dot1q": frame.VXLANEncap(outer, 10010, frame.PushVLAN(nil, udp, 30)),
		"arp":         frame.ARPRequest(h.SrcMAC, h.Src, h.Dst),
		"udp-9":       frame.UDP(h, 1, 2, make([]byte, 9)),
		"short":       {1, 2, 3},
		"icmp6":       frame.ICMPEcho(h6, false, 1, 2, id(45)),
		"udp6":        frame.UDP(h6, 40000, 7, id(46)),
		"tcp6-syn":    frame.TCP(h6, 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, id(47)),
		"vxlan-udp6":  frame.VXLANEncap(outer, 10010, frame.UDP(h6, 40000, 7, id(48))),
		"ns":          frame.NeighborSolicitation(h.SrcMAC, h6.Src, h6.Dst),
		"na":          frame.NeighborAdvertisement(h.SrcMAC, h6.Src, h.DstMAC, h6.Dst, frame.NASolicited),
	}
}

// TestDecodeAgreesWithStack checks the gopacket decoder against the
// hand-written reader the datapath uses (userspace.ProbeIDOf, FlowOf).
func TestDecodeAgreesWithStack(t *testing.T) {
	d := NewDecoder()
	for name, b := range testFrames() {
		t.Run(name, func(t *testing.T) {
			got := d.Decode(b)
			id, _ := userspace.ProbeIDOf(b)
			if got.Probe != id {
				t.Errorf("probe %#x, stack reads %#x", got.Probe, id)
			}
			f, ok := userspace.FlowOf(b)
			if got.HasFlow != ok || (ok && got.Flow != f) {
				t.Errorf("flow %+v (%v), stack reads %+v (%v)", got.Flow, got.HasFlow, f, ok)
			}
			if got.ARP != (name == "arp" || name == "ns" || name == "na") {
				t.Errorf("ARP %v", got.ARP)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range testFrames() {
		f.Add(b)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		got := d.Decode(b)
		id, _ := userspace.ProbeIDOf(b)
		if got.Probe != id {
			t.Fatalf("probe %#x, stack reads %#x", got.Probe, id)
		}
	})
}

// BenchmarkDecode is the cost of decoding one captured frame (goal: at
// most 400 ns with DecodingLayerParser).
func BenchmarkDecode(b *testing.B) {
	fs := testFrames()
	for _, name := range []string{"udp", "tcp-syn", "vxlan"} {
		fr := fs[name]
		b.Run(name, func(b *testing.B) {
			d := NewDecoder()
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(fr)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
		})
	}
}
