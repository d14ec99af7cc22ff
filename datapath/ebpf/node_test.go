package ebpf

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
)

// rec is a recording datapath.Output.
type rec struct {
	sent   []sentFrame
	events []datapath.Event
}

type sentFrame struct {
	port int
	b    []byte
}

func (r *rec) Forward(port int, b []byte) { r.Send(port, b) }
func (r *rec) Send(port int, b []byte) {
	r.sent = append(r.sent, sentFrame{port, append([]byte(nil), b...)})
}
func (r *rec) Trace(ev datapath.Event) { r.events = append(r.events, ev) }

func testNode(t testing.TB, mode Mode) (*Node, *Endpoint, *Endpoint) {
	t.Helper()
	n, err := NewNode(NodeConfig{Name: "host1", Mode: mode, NodeIP: netip.MustParseAddr("172.16.128.1"),
		NodeCIDR: netip.MustParsePrefix("10.0.0.0/24"), ClusterCIDR: netip.MustParsePrefix("10.0.0.0/16"), Slots: 4,
		NICs: []NIC{{Name: "eth1", MAC: DeviceMAC("host1", "eth1"), GatewayMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := n.AddEndpoint("a", netip.MustParseAddr("10.0.0.2"), PodMAC("a"), FirstPodIdentity, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.AddEndpoint("b", netip.MustParseAddr("10.0.0.3"), PodMAC("b"), FirstPodIdentity+1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SetTunnel(netip.MustParsePrefix("10.0.1.0/24"), netip.MustParseAddr("172.16.128.2")); err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// TestNodeUnit drives one node with a recording output: the ARP responder,
// local redirect with MAC rewrite, anti-spoofing, tunnel miss, and frames
// for other MACs on the NIC.
func TestNodeUnit(t *testing.T) {
	n, a, b := testNode(t, Tunnel)
	gw := n.Gateway()
	udp := func(src, dst netip.Addr, srcMAC net.HardwareAddr) []byte {
		return frame.UDP(frame.IPv4{SrcMAC: srcMAC, DstMAC: n.HostMAC(), Src: src, Dst: dst}, 40000, 7, []byte("x"))
	}
	cases := []struct {
		name    string
		port    int
		in      []byte
		last    datapath.Event // Device, Action, Reason, Rule of the last event
		outPort int            // -1: nothing sent
		check   func(t *testing.T, out []byte)
	}{
		{"arp-for-peer", a.Port, frame.ARPRequest(a.MAC, a.IP, b.IP),
			datapath.Event{Device: ProgLxc, Action: datapath.ActOriginate, Rule: "arp:reply"}, a.Port,
			func(t *testing.T, out []byte) {
				p, _ := frame.NewParser().Parse(out)
				if p.ARP.Operation != layers.ARPReply || net.HardwareAddr(p.ARP.SourceHwAddress).String() != n.HostMAC().String() {
					t.Errorf("reply %+v, want is-at %v", p.ARP, n.HostMAC())
				}
			}},
		{"arp-for-gateway", a.Port, frame.ARPRequest(a.MAC, a.IP, gw),
			datapath.Event{Device: ProgLxc, Action: datapath.ActOriginate, Rule: "arp:reply"}, a.Port, nil},
		{"gratuitous", a.Port, frame.ARPRequest(a.MAC, a.IP, a.IP),
			datapath.Event{Device: ProgLxc, Action: datapath.ActDrop, Reason: datapath.ReasonNotForMe, Rule: "arp:ignored"}, -1, nil},
		{"local-redirect", a.Port, udp(a.IP, b.IP, a.MAC),
			datapath.Event{Device: b.Device, Action: datapath.ActForward}, b.Port,
			func(t *testing.T, out []byte) {
				if net.HardwareAddr(out[0:6]).String() != b.MAC.String() || net.HardwareAddr(out[6:12]).String() != b.NodeMAC.String() {
					t.Errorf("MACs %v -> %v, want %v -> %v", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]), b.NodeMAC, b.MAC)
				}
				if out[22] != 63 || inetsum.IPv4Header(out[14:34]) != 0 {
					t.Errorf("TTL %d or checksum wrong", out[22])
				}
			}},
		{"spoofed-source", a.Port, udp(b.IP, a.IP, a.MAC),
			datapath.Event{Device: ProgLxc, Action: datapath.ActDrop, Reason: datapath.ReasonPolicy, Rule: "source-ip-check"}, -1, nil},
		{"no-tunnel", a.Port, udp(a.IP, netip.MustParseAddr("10.0.7.1"), a.MAC),
			datapath.Event{Device: ProgLxc, Action: datapath.ActDrop, Reason: datapath.ReasonNoTunnel, Rule: "tunnel:miss"}, -1, nil},
		{"tunnel", a.Port, udp(a.IP, netip.MustParseAddr("10.0.1.5"), a.MAC),
			datapath.Event{Device: "eth1", Action: datapath.ActForward}, 0,
			func(t *testing.T, out []byte) {
				p, err := frame.NewParser().Parse(out)
				if err != nil || !p.IsVXLAN() || p.VXLAN.VNI != uint32(FirstPodIdentity) {
					t.Fatalf("not VXLAN with the identity as VNI: %v", err)
				}
				if inetsum.IPv4Header(out[14:34]) != 0 || int(binary.BigEndian.Uint16(out[16:18])) != len(out)-14 {
					t.Error("outer IPv4 header wrong")
				}
			}},
		{"nic-other-mac", 0, frame.UDP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 9, 9, 9, 9, 9},
			Src: netip.MustParseAddr("10.0.1.5"), Dst: a.IP}, 1, 2, nil),
			datapath.Event{Device: "eth1", Action: datapath.ActDrop, Reason: datapath.ReasonNotForMe, Rule: "mac"}, -1, nil},
		{"free-slot", len(n.nics) + 3, udp(a.IP, b.IP, a.MAC),
			datapath.Event{Device: "", Action: datapath.ActDrop, Reason: datapath.ReasonPortDown, Rule: "no-endpoint"}, -1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var o rec
			n.Receive(time.Millisecond, c.port, c.in, &o)
			if len(o.events) == 0 {
				t.Fatal("no trace events")
			}
			got := o.events[len(o.events)-1]
			if got.Device != c.last.Device || got.Action != c.last.Action || got.Reason != c.last.Reason || got.Rule != c.last.Rule {
				t.Errorf("last event %+v, want %+v", got, c.last)
			}
			if c.outPort < 0 {
				if len(o.sent) != 0 {
					t.Errorf("sent %d frames", len(o.sent))
				}
				return
			}
			if len(o.sent) != 1 || o.sent[0].port != c.outPort {
				t.Fatalf("sent %+v, want one frame on port %d", o.sent, c.outPort)
			}
			if c.check != nil {
				c.check(t, o.sent[0].b)
			}
		})
	}
}

// FuzzNodeReceive feeds arbitrary frames to a pod port and a NIC: the
// node must not panic, must trace every frame, and everything it sends
// must be a well-formed frame.
func FuzzNodeReceive(f *testing.F) {
	n, a, b := testNode(f, Tunnel)
	nicMAC := n.cfg.NICs[0].MAC
	f.Add(false, frame.ARPRequest(a.MAC, a.IP, b.IP))
	f.Add(false, frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: b.IP}, 1, 7, []byte("x")))
	f.Add(false, frame.ICMPEcho(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: n.Gateway()}, false, 1, 1, nil))
	f.Add(false, frame.TCP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: netip.MustParseAddr("10.0.1.3")}, 1, 80, 1, 0, frame.TCPFlags{SYN: true}, nil))
	inner := frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: netip.MustParseAddr("10.0.1.3"), Dst: b.IP}, 1, 7, nil)
	f.Add(true, frame.VXLANEncap(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: nicMAC,
		Src: netip.MustParseAddr("172.16.128.2"), Dst: n.cfg.NodeIP}, 300, inner))
	f.Add(true, frame.ARPRequest(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("172.16.0.1"), n.cfg.NodeIP))
	f.Add(false, frame.NeighborSolicitation(a.MAC, netip.MustParseAddr("fd10::2"), netip.MustParseAddr("fd10::1")))
	f.Fuzz(func(t *testing.T, nic bool, in []byte) {
		port := a.Port
		if nic {
			port = 0
		}
		var o rec
		n.Receive(0, port, in, &o)
		if len(o.events) == 0 {
			t.Fatal("frame handled without a trace event")
		}
		// What the node builds or rewrites must be sound; the payload
		// beyond the IPv4 header is the sender's and forwarded as is.
		for _, s := range o.sent {
			switch binary.BigEndian.Uint16(s.b[12:14]) {
			case etherTypeARP:
			case etherTypeIPv6:
				if !ipv6(s.b) {
					t.Fatalf("sent IPv6 frame with a bad header on port %d: % x", s.port, s.b[:min(len(s.b), 54)])
				}
			case etherTypeIPv4:
				ihl := int(s.b[14]&0xf) * 4
				if !ipv4(s.b) || inetsum.IPv4Header(s.b[14:14+ihl]) != 0 {
					t.Fatalf("sent IPv4 frame with a bad header on port %d: % x", s.port, s.b[:min(len(s.b), 34)])
				}
			default:
				t.Fatalf("sent a frame of ethertype %#x", binary.BigEndian.Uint16(s.b[12:14]))
			}
		}
	})
}

