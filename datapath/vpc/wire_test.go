package vpc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
)

func udpFrame(t *testing.T) []byte {
	t.Helper()
	return frame.UDP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.9.0.10"), Dst: netip.MustParseAddr("10.9.0.20")}, 40000, 7, []byte("hello"))
}

// checksumsOK recomputes the IPv4 and UDP/TCP checksums with gopacket.
func checksumsOK(b []byte) bool {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		return false
	}
	ihl := int(b[14]&0xf) * 4
	if inetsum.IPv4Header(b[14:14+ihl]) != 0 {
		return false
	}
	l4 := b[14+ihl : 14+int(binary.BigEndian.Uint16(b[16:18]))]
	var s uint32
	for _, w := range [][]byte{b[26:30], b[30:34]} {
		s += uint32(binary.BigEndian.Uint16(w[0:])) + uint32(binary.BigEndian.Uint16(w[2:]))
	}
	s += uint32(b[23]) + uint32(len(l4))
	for i := 0; i+1 < len(l4); i += 2 {
		s += uint32(binary.BigEndian.Uint16(l4[i:]))
	}
	if len(l4)%2 == 1 {
		s += uint32(l4[len(l4)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s) == 0xffff
}

func FuzzRewrite(f *testing.F) {
	f.Add([]byte{203, 0, 113, 7}, true)
	f.Add([]byte{0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, a []byte, dst bool) {
		if len(a) != 4 {
			return
		}
		b := udpFrame(t)
		ihl, _ := ipv4(b)
		rewrite(b, ihl, dst, [4]byte(a))
		if !checksumsOK(b) {
			t.Fatalf("checksums wrong after rewriting to %v", a)
		}
	})
}
