package api

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/store"
)

// BenchmarkPortCreateHTTP creates ports with an address each over HTTP
// against a durable bbolt store (fsync per commit, concurrent commits
// batched), from 1, 16 and 64 concurrent clients, and reports throughput
// and the p50/p99 latency the clients saw.
func BenchmarkPortCreateHTTP(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchPortCreate(b, clients, store.BoltOptions{})
		})
	}
}

// BenchmarkPortCreateHTTPBoltBatch is the same with bbolt's own DB.Batch
// (1 ms delay) instead of the store's group commit, for comparison.
func BenchmarkPortCreateHTTPBoltBatch(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchPortCreate(b, clients, store.BoltOptions{BoltBatch: true})
		})
	}
}

func benchPortCreate(b *testing.B, clients int, o store.BoltOptions) {
	f := newFixtureOpts(b, nil, o)
	f.network(b, "bench", 1, []string{"bench-env"}, "10.0.0.0/8")
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				_, err := f.c.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprintf("p-%d", i), Network: "bench", Host: fmt.Sprintf("h%d", i%64)})
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "ports/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	// CPU time (client and server, user and system) per port: the figure
	// that does not depend on what else the machine runs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/port")
	if s := f.st.Stats(); s.Commits > 0 {
		b.ReportMetric(float64(s.BatchP50), "batch-p50")
		b.ReportMetric(float64(s.CommitP99)/float64(time.Millisecond), "commit-p99-ms")
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBatchAllocateHTTP allocates 100 addresses per request by label.
func BenchmarkBatchAllocateHTTP(b *testing.B) {
	f := newFixture(b, nil)
	f.network(b, "bench", 1, []string{"bench-env"}, "10.0.0.0/8")
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.c.AllocateBatch(ctx, controller.AllocRequest{Label: "bench-env", Count: 100, Holder: "b"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "addrs/s")
}
