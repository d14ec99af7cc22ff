package l3

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/topologies"
)

// slowFIB is the obvious model: a list scanned for the longest match.
type slowFIB struct {
	ps   []netip.Prefix
	vals []int
}

func (s *slowFIB) insert(p netip.Prefix, v int) {
	p = p.Masked()
	for i, q := range s.ps {
		if q == p {
			s.vals[i] = v
			return
		}
	}
	s.ps = append(s.ps, p)
	s.vals = append(s.vals, v)
}

func (s *slowFIB) delete(p netip.Prefix) {
	p = p.Masked()
	for i, q := range s.ps {
		if q == p {
			s.ps = append(s.ps[:i], s.ps[i+1:]...)
			s.vals = append(s.vals[:i], s.vals[i+1:]...)
			return
		}
	}
}

func (s *slowFIB) lookup(a netip.Addr) (int, int, bool) {
	best, v := -1, 0
	for i, p := range s.ps {
		if p.Contains(a) && p.Bits() > best {
			best, v = p.Bits(), s.vals[i]
		}
	}
	return v, best, best >= 0
}

func randAddr(r *rand.Rand) netip.Addr {
	// Concentrate on a few /8s so that prefixes overlap.
	return netip.AddrFrom4([4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
}

func TestFIBDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			f, s := NewFIB[int](), &slowFIB{}
			var inserted []netip.Prefix
			for i := range 3000 {
				switch {
				case i%7 == 6 && len(inserted) > 0:
					p := inserted[r.IntN(len(inserted))]
					f.Delete(p)
					s.delete(p)
				default:
					p := netip.PrefixFrom(randAddr(r), r.IntN(33))
					if err := f.Insert(p, i); err != nil {
						t.Fatal(err)
					}
					s.insert(p, i)
					inserted = append(inserted, p)
				}
				a := randAddr(r)
				gv, gp, gok := f.LookupAddr(a)
				wv, wbits, wok := s.lookup(a)
				if gok != wok || gok && (gv != wv || gp.Bits() != wbits) {
					t.Fatalf("step %d lookup %v: got (%d, %v, %v), want (%d, /%d, %v)", i, a, gv, gp, gok, wv, wbits, wok)
				}
			}
			if f.Len() != len(s.ps) {
				t.Errorf("Len = %d, model has %d", f.Len(), len(s.ps))
			}
			n := 0
			f.Walk(func(netip.Prefix, int) bool { n++; return true })
			if n != len(s.ps) {
				t.Errorf("Walk visited %d, model has %d", n, len(s.ps))
			}
		})
	}
}

func TestFIBRejectsIPv6(t *testing.T) {
	err := NewFIB[int]().Insert(netip.MustParsePrefix("2001:db8::/32"), 1)
	if !errors.Is(err, ErrNotIPv4) {
		t.Fatalf("err = %v, want ErrNotIPv4", err)
	}
}

// rec records what a node sends and traces.
type rec struct {
	sent   []sent
	events []datapath.Event
}

type sent struct {
	port  int
	frame []byte
}

func (r *rec) Forward(port int, b []byte) { r.Send(port, b) }
func (r *rec) Send(port int, f []byte) {
	r.sent = append(r.sent, sent{port, append([]byte(nil), f...)})
}
func (r *rec) Trace(ev datapath.Event) { r.events = append(r.events, ev) }

var (
	hostMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	nbrA    = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1}
	nbrB    = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 2}
)

