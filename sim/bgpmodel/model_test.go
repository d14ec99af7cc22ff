package bgpmodel_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/sim/bgpmodel"
	"github.com/netbed/netbed/topologies"
)

// params are round timings, so that expected times read plainly.
var params = bgpmodel.Params{Date: "test", Machine: "test", Command: "test", Method: "test",
	Update: 200 * time.Microsecond, Service: time.Millisecond, ServiceWithdraw: 500 * time.Microsecond,
	Originate: 700 * time.Microsecond, Watch: 600 * time.Microsecond, CarrierLoss: 2 * time.Millisecond,
	EstablishMin: time.Second, EstablishMax: 2 * time.Second}

type fixture struct {
	e    *sim.Engine
	m    *bgpmodel.Model
	fab  *evpn.Fabric
	topo *topologies.Topology
}

// newFixture builds a spines×leaves fabric with control_plane: bgp's leaf
// tables and its model, every session up.
func newFixture(t *testing.T, spines, leaves int, p bgpmodel.Params, tm bgpmodel.Timers) *fixture {
	t.Helper()
	return newDesignFixture(t, spines, leaves, false, p, tm)
}

// newDesignFixture is newFixture in the eBGP design (RFC 7938) if ebgp.
func newDesignFixture(t *testing.T, spines, leaves int, ebgp bool, p bgpmodel.Params, tm bgpmodel.Timers) *fixture {
	t.Helper()
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "bgpm", Spines: spines, Leaves: leaves, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	fab, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := bgpmodel.Gen2(topo, fab, ebgp)
	if err != nil {
		t.Fatal(err)
	}
	e := sim.New(1)
	m, err := bgpmodel.New(e, d, p, tm, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Close)
	return &fixture{e: e, m: m, fab: fab, topo: topo}
}

func (f *fixture) leaf(name string) *evpn.Leaf {
	l, _ := f.fab.Leaf(name)
	return l
}

func (f *fixture) type3(leaf string) evpn.Route {
	return evpn.Route{Type: evpn.InclusiveMulticast, VNI: 100, VTEP: f.leaf(leaf).VTEP()}
}

func (f *fixture) type2(leaf string, i byte) evpn.Route {
	l := f.leaf(leaf)
	return evpn.Route{Type: evpn.MACIP, VNI: 100, L3VNI: 50001, MAC: evpn.MAC{2, 0, 0, 0, l.VTEP().As4()[3], i},
		IP: netip.AddrFrom4([4]byte{10, 0, l.VTEP().As4()[3], i}), VTEP: l.VTEP(), RouterMAC: l.RouterMAC()}
}

