package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/internal/etcdtest"
)

// createStorm creates total ports with an address each through clients
// (client w%len(clients) for worker w), workers at a time, and returns the
// rate and the latencies' p50 and p99.
func createStorm(tb testing.TB, clients []*api.Client, workers, total int, prefix string) (perSec float64, p50, p99 time.Duration) {
	tb.Helper()
	ctx := context.Background()
	lat := make([][]time.Duration, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				t0 := time.Now()
				p, err := c.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprintf("%s-%06d", prefix, i), Network: "n"})
				if err != nil || len(p.IPs) != 1 {
					tb.Errorf("create port %d: %v (%d addresses)", i, err, len(p.IPs))
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		tb.Fatal("no port created")
	}
	return float64(len(all)) / el.Seconds(), all[len(all)/2], all[len(all)*99/100]
}

// BenchmarkPortCreateReplicas creates ports with an address over HTTP, 64
// clients at a time, first through 3 replicas on a 3-member etcd cluster,
// then through one controller on bbolt, 2,048 ports each per iteration
// (-benchtime 1x is a few seconds). Metrics: ports/s and p99 latency of
// each.
func BenchmarkPortCreateReplicas(b *testing.B) {
	c := etcdtest.Start(b, 3)
	rs := startReplicas(b, c, 3, "")
	var mu sync.Mutex
	cmd, url, _ := spawnController(b, &mu, "bbolt", []string{"controller", "serve", "--store", filepath.Join(b.TempDir(), "ctl.db"), "--listen", "127.0.0.1:0"})
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	bolt := api.NewClient(url, nil)
	setupNetwork(b, rs.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	setupNetwork(b, bolt, controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	const per = 2048
	var etcdRate, boltRate float64
	var etcdP99, boltP99, etcdP50, boltP50 time.Duration
	b.ResetTimer()
	for i := range b.N {
		r, p50, p99 := createStorm(b, rs.clients, 64, per, fmt.Sprintf("e%d", i))
		etcdRate += r
		etcdP50, etcdP99 = max(etcdP50, p50), max(etcdP99, p99)
		r, p50, p99 = createStorm(b, []*api.Client{bolt}, 64, per, fmt.Sprintf("b%d", i))
		boltRate += r
		boltP50, boltP99 = max(boltP50, p50), max(boltP99, p99)
	}
	b.StopTimer()
	b.ReportMetric(etcdRate/float64(b.N), "etcd-ports/s")
	b.ReportMetric(float64(etcdP50.Microseconds())/1000, "etcd-p50-ms")
	b.ReportMetric(float64(etcdP99.Microseconds())/1000, "etcd-p99-ms")
	b.ReportMetric(boltRate/float64(b.N), "bbolt-ports/s")
	b.ReportMetric(float64(boltP50.Microseconds())/1000, "bbolt-p50-ms")
	b.ReportMetric(float64(boltP99.Microseconds())/1000, "bbolt-p99-ms")
	if problems, err := rs.client(1).Check(context.Background()); err != nil || len(problems) > 0 {
		b.Errorf("etcd store check: %v %v", problems, err)
	}
}

// BenchmarkZoneReplicas allocates a zone's ports with an address, 1,000 per
// iteration, through 3 replicas on a 3-member etcd, 64 clients at a time:
// -benchtime 20x is the seed's 20,000-port zone (its time is the figure),
// 1x a second or two.
func BenchmarkZoneReplicas(b *testing.B) {
	c := etcdtest.Start(b, 3)
	rs := startReplicas(b, c, 3, "")
	setupNetwork(b, rs.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	b.ResetTimer()
	start := time.Now()
	rate, _, p99 := createStorm(b, rs.clients, 64, 1000*b.N, "z")
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(rate, "ports/s")
	b.ReportMetric(el.Seconds(), "s-zone")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	if problems, err := rs.client(2).Check(context.Background()); err != nil || len(problems) > 0 {
		b.Errorf("store check: %v %v", problems, err)
	}
}

// BenchmarkPortCreateCommitters compares, in one run, 3 replicas committing
// one batch at a time with 3 replicas of 3 committers each (each committer
// a writer of its own, --etcd-committers 3), on one 3-member etcd: 64
// clients create 1,000 ports with an address through each set per
// iteration, alternately. Metrics: ports/s and p99 of each.
func BenchmarkPortCreateCommitters(b *testing.B) {
	c := etcdtest.Start(b, 3)
	one := startReplicas(b, c, 3, "")
	three := startReplicas(b, c, 3, "", "--etcd-committers", "3")
	setupNetwork(b, one.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	setupNetwork(b, three.client(0), controller.Segment{Type: controller.SegmentVLAN, ID: 100})
	var rate1, rate3 float64
	var p99one, p99three time.Duration
	b.ResetTimer()
	for i := range b.N {
		r, _, p99 := createStorm(b, one.clients, 64, 1000, fmt.Sprintf("a%d", i))
		rate1 += r
		p99one = max(p99one, p99)
		r, _, p99 = createStorm(b, three.clients, 64, 1000, fmt.Sprintf("b%d", i))
		rate3 += r
		p99three = max(p99three, p99)
	}
	b.StopTimer()
	b.ReportMetric(rate1/float64(b.N), "c1-ports/s")
	b.ReportMetric(float64(p99one.Microseconds())/1000, "c1-p99-ms")
	b.ReportMetric(rate3/float64(b.N), "c3-ports/s")
	b.ReportMetric(float64(p99three.Microseconds())/1000, "c3-p99-ms")
	for _, rs := range []*replicaSet{one, three} {
		if problems, err := rs.client(1).Check(context.Background()); err != nil || len(problems) > 0 {
			b.Errorf("store check: %v %v", problems, err)
		}
	}
}
