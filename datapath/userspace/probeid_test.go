package userspace

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
)

// sent records what a stack.Instance sends.
type sent struct{ frames [][]byte }

func (s *sent) Forward(port int, b []byte) { s.Send(port, b) }
func (s *sent) Send(_ int, b []byte)       { s.frames = append(s.frames, append([]byte(nil), b...)) }
func (s *sent) Trace(ev datapath.Event)    {}

// TestProbeIDOf checks that ProbeIDOf finds the ID in every probe a
// stack.Instance sends, and in the same frames tagged or VXLAN-encapsulated,
// and that the flow matches the probe's.
func TestProbeIDOf(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) { testProbeIDOf(t, v6) })
	}
}

func testProbeIDOf(t *testing.T, v6 bool) {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	a := stack.New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	peer := stack.New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	a.SetIPv6(netip.MustParsePrefix("fd00::1/64"), netip.Addr{})
	peer.SetIPv6(netip.MustParsePrefix("fd00::2/64"), netip.Addr{})
	src, dst := a.Addr().Addr(), peer.Addr().Addr()
	if v6 {
		src, dst = a.Addr6().Addr(), peer.Addr6().Addr()
	}
	// Resolve the peer's MAC: a's ARP request (or neighbour
	// solicitation), the peer's reply.
	req, rep := &sent{}, &sent{}
	a.Probe(0, req, stack.ProbeSpec{Proto: stack.ICMP, Dst: dst, ID: 99})
	peer.Receive(0, 0, req.frames[0], rep)
	a.Receive(0, 0, rep.frames[0], &sent{})
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
	protoNum := map[stack.Proto]uint8{stack.ICMP: 1, stack.UDP: 17, stack.TCP: 6}
	if v6 {
		protoNum[stack.ICMP] = 58
	}
	for _, proto := range []stack.Proto{stack.ICMP, stack.UDP, stack.TCP} {
		for _, id := range []uint64{1, 0x1234_5678_9abc_def0, 1 << 40} {
			s := &sent{}
			a.Probe(0, s, stack.ProbeSpec{Proto: proto, Dst: dst, ID: id})
			if len(s.frames) != 1 {
				t.Fatalf("%v probe: sent %d frames", proto, len(s.frames))
			}
			for _, w := range wraps {
				t.Run(proto.String()+"/"+w.name, func(t *testing.T) {
					b := w.wrap(s.frames[0])
					got, ok := ProbeIDOf(b)
					if !ok || got != id {
						t.Errorf("ProbeIDOf = %#x, %v; want %#x", got, ok, id)
					}
					f, ok := FlowOf(b)
					if !ok || f.Src != src || f.Dst != dst || f.Proto != protoNum[proto] {
						t.Errorf("FlowOf = %+v, %v", f, ok)
					}
					if proto != stack.ICMP && f.SrcPort != uint16(stack.EphemeralBase+id%(65536-stack.EphemeralBase)) {
						t.Errorf("source port %d", f.SrcPort)
					}
				})
			}
		}
	}
	h := frame.IPv4{SrcMAC: mac(1), DstMAC: mac(2), Src: src, Dst: dst}
	nine := []byte{0, 0, 0, 0, 0, 0, 0, 9}
	none := map[string][]byte{
		"arp":      frame.ARPRequest(mac(1), a.Addr().Addr(), peer.Addr().Addr()),
		"ns":       frame.NeighborSolicitation(mac(1), a.Addr6().Addr(), peer.Addr6().Addr()),
		"short":    {1, 2, 3},
		"syn-ack":  frame.TCP(h, 80, 40000, 1, 2, frame.TCPFlags{SYN: true, ACK: true}, nil),
		"long-udp": frame.UDP(h, 1, 2, make([]byte, 9)),
		"zero-id":  frame.UDP(h, 1, 2, make([]byte, 8)),
		"icmp-unreachable": func() []byte {
			b := frame.ICMPEcho(h, false, 1, 2, nine)
			if v6 {
				b[ethLen+ipv6Len] = 1
			} else {
				b[ethLen+ipv4Len] = 3
			}
			return b
		}(),
	}
	if !v6 {
		none["fragment"] = func() []byte {
			b := frame.UDP(h, 1, 2, nine)
			binary.BigEndian.PutUint16(b[ethLen+6:], 0x2000)
			return b
		}()
	} else {
		none["truncated"] = frame.UDP(h, 1, 2, nine)[:ethLen+ipv6Len+10]
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

func FuzzProbeIDOf(f *testing.F) {
	h := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}
	five := []byte{0, 0, 0, 0, 0, 0, 0, 5}
	f.Add(frame.UDP(h, 40000, 7, five))
	f.Add(frame.ICMPEcho(h, false, 1, 2, five))
	f.Add(frame.VXLANEncap(h, 1, frame.TCP(h, 1, 2, 3, 4, frame.TCPFlags{SYN: true}, five)))
	h6 := h
	h6.Src, h6.Dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	f.Add(frame.ICMPEcho(h6, false, 1, 2, five))
	f.Add(frame.VXLANEncap(h, 1, frame.UDP(h6, 40000, 7, five)))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := ProbeIDOf(b)
		if ok && id == 0 {
			t.Fatal("ok with ID 0")
		}
		FlowOf(b)
	})
}

func BenchmarkProbeIDOf(b *testing.B) {
	h := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}
	fr := frame.VXLANEncap(h, 1, frame.UDP(h, 40000, 7, []byte{0, 0, 0, 0, 0, 0, 0, 5}))
	b.ReportAllocs()
	for b.Loop() {
		ProbeIDOf(fr)
	}
}
