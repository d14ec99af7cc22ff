package netnsrt_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/doctor"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/sim/bgpmodel"
	"github.com/netbed/netbed/topologies"
)

var writeBGPModel = flag.Bool("bgpmodel.write", false,
	"BenchmarkBGPModelCalibration: write the derived parameters to sim/bgpmodel/calibration.json")

// calibrationCommand remeasures sim/bgpmodel/calibration.json.
const calibrationCommand = "go test -run '^$' -bench BGPModelCalibration -benchtime 1x ./scenarios/netnsrt -bgpmodel.write (root)"

// BenchmarkBGPModelCalibration measures gen 2's real speakers where the
// scenarios run them (a 2×4 fabric with control_plane: bgp on netns: a
// `netbed speaker` process per switch in its namespace, sessions over
// the veths, the userspace datapath forwarding beside them) and derives
// the BGP model's timings (package sim/bgpmodel); with -bgpmodel.write
// it writes them to sim/bgpmodel/calibration.json with the machine (and
// its load) and the date. Every figure is timed from just before the
// action until a speaker's watch (WatchEvent) delivered the change, with
// no polling in between.
func BenchmarkBGPModelCalibration(b *testing.B) {
	testutil.RequireRoot(b)
	for range b.N {
		p := measureBGPModel(b)
		b.ReportMetric(float64(p.Update.Microseconds()), "update-us")
		b.ReportMetric(float64(p.Service.Microseconds()), "service-us")
		b.ReportMetric(float64(p.Originate.Microseconds()), "api-us")
		b.ReportMetric(float64(p.CarrierLoss.Microseconds()), "carrier-us")
		b.ReportMetric(float64(p.Drop.Microseconds()), "drop-us")
		b.ReportMetric(float64(p.UpdateCPU.Microseconds()), "update-cpu-us")
		b.ReportMetric(p.EstablishMin.Seconds(), "establish-min-s")
		b.ReportMetric(p.EstablishMax.Seconds(), "establish-max-s")
		for _, k := range slices.Sorted(mapKeys(p.Measured)) {
			b.Logf("%s: %v", k, p.Measured[k])
		}
		if !*writeBGPModel {
			continue
		}
		out, err := p.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bgpmodel.ParseParams(out); err != nil {
			b.Fatalf("the derived parameters do not parse: %v", err)
		}
		if err := os.WriteFile("../../sim/bgpmodel/calibration.json", out, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("wrote sim/bgpmodel/calibration.json")
	}
}

func measureBGPModel(b *testing.B) bgpmodel.Params {
	const (
		singles = 15  // one route advertised and withdrawn, this many times
		burst   = 100 // routes advertised in one go
		cycles  = 3   // leaf1 failed and restored with few routes, and again with many
		owned   = 3   // routes leaf1 holds when it fails (the library's leaf-failure: a type 3, two type 2)
		many    = 30  // and with this many
		spines  = 2
		leaves  = 4
		// spine1 fails with leaf1 holding many routes, then this many more
		spineMore = 120
	)
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "bgpcal", Spines: spines, Leaves: leaves, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		b.Fatal(err)
	}
	rt := newRuntime(b, "bgpcal")
	b.Cleanup(func() { rt.Close() })
	ctx := context.Background()
	if err := rt.Load(ctx, f, topo); err != nil {
		b.Fatal(err)
	}
	leaf1, _ := f.Leaf("leaf1")
	client := func(n string) *speaker.Client {
		c, ok := rt.Speaker(n)
		if !ok {
			b.Fatalf("no speaker on %s", n)
		}
		return c
	}
	w := watchRoutes(b, client("leaf2"))
	own := watchRoutes(b, client("leaf1"))
	route := func(i int) evpn.Route {
		return evpn.Route{Type: evpn.MACIP, VNI: 100, L3VNI: 50001, MAC: evpn.MAC{2, 0, 0, 1, byte(i >> 8), byte(i)},
			IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), VTEP: leaf1.VTEP(), RouterMAC: leaf1.RouterMAC()}
	}
	change := func(add bool, rs ...evpn.Route) {
		if err := rt.Mutate(func() error {
			for _, r := range rs {
				var err error
				if add {
					err = leaf1.Advertise(r)
				} else {
					err = leaf1.Withdraw(r)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	has := func(rs ...evpn.Route) func(map[evpn.Route]bool) bool {
		return func(m map[evpn.Route]bool) bool {
			return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return !m[r] })
		}
	}
	none := func(rs ...evpn.Route) func(map[evpn.Route]bool) bool {
		return func(m map[evpn.Route]bool) bool {
			return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return m[r] })
		}
	}
	measured := map[string]time.Duration{}

	// One route at a time: leaf1's export and API, a spine, leaf2, its watch.
	var adv, wd, local []time.Duration
	for i := range singles {
		r := route(i)
		t0 := time.Now()
		change(true, r)
		adv = append(adv, w.until(b, "advertised "+r.String(), has(r)).Sub(t0))
		local = append(local, own.until(b, "originated "+r.String(), has(r)).Sub(t0))
		t0 = time.Now()
		change(false, r)
		wd = append(wd, w.until(b, "withdrawn "+r.String(), none(r)).Sub(t0))
	}
	one, oneW, loc := median(adv), median(wd), median(local)
	measured["advertise_one_median"], measured["withdraw_one_median"], measured["originate_own_median"] = one, oneW, loc

	// A burst: the pipeline's slowest stage sets the pace.
	var rs []evpn.Route
	for i := range burst {
		rs = append(rs, route(1000+i))
	}
	t0 := time.Now()
	change(true, rs...)
	all := w.until(b, fmt.Sprintf("%d routes advertised", burst), has(rs...)).Sub(t0)
	t0 = time.Now()
	change(false, rs...)
	allW := w.until(b, fmt.Sprintf("%d routes withdrawn", burst), none(rs...)).Sub(t0)
	measured[fmt.Sprintf("advertise_%d", burst)], measured[fmt.Sprintf("withdraw_%d", burst)] = all, allW
	api := loc / 2
	update := max(one-loc, 0) / 2
	service, serviceW := max(all-one, 0)/(burst-1), max(allW-oneW, 0)/(burst-1)

	// Power loss: leaf1's links lose carrier, its speaker is killed; the
	// spines withdraw its routes from leaf2. Then it is restored.
	held := []evpn.Route{{Type: evpn.InclusiveMulticast, VNI: 100, VTEP: leaf1.VTEP()}}
	for i := range many - 1 {
		held = append(held, route(2000+i))
	}
	var back []time.Duration
	powerLoss := func(k int) time.Duration {
		rs := held[:k]
		change(true, rs...)
		w.until(b, "leaf1's routes advertised", has(rs...))
		var lost []time.Duration
		for range cycles {
			t0 := time.Now()
			if err := rt.SetNodeState(ctx, "leaf1", false); err != nil {
				b.Fatal(err)
			}
			lost = append(lost, w.until(b, "leaf1's routes withdrawn", none(rs...)).Sub(t0))
			t0 = time.Now()
			if err := rt.SetNodeState(ctx, "leaf1", true); err != nil {
				b.Fatal(err)
			}
			if k == owned {
				back = append(back, w.until(b, "leaf1's routes back", has(rs...)).Sub(t0))
			}
		}
		return median(lost)
	}
	few := powerLoss(owned)
	lots := powerLoss(many)
	measured[fmt.Sprintf("power_loss_withdrawn_%d_median", owned)], measured[fmt.Sprintf("power_loss_withdrawn_%d_median", many)] = few, lots
	measured["restore_back_min"], measured["restore_back_max"] = slices.Min(back), slices.Max(back)

	// Spine power loss: spine1's links lose carrier, its speaker is
	// killed; each leaf's speaker takes its session to spine1 down and
	// drops the paths it learnt on it (GoBGP's DropAll: each path's best
	// path recomputed) before it reports the peer down. Timed until the
	// last leaf's speaker reported it, with leaf1 holding many routes
	// and then spineMore more: the slope is the cost of one dropped path
	// at a leaf, the intercept a spine's carrier loss.
	peers := watchSessionsTo(b, rt, f.Leaves(), "spine1")
	spineLoss := func(k int) time.Duration {
		var lost []time.Duration
		for range cycles {
			// Every other leaf holds leaf1's routes from spine1 (after
			// a restore, established comes before spine1 sent them).
			peers.waitReceived(b, func(n string) int {
				if n == "leaf1" {
					return 0
				}
				return k
			})
			t0 := time.Now()
			peers.reset()
			if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
				b.Fatal(err)
			}
			lost = append(lost, peers.allDown(b).Sub(t0))
			if err := rt.SetNodeState(ctx, "spine1", true); err != nil {
				b.Fatal(err)
			}
			peers.rearm(b)
		}
		measured[fmt.Sprintf("spine_loss_down_%d", k)] = median(lost)
		return median(lost)
	}
	spineFew := spineLoss(many)
	var more []evpn.Route
	for i := range spineMore {
		more = append(more, route(3000+i))
	}
	change(true, more...)
	w.until(b, "leaf1's routes advertised", has(more...))
	spineLots := spineLoss(many + spineMore)
	change(false, more...)
	w.until(b, "leaf1's routes withdrawn", none(more...))
	// The slope is the wall time per path at the leaf that finished
	// last, with every leaf but leaf1 (the droppers) dropping at once on
	// the machine's CPUs: the model runs drops on a pool of that many
	// CPUs (Params.Cores), so drop is the CPU time of one path, the
	// slope shared out when the droppers outnumber the CPUs.
	cores, droppers := runtime.NumCPU(), leaves-1
	slope := max(spineLots-spineFew, 0) / spineMore
	measured["spine_drop_slope"] = slope
	drop := slope
	if droppers > cores {
		drop = slope * time.Duration(cores) / time.Duration(droppers)
	}
	// The model: the failed leaf's first withdrawal is handled at leaf2
	// at carrier loss + update, the other k*spines-1 one service_withdraw
	// apart, then the watch: the slope over k gives service_withdraw, the
	// intercept carrier loss.
	measured["withdraw_burst_pace"] = serviceW
	serviceW = max(lots-few, 0) / ((many - owned) * spines)
	carrier := max(few-update-max(owned*drop, drop+(owned*spines-1)*serviceW)-api, 0)
	// The same slope on the CPUs: each route more costs both spines a
	// drop and each other leaf the handling of a withdrawal from each
	// spine, all on the machine's cores at once; what is left of the
	// cores' time per route after the drops, shared among those
	// withdrawals, is one UPDATE's CPU time (at most update).
	perRoute := max(lots-few, 0) / (many - owned)
	updateCPU := min(max(time.Duration(cores)*perRoute-spines*drop, 0)/((leaves-1)*spines), update)
	measured["spine_carrier_loss"] = max(spineFew-many*slope-api, 0)
	est := func(d time.Duration) time.Duration { return max(d-2*update-(owned-1)*service-api, 0) }

	return bgpmodel.Params{
		Date:    time.Now().UTC().Format(time.DateOnly),
		Machine: machine(),
		Command: calibrationCommand,
		Method: fmt.Sprintf("gen 2 with control_plane: bgp on netns, as the scenarios run it: a 2x4 spine-leaf fabric, a netbed speaker process per switch in its namespace (iBGP, the spines route reflectors), sessions over the veths, the userspace datapath running; "+
			"every time is from just before the action until the speaker's WatchEvent stream delivered the change. "+
			"advertise_one = median of %[1]d single type-2 routes leaf1 originated (its export, gRPC AddPath, a spine, leaf2, leaf2's watch); "+
			"originate_own = the same until leaf1's own watch had it; originate = watch = originate_own / 2; update = (advertise_one - originate_own) / 2 (a spine's and leaf2's handling with the veth hops); "+
			"advertise_%[2]d and withdraw_%[2]d = %[2]d routes at once; service = (advertise_%[2]d - advertise_one) / %[3]d (the pace under a burst; withdraw_burst_pace the same for withdraw_%[2]d, recorded only: it is the export API's pace, not a speaker's). "+
			"power_loss_withdrawn_K = median of %[4]d: leaf1 failed (its veth ends down, its speaker SIGKILLed) holding K routes until leaf2 held none of them, for K = %[5]d and %[8]d; "+
			"service_withdraw = (power_loss_withdrawn_%[8]d - power_loss_withdrawn_%[5]d) / ((%[8]d - %[5]d) x %[6]d) (each spine withdraws each route). "+
			"spine_loss_down_K = median of %[4]d: spine1 failed (its veth ends down, its speaker SIGKILLed) while leaf1 held K routes (every other leaf learnt each from spine1), until the last leaf's speaker reported its session to spine1 down (WatchEvent, peers: GoBGP reports it after dropping every path learnt on it), for K = %[8]d and %[8]d + %[9]d; "+
			"spine_drop_slope = (spine_loss_down_%[10]d - spine_loss_down_%[8]d) / %[9]d (one dropped path at the last leaf, %[11]d leaves dropping at once on the machine's %[12]d CPUs); "+
			"drop = spine_drop_slope x min(1, cores / %[11]d) (one path's CPU time: the model shares cores CPUs among the speakers dropping at once; cores = runtime.NumCPU()); "+
			"spine_carrier_loss = spine_loss_down_%[8]d - %[8]d spine_drop_slope - watch (recorded only); "+
			"carrier_loss = power_loss_withdrawn_%[5]d - update - max(%[5]d drop, drop + (%[5]d x %[6]d - 1) service_withdraw) - watch (the model's path for the same failure). "+
			"update_cpu = min(update, (cores x (power_loss_withdrawn_%[8]d - power_loss_withdrawn_%[5]d) / (%[8]d - %[5]d) - %[6]d drop) / (%[13]d x %[6]d)) (per route more, the cores' time less the spines' drops, shared among the other leaves' withdrawals: one UPDATE's CPU time on the model's pool). "+
			"restore_back: leaf1 restored until leaf2 held its routes again; establish_min/max = the least and greatest restore_back - 2 update - %[7]d service - watch "+
			"(GoBGP's random 1-2 s before it dials, TCP, OPEN, KEEPALIVE). MRAI: GoBGP v3 parses minimum-advertisement-interval but never applies it (0).",
			singles, burst, burst-1, cycles, owned, spines, owned-1, many, spineMore, many+spineMore, droppers, cores, leaves-1),
		Update:          update,
		Service:         service,
		ServiceWithdraw: serviceW,
		UpdateCPU:       updateCPU,
		Originate:       api,
		Watch:           api,
		CarrierLoss:     carrier,
		Drop:            drop,
		Cores:           cores,
		EstablishMin:    est(slices.Min(back)),
		EstablishMax:    est(slices.Max(back)),
		Measured:        measured,
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// machine is doctor.Machine with the load average, which a calibration
// taken on a shared machine must carry.
func machine() string {
	if l := doctor.Load(); l != "" {
		return doctor.Machine() + ", load average " + l
	}
	return doctor.Machine()
}

// routeWatch follows a speaker's best paths through its watch, noting
// when each change arrived.
type routeWatch struct {
	mu     sync.Mutex
	routes map[evpn.Route]bool
	last   time.Time
	ch     chan struct{}
}

func watchRoutes(tb testing.TB, c *speaker.Client) *routeWatch {
	w := &routeWatch{routes: map[evpn.Route]bool{}, ch: make(chan struct{}, 1)}
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
				w.routes[r] = true
			}
			w.last = now
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

// until waits, at most 20 s, for ok to hold of the routes, and returns
// when the change that made it hold arrived. ok must not hold already.
func (w *routeWatch) until(tb testing.TB, what string, ok func(map[evpn.Route]bool) bool) time.Time {
	tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		w.mu.Lock()
		if ok(w.routes) {
			t := w.last
			w.mu.Unlock()
			return t
		}
		w.mu.Unlock()
		select {
		case <-w.ch:
		case <-deadline:
			tb.Fatalf("%s: not seen after 20 s", what)
		}
	}
}

