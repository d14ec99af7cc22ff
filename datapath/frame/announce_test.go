package frame

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var annMAC = net.HardwareAddr{0x02, 0x42, 0x0a, 0x07, 0x00, 0x05}

// The announcements decode as what they claim to be, field by field.
func TestAnnouncements(t *testing.T) {
	ip := netip.MustParseAddr("10.7.0.5")
	t.Run("gratuitous-arp", func(t *testing.T) {
		p := gopacket.NewPacket(GratuitousARP(annMAC, ip), layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if eth == nil || arp == nil {
			t.Fatalf("not Ethernet/ARP: %v", p)
		}
		if !bytes.Equal(eth.DstMAC, Broadcast) || !bytes.Equal(eth.SrcMAC, annMAC) || arp.Operation != layers.ARPRequest ||
			!bytes.Equal(arp.SourceProtAddress, ip.AsSlice()) || !bytes.Equal(arp.DstProtAddress, ip.AsSlice()) ||
			!bytes.Equal(arp.SourceHwAddress, annMAC) || !bytes.Equal(arp.DstHwAddress, make([]byte, 6)) {
			t.Errorf("gratuitous ARP %+v %+v", eth, arp)
		}
	})
	t.Run("rarp", func(t *testing.T) {
		b := RARPAnnounce(annMAC)
		if len(b) != 60 || !bytes.Equal(b[0:6], Broadcast) || !bytes.Equal(b[6:12], annMAC) ||
			b[12] != 0x80 || b[13] != 0x35 || b[21] != 3 || !bytes.Equal(b[22:28], annMAC) || !bytes.Equal(b[32:38], annMAC) {
			t.Errorf("RARP % x", b)
		}
	})
	t.Run("unsolicited-na", func(t *testing.T) {
		ll := LinkLocal(annMAC)
		if want := netip.MustParseAddr("fe80::42:aff:fe07:5"); ll != want {
			t.Errorf("link-local of %v = %v, want %v", annMAC, ll, want)
		}
		p := gopacket.NewPacket(UnsolicitedNA(annMAC, ll), layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("decode: %v", el.Error())
		}
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if eth == nil || ip6 == nil || icmp == nil || na == nil {
			t.Fatalf("not an NA: %v", p)
		}
		if !bytes.Equal(eth.DstMAC, AllNodesMAC) || ip6.DstIP.String() != "ff02::1" || ip6.HopLimit != 255 ||
			!na.Override() || na.Solicited() || na.Router() || !na.TargetAddress.Equal(ll.AsSlice()) ||
			len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, annMAC) {
			t.Errorf("NA %+v %+v %+v", eth, ip6, na)
		}
		// The checksum covers the pseudo-header: recomputing it over the
		// decoded layers must give the same value.
		sum := icmp.Checksum
		_ = icmp.SetNetworkLayerForChecksum(ip6)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, icmp, gopacket.Payload(icmp.Payload)); err != nil {
			t.Fatal(err)
		}
		re := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeICMPv6, gopacket.Default).Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if re.Checksum != sum {
			t.Errorf("ICMPv6 checksum %#04x, recomputed %#04x", sum, re.Checksum)
		}
	})
}

// Neighbour discovery frames decode with gopacket and read back through
// ParseNDP; the solicited-node group and its MAC follow RFC 4291 and 2464.
func TestNDP(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	src, target := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::12:3456")
	if g := SolicitedNode(target); g != netip.MustParseAddr("ff02::1:ff12:3456") {
		t.Errorf("solicited-node group %s", g)
	}
	if m := MulticastMAC(SolicitedNode(target)); m != [6]byte{0x33, 0x33, 0xff, 0x12, 0x34, 0x56} {
		t.Errorf("group MAC %x", m)
	}
	ps := NewParser()
	for _, c := range []struct {
		b     []byte
		typ   uint8
		flags uint8
	}{
		{NeighborSolicitation(mac, src, target), layers.ICMPv6TypeNeighborSolicitation, 0},
		{NeighborAdvertisement(mac, target, mac, src, NASolicited|NARouter), layers.ICMPv6TypeNeighborAdvertisement, NASolicited | NARouter},
		{UnsolicitedNA(mac, target), layers.ICMPv6TypeNeighborAdvertisement, NAOverride},
	} {
		p, err := ps.Parse(c.b)
		if err != nil || !p.Has(layers.LayerTypeICMPv6) {
			t.Fatalf("parse %x: %v", c.b, err)
		}
		nd, ok := ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload)
		if !ok || nd.Type != c.typ || nd.Flags != c.flags || nd.Target != target || !nd.HasLL || nd.LLAddr != [6]byte(mac) {
			t.Errorf("ParseNDP = %+v %v, want type %d flags %#x target %s", nd, ok, c.typ, c.flags, target)
		}
	}
	if _, ok := ParseNDP(layers.ICMPv6TypeEchoRequest, make([]byte, 24)); ok {
		t.Error("echo request read as NDP")
	}
	if _, ok := ParseNDP(layers.ICMPv6TypeNeighborSolicitation, make([]byte, 10)); ok {
		t.Error("truncated solicitation read as NDP")
	}
}

// Address resolution is ARP or neighbour discovery, tagged or not; an
// echo over IPv6 is not.
func TestIsResolution(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	a, b := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"arp", ARPRequest(mac, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")), true},
		{"ns", NeighborSolicitation(mac, a, b), true},
		{"ns-tagged", PushVLAN(nil, NeighborSolicitation(mac, a, b), 10), true},
		{"na", NeighborAdvertisement(mac, a, mac, b, NASolicited), true},
		{"echo6", ICMPEcho(IPv4{SrcMAC: mac, DstMAC: mac, Src: a, Dst: b}, false, 1, 1, nil), false},
		{"echo4", ICMPEcho(IPv4{SrcMAC: mac, DstMAC: mac, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}, false, 1, 1, nil), false},
		{"short", []byte{1, 2}, false},
	} {
		if got := IsResolution(c.b); got != c.want {
			t.Errorf("%s: IsResolution = %v, want %v", c.name, got, c.want)
		}
	}
}

// The announcements, built byte by byte (package gratuitous), are the
// frames gopacket serializes from the same fields.
func TestAnnouncementsMatchGopacket(t *testing.T) {
	for _, ip := range []netip.Addr{netip.MustParseAddr("10.7.0.5"), netip.MustParseAddr("192.168.255.1")} {
		if got, want := GratuitousARP(annMAC, ip), ARPRequest(annMAC, ip, ip); !bytes.Equal(got, want) {
			t.Errorf("gratuitous ARP for %v:\n got % x\nwant % x", ip, got, want)
		}
	}
	for _, target := range []netip.Addr{LinkLocal(annMAC), netip.MustParseAddr("fd00::12:3456")} {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
			SrcIP: target.AsSlice(), DstIP: net.ParseIP("ff02::1")}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
		if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		na := &layers.ICMPv6NeighborAdvertisement{Flags: NAOverride, TargetAddress: target.AsSlice(),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: annMAC}}}
		want := mustSerialize(append(Ethernet(annMAC, AllNodesMAC, layers.EthernetTypeIPv6, 0), ip, icmp, na)...)
		if got := UnsolicitedNA(annMAC, target); !bytes.Equal(got, want) {
			t.Errorf("unsolicited NA for %v:\n got % x\nwant % x", target, got, want)
		}
	}
}
