package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
)

// BenchmarkCNIAddDel measures one pod's attach and detach as a runtime
// does it: libcni runs the plugin binary, which gets or creates the port
// in a real controller (HTTP over a unix socket, durable bbolt store, CNC)
// and wires a veth into a real namespace. It reports the mean and p99 of
// ADD and DEL in milliseconds.
func BenchmarkCNIAddDel(b *testing.B) {
	testutil.RequireRoot(b)
	rc := startController(b, "10.40.0.0/16")
	host, pod := newNS(b), newNS(b)
	run := newCNIRun(b, confJSON(b, "1.1.0", map[string]any{"controllerURL": rc.unixURL, "host": "host-a", "createBridge": true}))
	ctx := context.Background()
	adds, dels := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rt(fmt.Sprintf("c%d", i), pod, [2]string{"K8S_POD_NAMESPACE", "bench"}, [2]string{"K8S_POD_NAME", fmt.Sprintf("p%d", i)})
		var err error
		host.in(b, func() {
			t0 := time.Now()
			if _, err = run.cfg.AddNetwork(ctx, run.conf, r); err != nil {
				return
			}
			t1 := time.Now()
			err = run.cfg.DelNetwork(ctx, run.conf, r)
			adds, dels = append(adds, t1.Sub(t0)), append(dels, time.Since(t1))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"add", adds}, {"del", dels}} {
		sort.Slice(m.d, func(i, j int) bool { return m.d[i] < m.d[j] })
		var sum time.Duration
		for _, d := range m.d {
			sum += d
		}
		b.ReportMetric(float64(sum.Microseconds())/float64(len(m.d))/1000, m.name+"-ms")
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds())/1000, m.name+"-p99-ms")
	}
}
