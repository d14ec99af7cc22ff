package ebpf

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/topologies"
)

// TestPodCIDRLearnt: with PodCIDRsFromBGP no router routes a host's pod
// CIDR until its leaf learns it; then the leaf routes it to the host's
// port and the spines and other leaves towards the leaf; lost, every
// route to it goes. A CIDR that is not the port's host's is refused.
func TestPodCIDRLearnt(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Mode: Direct, PodCIDRsFromBGP: true})
	if err != nil {
		t.Fatal(err)
	}
	if !f.PodCIDRsFromBGP() {
		t.Fatal("PodCIDRsFromBGP false")
	}
	cidr := f.PodCIDRs()["host1"]
	pod := cidr.Addr().Next()
	routed := func() (n int) {
		for _, r := range []string{"leaf1", "leaf2", "spine1", "spine2"} {
			rt, _ := f.Router(r)
			if got, _, ok := rt.Lookup(pod); ok && got.Prefix == cidr {
				n++
			}
		}
		return n
	}
	if n := routed(); n != 0 {
		t.Fatalf("%d routers route %s before any leaf learnt it", n, cidr)
	}
	iface := ""
	for _, ifn := range topo.Interfaces("leaf1") {
		if p, _, _ := topo.Peer(topologies.Endpoint{Node: "leaf1", Iface: ifn}); p.Node == "host1" {
			iface = ifn
		}
	}
	if err := f.PodCIDRLearnt("leaf1", iface, cidr, true); err != nil {
		t.Fatal(err)
	}
	if n := routed(); n != 4 {
		t.Errorf("%d routers route %s once leaf1 learnt it, want 4", n, cidr)
	}
	l1, _ := f.Router("leaf1")
	if _, hops, _ := l1.Lookup(pod); len(hops) != 1 || hops[0].Port != l1.PortIndex(iface) {
		t.Errorf("leaf1 routes %s via %+v, want its port %s", cidr, hops, iface)
	}
	if err := f.PodCIDRLearnt("leaf1", iface, cidr, false); err != nil {
		t.Fatal(err)
	}
	if n := routed(); n != 0 {
		t.Errorf("%d routers still route %s after leaf1 lost it", n, cidr)
	}
	other := f.PodCIDRs()["host2"]
	if err := f.PodCIDRLearnt("leaf1", iface, other, true); !errors.Is(err, ErrNotAttached) {
		t.Errorf("host2's CIDR learnt on leaf1's port to host1: %v, want ErrNotAttached", err)
	}
	if err := f.PodCIDRLearnt("leaf1", iface, netip.MustParsePrefix("192.0.2.0/24"), true); !errors.Is(err, ErrNotAttached) {
		t.Errorf("a foreign prefix learnt: %v, want ErrNotAttached", err)
	}
}