// sessionWatch follows, on each of a set of speakers, the session to one
// peer node through the speaker's peer events (WatchPeers), noting when
// each speaker first reported it down, and established, since reset.
type sessionWatch struct {
	rt    *netnsrt.Runtime
	peer  string
	nodes []string
	addrs map[string]netip.Addr // the peer's address, by speaker
	mu    sync.Mutex
	down  map[string]time.Time
	up    map[string]time.Time
	ch    chan struct{}
	stop  []func()
}

func watchSessionsTo(tb testing.TB, rt *netnsrt.Runtime, nodes []string, peer string) *sessionWatch {
	tb.Helper()
	sw := &sessionWatch{rt: rt, peer: peer, nodes: nodes, addrs: map[string]netip.Addr{}, ch: make(chan struct{}, 1)}
	sw.reset()
	for _, n := range nodes {
		xs, err := rt.BGPSessions(context.Background(), n)
		if err != nil {
			tb.Fatal(err)
		}
		i := slices.IndexFunc(xs, func(x scenarios.BGPSession) bool { return x.PeerNode == peer })
		if i < 0 || !xs[i].Established {
			tb.Fatalf("%s has no established session to %s: %+v", n, peer, xs)
		}
		sw.addrs[n] = xs[i].Peer
	}
	sw.rearm(tb)
	tb.Cleanup(func() {
		for _, f := range sw.stop {
			f()
		}
	})
	return sw
}

