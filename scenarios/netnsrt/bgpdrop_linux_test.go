package netnsrt_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkBGPDropContention tests the BGP model's CPU pool (sim/bgpmodel,
// Params.Cores) against the real speakers: spine1 loses power while
// every other leaf holds leaf1's routes from it, first 30 and then 150,
// on a 2×2 fabric (one leaf drops them when the session ends) and on a
// 2×4 one (three leaves drop them at once). The slope per path at the
// last leaf to report spine1 down is drop-1-leaf-us and drop-3-leaves-us
// (timed from just before the fail call, median of 3 each), contention
// their ratio. If the speakers were the machine's only load, the model's
// pool predicts model-contention: max(1, 3 / runtime.NumCPU()) / max(1,
// 1 / runtime.NumCPU()), 1.5 on 2 cores; other processes competing for
// the CPUs bring it towards 1.
func BenchmarkBGPDropContention(b *testing.B) {
	testutil.RequireRoot(b)
	cpus := float64(runtime.NumCPU())
	for range b.N {
		one, three := dropSlope(b, 2), dropSlope(b, 4)
		b.ReportMetric(float64(one.Nanoseconds())/1e3, "drop-1-leaf-us")
		b.ReportMetric(float64(three.Nanoseconds())/1e3, "drop-3-leaves-us")
		b.ReportMetric(float64(three)/float64(max(one, 1)), "contention")
		b.ReportMetric(max(1, 3/cpus)/max(1, 1/cpus), "model-contention")
	}
}

// dropSlope builds a 2×leaves fabric on netns and returns the time per
// path it costs the last leaf to report spine1's power loss, from 30 and
// 150 of leaf1's routes held by every other leaf.
func dropSlope(b *testing.B, leaves int) time.Duration {
	const (
		few    = 30
		more   = 120
		cycles = 3
	)
	name := fmt.Sprintf("bgpdrop%d", leaves)
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: name, Spines: 2, Leaves: leaves, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rt := newRuntime(b, name)
	defer rt.Close()
	if err := rt.Load(ctx, f, topo); err != nil {
		b.Fatal(err)
	}
	leaf1, _ := f.Leaf("leaf1")
	c, ok := rt.Speaker("leaf2")
	if !ok {
		b.Fatal("no speaker on leaf2")
	}
	w := watchRoutes(b, c)
	advertise := func(from, n int) {
		var rs []evpn.Route
		for i := from; i < from+n; i++ {
			rs = append(rs, evpn.Route{Type: evpn.MACIP, VNI: 100, L3VNI: 50001, MAC: evpn.MAC{2, 0, 0, 1, byte(i >> 8), byte(i)},
				IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), VTEP: leaf1.VTEP(), RouterMAC: leaf1.RouterMAC()})
		}
		if err := rt.Mutate(func() error {
			for _, r := range rs {
				if err := leaf1.Advertise(r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		w.until(b, "leaf1's routes at leaf2", func(m map[evpn.Route]bool) bool {
			return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return !m[r] })
		})
	}
	peers := watchSessionsTo(b, rt, f.Leaves(), "spine1")
	held := 0
	spineLoss := func() time.Duration {
		var lost []time.Duration
		for range cycles {
			// Every other leaf holds leaf1's routes from spine1 (after
			// a restore, established comes before spine1 sent them).
			peers.waitReceived(b, func(n string) int {
				if n == "leaf1" {
					return 0
				}
				return held
			})
			peers.reset()
			t0 := time.Now()
			if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
				b.Fatal(err)
			}
			lost = append(lost, peers.allDown(b).Sub(t0))
			if err := rt.SetNodeState(ctx, "spine1", true); err != nil {
				b.Fatal(err)
			}
			peers.rearm(b)
		}
		return median(lost)
	}
	advertise(1, few)
	held = few
	lFew := spineLoss()
	advertise(1+few, more)
	held = few + more
	lMore := spineLoss()
	slope := max(lMore-lFew, 0) / more
	b.Logf("2x%d, %d leaves dropping: spine1's loss %v with %d routes, %v with %d: %v a path", leaves, leaves-1, lFew, few, lMore, few+more, slope)
	return slope
}