func testRouter(t *testing.T) *Router {
	t.Helper()
	r, err := NewRouter("leaf1", []Port{
		{Name: "e1", MAC: PortMAC("leaf1", 0), IP: netip.MustParsePrefix("192.168.1.1/24")},
		{Name: "e2", MAC: PortMAC("leaf1", 1)},
		{Name: "e3", MAC: PortMAC("leaf1", 2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.AddLocal(netip.MustParseAddr("10.255.0.1"))
	for _, rt := range []Route{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHops: []NextHop{{1, nbrA}, {2, nbrB}}},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), NextHops: []NextHop{{2, nbrB}}},
		{Prefix: netip.MustParsePrefix("192.168.1.7/32"), NextHops: []NextHop{{0, hostMAC}}},
		{Prefix: netip.MustParsePrefix("10.255.0.1/32"), NextHops: []NextHop{{LocalPort, nil}}},
	} {
		if err := r.AddRoute(rt); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func validIPChecksum(f []byte) bool {
	ihl := int(f[14]&0xf) * 4
	return inetsum.IPv4Header(f[14:14+ihl]) == 0
}

func TestRouterReceive(t *testing.T) {
	host := netip.MustParseAddr("192.168.1.7")
	toLeaf := func(dst string, ttl uint8) []byte {
		return frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: host, Dst: netip.MustParseAddr(dst), TTL: ttl}, 1000, 2000, []byte("x"))
	}
	cases := []struct {
		name    string
		in      []byte
		action  datapath.Action
		reason  datapath.Reason
		rule    string
		outPort int // -1: nothing sent
		dstMAC  net.HardwareAddr
	}{
		{"longest-match", toLeaf("10.1.2.3", 64), datapath.ActRoute, "", "route:10.1.2.0/24", 2, nbrB},
		{"back-to-host", frame.UDP(frame.IPv4{SrcMAC: nbrA, DstMAC: PortMAC("leaf1", 1), Src: netip.MustParseAddr("10.9.9.9"), Dst: host}, 1, 2, nil),
			datapath.ActRoute, "", "route:192.168.1.7/32", 0, hostMAC},
		{"no-route", toLeaf("172.16.0.1", 64), datapath.ActDrop, datapath.ReasonNoRoute, "", -1, nil},
		{"ttl", toLeaf("10.1.2.3", 1), datapath.ActDrop, datapath.ReasonTTL, "", -1, nil},
		{"not-my-mac", frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: nbrA, Src: host, Dst: netip.MustParseAddr("10.1.2.3")}, 1, 2, nil),
			datapath.ActDrop, datapath.ReasonNotForMe, "", -1, nil},
		{"arp-own", frame.ARPRequest(hostMAC, host, netip.MustParseAddr("192.168.1.1")), datapath.ActDeliver, "", "arp:reply", 0, hostMAC},
		{"arp-other", frame.ARPRequest(hostMAC, host, netip.MustParseAddr("192.168.1.9")), datapath.ActDrop, datapath.ReasonNotForMe, "", -1, nil},
		{"echo-loopback", frame.ICMPEcho(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: host, Dst: netip.MustParseAddr("10.255.0.1")}, false, 3, 4, []byte("hi")),
			datapath.ActDeliver, "", "local", 0, hostMAC},
		{"truncated", []byte{1, 2, 3}, datapath.ActDrop, datapath.ReasonMalformed, "", -1, nil},
	}
	ps := frame.NewParser()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testRouter(t)
			var o rec
			inPort := 0
			if c.name == "back-to-host" {
				inPort = 1
			}
			// Receive may rewrite the frame it is given (datapath.Node).
			r.Receive(time.Millisecond, inPort, bytes.Clone(c.in), &o)
			if len(o.events) != 1 {
				t.Fatalf("events = %+v, want 1", o.events)
			}
			ev := o.events[0]
			if ev.Action != c.action || ev.Reason != c.reason || ev.Rule != c.rule || ev.Kind != datapath.KindRouter {
				t.Errorf("event = %+v, want action %s reason %q rule %q", ev, c.action, c.reason, c.rule)
			}
			if c.outPort < 0 {
				if len(o.sent) != 0 {
					t.Errorf("sent %d frames, want none", len(o.sent))
				}
				return
			}
			if len(o.sent) != 1 || o.sent[0].port != c.outPort {
				t.Fatalf("sent = %+v, want one frame on port %d", o.sent, c.outPort)
			}
			out := o.sent[0].frame
			p, err := ps.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if p.Eth.DstMAC.String() != c.dstMAC.String() || p.Eth.SrcMAC.String() != PortMAC("leaf1", c.outPort).String() {
				t.Errorf("MACs %v -> %v, want %v -> %v", p.Eth.SrcMAC, p.Eth.DstMAC, PortMAC("leaf1", c.outPort), c.dstMAC)
			}
			switch c.action {
			case datapath.ActRoute:
				if p.IP4.TTL != c.in[22]-1 {
					t.Errorf("TTL %d, want %d", p.IP4.TTL, c.in[22]-1)
				}
				if !validIPChecksum(out) {
					t.Error("IPv4 header checksum wrong after TTL decrement")
				}
			case datapath.ActDeliver:
				if c.rule == "arp:reply" && (p.ARP.Operation != layers.ARPReply || net.HardwareAddr(p.ARP.SourceHwAddress).String() != PortMAC("leaf1", 0).String()) {
					t.Errorf("ARP reply = %+v", p.ARP)
				}
				if c.rule == "local" && (!p.Has(layers.LayerTypeICMPv4) || p.ICMP4.TypeCode.Type() != layers.ICMPv4TypeEchoReply || p.ICMP4.Seq != 4) {
					t.Errorf("echo reply = %+v", p.ICMP4)
				}
			}
		})
	}
}

