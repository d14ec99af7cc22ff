package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/pki"
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
	warm(b, f.c, clients)
	b.ResetTimer()
	r := createPorts(b, f.c, clients, 0, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/r.el.Seconds(), "ports/s")
	b.ReportMetric(r.quantile(0.50), "p50-ms")
	b.ReportMetric(r.quantile(0.99), "p99-ms")
	// CPU time (client and server, user and system) per port: the figure
	// that does not depend on what else the machine runs.
	b.ReportMetric(float64(r.cpu.Microseconds())/float64(b.N), "cpu-us/port")
	if s := f.st.Stats(); s.Commits > 0 {
		b.ReportMetric(float64(s.BatchP50), "batch-p50")
		b.ReportMetric(float64(s.CommitP99)/float64(time.Millisecond), "commit-p99-ms")
	}
}

// BenchmarkPortCreateSecure creates b.N ports with 64 clients on a plain
// HTTP controller and b.N on one serving HTTPS with bearer tokens (TLS
// 1.3, ECDSA P-256 certificate, keep-alive connections opened before the
// clock starts; the token checked on every request), in alternating
// rounds of 256 ports, so that both see the same machine: slowdown-% is
// how much longer TLS with tokens took, cpu-us/port each side's CPU time
// (client and server) per port.
func BenchmarkPortCreateSecure(b *testing.B) {
	plain := newFixture(b, nil)
	plain.network(b, "bench", 1, []string{"bench-env"}, "10.0.0.0/8")

	lab, err := pki.WriteLab(pki.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	toks, err := ParseTokens("bench", []byte(testTokens))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "api.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	srv := NewServer(svc)
	srv.SetAuth(&Auth{Tokens: toks})
	hs := httptest.NewUnstartedServer(srv)
	if hs.TLS, err = ServerTLS(lab.Server, lab.ServerKey, "", false); err != nil {
		b.Fatal(err)
	}
	hs.StartTLS()
	b.Cleanup(func() { hs.Close(); svc.Close(); st.Close() })
	conf, err := ClientTLS(lab.CA, "", "", "localhost")
	if err != nil {
		b.Fatal(err)
	}
	secure := &fixture{st: st, svc: svc, srv: hs, c: NewClient(hs.URL, &http.Client{Transport: &http.Transport{
		TLSClientConfig: conf, MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}).WithToken(tokAdmin)}
	secure.network(b, "bench", 1, []string{"bench-env"}, "10.0.0.0/8")

	const clients, round = 64, 256
	t0 := time.Now()
	warm(b, plain.c, clients)
	plainWarm := time.Since(t0)
	t0 = time.Now()
	warm(b, secure.c, clients)
	secureWarm := time.Since(t0)
	b.ResetTimer()
	var p, s createRun
	for done := int64(0); done < int64(b.N); done += round {
		n := min(round, int64(b.N)-done)
		p.add(createPorts(b, plain.c, clients, done, n))
		s.add(createPorts(b, secure.c, clients, done, n))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/p.el.Seconds(), "plain-ports/s")
	b.ReportMetric(float64(b.N)/s.el.Seconds(), "tls-ports/s")
	b.ReportMetric(100*(s.el.Seconds()/p.el.Seconds()-1), "slowdown-%")
	b.ReportMetric(float64(p.cpu.Microseconds())/float64(b.N), "plain-cpu-us/port")
	b.ReportMetric(float64(s.cpu.Microseconds())/float64(b.N), "tls-cpu-us/port")
	b.ReportMetric(p.quantile(0.99), "plain-p99-ms")
	b.ReportMetric(s.quantile(0.99), "tls-p99-ms")
	// The first call of all clients at once: TCP connects, and the TLS
	// handshakes, which the rounds above no longer pay.
	b.ReportMetric(float64(plainWarm.Microseconds())/1000, "plain-connect-ms")
	b.ReportMetric(float64(secureWarm.Microseconds())/1000, "tls-connect-ms")
}

// warm has each of clients make a call at once, so that every
// connection is open (and over TLS its handshake done) before the clock
// starts: the figures are the steady state.
func warm(b *testing.B, cl *Client, clients int) {
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.ListNetworks(context.Background(), "bench-env"); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// createRun is what createPorts measured.
type createRun struct {
	el, cpu time.Duration
	lat     []time.Duration
}

func (r *createRun) add(o createRun) {
	r.el += o.el
	r.cpu += o.cpu
	r.lat = append(r.lat, o.lat...)
}

// quantile returns quantile q of the latencies in milliseconds.
func (r *createRun) quantile(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	return float64(r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]) / float64(time.Millisecond)
}

// createPorts creates ports p-(from+1) to p-(from+n) with an address
// each through cl from clients goroutines.
func createPorts(b *testing.B, cl *Client, clients int, from, n int64) createRun {
	ctx := context.Background()
	var next atomic.Int64
	next.Store(from)
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > from+n {
					return
				}
				t0 := time.Now()
				_, err := cl.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprintf("p-%d", i), Network: "bench", Host: fmt.Sprintf("h%d", i%64)})
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r := createRun{el: time.Since(start), cpu: cpuTime() - cpu0}
	for _, l := range lat {
		r.lat = append(r.lat, l...)
	}
	return r
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
