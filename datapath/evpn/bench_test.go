package evpn

import (
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/topologies"
)

// counter counts what a node emits without keeping it.
type counter struct{ sends, drops int }

func (c *counter) Send(int, []byte) { c.sends++ }
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