func TestECMPRehash(t *testing.T) {
	r := testRouter(t)
	send := func() map[int]int {
		var o rec
		for i := range 200 {
			f := frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: netip.MustParseAddr("192.168.1.7"),
				Dst: netip.AddrFrom4([4]byte{10, 2, byte(i), 1})}, uint16(1000+i), 80, nil)
			r.Receive(0, 0, f, &o)
		}
		n := map[int]int{}
		for _, s := range o.sent {
			n[s.port]++
		}
		return n
	}
	before := send()
	if before[1] == 0 || before[2] == 0 || before[1]+before[2] != 200 {
		t.Fatalf("ECMP spread over ports = %v, want both of 1 and 2", before)
	}
	r.SetPortState(0, 2, false, &rec{})
	if got := send(); got[1] != 200 {
		t.Errorf("with port 2 down: %v, want all 200 on port 1", got)
	}
	r.SetPortState(0, 1, false, &rec{})
	var o rec
	r.Receive(0, 0, frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: netip.MustParseAddr("192.168.1.7"), Dst: netip.MustParseAddr("10.3.0.1")}, 1, 2, nil), &o)
	if len(o.sent) != 0 || o.events[0].Reason != datapath.ReasonNoRoute || o.events[0].Rule != "route:10.0.0.0/8" {
		t.Errorf("all next hops down: events %+v", o.events)
	}
	r.SetPortState(0, 1, true, &rec{})
	r.SetPortState(0, 2, true, &rec{})
	if got := send(); got[1] != before[1] || got[2] != before[2] {
		t.Errorf("after restore %v, want the original spread %v", got, before)
	}
}

// clos builds spines × leaves with hostsPerLeaf hosts, by hand.
func clos(spines, leaves, hostsPerLeaf int) *topologies.Topology {
	t := &topologies.Topology{Name: "clos"}
	for s := 1; s <= spines; s++ {
		t.AddNode(fmt.Sprintf("spine%d", s), topologies.RoleSpine)
	}
	for l := 1; l <= leaves; l++ {
		t.AddNode(fmt.Sprintf("leaf%d", l), topologies.RoleLeaf)
		for s := 1; s <= spines; s++ {
			t.Connect(fmt.Sprintf("leaf%d", l), fmt.Sprintf("e%d", s), fmt.Sprintf("spine%d", s), fmt.Sprintf("e%d", l))
		}
	}
	for l := 1; l <= leaves; l++ {
		for h := 1; h <= hostsPerLeaf; h++ {
			name := fmt.Sprintf("host%d-%d", l, h)
			t.AddNode(name, topologies.RoleHost)
			t.Connect(fmt.Sprintf("leaf%d", l), fmt.Sprintf("h%d", h), name, "eth0")
		}
	}
	return t
}

