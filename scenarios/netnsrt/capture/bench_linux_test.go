package capture

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
)

// BenchmarkCapture is what capturing costs per frame, end to end: a
// sender in namespace a writes UDP frames (no probe ID, so none is kept
// in memory) to a veth whose ends are captured in a and in b; each frame
// is captured twice (out of a, into b), read, decoded and written to
// pcapng. cpu-ns/frame is the process's CPU time (user and system, the
// kernel's capture work included) per captured frame; case "none" sends
// the same frames uncaptured, so the difference is the capture's cost.
func BenchmarkCapture(b *testing.B) {
	testutil.RequireRoot(b)
	for _, captured := range []bool{false, true} {
		name := "none"
		if captured {
			name = "a+b"
		}
		b.Run(name, func(b *testing.B) {
			lab, fd := pair(b)
			var c *Capture
			if captured {
				var err error
				if c, err = New(b.TempDir(), Options{}); err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				for _, n := range []string{"a", "b"} {
					ns, _ := lab.NsHandle(n)
					if err := c.Add(n, ns); err != nil {
						b.Fatal(err)
					}
				}
			}
			h := frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}
			fr := frame.UDP(h, 40000, 9, make([]byte, 9))
			// Sent in bursts, each waited for, so that no frame is
			// dropped for want of buffer space.
			const burst = 256
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			sent := 0
			for sent < b.N {
				n := min(burst, b.N-sent)
				for range n {
					if _, err := unix.Write(fd, fr); err != nil {
						b.Fatal(err)
					}
				}
				sent += n
				if c == nil {
					continue
				}
				deadline := time.Now().Add(5 * time.Second)
				for c.Count("a") < sent || c.Count("b") < sent {
					if time.Now().After(deadline) {
						b.Fatalf("captured %d and %d of %d frames", c.Count("a"), c.Count("b"), sent)
					}
					time.Sleep(100 * time.Microsecond)
				}
			}
			b.StopTimer()
			frames := b.N
			if c != nil {
				frames = 2 * b.N
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(frames), "cpu-ns/frame")
		})
	}
}

// cpuTime is the process's CPU time so far (user and system), in ns.
func cpuTime() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
