package fabricbench

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// allPairsScenario is the engine benchmarks' matrix as a scenario: the
// 4x16x16 fabric, one instance per host, every ordered pair probed once.
const allPairsScenario = `name: all-pairs
topology: {builder: spine-leaf, params: {spines: 4, leaves: 16, hosts_per_leaf: 16}}
generations: [evpn, ebpf, ebpf-direct]
seed: 1
networks:
  - {name: a, subnet: 10.0.0.0/16}
steps:
  - spawn: {name: vm, kind: vm, count: 256, network: a}
  - traffic: {proto: icmp, from: [vm], to: [vm], matrix: true, tag: all}
  - expect: {tag: all, all_reachable: true}
`

// heapPeak samples the heap's live objects every few milliseconds until
// stopped, for the peak a run reaches (the GC's own figure after each
// cycle would miss the garbage that builds up between cycles).
type heapPeak struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			h.peak = max(h.peak, heapObjects())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return max(h.peak, heapObjects())
}

// BenchmarkRunAllPairs runs the all-pairs scenario through the scenario
// runner on the sim backend, as 'netbed run --backend sim' does (spawn
// through the controller, probes one at a time, checks, the run's
// figures), per generation. It reports the time of the traffic step
// (first probe answered to last, "traffic-s", and the process's CPU time
// meanwhile, "traffic-cpu-s": what the engine benchmarks time; their
// events/s is per CPU second) and the peak heap of the run ("peak-heap-MB", objects in use
// sampled every 2 ms, the heap before the run subtracted).
func BenchmarkRunAllPairs(b *testing.B) {
	s, err := scenarios.Parse("all-pairs.yaml", []byte(allPairsScenario))
	if err != nil {
		b.Fatal(err)
	}
	for _, gen := range []scenarios.Generation{scenarios.GenEVPN, scenarios.GenEBPF, scenarios.GenEBPFDirect} {
		b.Run(string(gen), func(b *testing.B) {
			var traffic, trafficCPU time.Duration
			var peak uint64
			for range b.N {
				runtime.GC()
				base := heapObjects()
				h := startHeapPeak()
				var first, last time.Time
				var cpuFirst, cpuLast time.Duration
				opts := scenarios.Options{}
				opts.OnProbe = func(p reports.Probe) {
					// From the first probe's answer to the last's (the
					// matrix's last pair).
					if first.IsZero() {
						first, cpuFirst = time.Now(), cpuTime()
					}
					if p.From == "vm-256" && p.To == "vm-255" {
						last, cpuLast = time.Now(), cpuTime()
					}
				}
				be := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: b.TempDir(),
					ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
				run, err := scenarios.Run(context.Background(), s, gen, be, opts)
				if err != nil {
					b.Fatal(err)
				}
				if run.Failed() {
					b.Fatalf("run failed: %v", run.Checks)
				}
				if n := reports.StatsOf(run).Sent; n != 256*255 {
					b.Fatalf("%d probes, want %d", n, 256*255)
				}
				p := h.done()
				peak = max(peak, p-min(p, base))
				traffic += last.Sub(first)
				trafficCPU += cpuLast - cpuFirst
				runtime.KeepAlive(run)
			}
			b.ReportMetric(traffic.Seconds()/float64(b.N), "traffic-s")
			b.ReportMetric(trafficCPU.Seconds()/float64(b.N), "traffic-cpu-s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256*255), "ns/probe")
		})
	}
}
