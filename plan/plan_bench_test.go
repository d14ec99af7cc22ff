package plan

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/scenarios"
)

// BenchmarkPlanZone plans one zone at the defaults (500 hosts, 20,000
// VMs or 40 pods a host) for each generation on sim, as `netbed plan
// --zones 1 --gen G` does, and reports the CPU time and the peak of the
// Go runtime's memory (issue 13's goal: under 60 s and 8 GB).
func BenchmarkPlanZone(b *testing.B) {
	for _, gen := range []scenarios.Generation{scenarios.GenVLAN, scenarios.GenEVPN, scenarios.GenEBPF} {
		b.Run(string(gen), func(b *testing.B) {
			debug.FreeOSMemory() // the previous generation's heap is not this one's peak
			peak := watchMemory(b)
			cpu0 := cpuTime()
			for b.Loop() {
				p, err := Run(context.Background(), Params{Zones: 1}, DefaultProfiles(), []scenarios.Generation{gen}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Gens) != 1 || p.Gens[0].Instances == 0 {
					b.Fatalf("plan of %s: %d generations, want one with instances", gen, len(p.Gens))
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(peak())/(1<<20), "peak-MB")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watchMemory samples the memory the Go runtime holds from the OS (what
// it mapped, less what it returned) every 50 ms until the benchmark
// ends; peak returns the largest sample.
func watchMemory(b *testing.B) (peak func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	var most uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			most = max(most, s[0].Value.Uint64()-s[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once bool
	stop := func() {
		if !once {
			once = true
			close(done)
			<-stopped
		}
	}
	b.Cleanup(stop)
	return func() uint64 { stop(); return most }
}
