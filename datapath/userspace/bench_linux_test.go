package userspace

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
)

// counter is a two-port node that forwards every frame to its other port
// and counts it; it traces nothing (frames carry no probe).
type counter struct {
	n atomic.Int64
}

func (c *counter) Name() string    { return "r1" }
func (c *counter) Ports() []string { return []string{"eth1", "eth2"} }
func (c *counter) Receive(now time.Duration, p int, b []byte, out datapath.Output) {
	c.n.Add(1)
	out.Send(1-p, b)
}
func (c *counter) SetPortState(time.Duration, int, bool, datapath.Output) {}

// BenchmarkForward measures the userspace datapath forwarding between two
// veths: a generator blasts frames into r1's eth1 with sendmmsg, r1 reads
// them in batches and writes each to eth2. frames/s is what r1 forwarded
// per second of wall time (the generator has the other core).
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(map[int]string{64: "64B", 1500: "1500B"}[size], func(b *testing.B) {
			lab, names := chain(b, 1)
			c := &counter{}
			r := New(Options{})
			defer r.Close()
			ns, err := lab.NsHandle(names[1])
			if err != nil {
				b.Fatal(err)
			}
			if err := r.AddNode(c, ns, c.Ports()); err != nil {
				b.Fatal(err)
			}
			gen := open(b, lab, "a", "eth2")
			r.mu.Lock()
			nr := r.nodes["r1"]
			r.mu.Unlock()
			for nr.tid.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			cpu0 := threadCPU(b, int(nr.tid.Load()))
			fr := probeFrame(0, 0)
			if size > len(fr) {
				fr = append(fr, make([]byte, size-len(fr))...)
			} else {
				fr = fr[:size]
			}
			q := newTxQueue(gen.fd, 64, 2048)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				q.add(fr)
				if q.n == len(q.b.msgs) {
					q.flush()
				}
			}
			q.flush()
			// Wait until the relay has drained its socket.
			last := int64(-1)
			for c.n.Load() != last {
				last = c.n.Load()
				time.Sleep(20 * time.Millisecond)
			}
			el := time.Since(start) - 20*time.Millisecond
			b.StopTimer()
			got := c.n.Load()
			cpu := threadCPU(b, int(nr.tid.Load())) - cpu0
			b.ReportMetric(float64(got)/cpu.Seconds(), "frames/cpu-s")
			b.ReportMetric(float64(got)/el.Seconds(), "frames/s")
			b.ReportMetric(float64(b.N-int(got))/float64(b.N), "lost/frame")
		})
	}
}

// threadCPU is the CPU time thread tid of this process has run
// (/proc/self/task/<tid>/schedstat, first field).
func threadCPU(b *testing.B, tid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
	if err != nil {
		b.Fatal(err)
	}
	var ns int64
	if _, err := fmt.Sscan(string(raw), &ns); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}