func (f *fixture) run(t *testing.T, d time.Duration) {
	t.Helper()
	if err := f.e.Run(f.e.Now() + d); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Err(); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs virtual time in 10 µs steps until ok holds, and returns
// the time it first held; it fails after limit.
func (f *fixture) runUntil(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	end := f.e.Now() + limit
	for !ok() {
		if f.e.Now() >= end {
			t.Fatalf("%s: not after %v", what, limit)
		}
		f.run(t, 10*time.Microsecond)
	}
	return f.e.Now()
}

func (f *fixture) holds(t *testing.T, node string, r evpn.Route) bool {
	t.Helper()
	rs, err := f.m.Routes(node)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(rs, func(x bgpmodel.Route) bool { return x.Route == r })
}

func inTable(l *evpn.Leaf, r evpn.Route) bool { return slices.Contains(l.Table().Routes(), r) }

func sessions(t *testing.T, m *bgpmodel.Model, node string) map[string]bgpmodel.SessionState {
	t.Helper()
	ss, err := m.Sessions(node)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bgpmodel.SessionState{}
	for _, s := range ss {
		out[s.PeerNode] = s
	}
	return out
}

// TestReflection: a leaf's route reaches every speaker through the
// route reflectors (each other leaf picking one of the two spines'
// copies) and every other leaf's table, a lone route after exactly the
// export, two UPDATE hops and the watch; a withdrawal takes it away
// again once both spines' copies are withdrawn.
func TestReflection(t *testing.T) {
	f := newFixture(t, 2, 3, params, bgpmodel.Timers{})
	r := f.type3("leaf1")
	start := f.e.Now()
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	at := f.runUntil(t, time.Second, "leaf2's table has leaf1's route", func() bool { return inTable(f.leaf("leaf2"), r) })
	if want := params.Originate + 2*params.Update + params.Watch; at-start != want {
		t.Errorf("leaf2 imported the route after %v, want originate + 2 update + watch = %v", at-start, want)
	}
	f.run(t, 10*time.Millisecond)
	for _, n := range []string{"spine1", "spine2", "leaf1", "leaf2", "leaf3"} {
		rs, err := f.m.Routes(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Route != r || !slices.Equal(rs[0].RouteTargets, []string{"65000:100"}) {
			t.Errorf("%s holds %+v, want only %s with route target 65000:100", n, rs, r)
		}
	}
	if !inTable(f.leaf("leaf3"), r) {
		t.Error("leaf3's table lacks leaf1's route")
	}
	start = f.e.Now()
	if err := f.leaf("leaf1").Withdraw(r); err != nil {
		t.Fatal(err)
	}
	// Both spines' withdrawals arrive together; the route is gone when
	// leaf2 has handled the second.
	at = f.runUntil(t, time.Second, "leaf2's table loses leaf1's route", func() bool { return !inTable(f.leaf("leaf2"), r) })
	if want := params.Originate + 2*params.Update + params.ServiceWithdraw + params.Watch; at-start != want {
		t.Errorf("leaf2 removed the route after %v, want originate + 2 update + service_withdraw + watch = %v", at-start, want)
	}
	for _, n := range []string{"spine1", "spine2", "leaf2", "leaf3"} {
		if f.holds(t, n, r) {
			t.Errorf("%s still holds the withdrawn route", n)
		}
	}
}

// TestBurstPace: routes exported together reach another leaf one
// Service apart, the first after the lone route's time.
func TestBurstPace(t *testing.T) {
	f := newFixture(t, 1, 2, params, bgpmodel.Timers{})
	const n = 10
	var rs []evpn.Route
	for i := range n {
		r := f.type2("leaf1", byte(i+1))
		rs = append(rs, r)
		if err := f.leaf("leaf1").Advertise(r); err != nil {
			t.Fatal(err)
		}
	}
	at := f.runUntil(t, time.Second, "all routes at leaf2", func() bool {
		return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return !inTable(f.leaf("leaf2"), r) })
	})
	if want := params.Originate + 2*params.Update + params.Watch + (n-1)*params.Service; at != want {
		t.Errorf("the last of %d routes reached leaf2's table at %v, want %v", n, at, want)
	}
}

