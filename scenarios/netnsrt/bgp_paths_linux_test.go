package netnsrt

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
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