func TestComputeRoutes(t *testing.T) {
	topo := clos(2, 3, 1)
	lo, err := Loopbacks(topo, nil, netip.MustParsePrefix("10.255.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var atts []Attachment
	for name, p := range lo {
		atts = append(atts, Attachment{Router: name, Prefix: p, Port: LocalPort})
	}
	hostMACs := map[int]net.HardwareAddr{}
	for l := 1; l <= 3; l++ {
		leaf := fmt.Sprintf("leaf%d", l)
		hostMACs[l] = net.HardwareAddr{2, 0xcc, 0, 0, 0, byte(l)}
		atts = append(atts, Attachment{Router: leaf, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(l), 0}), 24), Port: 2, MAC: hostMACs[l]})
	}
	// host1-1 is dual-homed: its /32 also attaches at leaf2 (anycast).
	atts = append(atts, Attachment{Router: "leaf2", Prefix: netip.MustParsePrefix("10.0.1.0/24"), Port: 2, MAC: hostMACs[1]})
	routes, err := ComputeRoutes(Underlay{Topology: topo, Attached: atts})
	if err != nil {
		t.Fatal(err)
	}
	find := func(router, prefix string) Route {
		for _, r := range routes[router] {
			if r.Prefix == netip.MustParsePrefix(prefix) {
				return r
			}
		}
		t.Fatalf("%s has no route for %s: %v", router, prefix, routes[router])
		return Route{}
	}
	cases := []struct {
		router, prefix string
		ports          []int
		macs           []string
	}{
		{"leaf1", "10.0.3.0/24", []int{0, 1}, []string{PortMAC("spine1", 0).String(), PortMAC("spine2", 0).String()}},
		{"spine1", "10.0.3.0/24", []int{2}, []string{PortMAC("leaf3", 0).String()}},
		{"spine2", "10.0.3.0/24", []int{2}, []string{PortMAC("leaf3", 1).String()}},
		{"leaf3", "10.0.3.0/24", []int{2}, []string{hostMACs[3].String()}},
		{"spine1", "10.0.1.0/24", []int{0, 1}, []string{PortMAC("leaf1", 0).String(), PortMAC("leaf2", 0).String()}},
		{"leaf2", "10.0.1.0/24", []int{2}, []string{hostMACs[1].String()}},
		{"leaf1", lo["leaf1"].String(), []int{LocalPort}, []string{""}},
		// The MAC is the neighbour's port towards this router.
		{"leaf1", lo["leaf2"].String(), []int{0, 1}, []string{PortMAC("spine1", 0).String(), PortMAC("spine2", 0).String()}},
		{"spine1", lo["spine2"].String(), []int{0, 1, 2}, []string{PortMAC("leaf1", 0).String(), PortMAC("leaf2", 0).String(), PortMAC("leaf3", 0).String()}},
	}
	for _, c := range cases {
		t.Run(c.router+"->"+c.prefix, func(t *testing.T) {
			rt := find(c.router, c.prefix)
			if len(rt.NextHops) != len(c.ports) {
				t.Fatalf("next hops %v, want ports %v", rt, c.ports)
			}
			for i, nh := range rt.NextHops {
				if nh.Port != c.ports[i] || nh.MAC.String() != c.macs[i] {
					t.Errorf("next hop %d = %d/%v, want %d/%s", i, nh.Port, nh.MAC, c.ports[i], c.macs[i])
				}
			}
		})
	}
	if _, err := ComputeRoutes(Underlay{Topology: topo, Attached: []Attachment{{Router: "host1-1", Prefix: netip.MustParsePrefix("10.9.0.0/16")}}}); !errors.Is(err, ErrUnknownRouter) {
		t.Errorf("attachment at a host: err = %v, want ErrUnknownRouter", err)
	}
}