// rearm (re)starts the watches, needed when a watched speaker restarted;
// the streams have no initial event, so it waits a moment for them to
// be open.
func (sw *sessionWatch) rearm(tb testing.TB) {
	tb.Helper()
	for _, f := range sw.stop {
		f()
	}
	sw.stop = nil
	for _, n := range sw.nodes {
		c, ok := sw.rt.Speaker(n)
		if !ok {
			tb.Fatalf("no speaker on %s", n)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		addr := sw.addrs[n]
		go func() {
			defer close(done)
			_ = c.WatchPeers(ctx, func(p netip.Addr, established bool) {
				if p != addr {
					return
				}
				now := time.Now()
				sw.mu.Lock()
				seen := sw.down
				if established {
					seen = sw.up
				}
				if _, ok := seen[n]; !ok {
					seen[n] = now
				}
				sw.mu.Unlock()
				select {
				case sw.ch <- struct{}{}:
				default:
				}
			})
		}()
		sw.stop = append(sw.stop, func() { cancel(); <-done })
	}
	time.Sleep(200 * time.Millisecond)
	sw.reset()
}

// waitReceived waits, at most 20 s, until every speaker sw watches holds
// want(node) paths from the peer (its Adj-RIB-In): after the peer's
// restart its sessions are established before it has sent its table.
func (sw *sessionWatch) waitReceived(tb testing.TB, want func(node string) int) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range sw.nodes {
		c, ok := sw.rt.Speaker(n)
		if !ok {
			tb.Fatalf("no speaker on %s", n)
		}
		for {
			got, err := c.Received(context.Background(), sw.addrs[n])
			if err != nil {
				tb.Fatal(err)
			}
			if got == want(n) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s holds %d paths from %s after 20 s, want %d", n, got, sw.peer, want(n))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// reset forgets what was seen so far.
func (sw *sessionWatch) reset() {
	sw.mu.Lock()
	sw.down, sw.up = map[string]time.Time{}, map[string]time.Time{}
	sw.mu.Unlock()
}

// allDown waits, at most 20 s, until every speaker has reported the
// session down since reset, and returns when the last did; allUp the
// same for established.
func (sw *sessionWatch) allDown(tb testing.TB) time.Time {
	tb.Helper()
	return sw.all(tb, false)
}

func (sw *sessionWatch) allUp(tb testing.TB) time.Time {
	tb.Helper()
	return sw.all(tb, true)
}

func (sw *sessionWatch) all(tb testing.TB, up bool) time.Time {
	tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		sw.mu.Lock()
		seen := sw.down
		if up {
			seen = sw.up
		}
		if len(seen) == len(sw.nodes) {
			last := slices.MaxFunc(slices.Collect(maps.Values(seen)), time.Time.Compare)
			sw.mu.Unlock()
			return last
		}
		n := len(seen)
		sw.mu.Unlock()
		select {
		case <-sw.ch:
		case <-deadline:
			tb.Fatalf("sessions to %s: %d of %d reported (established %v) after 20 s", sw.peer, n, len(sw.nodes), up)
		}
	}
}
