package netnsrt

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/topologies"
)

// TestNewPaths: what a leaf imports from its speaker's best-path
// changes. A copy of a route the speaker already holds (its best path
// moved to the other route reflector's copy) is no new advertisement: it
// must not undo the newer route of the same MAC from another leaf.
func TestNewPaths(t *testing.T) {
	mac := evpn.MAC{2, 0, 0, 0, 0, 1}
	leaf1 := evpn.Route{Type: evpn.MACIP, VNI: 10, MAC: mac, VTEP: netip.MustParseAddr("10.255.0.3")}
	leaf3 := leaf1
	leaf3.VTEP = netip.MustParseAddr("10.255.0.5")
	present := map[evpn.Route]bool{}
	steps := []struct {
		in               speaker.Update
		wantAdd, wantDel []evpn.Route
	}{
		{speaker.Update{Adds: []evpn.Route{leaf1}}, []evpn.Route{leaf1}, nil},
		// The MAC moved to leaf3; spine1 withdrew leaf1's route, the best
		// path is now spine2's copy: reported again, imported not.
		{speaker.Update{Adds: []evpn.Route{leaf3}}, []evpn.Route{leaf3}, nil},
		{speaker.Update{Adds: []evpn.Route{leaf1}}, nil, nil},
		{speaker.Update{Withdrawn: []evpn.Route{leaf1}}, nil, []evpn.Route{leaf1}},
		// Gone, then advertised again: a new advertisement.
		{speaker.Update{Adds: []evpn.Route{leaf1}}, []evpn.Route{leaf1}, nil},
	}
	for i, s := range steps {
		adds, gone := newPaths(present, s.in)
		if !slices.Equal(adds, s.wantAdd) || !slices.Equal(gone, s.wantDel) {
			t.Errorf("step %d: imports +%v -%v, want +%v -%v", i, adds, gone, s.wantAdd, s.wantDel)
		}
	}
}

// TestFabricASN: the fabric's one AS comes from its switches' netbed.asn
// labels, or is the default; a bad or disagreeing label is an error
// naming the node and the label.
func TestFabricASN(t *testing.T) {
	topo := func(labels ...string) *topologies.Topology {
		tp := &topologies.Topology{Name: "t"}
		for i, role := range []topologies.Role{topologies.RoleSpine, topologies.RoleLeaf, topologies.RoleHost} {
			n := &topologies.Node{Name: fmt.Sprintf("n%d", i), Role: role}
			if i < len(labels) && labels[i] != "" {
				n.Labels = map[string]string{LabelASN: labels[i]}
			}
			tp.Nodes = append(tp.Nodes, n)
		}
		return tp
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   uint32
		err    string
	}{
		{"default", nil, DefaultASN, ""},
		{"labelled", []string{"64512", "64512"}, 64512, ""},
		{"one labelled", []string{"", "64600"}, 64600, ""},
		{"a host's label is not the fabric's", []string{"", "", "7"}, DefaultASN, ""},
		{"disagree", []string{"64512", "64513"}, 0, "node n1: label netbed.asn: AS 64513, but n0 has AS 64512"},
		{"zero", []string{"0"}, 0, `node n0: label netbed.asn: "0" is not an AS number 1..65535`},
		{"four bytes", []string{"4200000000"}, 0, `node n0: label netbed.asn: "4200000000" is not an AS number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := fabricASN(topo(c.labels...))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("AS %d, %v; want %d", got, err, c.want)
			}
		})
	}
}
