package netnsrt_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
// the CPUs bring it towards 1. Beside the wall time, each failure's CPU
// time is read from /proc (every thread's schedstat, from just before the
// fail call until the last leaf reported spine1 down): cpu-1-leaf-us and
// cpu-3-leaves-us are the dropping leaves' speaker processes' CPU per path
// and per leaf (the same slope, in CPU time), runtime-cpu-ms the test
// process's own (the runtime: the fail call, the userspace datapath, the
// leaves' imports), the mean per failure over both fabrics.
func BenchmarkBGPDropContention(b *testing.B) {
	testutil.RequireRoot(b)
	cpus := float64(runtime.NumCPU())
	for range b.N {
		one, three := dropSlope(b, 2), dropSlope(b, 4)
		b.ReportMetric(float64(one.wall.Nanoseconds())/1e3, "drop-1-leaf-us")
		b.ReportMetric(float64(three.wall.Nanoseconds())/1e3, "drop-3-leaves-us")
		b.ReportMetric(float64(one.cpu.Nanoseconds())/1e3, "cpu-1-leaf-us")
		b.ReportMetric(float64(three.cpu.Nanoseconds())/1e3, "cpu-3-leaves-us")
		b.ReportMetric(float64((one.runtime+three.runtime).Microseconds())/2e3, "runtime-cpu-ms")
		b.ReportMetric(float64(three.wall)/float64(max(one.wall, 1)), "contention")
		b.ReportMetric(max(1, 3/cpus)/max(1, 1/cpus), "model-contention")
	}
}

// dropCost is what one dropped path costs: the wall time at the last
// leaf, the CPU time of a dropping leaf's speaker (their mean), and the
// test process's CPU time per failure (the mean).
type dropCost struct{ wall, cpu, runtime time.Duration }

// dropSlope builds a 2×leaves fabric on netns and returns the time per
// path it costs the last leaf to report spine1's power loss, from 30 and
// 150 of leaf1's routes held by every other leaf.
func dropSlope(b *testing.B, leaves int) dropCost {
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
	var selfCPU time.Duration
	failures := 0
	spineLoss := func() (time.Duration, time.Duration) {
		var lost, cpu []time.Duration
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
			sp0 := speakersCPU(rt.LabName())
			self0 := procCPU("self") // after the scan of /proc, which is not the runtime's work
			t0 := time.Now()
			if err := rt.SetNodeState(ctx, "spine1", false); err != nil {
				b.Fatal(err)
			}
			lost = append(lost, peers.allDown(b).Sub(t0))
			self1 := procCPU("self")
			sp1 := speakersCPU(rt.LabName())
			var parts []string
			var droppers time.Duration
			for _, n := range slices.Sorted(mapKeys(sp1)) {
				d := sp1[n] - sp0[n]
				parts = append(parts, fmt.Sprintf("%s %v", n, d.Round(10*time.Microsecond)))
				if n != "spine1" && n != "spine2" && n != "leaf1" {
					droppers += d
				}
			}
			cpu = append(cpu, droppers/time.Duration(leaves-1))
			selfCPU += self1 - self0
			failures++
			b.Logf("2x%d, %d routes: spine1's loss %v; CPU: the test process %v, speakers %v", leaves, held, lost[len(lost)-1], (self1 - self0).Round(10*time.Microsecond), parts)
			if err := rt.SetNodeState(ctx, "spine1", true); err != nil {
				b.Fatal(err)
			}
			peers.rearm(b)
		}
		return median(lost), median(cpu)
	}
	advertise(1, few)
	held = few
	lFew, cFew := spineLoss()
	advertise(1+few, more)
	held = few + more
	lMore, cMore := spineLoss()
	cost := dropCost{wall: max(lMore-lFew, 0) / more, cpu: max(cMore-cFew, 0) / more, runtime: selfCPU / time.Duration(failures)}
	b.Logf("2x%d, %d leaves dropping: spine1's loss %v with %d routes, %v with %d: %v a path; a dropping leaf's speaker's CPU %v and %v: %v a path; the test process's CPU %v a failure",
		leaves, leaves-1, lFew, few, lMore, few+more, cost.wall, cFew, cMore, cost.cpu, cost.runtime)
	return cost
}

// speakersCPU returns the CPU time (every thread's,
// /proc/<pid>/task/*/schedstat) of the speaker processes whose command
// line names the lab, by node (their config file's name).
func speakersCPU(lab string) map[string]time.Duration {
	speakers := map[string]time.Duration{}
	ds, _ := os.ReadDir("/proc")
	for _, d := range ds {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		if len(args) < 4 || args[1] != "speaker" || !strings.Contains(args[3], lab) {
			continue
		}
		speakers[strings.TrimSuffix(filepath.Base(args[3]), ".json")] = procCPU(d.Name())
	}
	return speakers
}

// procCPU sums the CPU time of pid's threads (0 for a process gone).
func procCPU(pid string) (d time.Duration) {
	ts, _ := os.ReadDir(filepath.Join("/proc", pid, "task"))
	for _, t := range ts {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "task", t.Name(), "schedstat"))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			d += time.Duration(ns)
		}
	}
	return d
}
