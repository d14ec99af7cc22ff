package netnsrt_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkBGPConvergenceSimNetns measures, in one run, the convergence
// of gen 2's BGP control plane after a leaf's and after a spine's power
// loss and restore on netns (the real speakers) and on sim (the model),
// on a 2×4 fabric whose leaves originate a type 3 and 50 type 2 routes
// each. On netns every figure is timed by the speakers' own event
// streams, not by polling:
//
//   - leaf-fail: from the fault (the first of leaf1's links to lose
//     carrier) until the last other leaf's speaker reports the last of
//     leaf1's 51 routes withdrawn (WatchEvent, best paths);
//   - leaf-restore: from just before the restore call until the last
//     other leaf's speaker holds all 51 again;
//   - spine-fail: from the fault (spine1's first link to lose carrier)
//     until the last leaf's speaker reports its session to spine1 down
//     (WatchEvent, peers), which GoBGP does once it has dropped the 153
//     paths it learnt on it;
//   - spine-restore: from just before the restore call until the last
//     leaf's speaker reports it established again.
//
// Each node fails and is restored convergenceCycles times in one lab and
// each figure is the median. On sim the same in virtual time (0.1 ms
// resolution for failures, 1 ms for restores), where a power loss takes
// every link down at once. Each figure has netns-ms, sim-ms and ratio
// (sim / netns): the goal is within a factor of two (0.5–2).
// For the failures, from-call-ms is the netns figure from just before
// the fail call instead, and carrier-spread-ms how far apart the node's
// links lost carrier: the runtime takes them down one netlink call after
// another, which a real power loss does not. For the spine,
// spine-fail-own-carrier-ms leaves that spread out: each leaf's time
// from its own link's carrier loss until it reported spine1 down, the
// slowest leaf's (what the model's figure is made of alone).
func BenchmarkBGPConvergenceSimNetns(b *testing.B) {
	testutil.RequireRoot(b)
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "bgpconv", Spines: 2, Leaves: 4, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	var netns, sim convergence
	var x [2][2]time.Duration
	var own time.Duration
	for range b.N {
		n, nx, no := netnsConvergence(b, topo)
		netns, own = netns.add(n), own+no
		for i := range x {
			x[i][0], x[i][1] = x[i][0]+nx[i][0], x[i][1]+nx[i][1]
		}
		sim = sim.add(simConvergence(b, topo))
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	for i, name := range []string{"leaf-fail", "leaf-restore", "spine-fail", "spine-restore"} {
		b.ReportMetric(ms(netns[i]), name+"-netns-ms")
		b.ReportMetric(ms(sim[i]), name+"-sim-ms")
		b.ReportMetric(float64(sim[i])/float64(netns[i]), name+"-ratio")
	}
	for i, name := range []string{"leaf-fail", "spine-fail"} {
		b.ReportMetric(ms(x[i][0]), name+"-from-call-ms")
		b.ReportMetric(ms(x[i][1]), name+"-carrier-spread-ms")
	}
	b.ReportMetric(ms(own), "spine-fail-own-carrier-ms")
}

// convergence is leaf1's failure and restore, and spine1's.
type convergence [4]time.Duration

func (c convergence) add(d convergence) convergence {
	for i := range c {
		c[i] += d[i]
	}
	return c
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

// netnsConvergence returns leaf1's and spine1's failure and restore
// convergence on netns, timed by the speakers' event streams (a failure
// from the first carrier loss), and for leaf1's and spine1's failure the
// time from the fail call instead and how far apart its links lost
// carrier, and spine1's failure from each leaf's own carrier loss (the
// slowest leaf).
func netnsConvergence(b *testing.B, topo *topologies.Topology) (c convergence, x [2][2]time.Duration, own time.Duration) {
	ctx := context.Background()
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
	var others []*vtepWatch
	for _, leaf := range []string{"leaf2", "leaf3", "leaf4"} {
		s, ok := rt.Speaker(leaf)
		if !ok {
			b.Fatalf("%s's speaker does not run", leaf)
		}
		others = append(others, watchVTEP(b, s, v1))
	}
	// last arms every watch for n routes, runs act and returns when it
	// started and when the last watch saw n.
	last := func(n int, what string, act func() error) (start, end time.Time) {
		for _, w := range others {
			w.arm(n)
		}
		start = time.Now()
		if err := act(); err != nil {
			b.Fatal(err)
		}
		for _, w := range others {
			if x := w.wait(b, what); x.After(end) {
				end = x
			}
		}
		return start, end
	}
	last(51, "leaf1's routes at the other leaves", func() error { return nil })
	var cs [4][]time.Duration
	var calls, spreads [2][]time.Duration
	leafCarrier := watchCarrier(b, rt, topo, "leaf1")
	for range convergenceCycles {
		leafCarrier.reset()
		start, end := last(0, "leaf1's routes withdrawn", func() error { return rt.SetNodeState(ctx, "leaf1", false) })
		first, lastLoss := leafCarrier.span(b)
		cs[0] = append(cs[0], end.Sub(first))
		calls[0], spreads[0] = append(calls[0], end.Sub(start)), append(spreads[0], lastLoss.Sub(first))
		start, end = last(51, "leaf1's routes back", func() error { return rt.SetNodeState(ctx, "leaf1", true) })
		cs[1] = append(cs[1], end.Sub(start))
	}
	spine := watchSessionsTo(b, rt, f.Leaves(), "spine1")
	spineCarrier := watchCarrier(b, rt, topo, "spine1")
	var owns []time.Duration
	for range convergenceCycles {
		// Each leaf holds the 153 paths (the other leaves' 51 each) it
		// drops when spine1 fails: after a restore, established comes
		// before spine1 sent its table, and leaf1 restarted before.
		spine.waitReceived(b, func(string) int { return 3 * 51 })
		spine.reset()
		spineCarrier.reset()
		start := time.Now()
		if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
			b.Fatal(err)
		}
		end := spine.allDown(b)
		first, lastLoss := spineCarrier.span(b)
		cs[2] = append(cs[2], end.Sub(first))
		owns = append(owns, fromOwnCarrier(spine, spineCarrier))
		calls[1], spreads[1] = append(calls[1], end.Sub(start)), append(spreads[1], lastLoss.Sub(first))
		spine.reset()
		start = time.Now()
		if err := rt.SetNodeState(ctx, "spine1", true); err != nil {
			b.Fatal(err)
		}
		cs[3] = append(cs[3], spine.allUp(b).Sub(start))
	}
	b.Logf("netns: leaf fail %v (from the call %v, carrier lost over %v), restore %v; spine fail %v (from the call %v, carrier lost over %v, the slowest leaf from its own carrier loss %v), restore %v",
		cs[0], calls[0], spreads[0], cs[1], cs[2], calls[1], spreads[1], owns, cs[3])
	for i := range c {
		c[i] = median(cs[i])
	}
	for i := range x {
		x[i] = [2]time.Duration{median(calls[i]), median(spreads[i])}
	}
	return c, x, median(owns)
}

// fromOwnCarrier returns, of the speakers sw watches, the longest time
// from their own link to the peer losing carrier (cw) until they
// reported the session down.
func fromOwnCarrier(sw *sessionWatch, cw *carrierWatch) (d time.Duration) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for ep, lost := range cw.lost {
		if down, ok := sw.down[ep.Node]; ok {
			d = max(d, down.Sub(lost))
		}
	}
	return d
}

