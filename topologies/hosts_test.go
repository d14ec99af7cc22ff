package topologies

import (
	"errors"
	"slices"
	"testing"
)

func TestAddHostsPerLeaf(t *testing.T) {
	// A generated 2-tier Clos as containerlab names it: no hosts, SR Linux
	// interface names.
	clos := func() *Topology {
		t := &Topology{Name: "clos"}
		for _, n := range []string{"node1-1", "node1-2"} {
			t.AddNode(n, RoleLeaf).Kind = "srl"
		}
		for _, n := range []string{"node2-1", "node2-2"} {
			t.AddNode(n, RoleSpine).Kind = "srl"
		}
		t.Connect("node1-1", "e1-1", "node2-1", "e1-1")
		t.Connect("node1-1", "e1-2", "node2-2", "e1-1")
		t.Connect("node1-2", "e1-1", "node2-1", "e1-2")
		t.Connect("node1-2", "e1-2", "node2-2", "e1-2")
		return t
	}
	topo := clos()
	added, err := AddHostsPerLeaf(topo, 2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range added {
		names = append(names, h.Name)
		if h.Role != RoleHost || h.Kind != DefaultKind || h.Image != DefaultImage {
			t.Errorf("host %+v", h)
		}
	}
	if !slices.Equal(names, []string{"host1", "host2", "host3", "host4"}) {
		t.Errorf("added %v", names)
	}
	if got := topo.Interfaces("node1-1"); !slices.Equal(got, []string{"e1-1", "e1-2", "e1-3", "e1-4"}) {
		t.Errorf("node1-1 interfaces %v", got)
	}
	if got := topo.Neighbors("node1-2"); !slices.Contains(got, "host3") || !slices.Contains(got, "host4") || slices.Contains(got, "host1") {
		t.Errorf("node1-2 neighbours %v", got)
	}
	_, l, ok := topo.Peer(Endpoint{"host3", "eth1"})
	if !ok || l.B != (Endpoint{"node1-2", "e1-3"}) || l.Rate != Rate25G || l.MTU != HostMTU {
		t.Errorf("host3 link %+v", l)
	}
	if topo.Node("host3").Rack != "rack2" || topo.Node("node1-2").Rack != "rack2" {
		t.Errorf("racks: host3 %q node1-2 %q", topo.Node("host3").Rack, topo.Node("node1-2").Rack)
	}
	if err := topo.Validate(); err != nil {
		t.Errorf("topology with added hosts: %v", err)
	}
	// Again: numbering goes on, linux leaves get ethN.
	more, err := AddHostsPerLeaf(topo, 1)
	if err != nil || len(more) != 2 || more[0].Name != "host5" || topo.Interfaces("node1-1")[4] != "e1-5" {
		t.Errorf("second call: %v %v %v", more, err, topo.Interfaces("node1-1"))
	}
	sl, err := SpineLeaf(SpineLeafParams{Spines: 1, Leaves: 1, HostsPerLeaf: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddHostsPerLeaf(sl, 1); err != nil || !slices.Equal(sl.Interfaces("leaf1"), []string{"eth1", "eth2"}) {
		t.Errorf("linux leaf: %v %v", err, sl.Interfaces("leaf1"))
	}
	for _, bad := range []struct {
		topo *Topology
		n    int
	}{{clos(), -1}, {&Topology{Name: "spines", Nodes: []*Node{{Name: "s", Role: RoleSpine}}}, 1}} {
		if _, err := AddHostsPerLeaf(bad.topo, bad.n); !errors.Is(err, ErrBadParams) {
			t.Errorf("%s, %d per leaf: %v", bad.topo.Name, bad.n, err)
		}
	}
}
