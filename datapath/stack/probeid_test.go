package stack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath/frame"
)

// TestProbeIDOf checks that ProbeIDOf finds the ID in every probe an
// Instance sends, and in the same frames tagged or VXLAN-encapsulated,
// and that the flow matches the probe's.
func TestProbeIDOf(t *testing.T) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	dst := netip.MustParseAddr("10.0.0.2")
	a.arp[dst] = [6]byte(mac(2))
	outer := frame.IPv4{SrcMAC: mac(7), DstMAC: mac(8), Src: netip.MustParseAddr("172.16.0.1"), Dst: netip.MustParseAddr("172.16.0.2")}
	wraps := []struct {
		name string
		wrap func([]byte) []byte
	}{
		{"plain", func(b []byte) []byte { return b }},
		{"dot1q", func(b []byte) []byte { return frame.PushVLAN(nil, b, 100) }},
		{"qinq", func(b []byte) []byte { return frame.PushVLAN(nil, frame.PushVLAN(nil, b, 100), 200) }},
		{"vxlan", func(b []byte) []byte { return frame.VXLANEncap(outer, 10010, b) }},
		{"vxlan-dot1q", func(b []byte) []byte { return frame.PushVLAN(nil, frame.VXLANEncap(outer, 10010, b), 30) }},
	}
	for _, proto := range []Proto{ICMP, UDP, TCP} {
		for _, id := range []uint64{1, 0x1234_5678_9abc_def0, 1 << 40} {
			r := &recorder{}
			a.Probe(0, r, ProbeSpec{Proto: proto, Dst: dst, ID: id})
			if len(r.sent) != 1 {
				t.Fatalf("%v probe: sent %d frames", proto, len(r.sent))
			}
			for _, w := range wraps {
				t.Run(proto.String()+"/"+w.name, func(t *testing.T) {
					b := w.wrap(r.sent[0])
					got, ok := ProbeIDOf(b)
					if !ok || got != id {
						t.Errorf("ProbeIDOf = %#x, %v; want %#x", got, ok, id)
					}
					f, ok := FlowOf(b)
					if !ok || f.Src != a.Addr().Addr() || f.Dst != dst || f.Proto != uint8(map[Proto]int{ICMP: 1, UDP: 17, TCP: 6}[proto]) {
						t.Errorf("FlowOf = %+v, %v", f, ok)
					}
					if proto != ICMP && f.SrcPort != srcPort(id) {
						t.Errorf("source port %d, want %d", f.SrcPort, srcPort(id))
					}
				})
			}
		}
	}
	// Frames that carry no probe.
	none := map[string][]byte{
		"arp":      frame.ARPRequest(mac(1), a.Addr().Addr(), dst),
		"short":    {1, 2, 3},
		"syn-ack":  cp(a.tcp(dst, 80, 40000, 1, 2, tcpSYN|tcpACK, nil)),
		"long-udp": cp(a.udp(dst, 1, 2, make([]byte, 9))),
		"zero-id":  cp(a.udp(dst, 1, 2, make([]byte, 8))),
		"icmp-unreachable": func() []byte {
			b := append([]byte(nil), a.icmpEcho(dst, false, 1, 2, []byte{0, 0, 0, 0, 0, 0, 0, 9})...)
			b[ethLen+ipv4Len] = 3
			return b
		}(),
		"fragment": func() []byte {
			b := append([]byte(nil), a.udp(dst, 1, 2, []byte{0, 0, 0, 0, 0, 0, 0, 9})...)
			binary.BigEndian.PutUint16(b[ethLen+6:], 0x2000)
			return b
		}(),
	}
	for name, b := range none {
		t.Run("none/"+name, func(t *testing.T) {
			if id, ok := ProbeIDOf(b); ok {
				t.Errorf("ProbeIDOf = %#x, want none", id)
			}
		})
	}
	if f, ok := FlowOf(none["syn-ack"]); !ok || f.SrcPort != 80 || f.DstPort != 40000 || f.Reverse().Src != dst {
		t.Errorf("FlowOf(syn-ack) = %+v, %v", f, ok)
	}
}

// cp copies a frame out of the instance's reused buffer.
func cp(b []byte) []byte { return append([]byte(nil), b...) }

func FuzzProbeIDOf(f *testing.F) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	dst := netip.MustParseAddr("10.0.0.2")
	f.Add(append([]byte(nil), a.udp(dst, 40000, 7, []byte{0, 0, 0, 0, 0, 0, 0, 5})...))
	f.Add(append([]byte(nil), a.icmpEcho(dst, false, 1, 2, []byte{0, 0, 0, 0, 0, 0, 0, 5})...))
	f.Add(frame.VXLANEncap(frame.IPv4{SrcMAC: mac(7), DstMAC: mac(8), Src: dst, Dst: dst}, 1,
		append([]byte(nil), a.tcp(dst, 1, 2, 3, 4, tcpSYN, []byte{0, 0, 0, 0, 0, 0, 0, 5})...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := ProbeIDOf(b)
		if ok && id == 0 {
			t.Fatal("ok with ID 0")
		}
		FlowOf(b)
	})
}

func BenchmarkProbeIDOf(b *testing.B) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	dst := netip.MustParseAddr("10.0.0.2")
	fr := frame.VXLANEncap(frame.IPv4{SrcMAC: mac(7), DstMAC: mac(8), Src: dst, Dst: dst}, 1,
		append([]byte(nil), a.udp(dst, 40000, 7, []byte{0, 0, 0, 0, 0, 0, 0, 5})...))
	b.ReportAllocs()
	for b.Loop() {
		ProbeIDOf(fr)
	}
}
