package vlan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// sink is an Output that counts and discards, as cheaply as possible.
type sink struct{ sent, traced int }

func (s *sink) Forward(port int, b []byte) { s.Send(port, b) }
func (s *sink) Send(int, []byte)           { s.sent++ }
func (s *sink) Trace(datapath.Event)       { s.traced++ }

func reportRate(b *testing.B, start time.Time) {
	if el := time.Since(start).Seconds(); el > 0 {
		b.ReportMetric(float64(b.N)/el, "frames/s")
	}
}

// benchHost returns a host with vm1 on VLAN 100 whose br-int knows vm1 on
// its tap and mac2 behind the patch port.
func benchHost(stock bool) (*Host, int) {
	opts := HostOptions{Stock: stock}
	if stock {
		opts.SecurityGroups = []SecurityGroup{{Name: "web", Rules: []SGRule{
			{Direction: Ingress, Proto: ProtoTCP, PortMin: 22, PortMax: 22, Action: Accept},
			{Direction: Egress, Proto: ProtoUDP, Action: Drop},
			{Direction: Egress, Proto: ProtoICMP, Action: Accept},
		}}}
	}
	h := NewHost("h1", []string{"eth1", "eth2"}, opts)
	p := h.AttachInstance("vm1", 100)
	var s sink
	h.Receive(0, p, icmp(mac1, mac2, ip1, ip3), &s)
	h.Receive(0, 0, frame.PushVLAN(nil, icmp(mac2, mac1, ip3, ip1), 100), &s)
	return h, p
}

func BenchmarkHost(b *testing.B) {
	cases := []struct {
		name   string
		stock  bool
		egress bool
	}{
		{"egress", false, true},
		{"ingress", false, false},
		{"egress-stock", true, true},
		{"ingress-stock", true, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h, p := benchHost(c.stock)
			f, port := icmp(mac1, mac2, ip1, ip3), p
			if !c.egress {
				f, port = frame.PushVLAN(nil, icmp(mac2, mac1, ip3, ip1), 100), 0
			}
			var s sink
			b.ReportAllocs()
			start := time.Now()
			now := time.Second
			for b.Loop() {
				h.Receive(now, port, f, &s)
			}
			reportRate(b, start)
			if s.sent == 0 {
				b.Fatal("nothing forwarded")
			}
		})
	}
}

func BenchmarkToR(b *testing.B) {
	s := NewSwitch("tor1", []string{"p0", "p1", "p2", "p3"}, 0)
	for p := range 4 {
		s.SetTrunk(p, 100, 200)
	}
	var out sink
	// 1024 learned MACs behind port 1, frames from port 0 to them.
	frames := make([][]byte, 1024)
	for i := range frames {
		m := [6]byte{2, 0, 0, 1, byte(i >> 8), byte(i)}
		s.Receive(0, 1, frame.PushVLAN(nil, icmp(m[:], mac1, ip3, ip1), 100), &out)
		frames[i] = frame.PushVLAN(nil, icmp(mac1, m[:], ip1, ip3), 100)
	}
	out = sink{}
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		s.Receive(time.Second, 0, frames[i&1023], &out)
		i++
	}
	reportRate(b, start)
	if out.sent == 0 {
		b.Fatal("nothing forwarded")
	}
}

func BenchmarkCoreRoute(b *testing.B) {
	c := NewCore("core1", []string{"p0", "p1"}, MACFor("core1"), 0, 0)
	c.SetTrunk(0, 100, 200)
	c.SetTrunk(1, 100, 200)
	if err := c.AddSVI("a", 100, netip.MustParsePrefix("10.0.1.0/24"), netip.MustParseAddr("10.0.1.1")); err != nil {
		b.Fatal(err)
	}
	if err := c.AddSVI("b", 200, netip.MustParsePrefix("10.0.2.0/24"), netip.MustParseAddr("10.0.2.1")); err != nil {
		b.Fatal(err)
	}
	var out sink
	// The core learns ip3 (10.0.2.13) behind port 1 from its ARP request.
	c.Receive(0, 1, frame.PushVLAN(nil, frame.ARPRequest(mac3, ip3, netip.MustParseAddr("10.0.2.1")), 200), &out)
	f := frame.PushVLAN(nil, icmp(mac1, c.MAC(), ip1, ip3), 100)
	out = sink{}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		c.Receive(time.Second, 0, f, &out)
	}
	reportRate(b, start)
	if out.sent != b.N {
		b.Fatalf("routed %d of %d", out.sent, b.N)
	}
}
