package evpn

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// counter counts what a node emits without keeping it.
type counter struct{ sends, drops int }

func (c *counter) Forward(port int, b []byte) { c.Send(port, b) }
func (c *counter) Send(int, []byte)           { c.sends++ }
func (c *counter) Trace(ev datapath.Event) {
	if ev.Action == datapath.ActDrop {
		c.drops++
	}
}

func benchNode(b *testing.B, n datapath.Node, port int, frames [][]byte) {
	b.Helper()
	var out counter
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0])))
	i := 0
	for b.Loop() {
		n.Receive(0, port, frames[i%len(frames)], &out)
		i++
	}
	if out.drops != 0 || out.sends != i {
		b.Fatalf("%d frames: %d sent, %d dropped", i, out.sends, out.drops)
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "frames/s")
}

// flows returns 64 frames of distinct inner flows (A's addresses vary).
func flows(build func(src netip.Addr) []byte) [][]byte {
	var out [][]byte
	for i := range 64 {
		out = append(out, build(netip.AddrFrom4([4]byte{10, 0, 1, byte(100 + i)})))
	}
	return out
}

// BenchmarkLeafEncap: host frame in, VXLAN out (bridged to a remote MAC).
func BenchmarkLeafEncap(b *testing.B) {
	l, _ := testLeaf(b)
	benchNode(b, l, pHost1, flows(func(src netip.Addr) []byte {
		return tagged(frame.UDP(ipHdr(macA, macB, src, ipB), 1000, 7, make([]byte, 64)), 10)
	}))
}

// BenchmarkLeafRouteEncap: host frame to the gateway, routed by symmetric
// IRB into the L3 VNI.
func BenchmarkLeafRouteEncap(b *testing.B) {
	l, _ := testLeaf(b)
	benchNode(b, l, pHost1, flows(func(src netip.Addr) []byte {
		return tagged(frame.UDP(ipHdr(macA, gwMAC, src, ipC), 1000, 7, make([]byte, 64)), 10)
	}))
}

// BenchmarkLeafRouteEncap6 is BenchmarkLeafRouteEncap over IPv6: a
// dual-stack host's frame to the gateway, routed by its /128 host route
// into the L3 VNI.
func BenchmarkLeafRouteEncap6(b *testing.B) {
	l, _ := testLeaf6(b)
	var frames [][]byte
	for i := range 64 {
		src := netip.AddrFrom16([16]byte{0xfd, 1: 0, 3: 1, 15: byte(100 + i)})
		frames = append(frames, tagged(frame.UDP(ipHdr(macA, gwMAC, src, ip6C), 1000, 7, make([]byte, 64)), 10))
	}
	benchNode(b, l, pHost1, frames)
}

// BenchmarkLeafDecap: VXLAN in, tagged host frame out.
func BenchmarkLeafDecap(b *testing.B) {
	l, _ := testLeaf(b)
	benchNode(b, l, pUp1, flows(func(src netip.Addr) []byte {
		return vxlanFrom(pUp1, 100, frame.UDP(ipHdr(macB, macA, src, ipA), 1000, 7, make([]byte, 64)))
	}))
}

// BenchmarkSpine: VXLAN packets between two leaves through a spine of a
// fabric built by New (l3.Router, ECMP to the destination leaf).
func BenchmarkSpine(b *testing.B) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	f, err := New(topo, Options{})
	if err != nil {
		b.Fatal(err)
	}
	sp, _ := f.Spine("spine1")
	l1, _ := f.Leaf("leaf1")
	l2, _ := f.Leaf("leaf2")
	in := -1
	for i, p := range sp.Ports() {
		if peer, _, ok := topo.Peer(topologies.Endpoint{Node: "spine1", Iface: p}); ok && peer.Node == "leaf1" {
			in = i
		}
	}
	mac := MACOf(sp.Port(in).MAC)
	benchNode(b, sp, in, flows(func(src netip.Addr) []byte {
		inner := frame.UDP(ipHdr(macA, macB, src, ipB), 1000, 7, make([]byte, 64))
		return frame.VXLANEncap(frame.IPv4{SrcMAC: l1.cfg.PortMACs[0][:], DstMAC: mac[:], Src: l1.VTEP(), Dst: l2.VTEP()}, 100, inner)
	}))
}

