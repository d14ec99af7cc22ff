package hybrid

import (
	"errors"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/topologies"
)

func sites(t *testing.T, topo *topologies.Topology) []*Site {
	t.Helper()
	dc, err := evpn.New(topo, evpn.Options{ExternalOverlay: true, Site: topologies.SiteDC})
	if err != nil {
		t.Fatal(err)
	}
	out := []*Site{{Name: topologies.SiteDC, Fabric: dc}}
	for _, s := range topo.Sites()[1:] {
		v, err := vpc.New(topo, vpc.Options{Site: s})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Site{Name: s, Fabric: v})
	}
	return out
}

// TestNew: the hybrid builder's network joins into one fabric whose
// nodes are every site's, whose wires are every site's and the lines
// (with the line's delay and rate); a link between two sites that is not
// a border leaf to a VPC router is refused, naming both ends.
func TestNew(t *testing.T) {
	topo, err := topologies.Hybrid(topologies.HybridParams{VPCs: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, sites(t, topo))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Nodes()), len(topo.Nodes); got != want {
		t.Errorf("%d nodes, want the topology's %d", got, want)
	}
	if got, want := len(f.Wires()), len(topo.Links); got != want {
		t.Errorf("%d wires, want the topology's %d links", got, want)
	}
	lines := 0
	for _, w := range f.Wires() {
		if w.Delay == topologies.DefaultLineDelay && w.Rate == topologies.DefaultLineRate {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("%d wires with the line's delay and rate, want 2", lines)
	}

	bad, _ := topologies.Hybrid(topologies.HybridParams{})
	for _, l := range bad.Links {
		if l.A.Node == "dc-border1" && l.B.Node == "vpc1-vpc-router" {
			l.A = topologies.Endpoint{Node: "dc-leaf1", Iface: "eth99"}
		}
	}
	_, err = New(bad, sites(t, bad))
	if !errors.Is(err, ErrLine) || !strings.Contains(err.Error(), "dc-leaf1 a leaf of site \"dc\"") {
		t.Errorf("a line from a leaf: %v", err)
	}
}