// TestConntrack: a reply to an enforced pod's own flow passes by
// conntrack until the entry expires; a full CT map is swept of expired
// entries.
func TestConntrack(t *testing.T) {
	n, a, _ := testNode(t, Tunnel)
	if err := n.SetPolicy(CompiledPolicy{Enforced: map[Identity]bool{a.Identity: true}}); err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParseAddr("10.0.1.5")
	out := frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: remote}, 40000, 7, nil)
	reply := func() []byte {
		inner := frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: remote, Dst: a.IP}, 7, 40000, nil)
		return frame.VXLANEncap(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: n.cfg.NICs[0].MAC,
			Src: netip.MustParseAddr("172.16.128.2"), Dst: n.cfg.NodeIP}, 300, inner)
	}
	cases := []struct {
		name   string
		at     time.Duration
		send   bool // a sends first
		action datapath.Action
		rule   string
	}{
		{"reply", time.Second, true, datapath.ActRedirect, "ct:reply"},
		{"reply-refreshes", time.Second + CTTimeout - time.Millisecond, false, datapath.ActRedirect, "ct:reply"},
		{"expired", 3*time.Second + 2*CTTimeout, false, datapath.ActDrop, DefaultDenyRule(300, a.Identity)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.send {
				n.Receive(0, a.Port, out, &rec{})
			}
			var o rec
			n.Receive(c.at, 0, reply(), &o)
			var bpf *datapath.Event
			for i := range o.events {
				if o.events[i].Device == ProgOverlay {
					bpf = &o.events[i]
				}
			}
			if bpf == nil || bpf.Action != c.action || bpf.Rule != c.rule {
				t.Errorf("bpf_overlay event %+v, want %s %q", bpf, c.action, c.rule)
			}
		})
	}
	// GC: a map of two entries, both expired, makes room.
	n.maps.CT = NewHashMap[CTKey, CTEntry](MapSpec{"ct", 2})
	n.ctTrack(0, CTKey{Src: [4]byte{1}}, 1, 1)
	n.ctTrack(0, CTKey{Src: [4]byte{2}}, 1, 1)
	n.ctTrack(2*CTTimeout, CTKey{Src: [4]byte{3}}, 1, 1)
	if _, ok := n.maps.CT.Lookup(CTKey{Src: [4]byte{3}}); !ok || n.maps.CT.Len() != 1 {
		t.Errorf("after GC: %d entries, new one present %v", n.maps.CT.Len(), ok)
	}
}

func TestDevices(t *testing.T) {
	for _, c := range []struct {
		mode  Mode
		names string
	}{
		{Tunnel, "eth1 cilium_host cilium_net cilium_vxlan lxc1 lxc2"},
		{Direct, "eth1 cilium_host cilium_net lxc1 lxc2"},
	} {
		n, _, _ := testNode(t, c.mode)
		var names []string
		seen := map[int]bool{}
		for _, d := range n.Devices() {
			names = append(names, d.Name)
			if seen[d.IfIndex] || len(d.MAC) != 6 {
				t.Errorf("%s: device %+v: duplicate ifindex or bad MAC", c.mode, d)
			}
			seen[d.IfIndex] = true
			if d.Name == DevCiliumHost && d.Addr.Addr() != n.Gateway() {
				t.Errorf("cilium_host has %v, want the gateway %v", d.Addr, n.Gateway())
			}
		}
		if got := strings.Join(names, " "); got != c.names {
			t.Errorf("%s: devices %q, want %q", c.mode, got, c.names)
		}
	}
}
