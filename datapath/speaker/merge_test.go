package speaker

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
)

// TestMergeInto: applying the merged Updates (each one's withdrawals,
// then its adds, as consumers do) leaves the same routes as applying
// every Update as it came, for random sequences over a few routes of
// both families; and a queue of adds only becomes one Update.
func TestMergeInto(t *testing.T) {
	routes := make([]evpn.Route, 4)
	for i := range routes {
		routes[i] = evpn.Route{Type: evpn.InclusiveMulticast, VNI: 10100, VTEP: netip.AddrFrom4([4]byte{10, 255, 0, byte(11 + i)})}
	}
	prefixes := []PrefixRoute{
		{Prefix: netip.MustParsePrefix("10.1.0.0/24"), NextHop: netip.MustParseAddr("10.0.0.1")},
		{Prefix: netip.MustParsePrefix("10.2.0.0/24"), NextHop: netip.MustParseAddr("10.0.0.2")},
	}
	apply := func(evs map[evpn.Route]bool, pfx map[PrefixRoute]bool, u Update) {
		for _, r := range u.Withdrawn {
			delete(evs, r)
		}
		for _, r := range u.PrefixWithdrawn {
			delete(pfx, r)
		}
		for _, r := range u.Adds {
			evs[r] = true
		}
		for _, r := range u.PrefixAdds {
			pfx[r] = true
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 2000 {
		var seq []Update
		for range 1 + rng.IntN(8) {
			var u Update
			for range rng.IntN(3) {
				switch r := routes[rng.IntN(len(routes))]; rng.IntN(4) {
				case 0:
					u.Withdrawn = append(u.Withdrawn, r)
				case 1:
					u.PrefixWithdrawn = append(u.PrefixWithdrawn, prefixes[rng.IntN(len(prefixes))])
				case 2:
					u.PrefixAdds = append(u.PrefixAdds, prefixes[rng.IntN(len(prefixes))])
				default:
					u.Adds = append(u.Adds, r)
				}
			}
			seq = append(seq, u)
		}
		wantE, wantP := map[evpn.Route]bool{}, map[PrefixRoute]bool{}
		var merged []Update
		for _, u := range seq {
			apply(wantE, wantP, u)
			merged = mergeInto(merged, u)
		}
		gotE, gotP := map[evpn.Route]bool{}, map[PrefixRoute]bool{}
		for _, u := range merged {
			apply(gotE, gotP, u)
		}
		if !mapsEqual(gotE, wantE) || !mapsEqual(gotP, wantP) {
			t.Fatalf("run %d: %+v merged into %+v: routes %v %v, applied one by one %v %v", run, seq, merged, gotE, gotP, wantE, wantP)
		}
	}

	var merged []Update
	for _, r := range routes {
		merged = mergeInto(merged, Update{Adds: []evpn.Route{r}})
	}
	merged = mergeInto(merged, Update{})
	if len(merged) != 1 || !slices.Equal(merged[0].Adds, routes) {
		t.Errorf("four single adds and an empty update merged into %+v, want one update adding all four in order", merged)
	}
}

func mapsEqual[K comparable](a, b map[K]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
