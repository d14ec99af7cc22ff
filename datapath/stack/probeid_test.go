package stack

import (
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath/frame"
)

// TestProbeIDOf reads the ID back from every frame a probe exchange puts
// on the wire, on both sides.
func TestProbeIDOf(t *testing.T) {
	var id uint64 = 0x0102_0304_0506_0708
	cases := []struct {
		name  string
		spec  ProbeSpec
		open  bool
		reply IDMatch
	}{
		{"icmp", ProbeSpec{Proto: ICMP, ID: id}, false, FullID},
		{"udp", ProbeSpec{Proto: UDP, ID: id}, false, FullID},
		{"tcp-open", ProbeSpec{Proto: TCP, DstPort: 80, ID: id}, true, Low32},
		{"tcp-closed", ProbeSpec{Proto: TCP, DstPort: 81, ID: id}, false, Low32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New("a", mac(1), netip.MustParsePrefix("10.0.0.1/24"), netip.Addr{})
			b := New("b", mac(2), netip.MustParsePrefix("10.0.0.2/24"), netip.Addr{})
			h := newHub(a, b)
			spec := c.spec
			spec.Dst = b.Addr().Addr()
			a.Probe(0, h.out[a], spec)
			h.run(t)
			ps := frame.NewParser()
			var got []IDMatch
			for _, f := range h.seen {
				p, err := ps.Parse(f)
				if err != nil {
					t.Fatal(err)
				}
				pid, m := ProbeIDOf(p)
				if m == NoID {
					continue // ARP
				}
				got = append(got, m)
				want := id
				if m == Low32 {
					want = uint64(uint32(id))
				}
				if pid != want {
					t.Errorf("frame %x: id %#x (%d), want %#x", f, pid, m, want)
				}
			}
			if len(got) != 2 || got[0] != FullID || got[1] != c.reply {
				t.Errorf("matches %v, want [full %d]", got, c.reply)
			}
		})
	}
	// Through a VXLAN tunnel.
	inner := frame.ICMPEcho(frame.IPv4{SrcMAC: mac(1), DstMAC: mac(2), Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")},
		false, 1, 2, []byte{0, 0, 0, 0, 0, 0, 0, 42})
	outer := frame.VXLANEncap(frame.IPv4{SrcMAC: mac(3), DstMAC: mac(4), Src: netip.MustParseAddr("172.16.0.1"), Dst: netip.MustParseAddr("172.16.0.2")}, 100, inner)
	p, err := frame.NewParser().Parse(outer)
	if err != nil {
		t.Fatal(err)
	}
	if pid, m := ProbeIDOf(p); pid != 42 || m != FullID {
		t.Errorf("vxlan: %d %d, want 42 full", pid, m)
	}
}

func FuzzProbeIDOf(f *testing.F) {
	h := frame.IPv4{SrcMAC: mac(1), DstMAC: mac(2), Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}
	f.Add(frame.ICMPEcho(h, false, 1, 2, []byte("12345678")))
	f.Add(frame.UDP(h, 40000, 7, []byte("12345678")))
	f.Add(frame.TCP(h, 40000, 80, 5, 0, frame.TCPFlags{SYN: true}, []byte("12345678")))
	f.Add(frame.TCP(h, 80, 40000, 5, 6, frame.TCPFlags{SYN: true, ACK: true}, nil))
	f.Add(frame.VXLANEncap(h, 7, frame.UDP(h, 1, 2, []byte("12345678"))))
	ps := frame.NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ps.Parse(b)
		if err != nil {
			return
		}
		id, m := ProbeIDOf(p)
		if m == NoID && id != 0 {
			t.Fatalf("no match but id %d", id)
		}
		if m == Low32 && id>>32 != 0 {
			t.Fatalf("low-32 match with high bits: %#x", id)
		}
	})
}