// convergenceCycles is how many times each node fails and is restored in
// one lab; the figures are the medians.
const convergenceCycles = 3

// vtepWatch counts, through a speaker's best-path watch, the routes it
// holds from one VTEP, and notes when the count first reached the armed
// number.
type vtepWatch struct {
	mu     sync.Mutex
	routes map[evpn.Route]bool
	want   int
	at     time.Time
	ch     chan struct{}
}

func watchVTEP(tb testing.TB, c *speaker.Client, vtep netip.Addr) *vtepWatch {
	w := &vtepWatch{routes: map[evpn.Route]bool{}, want: -1, ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Watch(ctx, func(u speaker.Update) {
			now := time.Now()
			w.mu.Lock()
			for _, r := range u.Withdrawn {
				delete(w.routes, r)
			}
			for _, r := range u.Adds {
				if r.VTEP == vtep {
					w.routes[r] = true
				}
			}
			if len(w.routes) == w.want && w.at.IsZero() {
				w.at = now
			}
			w.mu.Unlock()
			select {
			case w.ch <- struct{}{}:
			default:
			}
		})
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return w
}

// arm starts waiting for n routes (now, if it holds them already).
func (w *vtepWatch) arm(n int) {
	w.mu.Lock()
	w.want, w.at = n, time.Time{}
	if len(w.routes) == n {
		w.at = time.Now()
	}
	w.mu.Unlock()
}

// wait returns when the armed count was reached, waiting at most 30 s.
func (w *vtepWatch) wait(tb testing.TB, what string) time.Time {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		at, n := w.at, len(w.routes)
		w.mu.Unlock()
		if !at.IsZero() {
			return at
		}
		select {
		case <-w.ch:
		case <-deadline:
			tb.Fatalf("%s: %d routes after 30 s, want %d", what, n, w.want)
		}
	}
}

