package speaker_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/sim/bgpmodel"
)

var writeBGPModel = flag.Bool("bgpmodel.write", false,
	"BenchmarkBGPModelCalibration: write the derived parameters to sim/bgpmodel/calibration.json")

// calibrationCommand remeasures sim/bgpmodel/calibration.json.
const calibrationCommand = "go test -run '^$' -bench BGPModelCalibration -benchtime 1x ./datapath/speaker -bgpmodel.write (root)"

// BenchmarkBGPModelCalibration measures the real speakers as netns runs
// them (each a process in its node's namespace, sessions over veths,
// iBGP with the spine as route reflector, a spine and two leaves) and
// derives the BGP model's timings (package sim/bgpmodel); with
// -bgpmodel.write it writes them to sim/bgpmodel/calibration.json with
// the machine and the date. Every figure is timed from just before the
// action to the moment leaf2's watch (WatchEvent) delivers the change,
// with no polling in between.
func BenchmarkBGPModelCalibration(b *testing.B) {
	for range b.N {
		p := measureBGPModel(b)
		b.ReportMetric(float64(p.Update.Microseconds()), "update-us")
		b.ReportMetric(float64(p.Service.Microseconds()), "service-us")
		b.ReportMetric(float64(p.Originate.Microseconds()), "api-us")
		b.ReportMetric(float64(p.CarrierLoss.Microseconds()), "carrier-us")
		b.ReportMetric(p.EstablishMin.Seconds(), "establish-min-s")
		b.ReportMetric(p.EstablishMax.Seconds(), "establish-max-s")
		for k, v := range p.Measured {
			b.Logf("%s: %v", k, v)
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
		burst   = 300 // routes advertised in one call
		cycles  = 5   // carrier lost and back
	)
	f := startNsFabric(b, speaker.Timers{})
	ctx := context.Background()
	leaf1 := f.clients["leaf1"]
	w, own := watchRoutes(b, f.clients["leaf2"]), watchRoutes(b, leaf1)
	route := func(i int) evpn.Route {
		return evpn.Route{Type: evpn.MACIP, VNI: 10100, L3VNI: 50001, MAC: evpn.MAC{2, 0, 0, 1, byte(i >> 8), byte(i)},
			IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), VTEP: type2.VTEP, RouterMAC: type2.RouterMAC}
	}
	measured := map[string]time.Duration{}

	// One route at a time: leaf1's API, the spine, leaf2, leaf2's watch.
	var adv, wd, local []time.Duration
	for i := range singles {
		r := route(i)
		t0 := time.Now()
		if err := leaf1.Advertise(ctx, r); err != nil {
			b.Fatal(err)
		}
		adv = append(adv, w.until(b, "advertised "+r.String(), func(m map[evpn.Route]bool) bool { return m[r] }).Sub(t0))
		local = append(local, own.until(b, "originated "+r.String(), func(m map[evpn.Route]bool) bool { return m[r] }).Sub(t0))
		t0 = time.Now()
		if err := leaf1.Withdraw(ctx, r); err != nil {
			b.Fatal(err)
		}
		wd = append(wd, w.until(b, "withdrawn "+r.String(), func(m map[evpn.Route]bool) bool { return !m[r] }).Sub(t0))
	}
	one, oneW, loc := median(adv), median(wd), median(local)
	measured["advertise_one_median"], measured["withdraw_one_median"], measured["originate_own_median"] = one, oneW, loc

	// A burst: the pipeline's slowest stage sets the pace.
	var rs []evpn.Route
	for i := range burst {
		rs = append(rs, route(1000+i))
	}
	t0 := time.Now()
	if err := leaf1.Advertise(ctx, rs...); err != nil {
		b.Fatal(err)
	}
	all := w.until(b, fmt.Sprintf("%d routes advertised", burst), func(m map[evpn.Route]bool) bool {
		return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return !m[r] })
	}).Sub(t0)
	measured[fmt.Sprintf("advertise_%d", burst)] = all
	t0 = time.Now()
	if err := leaf1.Withdraw(ctx, rs...); err != nil {
		b.Fatal(err)
	}
	allW := w.until(b, fmt.Sprintf("%d routes withdrawn", burst), func(m map[evpn.Route]bool) bool {
		return !slices.ContainsFunc(rs, func(r evpn.Route) bool { return m[r] })
	}).Sub(t0)
	measured[fmt.Sprintf("withdraw_%d", burst)] = allW
	api := loc / 2
	update := max(one-loc, 0) / 2

	// Carrier: leaf1's end of its link goes down (power loss as the
	// spine sees it) and comes back.
	if err := leaf1.Advertise(ctx, type3); err != nil {
		b.Fatal(err)
	}
	w.until(b, "type 3 advertised", func(m map[evpn.Route]bool) bool { return m[type3] })
	var lost, back []time.Duration
	for range cycles {
		t0 := time.Now()
		if err := f.setLink("leaf1", false); err != nil {
			b.Fatal(err)
		}
		lost = append(lost, w.until(b, "carrier lost", func(m map[evpn.Route]bool) bool { return !m[type3] }).Sub(t0))
		t0 = time.Now()
		if err := f.setLink("leaf1", true); err != nil {
			b.Fatal(err)
		}
		back = append(back, w.until(b, "carrier back", func(m map[evpn.Route]bool) bool { return m[type3] }).Sub(t0))
	}
	measured["carrier_lost_median"], measured["carrier_back_median"] = median(lost), median(back)
	measured["carrier_back_min"], measured["carrier_back_max"] = slices.Min(back), slices.Max(back)
	est := func(d time.Duration) time.Duration { return max(d-2*update-api, 0) }
	service, serviceW := max(all-one, 0)/(burst-1), max(allW-oneW, 0)/(burst-1)

	return bgpmodel.Params{
		Date:    time.Now().UTC().Format(time.DateOnly),
		Machine: machine(),
		Command: calibrationCommand,
		Method: fmt.Sprintf("GoBGP speakers as netns runs them: one process per node in its namespace (a spine route reflector, two leaves its clients), "+
			"sessions over the leaf–spine veths, default timers; every time is from just before the action until leaf2's WatchEvent stream delivered the change. "+
			"advertise_one = median of %[1]d single type-2 routes advertised on leaf1 (its gRPC AddPath, the spine, leaf2, leaf2's watch); "+
			"originate_own = the same until leaf1's own watch had it (gRPC in, the speaker's RIB, gRPC out); "+
			"originate = watch = originate_own / 2; update = (advertise_one - originate_own) / 2 (the spine's and leaf2's handling, with the veth hops); "+
			"advertise_%[2]d and withdraw_%[2]d = %[2]d routes in one call; service = (advertise_%[2]d - advertise_one) / %[3]d and "+
			"service_withdraw = (withdraw_%[2]d - withdraw_one) / %[3]d (the pipeline's pace under a burst); "+
			"carrier_lost = median of %[4]d: leaf1's veth end set down until leaf2 lost leaf1's type-3 route; carrier_loss = carrier_lost - update - watch; "+
			"carrier_back: the veth end set up again until leaf2 had the route again; establish_min/max = the least and greatest carrier_back - 2 update - originate "+
			"(GoBGP's random 1–2 s before it dials, TCP, OPEN, KEEPALIVE). MRAI: GoBGP v3 parses minimum-advertisement-interval but never applies it (0).",
			singles, burst, burst-1, cycles),
		Update:          update,
		Service:         service,
		ServiceWithdraw: serviceW,
		Originate:       api,
		Watch:           api,
		CarrierLoss:     max(median(lost)-update-api, 0),
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

// machine says what Linux reports of the CPU, memory and kernel, as
// netbed calibrate does.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GB", (kb+1<<19)>>20)
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load = ", load average " + f[0]
		}
	}
	return fmt.Sprintf("%d vCPU %s%s%s, %s%s", runtime.NumCPU(), cpu, mem, kernel, runtime.Version(), load)
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
