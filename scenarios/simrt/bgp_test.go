package simrt_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkBGPSimFabric is BenchmarkBGPFabric (scenarios/netnsrt) on sim
// with the BGP model: a 2×4 fabric, each leaf originating a type 3 and
// 50 type 2 routes; in virtual time, converge-ms is from leaf1's failure
// until no other leaf's speaker holds its routes, restore-s from its
// restore until every other leaf's holds them again, spine-ms from
// spine1's failure until no leaf has a session with it established and
// spine-restore-s from its restore until every leaf's is again and
// spine1 holds every leaf's routes. The wall time per op is the
// simulation's.
func BenchmarkBGPSimFabric(b *testing.B) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "bgpbench", Spines: 2, Leaves: 4, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var conv, restore, spine, spineBack time.Duration
	for range b.N {
		f, err := evpn.New(topo, evpn.Options{LeafTables: true})
		if err != nil {
			b.Fatal(err)
		}
		rt := simrt.New(1)
		if err := rt.Load(ctx, f, topo); err != nil {
			b.Fatal(err)
		}
		if err := rt.Mutate(func() error {
			for i, n := range f.Leaves() {
				l, _ := f.Leaf(n)
				if err := l.Advertise(evpn.Route{Type: evpn.InclusiveMulticast, VNI: 100, VTEP: l.VTEP()}); err != nil {
					return err
				}
				for k := range 50 {
					r := evpn.Route{Type: evpn.MACIP, VNI: 100, L3VNI: 50001, MAC: evpn.MAC{2, 0, 0, byte(i), 0, byte(k + 1)},
						IP: netip.AddrFrom4([4]byte{10, 0, byte(i), byte(k + 1)}), VTEP: l.VTEP(), RouterMAC: l.RouterMAC()}
					if err := l.Advertise(r); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if err := rt.Settle(ctx); err != nil {
			b.Fatal(err)
		}
		v1, _ := f.Loopback("leaf1")
		held := func() int {
			n := 0
			for _, leaf := range []string{"leaf2", "leaf3", "leaf4"} {
				rs, _ := rt.BGPRoutes(ctx, leaf)
				for _, r := range rs {
					if r.VTEP == v1 {
						n++
					}
				}
			}
			return n
		}
		spineUp := func() int {
			n := 0
			for _, leaf := range f.Leaves() {
				ss, _ := rt.BGPSessions(ctx, leaf)
				if slices.ContainsFunc(ss, func(s scenarios.BGPSession) bool { return s.PeerNode == "spine1" && s.Established }) {
					n++
				}
			}
			return n
		}
		until := func(ok func() bool) time.Duration {
			start := rt.Now()
			for !ok() {
				if rt.Now()-start > 10*time.Second {
					b.Fatal("not converged after 10 s of virtual time")
				}
				step := 100 * time.Microsecond // the figures' resolution: 0.1 ms, 10 ms after the first 100 ms
				if rt.Now()-start > 100*time.Millisecond {
					step = 10 * time.Millisecond
				}
				if err := rt.Sleep(ctx, step); err != nil {
					b.Fatal(err)
				}
			}
			return rt.Now() - start
		}
		start := rt.Now()
		if err := rt.SetNodeState(ctx, "leaf1", false); err != nil {
			b.Fatal(err)
		}
		until(func() bool { return held() == 0 })
		conv += rt.Now() - start
		start = rt.Now()
		if err := rt.SetNodeState(ctx, "leaf1", true); err != nil {
			b.Fatal(err)
		}
		until(func() bool { return held() == 3*51 })
		restore += rt.Now() - start
		start = rt.Now()
		if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
			b.Fatal(err)
		}
		until(func() bool { return spineUp() == 0 })
		spine += rt.Now() - start
		start = rt.Now()
		if err := rt.SetNodeState(ctx, "spine1", true); err != nil {
			b.Fatal(err)
		}
		until(func() bool {
			rs, _ := rt.BGPRoutes(ctx, "spine1")
			return spineUp() == 4 && len(rs) == 4*51
		})
		spineBack += rt.Now() - start
		if err := rt.BGP().Err(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(conv.Microseconds())/1000/n, "converge-ms")
	b.ReportMetric(restore.Seconds()/n, "restore-s")
	b.ReportMetric(float64(spine.Microseconds())/1000/n, "spine-ms")
	b.ReportMetric(spineBack.Seconds()/n, "spine-restore-s")
}
