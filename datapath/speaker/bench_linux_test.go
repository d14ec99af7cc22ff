package speaker_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
)

// BenchmarkRoutes20k: the seed's largest zone, 20,000 instances, as
// type 2 routes, until every speaker that should hold them has all
// 20,000 as best paths (its watch has seen every route another speaker
// originated). Each speaker is a process of its own, as `netbed speaker`
// runs on netns (this test binary, see TestMain), on a loopback address,
// driven over its gRPC socket as netbed drives it.
//
//   - reflector: four leaves originate 5,000 each behind a spine route
//     reflector; every leaf's watch must see the other 15,000 (the
//     issue's figure);
//   - session: one GoBGP speaker originates all 20,000 to one peer over
//     one session, and that peer's watch must see them: what a single
//     GoBGP session costs measured the same way, the floor under the
//     reflector's figure.
//
// Besides the time: advertised-s, when the last Advertise returned;
// spine-CPU-s and leaf-CPU-s, the CPU time (user and system) the
// spine's process and a leaf's (the mean) used over the measured
// interval (in session the spine is the receiving peer); client-CPU-s,
// this process's (encoding the routes, decoding what the watches
// deliver); MB-peak/speaker, the largest peak resident set (VmHWM) of
// the speaker processes.
func BenchmarkRoutes20k(b *testing.B) {
	const total = 20000
	b.Run("reflector", func(b *testing.B) { benchRoutes(b, 4, total) })
	b.Run("session", func(b *testing.B) { benchRoutes(b, 1, total) })
}

// benchRoutes: leaves originate total routes between them behind a
// spine; with one leaf the spine's watch must see them all, with more
// every leaf's watch must see the others'.
func benchRoutes(b *testing.B, leaves, total int) {
	perLeaf := total / leaves
	for range b.N {
		b.StopTimer()
		star := startStar(b, leaves)
		routes := make([][]evpn.Route, leaves)
		for l := range leaves {
			vtep := netip.AddrFrom4([4]byte{10, 255, 0, byte(11 + l)})
			for i := range perLeaf {
				n := l*perLeaf + i
				routes[l] = append(routes[l], evpn.Route{Type: evpn.MACIP, VNI: 10100 + uint32(n%16), L3VNI: 50001,
					MAC: evpn.MAC{2, 0, byte(l), byte(n >> 16), byte(n >> 8), byte(n)}, IP: netip.AddrFrom4([4]byte{10, byte(l), byte(n >> 8), byte(n)}),
					VTEP: vtep, RouterMAC: evpn.MAC{2, 0xaa, 0, 0, 0, byte(l)}})
			}
		}
		// watchers[i] is the index of a speaker whose watch must see
		// every route not from VTEP own[i].
		watchers, own := []int{0}, []netip.Addr{{}}
		if leaves > 1 {
			watchers, own = nil, nil
			for l := range leaves {
				watchers, own = append(watchers, l+1), append(own, routes[l][0].VTEP)
			}
		}
		want := total - perLeaf
		if leaves == 1 {
			want = total
		}
		ctx, cancel := context.WithCancel(context.Background())
		var done sync.WaitGroup
		for k, i := range watchers {
			done.Add(1)
			seen := 0
			once := sync.Once{}
			go func() {
				_ = star.clients[i].Watch(ctx, func(u speaker.Update) {
					for _, r := range u.Adds {
						if r.VTEP != own[k] {
							seen++
						}
					}
					if seen >= want {
						once.Do(done.Done)
					}
				})
			}()
		}
		time.Sleep(100 * time.Millisecond) // the watches are open
		cpu0 := star.cpu(b)
		self0 := selfCPU()
		start := time.Now()
		b.StartTimer()
		var sent sync.WaitGroup
		var advertised time.Duration
		var mu sync.Mutex
		for l := range leaves {
			sent.Add(1)
			go func() {
				defer sent.Done()
				if err := star.clients[l+1].Advertise(ctx, routes[l]...); err != nil {
					b.Error(err)
				}
				mu.Lock()
				advertised = max(advertised, time.Since(start))
				mu.Unlock()
			}()
		}
		sent.Wait()
		done.Wait()
		b.StopTimer()
		cpu := star.cpu(b)
		var leafCPU time.Duration
		for i := 1; i <= leaves; i++ {
			leafCPU += cpu[i] - cpu0[i]
		}
		b.ReportMetric(advertised.Seconds(), "advertised-s")
		b.ReportMetric((cpu[0] - cpu0[0]).Seconds(), "spine-CPU-s")
		b.ReportMetric(leafCPU.Seconds()/float64(leaves), "leaf-CPU-s")
		b.ReportMetric((selfCPU() - self0).Seconds(), "client-CPU-s")
		b.ReportMetric(star.peakMB(b), "MB-peak/speaker")
		cancel()
		star.stop()
		b.StartTimer()
	}
}

// star is a spine route reflector and its leaves, each speaker a
// process of its own.
type star struct {
	procs   []*exec.Cmd
	clients []*speaker.Client // clients[0] is the spine's
}

// startStar starts a spine route reflector and n leaves as processes
// (each on its own loopback address) and waits for every session.
func startStar(b testing.TB, n int) *star {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := b.TempDir()
	port := int32(20000 + rand.IntN(20000))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}) }
	cfgs := []speaker.Config{{Node: "spine1", ASN: asn, RouterID: netip.MustParseAddr("10.255.0.1"),
		Listen: []netip.Addr{addr(0)}, Port: port, GRPC: filepath.Join(dir, "spine1.sock")}}
	for i := 1; i <= n; i++ {
		cfgs[0].Peers = append(cfgs[0].Peers, speaker.Peer{Address: addr(i), ASN: asn, RRClient: true, Passive: true})
		cfgs = append(cfgs, speaker.Config{Node: fmt.Sprintf("leaf%d", i), ASN: asn,
			RouterID: netip.AddrFrom4([4]byte{10, 255, 0, byte(10 + i)}), Port: -1,
			GRPC:  filepath.Join(dir, fmt.Sprintf("leaf%d.sock", i)),
			Peers: []speaker.Peer{{Address: addr(0), ASN: asn, Port: uint16(port), Local: addr(i)}}})
	}
	s := &star{}
	b.Cleanup(s.stop)
	for _, c := range cfgs {
		path := c.GRPC + ".json"
		if err := speaker.WriteConfig(path, c); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envConfig+"="+path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatalf("start the speaker of %s: %v", c.Node, err)
		}
		s.procs = append(s.procs, cmd)
		cl, err := dialRetry(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		s.clients = append(s.clients, cl)
	}
	for _, c := range s.clients {
		if err := c.WaitEstablished(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func (s *star) stop() {
	for _, c := range s.clients {
		c.Close()
	}
	for _, p := range s.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
	s.clients, s.procs = nil, nil
}

// cpu returns the CPU time (user and system) each process has used.
func (s *star) cpu(b testing.TB) []time.Duration {
	out := make([]time.Duration, len(s.procs))
	for i, p := range s.procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the command (which may hold spaces) in its
		// parentheses; utime and stime are the 14th and 15th, in ticks
		// of 1/100 s (USER_HZ).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}

// peakMB returns the largest peak resident set of the processes, in MB.
func (s *star) peakMB(b testing.TB) float64 {
	var peak float64
	for _, p := range s.procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				peak = max(peak, kb/1024)
			}
		}
	}
	return peak
}

// selfCPU returns the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
