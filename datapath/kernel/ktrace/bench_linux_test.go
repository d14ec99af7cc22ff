package ktrace

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies/netns"
)

// BenchmarkTraceOverhead sends UDP datagrams from one namespace to another
// over a veth pair (each op is one datagram: the sender's syscall carries
// it through both ends of the veth to the receiver's socket queue) with
// the tracer detached, attached with nothing watched, watching 1,000 keys
// the traffic does not match (every packet parsed and looked up at both
// ends), and watching the traffic's own key (two events per packet
// through the ring buffer, taken every 4,096 packets). Besides packets per
// second it reports the sender thread's CPU time per packet, which a busy
// machine disturbs less, and the programs' mean run time from the kernel's
// BPF statistics.
func BenchmarkTraceOverhead(b *testing.B) {
	testutil.RequireRoot(b)
	for _, mode := range []string{"off", "idle", "unmatched", "matched"} {
		b.Run(mode, func(b *testing.B) {
			r := NewNamespaces()
			b.Cleanup(r.Close)
			s, d := newNS(b, r, "s"), newNS(b, r, "d")
			veth(b, s, "eth0", d, "eth0")
			src, dst := netip.MustParseAddr("10.97.0.1"), netip.MustParseAddr("10.97.0.2")
			s.addr(b, "eth0", "10.97.0.1/24")
			d.addr(b, "eth0", "10.97.0.2/24")
			s.waitUp(b, "eth0")
			d.waitUp(b, "eth0")
			rx := d.udp(b, dst, 9000, nil)
			tx := s.udp(b, src, 9001, &unix.SockaddrInet4{Addr: dst.As4(), Port: 9000})
			done := make(chan int)
			go func() {
				buf := make([]byte, 64)
				n := 0
				for {
					// After shutdown a read returns nothing.
					if m, _, err := unix.Recvfrom(rx, buf, 0); err != nil || m == 0 {
						done <- n
						return
					}
					n++
				}
			}()
			var tr *Tracer
			if mode != "off" {
				tr = newTracer(b, r)
			}
			switch mode {
			case "unmatched":
				for i := range 1000 {
					if err := tr.Watch(Flow(ProtoUDP, src, uint16(20000+i), dst, 9000), uint64(i)); err != nil {
						b.Fatal(err)
					}
				}
			case "matched":
				if err := tr.Watch(Flow(ProtoUDP, src, 9001, dst, 9000), 1); err != nil {
					b.Fatal(err)
				}
			}
			msg := make([]byte, 32)
			// The first datagram resolves the neighbour.
			if err := unix.Send(tx, msg, 0); err != nil {
				b.Fatal(err)
			}
			if tr != nil {
				stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
				if err != nil {
					b.Fatalf("enable BPF run time statistics: %v", err)
				}
				defer stats.Close()
			}
			// The sender's own CPU time: the kernel carries each datagram
			// through the veth to the socket queue inside its syscall.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU(b)
			b.ResetTimer()
			for i := range b.N {
				if err := unix.Send(tx, msg, 0); err != nil {
					b.Fatal(err)
				}
				if tr != nil && i%4096 == 4095 {
					tr.Take(1)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(threadCPU(b)-cpu0)/float64(b.N), "cpu-ns/pkt")
			if tr != nil {
				var run time.Duration
				var runs uint64
				for _, p := range tr.progs {
					st, err := p.Stats()
					if err != nil {
						b.Fatal(err)
					}
					run += st.Runtime
					runs += st.RunCount
				}
				if runs > 0 {
					// Every packet on the machine runs the programs:
					// this is their mean cost per run.
					b.ReportMetric(float64(run.Nanoseconds())/float64(runs), "prog-ns/run")
				}
			}
			_ = unix.Shutdown(rx, unix.SHUT_RDWR)
			if got := <-done; got == 0 {
				b.Fatal("no datagram arrived")
			}
			if tr != nil {
				if lost, err := tr.Lost(); err == nil && lost > 0 {
					b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
				}
			}
		})
	}
}

// threadCPU is the calling thread's user and system time.
func threadCPU(b testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// udp opens a UDP socket in n bound to addr:port, connected to peer if
// set, closed at cleanup.
func (n *tns) udp(b testing.TB, addr netip.Addr, port int, peer *unix.SockaddrInet4) int {
	b.Helper()
	var fd int
	if err := netns.DoIn(n.ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: port}); err != nil {
			return err
		}
		if peer != nil {
			return unix.Connect(fd, peer)
		}
		return nil
	}); err != nil {
		b.Fatalf("%s: UDP socket: %v", n.node, err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}
