package frame

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
	ipA  = netip.MustParseAddr("10.0.1.10")
	ipB  = netip.MustParseAddr("10.0.2.20")
)

func TestBuildParse(t *testing.T) {
	h := IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB}
	cases := []struct {
		name  string
		frame []byte
		want  []gopacket.LayerType
		check func(t *testing.T, p *Parsed)
	}{
		{"arp-request", ARPRequest(macA, ipA, ipB), []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeARP},
			func(t *testing.T, p *Parsed) {
				if p.ARP.Operation != layers.ARPRequest || !bytes.Equal(p.ARP.DstProtAddress, ipB.AsSlice()) {
					t.Errorf("arp = %+v", p.ARP)
				}
			}},
		{"arp-reply", ARPReply(macB, ipB, macA, ipA), []gopacket.LayerType{layers.LayerTypeARP},
			func(t *testing.T, p *Parsed) {
				if p.ARP.Operation != layers.ARPReply || !bytes.Equal(p.ARP.SourceHwAddress, macB) {
					t.Errorf("arp = %+v", p.ARP)
				}
			}},
		{"icmp-echo", ICMPEcho(h, false, 7, 9, []byte("probe")), []gopacket.LayerType{layers.LayerTypeIPv4, layers.LayerTypeICMPv4},
			func(t *testing.T, p *Parsed) {
				if p.ICMP4.Id != 7 || p.ICMP4.Seq != 9 || p.ICMP4.TypeCode.Type() != layers.ICMPv4TypeEchoRequest {
					t.Errorf("icmp = %+v", p.ICMP4)
				}
			}},
		{"udp", UDP(h, 1000, 2000, []byte("x")), []gopacket.LayerType{layers.LayerTypeUDP},
			func(t *testing.T, p *Parsed) {
				if p.UDP.SrcPort != 1000 || p.UDP.DstPort != 2000 {
					t.Errorf("udp = %+v", p.UDP)
				}
			}},
		{"tcp-syn", TCP(h, 1000, 80, 42, 0, TCPFlags{SYN: true}, nil), []gopacket.LayerType{layers.LayerTypeTCP},
			func(t *testing.T, p *Parsed) {
				if !p.TCP.SYN || p.TCP.ACK || p.TCP.Seq != 42 {
					t.Errorf("tcp = %+v", p.TCP)
				}
			}},
	}
	ps := NewParser()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ps.Parse(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			for _, lt := range c.want {
				if !p.Has(lt) {
					t.Errorf("layer %v not decoded; got %v", lt, p.Decoded)
				}
			}
			c.check(t, p)
		})
	}
}

func TestVXLANRoundTrip(t *testing.T) {
	inner := ICMPEcho(IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB}, false, 1, 1, nil)
	outer := VXLANEncap(IPv4{SrcMAC: macB, DstMAC: macA, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}, 10100, inner)
	p, err := NewParser().Parse(outer)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsVXLAN() || p.VXLAN.VNI != 10100 {
		t.Fatalf("vxlan not decoded: vni %d inner %v", p.VXLAN.VNI, p.Inner)
	}
	if !bytes.Equal(p.VXLAN.Payload, inner) || !p.Inner.Has(layers.LayerTypeICMPv4) {
		t.Errorf("inner frame differs or not decoded: %v", p.Inner.Decoded)
	}
	if p.Eth.SrcMAC.String() != macB.String() {
		t.Errorf("outer Ethernet overwritten by inner: src %v", p.Eth.SrcMAC)
	}
}

func TestVLANPushPop(t *testing.T) {
	f := ARPRequest(macA, ipA, ipB)
	tagged := PushVLAN(nil, f, 100)
	if got := VLANOf(tagged); got != 100 {
		t.Fatalf("VLANOf(tagged) = %d", got)
	}
	p, err := NewParser().Parse(tagged)
	if err != nil || p.VLAN() != 100 || !p.Has(layers.LayerTypeARP) {
		t.Fatalf("parse tagged: vlan %d err %v layers %v", p.VLAN(), err, p.Decoded)
	}
	untagged, vid := PopVLAN(nil, tagged)
	if vid != 100 || !bytes.Equal(untagged, f) {
		t.Errorf("pop: vid %d, frame equal %v", vid, bytes.Equal(untagged, f))
	}
	same, vid := PopVLAN(nil, f)
	if vid != 0 || !bytes.Equal(same, f) {
		t.Errorf("pop of untagged changed it")
	}
	// StripVLAN is PopVLAN in place: the result lies in the tagged frame.
	stripped, vid := StripVLAN(slices.Clone(tagged))
	if vid != 100 || !bytes.Equal(stripped, f) {
		t.Errorf("strip: vid %d, frame equal %v", vid, bytes.Equal(stripped, f))
	}
	in := slices.Clone(f)
	if same, vid := StripVLAN(in); vid != 0 || &same[0] != &in[0] || !bytes.Equal(same, f) {
		t.Errorf("strip of untagged changed it")
	}
}

func FuzzParse(f *testing.F) {
	h := IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB}
	f.Add(ARPRequest(macA, ipA, ipB))
	f.Add(UDP(h, 1, 2, []byte("x")))
	f.Add(PushVLAN(nil, TCP(h, 1, 2, 3, 4, TCPFlags{SYN: true}, nil), 5))
	f.Add(VXLANEncap(h, 5, ICMPEcho(h, true, 1, 2, nil)))
	ps := NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ps.Parse(b)
		if err == nil && len(p.Decoded) == 0 {
			t.Fatalf("no error and nothing decoded for %x", b)
		}
		if len(b) >= 18 {
			tagged := PushVLAN(nil, b, 7)
			if VLANOf(tagged) != 7 {
				t.Fatal("push lost the tag")
			}
			back, _ := PopVLAN(nil, tagged)
			if !bytes.Equal(back, b) {
				t.Fatal("push/pop not inverse")
			}
			if back, _ := StripVLAN(tagged); !bytes.Equal(back, b) {
				t.Fatal("push/strip not inverse")
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	h := IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB}
	f := UDP(h, 1000, 2000, make([]byte, 18))
	ps := NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ps.Parse(f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVXLANSourcePortPerFlow: every packet of one flow gets the same outer
// source port (one ECMP path); another flow may get another.
func TestVXLANSourcePortPerFlow(t *testing.T) {
	h := IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB}
	outer := IPv4{SrcMAC: macB, DstMAC: macA, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}
	ps := NewParser()
	sport := func(inner []byte) layers.UDPPort {
		p, err := ps.Parse(VXLANEncap(outer, 1, inner))
		if err != nil {
			t.Fatal(err)
		}
		return p.UDP.SrcPort
	}
	first := sport(UDP(IPv4{SrcMAC: macA, DstMAC: macB, Src: ipA, Dst: ipB, ID: 1, TTL: 64}, 1000, 53, []byte("a")))
	for id := uint16(2); id < 50; id++ {
		h.ID, h.TTL = id, uint8(id)
		if got := sport(UDP(h, 1000, 53, []byte("payload varies"))); got != first {
			t.Fatalf("packet %d of the flow: source port %d, first was %d", id, got, first)
		}
	}
	differ := false
	for p := uint16(1001); p < 1032; p++ {
		differ = differ || sport(UDP(h, p, 53, nil)) != first
	}
	if !differ {
		t.Error("32 flows with other source ports all hashed to one outer source port")
	}
}