// scaleFabric builds a spines x leaves x hostsPerLeaf fabric with perHost
// instances on every host (two networks of one tenant, alternating).
func scaleFabric(b *testing.B, spines, leaves, hostsPerLeaf, perHost int) (*Fabric, *sim.Engine, []string) {
	b.Helper()
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: spines, Leaves: leaves, HostsPerLeaf: hostsPerLeaf})
	if err != nil {
		b.Fatal(err)
	}
	f, err := New(topo, Options{})
	if err != nil {
		b.Fatal(err)
	}
	nets := []datapath.NetworkSpec{
		{Name: "n1", Tenant: "t", Subnet: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.1"), VLAN: 10, VNI: 10010},
		{Name: "n2", Tenant: "t", Subnet: netip.MustParsePrefix("10.2.0.0/16"), Gateway: netip.MustParseAddr("10.2.0.1"), VLAN: 20, VNI: 10020},
	}
	for _, n := range nets {
		if err := f.AddNetwork(n); err != nil {
			b.Fatal(err)
		}
	}
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		b.Fatal(err)
	}
	var names []string
	i := 0
	for _, h := range topo.NodesByRole(topologies.RoleHost) {
		for range perHost {
			i++
			n := nets[i%2]
			ip := n.Subnet.Addr().As4()
			ip[2], ip[3] = byte(i>>8)+1, byte(i)
			name := fmt.Sprintf("i%d", i)
			s := datapath.InstanceSpec{Name: name, Host: h.Name, Network: n.Name,
				MAC: net.HardwareAddr{2, 0x20, 0, byte(i >> 16), byte(i >> 8), byte(i)}, IP: netip.PrefixFrom(netip.AddrFrom4(ip), 16)}
			if _, err := e.AddInstance(f, s); err != nil {
				b.Fatal(err)
			}
			names = append(names, name)
		}
	}
	return f, e, names
}

// BenchmarkSimAllPairs runs all-pairs ICMP probes between one instance per
// host of a 2x8x4 fabric (32 instances, 992 probes, ARP included) in the
// simulator and reports packet-hop events per second.
func BenchmarkSimAllPairs(b *testing.B) {
	var hops uint64
	for b.Loop() {
		b.StopTimer()
		_, e, names := scaleFabric(b, 2, 8, 4, 1)
		e.SetRecord(true)
		b.StartTimer()
		m, err := e.AllPairs(time.Millisecond, time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
		if err != nil {
			b.Fatal(err)
		}
		if m.Reachable() != len(names)*(len(names)-1) {
			b.Fatalf("only %d pairs reachable", m.Reachable())
		}
		hops += e.Counts().Hops
	}
	b.ReportMetric(float64(hops)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFabricMemory reports heap bytes per instance of a 4x16x16
// fabric with 8 instances per host (2048 instances), route table and leaf
// tables included.
func BenchmarkFabricMemory(b *testing.B) {
	var perInst float64
	var caps Capacity
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		f, _, names := scaleFabric(b, 4, 16, 16, 8)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perInst = float64(m1.HeapAlloc-m0.HeapAlloc) / float64(len(names))
		caps = f.Capacity()
		runtime.KeepAlive(f)
	}
	b.ReportMetric(perInst, "B/instance")
	b.ReportMetric(float64(caps.Routes.Total()), "evpn-routes")
	b.ReportMetric(float64(caps.Leaves["leaf1"].RemoteMACs+caps.Leaves["leaf1"].LocalMACs), "leaf1-MACs")
}
