package vlan

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
)

func ipChecksumOK(h []byte) bool { return inetsum.IPv4Header(h[:20]) == 0 }

func newTestCore(t *testing.T) *Core {
	t.Helper()
	c := NewCore("core1", []string{"p0", "p1", "fw"}, MACFor("core1"), 0, 0)
	c.SetTrunk(0, 100, 200)
	c.SetTrunk(1, 100, 200)
	c.SetFirewall(2, MACFor("fw1"))
	for _, s := range []struct {
		name string
		vlan uint16
		net  string
	}{{"a", 100, "10.0.1.0/24"}, {"b", 200, "10.0.2.0/24"}} {
		p := netip.MustParsePrefix(s.net)
		if err := c.AddSVI(s.name, s.vlan, p, p.Addr().Next()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestCoreRouting(t *testing.T) {
	gwB := netip.MustParseAddr("10.0.2.1")
	cases := []struct {
		name  string
		ttl   uint8
		known bool // the core has ip3's MAC
		check func(t *testing.T, c *Core, r *rec)
	}{
		{"routed", 64, true, func(t *testing.T, c *Core, r *rec) {
			if len(r.sent) != 1 || r.sent[0].port != 1 {
				t.Fatalf("sent %v, want port 1", r.sentPorts())
			}
			b := r.sent[0].b
			p, err := frame.NewParser().Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.VLAN() != 200 || !bytes.Equal(p.Eth.SrcMAC, c.MAC()) || !bytes.Equal(p.Eth.DstMAC, mac3) {
				t.Errorf("vlan %d src %v dst %v", p.VLAN(), p.Eth.SrcMAC, p.Eth.DstMAC)
			}
			if p.IP4.TTL != 63 || !ipChecksumOK(b[18:38]) {
				t.Errorf("ttl %d checksum ok %v", p.IP4.TTL, ipChecksumOK(b[18:38]))
			}
			if e := r.last(); e.Action != datapath.ActRoute || e.Rule != "route:b" || e.Kind != datapath.KindRouter {
				t.Errorf("event %+v", e)
			}
		}},
		{"ttl-expired", 1, true, func(t *testing.T, c *Core, r *rec) {
			if e := r.last(); e.Reason != datapath.ReasonTTL || len(r.sent) != 0 {
				t.Errorf("event %+v sent %d", e, len(r.sent))
			}
		}},
		{"held-for-arp", 64, false, func(t *testing.T, c *Core, r *rec) {
			// An ARP request for ip3 floods VLAN 200 from the gateway; the
			// packet waits.
			if c.PendingCount() != 1 || len(r.sent) != 2 {
				t.Fatalf("pending %d, sent %v", c.PendingCount(), r.sentPorts())
			}
			p, err := frame.NewParser().Parse(r.sent[0].b)
			if err != nil || !p.Has(layers.LayerTypeARP) || p.VLAN() != 200 ||
				!bytes.Equal(p.ARP.SourceProtAddress, gwB.AsSlice()) || !bytes.Equal(p.ARP.DstProtAddress, ip3.AsSlice()) {
				t.Fatalf("not an ARP request for %v from %v: %v %v", ip3, gwB, err, p.Decoded)
			}
			// The reply releases it, routed.
			r.reset()
			c.Receive(0, 1, frame.PushVLAN(nil, frame.ARPReply(mac3, ip3, c.MAC(), gwB), 200), r)
			if c.PendingCount() != 0 || len(r.sent) != 1 || r.sent[0].port != 1 || !bytes.Equal(r.sent[0].b[0:6], mac3) {
				t.Errorf("after reply: pending %d sent %v", c.PendingCount(), r.sentPorts())
			}
		}},
		{"outside-to-firewall", 64, true, func(t *testing.T, c *Core, r *rec) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t)
			var r rec
			if tc.known {
				// ip3 asks for its gateway: the core answers and learns it.
				c.Receive(0, 1, frame.PushVLAN(nil, frame.ARPRequest(mac3, ip3, gwB), 200), &r)
				if len(r.sent) != 1 || r.sent[0].port != 1 {
					t.Fatalf("ARP reply sent %v", r.sentPorts())
				}
				if m, ok := c.Neighbor(0, ip3); !ok || !bytes.Equal(m, mac3) {
					t.Fatalf("core did not learn %v", ip3)
				}
				r.reset()
			}
			dst := ip3
			if tc.name == "outside-to-firewall" {
				dst = netip.MustParseAddr("203.0.113.5")
			}
			f := frame.ICMPEcho(frame.IPv4{SrcMAC: mac1, DstMAC: c.MAC(), Src: ip1, Dst: dst, TTL: tc.ttl}, false, 1, 1, nil)
			c.Receive(0, 0, frame.PushVLAN(nil, f, 100), &r)
			if tc.name == "outside-to-firewall" {
				if len(r.sent) != 1 || r.sent[0].port != 2 || frame.VLANOf(r.sent[0].b) != 0 ||
					!bytes.Equal(r.sent[0].b[0:6], MACFor("fw1")) || r.last().Rule != "route:default" {
					t.Errorf("sent %v, event %+v", r.sentPorts(), r.last())
				}
				return
			}
			tc.check(t, c, &r)
		})
	}
}

func TestCoreAnswersGatewayPing(t *testing.T) {
	c := newTestCore(t)
	gw := netip.MustParseAddr("10.0.1.1")
	var r rec
	c.Receive(0, 0, frame.PushVLAN(nil, icmp(mac1, c.MAC(), ip1, gw), 100), &r)
	if len(r.sent) != 1 {
		t.Fatalf("sent %v", r.sentPorts())
	}
	p, err := frame.NewParser().Parse(r.sent[0].b)
	if err != nil || p.ICMP4.TypeCode.Type() != layers.ICMPv4TypeEchoReply || !bytes.Equal(p.IP4.SrcIP, gw.AsSlice()) {
		t.Errorf("reply %v %v", err, p.Decoded)
	}
}