// TestRoutedPath forwards a packet hop by hop through routers built and
// routed from a topology and checks leaf → spine → leaf.
func TestRoutedPath(t *testing.T) {
	topo := clos(2, 2, 1)
	lo, _ := Loopbacks(topo, nil, netip.MustParsePrefix("10.255.0.0/24"))
	routers, err := RoutersFor(topo, nil, nil, lo)
	if err != nil {
		t.Fatal(err)
	}
	atts := []Attachment{
		{Router: "leaf1", Prefix: netip.MustParsePrefix("10.0.1.0/24"), Port: 2, MAC: net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}},
		{Router: "leaf2", Prefix: netip.MustParsePrefix("10.0.2.0/24"), Port: 2, MAC: net.HardwareAddr{2, 0xcc, 0, 0, 0, 2}},
	}
	for n, p := range lo {
		atts = append(atts, Attachment{Router: n, Prefix: p, Port: LocalPort})
	}
	routes, err := ComputeRoutes(Underlay{Topology: topo, Attached: atts})
	if err != nil {
		t.Fatal(err)
	}
	for n, r := range routers {
		if err := r.SetRoutes(routes[n]); err != nil {
			t.Fatal(err)
		}
	}
	// Walk the frame through the wiring.
	peer := func(node string, port int) (string, int) {
		ifc := topo.Interfaces(node)[port]
		e, _, _ := topo.Peer(topologies.Endpoint{Node: node, Iface: ifc})
		if r, ok := routers[e.Node]; ok {
			return e.Node, r.PortIndex(e.Iface)
		}
		return e.Node, 0
	}
	f := frame.ICMPEcho(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}, DstMAC: PortMAC("leaf1", 2),
		Src: netip.MustParseAddr("10.0.1.5"), Dst: netip.MustParseAddr("10.0.2.5")}, false, 1, 1, nil)
	node, port := "leaf1", 2
	var path []string
	for range 10 {
		r, ok := routers[node]
		if !ok {
			break
		}
		var o rec
		r.Receive(0, port, f, &o)
		if len(o.sent) != 1 {
			t.Fatalf("at %s: events %+v", node, o.events)
		}
		path = append(path, node)
		f = o.sent[0].frame
		node, port = peer(node, o.sent[0].port)
	}
	if node != "host2-1" || len(path) != 3 || path[0] != "leaf1" || path[2] != "leaf2" {
		t.Errorf("path %v ending at %s, want leaf1 spine leaf2 then host2-1", path, node)
	}
	if f[22] != 61 {
		t.Errorf("TTL at host %d, want 61", f[22])
	}
}

func FuzzRouterReceive(f *testing.F) {
	f.Add(frame.ARPRequest(hostMAC, netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("192.168.1.1")))
	f.Add(frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: netip.MustParseAddr("192.168.1.7"), Dst: netip.MustParseAddr("10.1.2.3")}, 1, 2, nil))
	f.Add(frame.ICMPEcho(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: netip.MustParseAddr("192.168.1.7"), Dst: netip.MustParseAddr("10.255.0.1")}, false, 1, 1, nil))
	r, err := NewRouter("leaf1", []Port{{Name: "e1", MAC: PortMAC("leaf1", 0), IP: netip.MustParsePrefix("192.168.1.1/24")}, {Name: "e2", MAC: PortMAC("leaf1", 1)}})
	if err != nil {
		f.Fatal(err)
	}
	r.AddLocal(netip.MustParseAddr("10.255.0.1"))
	_ = r.AddRoute(Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{1, nbrA}}})
	_ = r.AddRoute(Route{Prefix: netip.MustParsePrefix("192.168.1.0/24"), NextHops: []NextHop{{0, hostMAC}}})
	f.Fuzz(func(t *testing.T, b []byte) {
		var o rec
		r.Receive(0, 0, b, &o)
		if len(o.events) != 1 {
			t.Fatalf("%d events for one frame, want 1", len(o.events))
		}
		if o.events[0].Action == datapath.ActRoute {
			if len(o.sent) != 1 || !validIPChecksum(o.sent[0].frame) || binary.BigEndian.Uint16(o.sent[0].frame[12:14]) != etherTypeIPv4 {
				t.Fatalf("routed frame bad: %+v", o.sent)
			}
		}
	})
}

func BenchmarkFIBLookup(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			f := NewFIB[int]()
			for i := range n {
				bits := []int{8, 16, 22, 24, 26, 32}[r.IntN(6)]
				_ = f.Insert(netip.PrefixFrom(randAddr(r), bits), i)
			}
			addrs := make([]uint32, 1024)
			for i := range addrs {
				addrs[i] = be32(randAddr(r).As4())
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.Lookup(addrs[i&1023])
				i++
			}
		})
	}
}

type discard struct{}

func (o discard) Forward(port int, b []byte) { o.Send(port, b) }

func (discard) Send(int, []byte)     {}
func (discard) Trace(datapath.Event) {}