// TestLeafPowerLoss: a failed leaf's sessions go down at the spines once
// they see carrier loss; the other leaves' speakers and tables lose its
// routes after carrier loss, the two spines' withdrawals and the watch; the failed
// leaf forgets what it learnt. Restored, its sessions come back within
// the establishment time and its routes return everywhere.
func TestLeafPowerLoss(t *testing.T) {
	f := newFixture(t, 2, 3, params, bgpmodel.Timers{})
	r1, r2 := f.type3("leaf1"), f.type3("leaf2")
	for _, x := range []struct {
		leaf string
		r    evpn.Route
	}{{"leaf1", r1}, {"leaf2", r2}} {
		if err := f.leaf(x.leaf).Advertise(x.r); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t, 10*time.Millisecond)
	if !inTable(f.leaf("leaf1"), r2) || !inTable(f.leaf("leaf3"), r1) {
		t.Fatal("routes not exchanged before the failure")
	}
	start := f.e.Now()
	f.m.SetNodeState("leaf1", false)
	if inTable(f.leaf("leaf1"), r2) {
		t.Error("the failed leaf's table still holds what it learnt")
	}
	if _, err := f.m.Routes("leaf1"); err == nil || !strings.Contains(err.Error(), "does not run") {
		t.Errorf("routes of the failed leaf's speaker: %v; want an error saying it does not run", err)
	}
	at := f.runUntil(t, time.Second, "leaf3 loses leaf1's route", func() bool { return !inTable(f.leaf("leaf3"), r1) })
	if want := params.CarrierLoss + params.Update + params.ServiceWithdraw + params.Watch; at-start != want {
		t.Errorf("leaf3 lost leaf1's route after %v, want carrier loss + update + service_withdraw (the second spine's) + watch = %v", at-start, want)
	}
	for _, n := range []string{"spine1", "spine2"} {
		s := sessions(t, f.m, n)["leaf1"]
		if s.Established || s.Down != "carrier lost" {
			t.Errorf("%s's session to leaf1: %+v, want down by carrier loss", n, s)
		}
	}
	start = f.e.Now()
	f.m.SetNodeState("leaf1", true)
	at = f.runUntil(t, 3*time.Second, "leaf3 has leaf1's route again", func() bool { return inTable(f.leaf("leaf3"), r1) })
	if d := at - start; d < params.EstablishMin || d > params.EstablishMax+10*time.Millisecond {
		t.Errorf("leaf1's route was back after %v, want within the establishment range %v–%v (and the hops)", d, params.EstablishMin, params.EstablishMax)
	}
	f.runUntil(t, 3*time.Second, "leaf1 learns leaf2's route again", func() bool { return inTable(f.leaf("leaf1"), r2) })
}

// TestSpineFailure: the leaves keep every route through the other spine,
// their sessions to the failed one down; a link failure takes only its
// own session down.
func TestSpineFailure(t *testing.T) {
	f := newFixture(t, 2, 2, params, bgpmodel.Timers{})
	r := f.type3("leaf1")
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	f.run(t, 10*time.Millisecond)
	f.m.SetNodeState("spine1", false)
	f.run(t, 10*time.Millisecond)
	for _, n := range []string{"leaf1", "leaf2"} {
		ss := sessions(t, f.m, n)
		if ss["spine1"].Established || !ss["spine2"].Established {
			t.Errorf("%s's sessions %+v, want spine1's down and spine2's up", n, ss)
		}
	}
	if !f.holds(t, "leaf2", r) || !inTable(f.leaf("leaf2"), r) {
		t.Error("leaf2 lost leaf1's route with one spine left")
	}
	f.m.SetNodeState("spine1", true)
	f.run(t, 3*time.Second)
	if !f.holds(t, "spine1", r) || !sessions(t, f.m, "leaf1")["spine1"].Established {
		t.Error("the restored spine has not relearnt leaf1's route")
	}
	// A link between leaf2 and spine2 fails: that session only.
	var ep topologies.Endpoint
	for _, lk := range f.topo.Links {
		if lk.A.Node == "spine2" && lk.B.Node == "leaf2" {
			ep = lk.B
		} else if lk.B.Node == "spine2" && lk.A.Node == "leaf2" {
			ep = lk.A
		}
	}
	f.m.SetLinkState(ep, false)
	f.run(t, 10*time.Millisecond)
	ss := sessions(t, f.m, "leaf2")
	if ss["spine2"].Established || !ss["spine1"].Established || !sessions(t, f.m, "leaf1")["spine2"].Established {
		t.Errorf("after %s failed: leaf2's sessions %+v; want only spine2's down", ep, ss)
	}
	if !inTable(f.leaf("leaf2"), r) {
		t.Error("leaf2 lost leaf1's route with a session left")
	}
}

