package netnsrt_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkBGPConvergenceSimNetns measures, in one run, the convergence
// of gen 2's BGP control plane after a leaf's and after a spine's power
// loss on netns (the real speakers) and on sim (the model), on a 2×4
// fabric whose leaves originate a type 3 and 50 type 2 routes each. On
// netns both are timed by the speakers' own event streams, not by
// polling: leaf-netns-ms from just before leaf1 fails until the last
// other leaf's speaker reports the last of leaf1's 51 routes withdrawn
// (WatchEvent, best paths), spine-netns-ms until the last leaf's speaker
// reports its session to spine1 down (WatchEvent, peers). On sim the same
// in virtual time (0.1 ms resolution). leaf-ratio and spine-ratio are
// sim / netns: the goal is within a factor of two (0.5–2).
// spine-fail-call-ms is how long netns's fail of spine1 itself took (its
// four links taken down one netlink call after another, its speaker
// killed): part of spine-netns-ms that sim's instant power loss has not.
func BenchmarkBGPConvergenceSimNetns(b *testing.B) {
	testutil.RequireRoot(b)
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "bgpconv", Spines: 2, Leaves: 4, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	var nl, ns, sl, ss, call time.Duration
	for range b.N {
		l, s, c := netnsConvergence(b, topo)
		nl, ns, call = nl+l, ns+s, call+c
		l, s = simConvergence(b, topo)
		sl, ss = sl+l, ss+s
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(nl), "leaf-netns-ms")
	b.ReportMetric(ms(sl), "leaf-sim-ms")
	b.ReportMetric(float64(sl)/float64(nl), "leaf-ratio")
	b.ReportMetric(ms(ns), "spine-netns-ms")
	b.ReportMetric(ms(ss), "spine-sim-ms")
	b.ReportMetric(float64(ss)/float64(ns), "spine-ratio")
	b.ReportMetric(ms(call), "spine-fail-call-ms")
}

// originate51 has every leaf of f originate a type 3 and 50 type 2
// routes, inside mutate.
func originate51(b *testing.B, f *evpn.Fabric, mutate func(func() error) error) {
	b.Helper()
	if err := mutate(func() error {
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
}

// netnsConvergence returns leaf1's and spine1's failure convergence on
// netns, timed by the speakers' event streams, and how long the spine's
// fail call took.
func netnsConvergence(b *testing.B, topo *topologies.Topology) (leaf, spine, call time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		b.Fatal(err)
	}
	rt := newRuntime(b, "bgpconv")
	defer rt.Close()
	if err := rt.Load(ctx, f, topo); err != nil {
		b.Fatal(err)
	}
	originate51(b, f, rt.Mutate)
	v1, _ := f.Loopback("leaf1")
	others := []string{"leaf2", "leaf3", "leaf4"}
	held := func() (n int) {
		m := speakerRoutes(b, rt)
		for _, leaf := range others {
			for _, r := range m[leaf] {
				if r.VTEP == v1 {
					n++
				}
			}
		}
		return n
	}
	for deadline := time.Now().Add(15 * time.Second); held() != 3*51; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("leaf1's routes did not reach the other leaves' speakers")
		}
	}
	var mu sync.Mutex
	done := map[string]time.Time{}
	var ready sync.WaitGroup
	for _, leaf := range others {
		c, ok := rt.Speaker(leaf)
		if !ok {
			b.Fatalf("%s's speaker does not run", leaf)
		}
		gone := map[evpn.Route]bool{}
		ready.Add(1)
		first := true
		go c.Watch(ctx, func(u speaker.Update) {
			if first {
				first = false
				ready.Done()
			}
			for _, r := range u.Withdrawn {
				if r.VTEP == v1 {
					gone[r] = true
				}
			}
			if len(gone) == 51 {
				mu.Lock()
				if _, ok := done[leaf]; !ok {
					done[leaf] = time.Now()
				}
				mu.Unlock()
			}
		})
	}
	ready.Wait()
	last := func(want int, what string, start time.Time) time.Duration {
		for {
			mu.Lock()
			n, t := len(done), time.Time{}
			for _, x := range done {
				if x.After(t) {
					t = x
				}
			}
			mu.Unlock()
			if n == want {
				return t.Sub(start)
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("%s: %d of %d after 30 s", what, n, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	start := time.Now()
	if err := rt.SetNodeState(ctx, "leaf1", false); err != nil {
		b.Fatal(err)
	}
	leaf = last(len(others), "leaves that withdrew leaf1's routes", start)
	if err := rt.SetNodeState(ctx, "leaf1", true); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	done = map[string]time.Time{}
	mu.Unlock()
	for _, l := range f.Leaves() {
		xs, err := rt.BGPSessions(ctx, l)
		if err != nil {
			b.Fatal(err)
		}
		i := slices.IndexFunc(xs, func(x scenarios.BGPSession) bool { return x.PeerNode == "spine1" })
		if i < 0 || !xs[i].Established {
			b.Fatalf("%s's sessions %+v: none established to spine1", l, xs)
		}
		c, _ := rt.Speaker(l)
		addr := xs[i].Peer
		go c.WatchPeers(ctx, func(peer netip.Addr, established bool) {
			if peer == addr && !established {
				mu.Lock()
				if _, ok := done[l]; !ok {
					done[l] = time.Now()
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the peer streams have no initial event to wait for
	start = time.Now()
	if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
		b.Fatal(err)
	}
	call = time.Since(start)
	spine = last(len(f.Leaves()), "leaves whose session to spine1 went down", start)
	return leaf, spine, call
}

// simConvergence returns the same figures on sim, in virtual time.
func simConvergence(b *testing.B, topo *topologies.Topology) (leaf, spine time.Duration) {
	ctx := context.Background()
	f, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		b.Fatal(err)
	}
	rt := simrt.New(1)
	defer rt.Close()
	if err := rt.Load(ctx, f, topo); err != nil {
		b.Fatal(err)
	}
	originate51(b, f, rt.Mutate)
	if err := rt.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	v1, _ := f.Loopback("leaf1")
	held := func() (n int) {
		for _, l := range []string{"leaf2", "leaf3", "leaf4"} {
			rs, _ := rt.BGPRoutes(ctx, l)
			for _, r := range rs {
				if r.VTEP == v1 {
					n++
				}
			}
		}
		return n
	}
	spineUp := func() (n int) {
		for _, l := range f.Leaves() {
			xs, _ := rt.BGPSessions(ctx, l)
			if slices.ContainsFunc(xs, func(x scenarios.BGPSession) bool { return x.PeerNode == "spine1" && x.Established }) {
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
			if err := rt.Sleep(ctx, 100*time.Microsecond); err != nil {
				b.Fatal(err)
			}
		}
		return rt.Now() - start
	}
	if err := rt.SetNodeState(ctx, "leaf1", false); err != nil {
		b.Fatal(err)
	}
	leaf = until(func() bool { return held() == 0 })
	if err := rt.SetNodeState(ctx, "leaf1", true); err != nil {
		b.Fatal(err)
	}
	if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
		b.Fatal(err)
	}
	spine = until(func() bool { return spineUp() == 0 })
	return leaf, spine
}