func BenchmarkRouterForward(b *testing.B) {
	r, _ := NewRouter("leaf1", []Port{{Name: "e1", MAC: PortMAC("leaf1", 0)}, {Name: "e2", MAC: PortMAC("leaf1", 1)}, {Name: "e3", MAC: PortMAC("leaf1", 2)}})
	_ = r.AddRoute(Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHops: []NextHop{{1, nbrA}, {2, nbrB}}})
	f := frame.UDP(frame.IPv4{SrcMAC: hostMAC, DstMAC: PortMAC("leaf1", 0), Src: netip.MustParseAddr("192.168.1.7"), Dst: netip.MustParseAddr("10.1.2.3")}, 1, 2, make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		r.Receive(0, 0, f, discard{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

func TestComputeRoutesLinkDown(t *testing.T) {
	topo := clos(2, 2, 1)
	atts := []Attachment{{Router: "leaf2", Prefix: netip.MustParsePrefix("10.0.2.0/24"), Port: 2, MAC: net.HardwareAddr{2, 0xcc, 0, 0, 0, 2}}}
	cases := []struct {
		name       string
		down       [2]string // link endpoints (nodes)
		leaf1Ports []int
		spine1Port int // spine1's next hop port towards leaf2's prefix
	}{
		{"all-up", [2]string{}, []int{0, 1}, 1},
		{"leaf1-spine1", [2]string{"leaf1", "spine1"}, []int{1}, 1},
		// spine1 cut off from leaf2 still reaches it through leaf1 and
		// spine2: plain shortest path, no valley-free rule.
		{"leaf2-spine1", [2]string{"leaf2", "spine1"}, []int{1}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			routes, err := ComputeRoutes(Underlay{Topology: topo, Attached: atts, LinkUp: func(l *topologies.Link) bool {
				return !(l.A.Node == c.down[0] && l.B.Node == c.down[1])
			}})
			if err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, r := range routes["leaf1"] {
				for _, nh := range r.NextHops {
					ports = append(ports, nh.Port)
				}
			}
			if fmt.Sprint(ports) != fmt.Sprint(c.leaf1Ports) {
				t.Errorf("leaf1 next hops on ports %v, want %v", ports, c.leaf1Ports)
			}
			if len(routes["spine1"]) != 1 || len(routes["spine1"][0].NextHops) != 1 || routes["spine1"][0].NextHops[0].Port != c.spine1Port {
				t.Errorf("spine1 routes %v, want one via port %d", routes["spine1"], c.spine1Port)
			}
		})
	}
}

func TestOnPortStateHook(t *testing.T) {
	r := testRouter(t)
	var got []string
	r.OnPortState(func(now time.Duration, port int, up bool) { got = append(got, fmt.Sprint(port, up)) })
	r.SetPortState(0, 1, false, &rec{})
	r.SetPortState(0, 1, false, &rec{}) // no change: no call
	r.SetPortState(0, 1, true, &rec{})
	if fmt.Sprint(got) != "[1 false 1 true]" {
		t.Errorf("hook calls %v", got)
	}
}

// An IPv6 frame hashes its flow as an IPv4 one does: addresses, next
// header and TCP/UDP ports, not its MAC addresses or flow label (a
// host's kernel picks the label, a model does not), so that a flow takes
// the same path whichever stack sent it.
func TestFlowHashIPv6(t *testing.T) {
	a, b, c := netip.MustParseAddr("fd00:1::a"), netip.MustParseAddr("fd00:1::b"), netip.MustParseAddr("fd00:2::c")
	udp := func(src, dst netip.Addr, smac byte, sport uint16) []byte {
		return frame.UDP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, smac}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9},
			Src: src, Dst: dst}, sport, 53, nil)
	}
	base := FlowHash(7, udp(a, b, 1, 4000))
	other := udp(a, b, 2, 4000)
	other[15] |= 0x0f // flow label
	if got := FlowHash(7, other); got != base {
		t.Errorf("another MAC and flow label changed the hash: %#x, was %#x", got, base)
	}
	differs := 0
	for _, f := range [][]byte{udp(a, c, 1, 4000), udp(b, a, 1, 4000), udp(a, b, 1, 4001)} {
		if FlowHash(7, f) != base {
			differs++
		}
	}
	if differs < 2 {
		t.Errorf("only %d of 3 other flows hash differently", differs)
	}
}
