package stack

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath/frame"
)

// TestEncodeMatchesGopacket checks the hand-built frames byte for byte
// against the same frames serialised by gopacket (with computed lengths
// and checksums) through the frame package.
func TestEncodeMatchesGopacket(t *testing.T) {
	in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	me, dst := in.Addr().Addr(), netip.MustParseAddr("10.0.9.77")
	h := func(id uint16) frame.IPv4 {
		return frame.IPv4{SrcMAC: in.MAC(), DstMAC: make([]byte, 6), Src: me, Dst: dst, ID: id}
	}
	pl := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	odd := []byte{9, 8, 7}
	cases := []struct {
		name string
		mine func() []byte
		ref  func(id uint16) []byte
	}{
		{"icmp-request", func() []byte { return in.icmpEcho(dst, false, 0x1234, 0xfedc, pl) },
			func(id uint16) []byte { return frame.ICMPEcho(h(id), false, 0x1234, 0xfedc, pl) }},
		{"icmp-reply-odd", func() []byte { return in.icmpEcho(dst, true, 1, 2, odd) },
			func(id uint16) []byte { return frame.ICMPEcho(h(id), true, 1, 2, odd) }},
		{"udp", func() []byte { return in.udp(dst, 40000, 7, pl) },
			func(id uint16) []byte { return frame.UDP(h(id), 40000, 7, pl) }},
		{"udp-odd", func() []byte { return in.udp(dst, 53, 33333, odd) },
			func(id uint16) []byte { return frame.UDP(h(id), 53, 33333, odd) }},
		{"tcp-syn", func() []byte { return in.tcp(dst, 40000, 443, 99, 0, tcpSYN, pl) },
			func(id uint16) []byte { return frame.TCP(h(id), 40000, 443, 99, 0, frame.TCPFlags{SYN: true}, pl) }},
		{"tcp-syn-ack", func() []byte { return in.tcp(dst, 80, 40000, 7, 100, tcpSYN|tcpACK, nil) },
			func(id uint16) []byte {
				return frame.TCP(h(id), 80, 40000, 7, 100, frame.TCPFlags{SYN: true, ACK: true}, nil)
			}},
		{"tcp-rst", func() []byte { return in.tcp(dst, 81, 40000, 0, 100, tcpRST|tcpACK, nil) },
			func(id uint16) []byte {
				return frame.TCP(h(id), 81, 40000, 0, 100, frame.TCPFlags{RST: true, ACK: true}, nil)
			}},
		{"arp-request", func() []byte { return in.arpFrame(1, bcast, [6]byte{}, me, dst) },
			func(uint16) []byte { return frame.ARPRequest(in.MAC(), me, dst) }},
		{"arp-reply", func() []byte { return in.arpFrame(2, [6]byte(mac(2)), [6]byte(mac(2)), me, dst) },
			func(uint16) []byte { return frame.ARPReply(in.MAC(), me, mac(2), dst) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := append([]byte(nil), c.mine()...)
			want := c.ref(in.ipID)
			if !bytes.Equal(got, want) {
				t.Errorf("hand-built frame differs from gopacket's\n got %x\nwant %x", got, want)
			}
		})
	}
}

func BenchmarkEchoRoundTrip(b *testing.B) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	c := New("c", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	a.arp[c.Addr().Addr()] = c.mac6
	c.arp[a.Addr().Addr()] = a.mac6
	ra, rc := &recorder{}, &recorder{}
	b.ReportAllocs()
	for i := range b.N {
		ra.sent, rc.sent, ra.events, rc.events = ra.sent[:0], rc.sent[:0], ra.events[:0], rc.events[:0]
		a.Probe(0, ra, ProbeSpec{Proto: ICMP, Dst: c.Addr().Addr(), ID: uint64(i)})
		c.Receive(0, 0, ra.sent[0], rc)
		a.Receive(0, 0, rc.sent[0], ra)
	}
}

// TestEncodeMatchesGopacketIPv6 does the same for the IPv6 frames of a
// dual-stack instance: echo, UDP and TCP with the IPv6 pseudo-header in
// their checksums, and neighbour solicitation and advertisement.
func TestEncodeMatchesGopacketIPv6(t *testing.T) {
	in := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	in.SetIPv6(netip.MustParsePrefix("fd00::1/64"), netip.Addr{})
	me, dst := in.Addr6().Addr(), netip.MustParseAddr("fd00:9::77")
	h := frame.IPv4{SrcMAC: in.MAC(), DstMAC: make([]byte, 6), Src: me, Dst: dst}
	pl := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	odd := []byte{9, 8, 7}
	cases := []struct {
		name      string
		mine, ref func() []byte
	}{
		{"icmp6-request", func() []byte { return in.icmpEcho(dst, false, 0x1234, 0xfedc, pl) },
			func() []byte { return frame.ICMPEcho(h, false, 0x1234, 0xfedc, pl) }},
		{"icmp6-reply-odd", func() []byte { return in.icmpEcho(dst, true, 1, 2, odd) },
			func() []byte { return frame.ICMPEcho(h, true, 1, 2, odd) }},
		{"udp6", func() []byte { return in.udp(dst, 40000, 7, pl) },
			func() []byte { return frame.UDP(h, 40000, 7, pl) }},
		{"tcp6-syn", func() []byte { return in.tcp(dst, 40000, 443, 99, 0, tcpSYN, pl) },
			func() []byte { return frame.TCP(h, 40000, 443, 99, 0, frame.TCPFlags{SYN: true}, pl) }},
		{"ns", func() []byte { return in.nsFrame(dst) },
			func() []byte { return frame.NeighborSolicitation(in.MAC(), me, dst) }},
		{"na", func() []byte { return in.naFrame(me, [6]byte(mac(2)), dst) },
			func() []byte {
				return frame.NeighborAdvertisement(in.MAC(), me, mac(2), dst, frame.NASolicited|frame.NAOverride)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := append([]byte(nil), c.mine()...)
			if want := c.ref(); !bytes.Equal(got, want) {
				t.Errorf("hand-built frame differs from gopacket's\n got %x\nwant %x", got, want)
			}
		})
	}
}

// BenchmarkEchoRoundTripIPv6 is BenchmarkEchoRoundTrip over IPv6: the
// ICMPv6 echo goes through the decoder (the fixed-offset fast path is
// IPv4's), so it shows what a dual-stack probe costs the instance.
func BenchmarkEchoRoundTripIPv6(b *testing.B) {
	a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
	c := New("c", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
	a.SetIPv6(netip.MustParsePrefix("fd00::1/64"), netip.Addr{})
	c.SetIPv6(netip.MustParsePrefix("fd00::2/64"), netip.Addr{})
	a.arp[c.Addr6().Addr()] = c.mac6
	c.arp[a.Addr6().Addr()] = a.mac6
	ra, rc := &recorder{}, &recorder{}
	b.ReportAllocs()
	for i := range b.N {
		ra.sent, rc.sent, ra.events, rc.events = ra.sent[:0], rc.sent[:0], ra.events[:0], rc.events[:0]
		a.Probe(0, ra, ProbeSpec{Proto: ICMP, Dst: c.Addr6().Addr(), ID: uint64(i)})
		c.Receive(0, 0, ra.sent[0], rc)
		a.Receive(0, 0, rc.sent[0], ra)
	}
}