// TestSessionDownDropsPaths: a speaker that loses a session removes the
// paths it learnt on it one Params.Drop apart and reports the session
// down after the last (GoBGP's order): after spine1's power loss, leaf2,
// holding leaf1's five routes from spine1, has the session down at
// carrier loss + 5 drops, leaf1, holding none, at carrier loss; a failed
// leaf's routes leave each spine one drop apart.
func TestSessionDownDropsPaths(t *testing.T) {
	p := params
	p.Drop = 600 * time.Microsecond // above ServiceWithdraw: the spine sets the pace
	f := newFixture(t, 2, 2, p, bgpmodel.Timers{})
	var rs []evpn.Route
	for i := range byte(5) {
		rs = append(rs, f.type2("leaf1", i+1))
	}
	for _, r := range rs {
		if err := f.leaf("leaf1").Advertise(r); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t, 50*time.Millisecond)
	start := f.e.Now()
	f.m.SetNodeState("spine1", false)
	down := func(leaf string) func() bool {
		return func() bool { return !sessions(t, f.m, leaf)["spine1"].Established }
	}
	if at := f.runUntil(t, time.Second, "leaf1's session to spine1 down", down("leaf1")); at-start != p.CarrierLoss {
		t.Errorf("leaf1 (nothing learnt from spine1) reported spine1 down after %v, want carrier loss %v", at-start, p.CarrierLoss)
	}
	if at := f.runUntil(t, time.Second, "leaf2's session to spine1 down", down("leaf2")); at-start != p.CarrierLoss+5*p.Drop {
		t.Errorf("leaf2 (five paths from spine1) reported spine1 down after %v, want carrier loss + 5 drops = %v", at-start, p.CarrierLoss+5*p.Drop)
	}
	for _, r := range rs {
		if !inTable(f.leaf("leaf2"), r) {
			t.Errorf("leaf2 lost %s with spine2 left", r)
		}
	}
	f.m.SetNodeState("spine1", true)
	f.run(t, 3*time.Second)

	// leaf1 fails: spine2 alone withdraws its five routes, one drop
	// apart; the last leaves it at carrier loss + 5 drops.
	f.m.SetNodeState("spine1", false)
	f.run(t, 100*time.Millisecond)
	start = f.e.Now()
	f.m.SetNodeState("leaf1", false)
	at := f.runUntil(t, time.Second, "leaf2 loses leaf1's routes", func() bool {
		return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return f.holds(t, "leaf2", r) })
	})
	if want := p.CarrierLoss + 5*p.Drop + p.Update; at-start != want {
		t.Errorf("leaf2 lost leaf1's routes after %v, want carrier loss + 5 drops + update = %v", at-start, want)
	}
}

// TestDropContention: speakers that drop paths at once share
// Params.Cores CPUs, a path at a time. spine1 fails while four leaves
// each hold n of leaf1's routes from it: with a CPU each (4 cores, or 0:
// unlimited) every leaf reports spine1 down at carrier loss + n drops;
// on 2 cores the four take turns two by two, so leaf2 and leaf3 (first
// to claim) end their last path at carrier loss + (2n - 1) drops and
// leaf4 and leaf5 at carrier loss + 2n drops: the four leaves' 4n drops
// on 2 CPUs. leaf1, with nothing to drop, is unaffected.
func TestDropContention(t *testing.T) {
	const n = 10
	down := map[int]map[string]time.Duration{}
	for _, cores := range []int{0, 4, 2} {
		p := params
		p.Drop, p.Cores = time.Millisecond, cores
		f := newFixture(t, 2, 5, p, bgpmodel.Timers{})
		for i := range byte(n) {
			if err := f.leaf("leaf1").Advertise(f.type2("leaf1", i+1)); err != nil {
				t.Fatal(err)
			}
		}
		f.run(t, 100*time.Millisecond)
		start := f.e.Now()
		f.m.SetNodeState("spine1", false)
		down[cores] = map[string]time.Duration{}
		for _, leaf := range []string{"leaf1", "leaf2", "leaf3", "leaf4", "leaf5"} {
			at := f.runUntil(t, time.Second, leaf+"'s session to spine1 down", func() bool {
				s, ok := sessions(t, f.m, leaf)["spine1"]
				return ok && !s.Established
			})
			down[cores][leaf] = at - start // leaves in the order they go down; every drop ends on a 10 µs step
		}
	}
	cl, d := params.CarrierLoss, time.Millisecond
	for _, cores := range []int{0, 4} {
		for leaf, at := range down[cores] {
			want := cl + n*d
			if leaf == "leaf1" {
				want = cl
			}
			if at != want {
				t.Errorf("%d cores: %s reported spine1 down after %v, want %v", cores, leaf, at, want)
			}
		}
	}
	for leaf, want := range map[string]time.Duration{"leaf1": cl, "leaf2": cl + (2*n-1)*d, "leaf3": cl + (2*n-1)*d,
		"leaf4": cl + 2*n*d, "leaf5": cl + 2*n*d} {
		if at := down[2][leaf]; at != want {
			t.Errorf("2 cores: %s reported spine1 down after %v, want %v", leaf, at, want)
		}
	}
}

