package userspace

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/vlan"
)

// counter is a two-port node that forwards every frame to its other port
// and counts it; it traces nothing (frames carry no probe).
type counter struct {
	datapath.Node // nil, or a model to forward with
	n             atomic.Int64
}

func (c *counter) Name() string    { return "r1" }
func (c *counter) Ports() []string { return []string{"eth1", "eth2"} }
func (c *counter) Receive(now time.Duration, p int, b []byte, out datapath.Output) {
	c.n.Add(1)
	if c.Node != nil {
		c.Node.Receive(now, p, b, out)
		return
	}
	out.Send(1-p, b)
}
func (c *counter) SetPortState(time.Duration, int, bool, datapath.Output) {}

// BenchmarkForward measures the userspace datapath forwarding between two
// veths: a generator blasts frames into r1's eth1 with sendmmsg, r1 reads
// them in batches and writes each to eth2. frames/cpu-s is what r1
// forwarded per second of its own thread's CPU time (the per-core rate,
// whatever else the machine runs); frames/s is per second of wall time.
// Cases: the bare datapath (a node that only swaps ports), the same
// through the qdisc (Options.Taps), and gen 1's ToR model with tagged
// frames (MAC learning, VLAN check).
func BenchmarkForward(b *testing.B) {
	cases := []struct {
		name string
		size int
		taps bool
		tor  bool
		mmsg bool
	}{
		{"64B", 64, false, false, false},
		{"1500B", 1500, false, false, false},
		{"64B-recvmmsg", 64, false, false, true},
		{"1500B-recvmmsg", 1500, false, false, true},
		{"64B-qdisc", 64, true, false, false},
		{"64B-tor", 64, false, true, false},
		{"1500B-tor", 1500, false, true, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lab, names := chain(b, 1)
			node := &counter{}
			fr := probeFrame(0, 0)
			if c.tor {
				sw := vlan.NewSwitch("r1", node.Ports(), 0)
				sw.SetTrunk(0, 100)
				sw.SetTrunk(1, 100)
				node.Node = sw
				fr = frame.PushVLAN(nil, fr, 100)
			}
			if c.size > len(fr) {
				fr = append(fr, make([]byte, c.size-len(fr))...)
			}
			r := New(Options{Taps: c.taps, NoRing: c.mmsg})
			defer r.Close()
			ns, err := lab.NsHandle(names[1])
			if err != nil {
				b.Fatal(err)
			}
			if err := r.AddNode(node, ns, node.Ports()); err != nil {
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
			// Wait until the node has drained its socket.
			last := int64(-1)
			for node.n.Load() != last {
				last = node.n.Load()
				time.Sleep(20 * time.Millisecond)
			}
			el := time.Since(start) - 20*time.Millisecond
			b.StopTimer()
			got := node.n.Load()
			if got == 0 {
				b.Fatal("nothing forwarded")
			}
			cpu := threadCPU(b, int(nr.tid.Load())) - cpu0
			b.ReportMetric(float64(got)/cpu.Seconds(), "frames/cpu-s")
			b.ReportMetric(float64(got)/el.Seconds(), "frames/s")
			if reads := nr.reads.Load(); reads > 0 {
				b.ReportMetric(float64(got)/float64(reads), "frames/read")
			}
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