// simConvergence returns the same figures on sim, in virtual time.
func simConvergence(b *testing.B, topo *topologies.Topology) (c convergence) {
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
	// after runs act (virtual time stands still meanwhile, or, for a
	// restore, runs until it returns) and returns when ok first held,
	// from just before act, looking every step.
	after := func(step time.Duration, act func() error, ok func() bool) time.Duration {
		start := rt.Now()
		if err := act(); err != nil {
			b.Fatal(err)
		}
		for !ok() {
			if rt.Now()-start > 10*time.Second {
				b.Fatal("not converged after 10 s of virtual time")
			}
			if err := rt.Sleep(ctx, step); err != nil {
				b.Fatal(err)
			}
		}
		return rt.Now() - start
	}
	if held() != 3*51 {
		b.Fatalf("the other leaves hold %d of leaf1's routes, want %d", held(), 3*51)
	}
	const fine, coarse = 100 * time.Microsecond, time.Millisecond // failures take milliseconds, restores seconds
	var cs [4][]time.Duration
	for range convergenceCycles {
		cs[0] = append(cs[0], after(fine, func() error { return rt.SetNodeState(ctx, "leaf1", false) }, func() bool { return held() == 0 }))
		cs[1] = append(cs[1], after(coarse, func() error { return rt.SetNodeState(ctx, "leaf1", true) }, func() bool { return held() == 3*51 }))
	}
	for range convergenceCycles {
		cs[2] = append(cs[2], after(fine, func() error { return rt.SetNodeState(ctx, "spine1", false) }, func() bool { return spineUp() == 0 }))
		cs[3] = append(cs[3], after(coarse, func() error { return rt.SetNodeState(ctx, "spine1", true) }, func() bool { return spineUp() == 4 }))
	}
	b.Logf("sim: leaf fail %v, restore %v; spine fail %v, restore %v", cs[0], cs[1], cs[2], cs[3])
	for i := range c {
		c[i] = median(cs[i])
	}
	return c
}

// carrierWatch notes when the far end of each link of one node lost
// carrier (netlink link events in the neighbours' namespaces): on netns
// a node's power loss takes its links down one netlink call after
// another, and each neighbour reacts to its own link.
type carrierWatch struct {
	mu   sync.Mutex
	lost map[topologies.Endpoint]time.Time
	ends []topologies.Endpoint
}

func watchCarrier(tb testing.TB, rt *netnsrt.Runtime, topo *topologies.Topology, node string) *carrierWatch {
	tb.Helper()
	cw := &carrierWatch{lost: map[topologies.Endpoint]time.Time{}}
	done := make(chan struct{})
	tb.Cleanup(func() { close(done) })
	for _, ifn := range topo.Interfaces(node) {
		far, _, ok := topo.Peer(topologies.Endpoint{Node: node, Iface: ifn})
		if !ok {
			continue
		}
		ns, err := rt.Lab().NsHandle(far.Node)
		if err != nil {
			tb.Fatal(err)
		}
		ch := make(chan netlink.LinkUpdate, 16)
		if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
			tb.Fatalf("watch the links of %s: %v", far.Node, err)
		}
		cw.ends = append(cw.ends, far)
		go func() {
			for u := range ch {
				if u.Attrs().Name != far.Iface || u.IfInfomsg.Flags&unix.IFF_LOWER_UP != 0 {
					continue
				}
				now := time.Now()
				cw.mu.Lock()
				if _, ok := cw.lost[far]; !ok {
					cw.lost[far] = now
				}
				cw.mu.Unlock()
			}
		}()
	}
	return cw
}

// reset forgets the losses seen so far.
func (cw *carrierWatch) reset() {
	cw.mu.Lock()
	cw.lost = map[topologies.Endpoint]time.Time{}
	cw.mu.Unlock()
}

// span returns when the first and the last far end lost carrier since
// reset, waiting at most 5 s for all of them.
func (cw *carrierWatch) span(tb testing.TB) (first, last time.Time) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		cw.mu.Lock()
		n := len(cw.lost)
		if n == len(cw.ends) {
			for _, t := range cw.lost {
				if first.IsZero() || t.Before(first) {
					first = t
				}
				if t.After(last) {
					last = t
				}
			}
		}
		cw.mu.Unlock()
		if n == len(cw.ends) {
			return first, last
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d links lost carrier after 5 s", n, len(cw.ends))
		}
	}
}
