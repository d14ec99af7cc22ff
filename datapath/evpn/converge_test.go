package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// TestUnderlayRoutesMatchL3 checks the fabric's own route computation
// (which can leave links out) against l3.ComputeRoutes with all links up.
func TestUnderlayRoutesMatchL3(t *testing.T) {
	sl := func(p topologies.SpineLeafParams) func() (*topologies.Topology, error) {
		return func() (*topologies.Topology, error) { return topologies.SpineLeaf(p) }
	}
	cases := []struct {
		name  string
		build func() (*topologies.Topology, error)
	}{
		{"2x4", sl(topologies.SpineLeafParams{})},
		{"4x16-dual", sl(topologies.SpineLeafParams{Spines: 4, Leaves: 16, DualHomed: true})},
		{"1x3", sl(topologies.SpineLeafParams{Spines: 1, Leaves: 3})},
		{"multi-az", func() (*topologies.Topology, error) {
			return topologies.MultiAZ(topologies.MultiAZParams{AZs: 3, Fabric: topologies.SpineLeafParams{Spines: 2, Leaves: 2}})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			loop, err := l3.Loopbacks(topo, nil, DefaultLoopbackPool)
			if err != nil {
				t.Fatal(err)
			}
			var att []l3.Attachment
			for n, lo := range loop {
				att = append(att, l3.Attachment{Router: n, Prefix: lo, Port: l3.LocalPort})
			}
			want, err := l3.ComputeRoutes(l3.Underlay{Topology: topo, Attached: att})
			if err != nil {
				t.Fatal(err)
			}
			got := newUnderlayGraph(topo, loop).routes(nil)
			if len(got) != len(want) {
				t.Fatalf("routes for %d routers, l3 has %d", len(got), len(want))
			}
			for r, ws := range want {
				if fmt.Sprint(got[r]) != fmt.Sprint(ws) {
					t.Errorf("%s:\n got %v\nwant %v", r, got[r], ws)
				}
			}
		})
	}
}