// TestSpineFailureCalibrated: BenchmarkBGPConvergenceSimNetns's spine
// failure on sim with the checked-in calibration, by arithmetic: four
// leaves each originating 51 routes, so that each holds 153 from spine1;
// spine1's power loss takes them all down at carrier loss, and the four
// leaves' 4 x 153 drops share the calibration's 2 CPUs, so the last
// reports spine1 down at carrier loss + 2 x 153 drops (46.4 ms; each
// leaf on a CPU of its own, as before the CPUs were modelled, it was
// carrier loss + 153 drops, 38.8 ms with the drop then calibrated).
func TestSpineFailureCalibrated(t *testing.T) {
	p := *bgpmodel.Default()
	if p.Cores != 2 {
		t.Fatalf("the calibration's machine has %d cores; this test's arithmetic is for 2", p.Cores)
	}
	f := newFixture(t, 2, 4, p, bgpmodel.Timers{})
	leaves := []string{"leaf1", "leaf2", "leaf3", "leaf4"}
	for _, l := range leaves {
		if err := f.leaf(l).Advertise(f.type3(l)); err != nil {
			t.Fatal(err)
		}
		for i := range byte(50) {
			if err := f.leaf(l).Advertise(f.type2(l, i+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.run(t, 2*time.Second)
	start := f.e.Now()
	f.m.SetNodeState("spine1", false)
	at := f.runUntil(t, time.Second, "every leaf's session to spine1 down", func() bool {
		return !slices.ContainsFunc(leaves, func(l string) bool { return sessions(t, f.m, l)["spine1"].Established })
	})
	want := p.CarrierLoss + 2*153*p.Drop
	if d := at - start; d < want || d >= want+10*time.Microsecond { // runUntil's 10 µs steps
		t.Errorf("the last leaf reported spine1 down after %v, want carrier loss + 2 x 153 drops = %v", d, want)
	}
}

// TestDropNoContention: a leaf's failure costs each spine its paths'
// drops, two speakers on two CPUs: nothing waits, and leaf2 loses the
// failed leaf's routes exactly when it does with unlimited CPUs (carrier
// loss + n drops + leaf2's handling of the last two withdrawals, which
// takes no CPU of the pool here: update_cpu 0).
func TestDropNoContention(t *testing.T) {
	const n = 8
	for _, cores := range []int{0, 2} {
		p := params
		p.Drop, p.Cores = 1500*time.Microsecond, cores // above 2 ServiceWithdraw: the spines set the pace
		f := newFixture(t, 2, 2, p, bgpmodel.Timers{})
		var rs []evpn.Route
		for i := range byte(n) {
			rs = append(rs, f.type2("leaf1", i+1))
		}
		for _, r := range rs {
			if err := f.leaf("leaf1").Advertise(r); err != nil {
				t.Fatal(err)
			}
		}
		f.run(t, 100*time.Millisecond)
		start := f.e.Now()
		f.m.SetNodeState("leaf1", false)
		at := f.runUntil(t, time.Second, "leaf2 loses leaf1's routes", func() bool {
			return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return f.holds(t, "leaf2", r) })
		})
		if want := p.CarrierLoss + n*p.Drop + p.Update + p.ServiceWithdraw; at-start != want {
			t.Errorf("%d cores: leaf2 lost leaf1's routes after %v, want carrier loss + %d drops + update + service_withdraw = %v", cores, at-start, n, want)
		}
	}
}

// TestUpdateContention: handling an UPDATE takes update_cpu of the CPU
// pool the drops use (here all of its update). leaf1's new route reaches
// both spines at once; on two CPUs (or unlimited) they handle it side by
// side and reflect it, and leaf2 has it in its table at originate + 2
// updates + watch; on one CPU spine2 waits for spine1, and leaf2's
// handling of spine1's UPDATE (ready when spine1 is done) waits for
// spine2's: one update later.
func TestUpdateContention(t *testing.T) {
	for _, c := range []struct {
		cores   int
		updates time.Duration
	}{{0, 2}, {2, 2}, {1, 3}} {
		p := params
		p.Cores, p.UpdateCPU = c.cores, p.Update
		f := newFixture(t, 2, 2, p, bgpmodel.Timers{})
		f.run(t, 10*time.Millisecond)
		r := f.type2("leaf1", 1)
		start := f.e.Now()
		if err := f.leaf("leaf1").Advertise(r); err != nil {
			t.Fatal(err)
		}
		want := start + p.Originate + c.updates*p.Update + p.Watch
		f.runTo(t, want-1)
		if inTable(f.leaf("leaf2"), r) {
			t.Errorf("%d cores: leaf2 has leaf1's new route before %v", c.cores, want-start)
		}
		f.runTo(t, want)
		if !inTable(f.leaf("leaf2"), r) {
			t.Errorf("%d cores: leaf2 has not leaf1's new route at %v, want it then (originate + %d updates + watch)", c.cores, want-start, c.updates)
		}
	}
}

// TestHoldTimer: a silent leaf (links up, nothing through) is noticed by
// the hold timer alone: its routes stay until the hold time since the
// last keepalive has passed, then go; when it speaks again its sessions
// come back.
func TestHoldTimer(t *testing.T) {
	tm := bgpmodel.Timers{Hold: 3 * time.Second, Keepalive: time.Second}
	f := newFixture(t, 1, 2, params, tm)
	r := f.type3("leaf1")
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	f.run(t, 10*time.Millisecond)
	start := f.e.Now()
	f.m.SetSilent("leaf1", true)
	at := f.runUntil(t, 5*time.Second, "leaf2 loses the silent leaf's route", func() bool { return !inTable(f.leaf("leaf2"), r) })
	if d := at - start; d < tm.Hold-tm.Keepalive || d > tm.Hold+10*time.Millisecond {
		t.Errorf("the silent leaf's route went after %v, want between hold - keepalive (%v) and hold (%v)", d, tm.Hold-tm.Keepalive, tm.Hold)
	}
	if s := sessions(t, f.m, "spine1")["leaf1"]; s.Established || s.Down != "hold timer expired" {
		t.Errorf("spine1's session to leaf1: %+v, want down by the hold timer", s)
	}
	f.m.SetSilent("leaf1", false)
	f.runUntil(t, 3*time.Second, "leaf2 has leaf1's route again", func() bool { return inTable(f.leaf("leaf2"), r) })
}

// TestMRAI: with an advertisement interval, a change that follows
// another to the same peer waits for the interval to pass.
func TestMRAI(t *testing.T) {
	p := params
	p.MRAI = 100 * time.Millisecond
	f := newFixture(t, 1, 2, p, bgpmodel.Timers{})
	r1, r2 := f.type2("leaf1", 1), f.type2("leaf1", 2)
	if err := f.leaf("leaf1").Advertise(r1); err != nil {
		t.Fatal(err)
	}
	f.run(t, 5*time.Millisecond)
	start := f.e.Now()
	if err := f.leaf("leaf1").Advertise(r2); err != nil {
		t.Fatal(err)
	}
	at := f.runUntil(t, time.Second, "r2 at leaf2", func() bool { return inTable(f.leaf("leaf2"), r2) })
	if at-start < 90*time.Millisecond {
		t.Errorf("the second route reached leaf2 after %v, within the MRAI (%v) of the first", at-start, p.MRAI)
	}
}

// TestDeterministic: two models with the same seed fail and restore the
// same way at the same virtual times.
func TestDeterministic(t *testing.T) {
	trace := func() []time.Duration {
		f := newFixture(t, 2, 2, params, bgpmodel.Timers{})
		r := f.type3("leaf1")
		_ = f.leaf("leaf1").Advertise(r)
		f.run(t, 10*time.Millisecond)
		f.m.SetNodeState("leaf1", false)
		f.run(t, 10*time.Millisecond)
		f.m.SetNodeState("leaf1", true)
		var out []time.Duration
		out = append(out, f.runUntil(t, 3*time.Second, "back", func() bool { return inTable(f.leaf("leaf2"), r) }))
		return out
	}
	if a, b := trace(), trace(); !slices.Equal(a, b) {
		t.Errorf("two runs with one seed: %v and %v", a, b)
	}
}

// TestIBGPDesign: the design is netns's: spines then leaves, one AS, the
// first spine's router ID the cluster, a session per leaf–spine link with
// the /31s of 169.254.0.0/16 in link order.
func TestIBGPDesign(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "d", Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	fab, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := bgpmodel.IBGP(topo, fab)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range d.Speakers {
		names = append(names, s.Node)
		if s.ASN != bgpmodel.DefaultASN || (s.Leaf == nil) != strings.HasPrefix(s.Node, "spine") {
			t.Errorf("speaker %+v", s)
		}
	}
	if !slices.Equal(names, []string{"spine1", "spine2", "leaf1", "leaf2"}) {
		t.Errorf("speakers %v", names)
	}
	if len(d.Sessions) != 4 || d.Sessions[0].AddrA != netip.MustParseAddr("169.254.0.0") || d.Sessions[0].AddrB != netip.MustParseAddr("169.254.0.1") || !d.Sessions[0].BClient {
		t.Errorf("sessions %+v", d.Sessions)
	}
	topo.Node("leaf1").Labels = map[string]string{bgpmodel.LabelASN: "0"}
	if _, err := bgpmodel.IBGP(topo, fab); err == nil || !strings.Contains(err.Error(), "node leaf1: label netbed.asn") {
		t.Errorf("ASN 0: %v", err)
	}
}

// TestParams: the checked-in calibration parses and says where it comes
// from; a file with a negative or inverted timing does not.
func TestParams(t *testing.T) {
	p := bgpmodel.Default()
	if p.Update <= 0 || p.Cores <= 0 || p.EstablishMax < p.EstablishMin || !strings.Contains(p.Command, "BGPModelCalibration") {
		t.Errorf("checked-in calibration: %+v", p)
	}
	for _, bad := range []string{
		`{"date":"d","machine":"m","command":"c","method":"x","update_ns":-1}`,
		`{"date":"d","machine":"m","command":"c","method":"x","establish_min_ns":2,"establish_max_ns":1}`,
		`{"date":"d","machine":"m","command":"c","method":"x","bogus":1}`,
		`{"date":"d","machine":"m","command":"c","method":"x","cores":-1}`,
		`{"update_ns":1}`,
	} {
		if _, err := bgpmodel.ParseParams([]byte(bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

// TestNoHoldTimer: without a hold timer (hold 0 in a scenario) a silent
// leaf is never noticed: its routes stay.
func TestNoHoldTimer(t *testing.T) {
	f := newFixture(t, 1, 2, params, bgpmodel.Timers{Hold: bgpmodel.NoHold})
	r := f.type3("leaf1")
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	f.run(t, 10*time.Millisecond)
	f.m.SetSilent("leaf1", true)
	f.run(t, time.Minute)
	if !inTable(f.leaf("leaf2"), r) || !sessions(t, f.m, "spine1")["leaf1"].Established {
		t.Error("a silent peer was noticed without a hold timer")
	}
}

// TestEBGPDesign: in RFC 7938's design (spines AS 65000, leaves 65001
// up, every session eBGP) a leaf's route reaches every other leaf's
// table through either spine in as long as through a route reflector,
// with its route target in the spines' AS; no spine takes it back from
// another leaf (the spines' AS is on its path), so after leaf1 loses
// power the spines' withdrawals take it from every table at the pace of
// the iBGP design's, and restored it comes back.
func TestEBGPDesign(t *testing.T) {
	f := newDesignFixture(t, 2, 3, true, params, bgpmodel.Timers{})
	d, err := bgpmodel.Gen2(f.topo, f.fab, true)
	if err != nil {
		t.Fatal(err)
	}
	asns := map[string]uint32{}
	for _, s := range d.Speakers {
		asns[s.Node] = s.ASN
		if s.RouteTargetASN != 65000 {
			t.Errorf("%s numbers route targets in AS %d, want the spines' 65000", s.Node, s.RouteTargetASN)
		}
	}
	if asns["spine1"] != 65000 || asns["spine2"] != 65000 || asns["leaf1"] != 65001 || asns["leaf3"] != 65003 {
		t.Errorf("ASNs %v", asns)
	}
	if slices.ContainsFunc(d.Sessions, func(s bgpmodel.Session) bool { return s.BClient }) {
		t.Errorf("sessions %+v: a route-reflector client in the eBGP design", d.Sessions)
	}
	r := f.type3("leaf1")
	start := f.e.Now()
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	at := f.runUntil(t, time.Second, "leaf2's table has leaf1's route", func() bool { return inTable(f.leaf("leaf2"), r) })
	if want := params.Originate + 2*params.Update + params.Watch; at-start != want {
		t.Errorf("leaf2 imported the route after %v, want originate + 2 update + watch = %v", at-start, want)
	}
	f.run(t, 10*time.Millisecond)
	for _, n := range []string{"spine1", "spine2", "leaf2", "leaf3"} {
		rs, err := f.m.Routes(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Route != r || !slices.Equal(rs[0].RouteTargets, []string{"65000:100"}) {
			t.Errorf("%s holds %+v, want only %s with route target 65000:100", n, rs, r)
		}
	}
	if !f.m.Quiet() {
		t.Error("UPDATEs still under way 10 ms after one route: a loop between the ASes")
	}
	start = f.e.Now()
	f.m.SetNodeState("leaf1", false)
	at = f.runUntil(t, time.Second, "leaf3 loses leaf1's route", func() bool { return !inTable(f.leaf("leaf3"), r) })
	if want := params.CarrierLoss + params.Update + params.ServiceWithdraw + params.Watch; at-start != want {
		t.Errorf("leaf3 lost leaf1's route after %v, want carrier loss + update + service_withdraw + watch = %v", at-start, want)
	}
	f.run(t, 10*time.Millisecond)
	for _, n := range []string{"spine1", "spine2", "leaf2", "leaf3"} {
		if f.holds(t, n, r) {
			t.Errorf("%s still holds the failed leaf's route", n)
		}
	}
	f.m.SetNodeState("leaf1", true)
	f.runUntil(t, 3*time.Second, "leaf3 has leaf1's route again", func() bool { return inTable(f.leaf("leaf3"), r) })
}