func TestLinkFailureReconverges(t *testing.T) {
	defs := []instDef{
		{"i1", "host1", "red1", "10.0.1.11/24"},
		{"i2", "host3", "red1", "10.0.1.12/24"},
		{"i3", "host5", "red2", "10.0.2.13/24"},
		{"i4", "host8", "red2", "10.0.2.14/24"},
	}
	names := []string{"i1", "i2", "i3", "i4"}
	cases := []struct {
		name  string
		links [][2]string // leaf, spine
		// direct: every other leaf still has a spine that reaches the
		// failed link's leaf, so none may hash into the spine that lost it.
		direct bool
	}{
		{"leaf1-spine1", [][2]string{{"leaf1", "spine1"}}, true},
		// leaf3 keeps only spine1, which lost leaf1: it reaches leaf1 over
		// spine1 -> another leaf -> spine2 (underlay transit on a leaf).
		{"two-links-of-two-leaves", [][2]string{{"leaf1", "spine1"}, {"leaf3", "spine2"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}, defs, nil)
			if _, err := tb.e.AllPairs(time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
				t.Fatal(err)
			}
			var wires []int
			for _, ls := range c.links {
				w, err := tb.e.Wire(datapath.PortRef{Node: ls[0], Port: portTo(t, tb.f, ls[0], ls[1])})
				if err != nil {
					t.Fatal(err)
				}
				wires = append(wires, w)
				if err := tb.e.SetLinkState(tb.e.Now()+time.Millisecond, w, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if tb.f.Reconvergences() != len(c.links) {
				t.Errorf("%d reconvergences, want %d", tb.f.Reconvergences(), len(c.links))
			}
			// No spine keeps a route to a leaf it lost, and every leaf
			// reaches that leaf only through the other spines.
			for _, ls := range c.links {
				leaf, _ := tb.f.Leaf(ls[0])
				if c.direct {
					for _, other := range tb.f.leafNames() {
						ol, _ := tb.f.Leaf(other)
						if other == ls[0] {
							continue
						}
						for _, nh := range ol.u.fib[key4(leaf.VTEP())].nhs {
							if nh.Port == portTo(t, tb.f, other, ls[1]) {
								t.Errorf("%s still reaches %s via %s", other, ls[0], ls[1])
							}
						}
					}
				}
			}
			m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Reachable(); got != len(names)*(len(names)-1) {
				t.Errorf("%d pairs reachable after the link failure, want all:\n%s", got, m)
			}
			// Restore: the routes come back to full ECMP.
			before := underlayState(tb.f)
			for _, w := range wires {
				if err := tb.e.SetLinkState(tb.e.Now()+time.Millisecond, w, true); err != nil {
					t.Fatal(err)
				}
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			fresh, err := New(tb.f.topo, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if after, want := underlayState(tb.f), underlayState(fresh); after != want || after == before {
				t.Errorf("after restore the underlay differs from a fresh fabric's:\n%s\nwant\n%s", after, want)
			}
			tb.conserve(t)
		})
	}
}

// TestSuperspineFailure: on a 3-tier Clos imported from a containerlab
// file (testdata/clos02.clab.yml: two pods, two planes of superspines),
// a failed superspine leaves the spines of its plane with no way to the
// other pod; the underlay reconverges from the spines' port changes too,
// so no leaf keeps hashing flows to the other pod into those spines, and
// every pair of instances still reaches the other (many flows, so that
// some hash into the failed plane). Restored, the underlay is a fresh
// fabric's again. The same for a spine–superspine link.
func TestSuperspineFailure(t *testing.T) {
	topo, _, err := clab.Load("testdata/clos02.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	defs := []instDef{
		{"i1", "client1", "red1", "10.0.1.11/24"},
		{"i2", "client2", "red2", "10.0.2.12/24"},
		{"i3", "client3", "red1", "10.0.1.13/24"},
		{"i4", "client4", "red2", "10.0.2.14/24"},
	}
	names := []string{"i1", "i2", "i3", "i4"}
	for _, c := range []struct {
		name string
		fail func(tb *testbed, up bool) error
	}{
		{"node superspine1", func(tb *testbed, up bool) error {
			return tb.e.SetNodeState(tb.e.Now()+time.Millisecond, "superspine1", up)
		}},
		{"link spine3-superspine1", func(tb *testbed, up bool) error {
			return tb.e.SetPortLinkState(tb.e.Now()+time.Millisecond, datapath.PortRef{Node: "spine3", Port: portTo(t, tb.f, "spine3", "superspine1")}, up)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbedOn(t, topo, Options{}, nil, defs, nil)
			if _, err := tb.e.AllPairs(time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}); err != nil {
				t.Fatal(err)
			}
			fresh := underlayState(tb.f)
			if err := c.fail(tb, false); err != nil {
				t.Fatal(err)
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			// spine3 (and spine1, for the node) no longer reach the
			// other pod: the leaves under them send that way only over
			// the pod's other spine.
			l3f, _ := tb.f.Leaf("leaf3")
			for _, nh := range l3f.u.fib[key4(tb.f.leaves["leaf1"].VTEP())].nhs {
				if nh.Port == portTo(t, tb.f, "leaf3", "spine3") {
					t.Errorf("leaf3 still reaches leaf1 via spine3, which lost its superspine")
				}
			}
			for port := range 16 {
				m, err := tb.e.AllPairs(tb.e.Now()+time.Millisecond, 10*time.Microsecond, names,
					stack.ProbeSpec{Proto: stack.UDP, DstPort: uint16(7000 + port)})
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Reachable(); got != len(names)*(len(names)-1) {
					t.Fatalf("UDP port %d: %d pairs reachable after the failure, want all:\n%s", 7000+port, got, m)
				}
			}
			if err := c.fail(tb, true); err != nil {
				t.Fatal(err)
			}
			if err := tb.e.Run(tb.e.Now() + 2*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if got := underlayState(tb.f); got != fresh {
				t.Errorf("after the restore the underlay differs from before the failure:\n%s\nwant\n%s", got, fresh)
			}
			tb.conserve(t)
		})
	}
}

func portTo(t *testing.T, f *Fabric, node, peer string) int {
	t.Helper()
	for i, ifc := range f.topo.Interfaces(node) {
		if p, _, ok := f.topo.Peer(topologies.Endpoint{Node: node, Iface: ifc}); ok && p.Node == peer {
			return i
		}
	}
	t.Fatalf("%s has no link to %s", node, peer)
	return -1
}

// underlayState renders every leaf's and spine's underlay routes.
func underlayState(f *Fabric) string {
	var out []string
	for _, n := range f.leafNames() {
		l := f.leaves[n]
		for k, g := range l.u.fib {
			out = append(out, fmt.Sprintf("%s %s %v", n, netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}), g.nhs))
		}
	}
	for n, s := range f.spines {
		out = append(out, fmt.Sprintf("%s %v", n, s.Routes()))
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
