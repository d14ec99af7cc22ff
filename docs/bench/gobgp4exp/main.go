// Command gobgp4exp times 20,000 EVPN type-2 routes through GoBGP
// speakers in one process, with GoBGP v3 (default build) or v4 (build
// tag v4), in the shape of netbed's BenchmarkRoutes20k
// (datapath/speaker/bench_linux_test.go):
//
//   - reflector: a spine route reflector (iBGP, AS 65000, cluster ID its
//     router ID, passive) and four leaves on 127.0.1.2-5, each leaf
//     originating 5,000 routes; done when every leaf's best-path watch
//     has seen the other 15,000;
//   - session: one leaf originates all 20,000 and the spine's watch must
//     see them.
//
// Routes are sent as netbed sends them, on one AddPathStream of the
// speaker's gRPC API (unix socket) in batches of 1,000, and watched as
// netbed watches them, WatchEvent on best paths with the current table
// first, each path decoded back (NLRI and the MP_REACH next hop). The
// clock runs from the first AddPathStream until the last watch is full.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const asn = 65000

var progress bool

// route is an EVPN MAC/IP advertisement, as netbed's evpn.Route holds
// one: MAC and IP in the L2 VNI, the L3 VNI, the VTEP (next hop and
// route distinguisher) and the router MAC.
type route struct {
	VNI, L3VNI uint32
	MAC        [6]byte
	IP         netip.Addr
	VTEP       netip.Addr
	RouterMAC  [6]byte
}

// speakerConfig is one speaker: its router ID, where it listens (port
// -1: it does not) and its peers.
type speakerConfig struct {
	Name     string
	RouterID netip.Addr
	Listen   netip.Addr
	Port     int32
	GRPC     string
	Peers    []peerConfig
}

type peerConfig struct {
	Address  netip.Addr
	Port     uint16
	Local    netip.Addr
	RRClient bool
	Passive  bool
}

// speaker is a GoBGP speaker of this process driven through its gRPC
// socket; gobgp_v3.go and gobgp_v4.go implement it.
type speaker interface {
	// advertise originates routes on one AddPathStream.
	advertise(ctx context.Context, routes []route) error
	// watch calls fn with the best paths added, from the current table
	// on, until ctx ends.
	watch(ctx context.Context, fn func(adds []route)) error
	// established reports whether every peer's session is up.
	established(ctx context.Context) (bool, error)
	// updates is the number of UPDATE messages sent to and received
	// from all peers.
	updates(ctx context.Context) (sent, received uint64, err error)
	stop()
}

func main() {
	mode := flag.String("mode", "reflector", "reflector (4 leaves behind a route reflector) or session (one leaf, one spine)")
	total := flag.Int("routes", 20000, "type 2 routes in all")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured interval to this file")
	flag.BoolVar(&progress, "progress", false, "print every watch's count every 500 ms")
	flag.Parse()
	leaves := 4
	if *mode == "session" {
		leaves = 1
	} else if *mode != "reflector" {
		fmt.Fprintf(os.Stderr, "-mode %q: want reflector or session\n", *mode)
		os.Exit(2)
	}
	if err := run(leaves, *total, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(leaves, total int, cpuprofile string) error {
	load, _ := os.ReadFile("/proc/loadavg")
	dir, err := os.MkdirTemp("", "gobgp4exp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sp, err := startStar(dir, leaves)
	defer func() {
		for _, s := range sp {
			s.stop()
		}
	}()
	if err != nil {
		return err
	}
	perLeaf := total / leaves
	routes := make([][]route, leaves)
	for l := range leaves {
		vtep := netip.AddrFrom4([4]byte{10, 255, 0, byte(11 + l)})
		for i := range perLeaf {
			n := l*perLeaf + i
			routes[l] = append(routes[l], route{VNI: 10100 + uint32(n%16), L3VNI: 50001,
				MAC: [6]byte{2, 0, byte(l), byte(n >> 16), byte(n >> 8), byte(n)}, IP: netip.AddrFrom4([4]byte{10, byte(l), byte(n >> 8), byte(n)}),
				VTEP: vtep, RouterMAC: [6]byte{2, 0xaa, 0, 0, 0, byte(l)}})
		}
	}
	// watchers[k] is a speaker whose watch must see every route not
	// from VTEP own[k]: the spine with one leaf, else every leaf.
	watchers, own := []int{0}, []netip.Addr{{}}
	want := total
	if leaves > 1 {
		watchers, own = nil, nil
		for l := range leaves {
			watchers, own = append(watchers, l+1), append(own, routes[l][0].VTEP)
		}
		want = total - perLeaf
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done sync.WaitGroup
	counts := make([]atomic.Int64, len(watchers))
	for k, i := range watchers {
		done.Add(1)
		seen := 0
		var once sync.Once
		go func() {
			err := sp[i].watch(ctx, func(adds []route) {
				for _, r := range adds {
					if r.VTEP != own[k] {
						seen++
					}
				}
				counts[k].Store(int64(seen))
				if seen >= want {
					once.Do(done.Done)
				}
			})
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the watches are open
	runtime.GC()
	var peakHeap atomic.Uint64
	stopSampling := sampleHeap(&peakHeap)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0 := selfCPU()
	start := time.Now()
	if progress {
		go func() {
			for ctx.Err() == nil {
				time.Sleep(500 * time.Millisecond)
				var cs []string
				for k := range counts {
					cs = append(cs, strconv.FormatInt(counts[k].Load(), 10))
				}
				fmt.Fprintf(os.Stderr, "%5.1fs %s\n", time.Since(start).Seconds(), strings.Join(cs, " "))
			}
		}()
	}
	var sent sync.WaitGroup
	var mu sync.Mutex
	var advertised time.Duration
	for l := range leaves {
		sent.Add(1)
		go func() {
			defer sent.Done()
			if err := sp[l+1].advertise(ctx, routes[l]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			mu.Lock()
			advertised = max(advertised, time.Since(start))
			mu.Unlock()
		}()
	}
	sent.Wait()
	done.Wait()
	elapsed := time.Since(start)
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	cpu := selfCPU() - cpu0
	stopSampling()
	upSent, upRecv, err := sp[0].updates(ctx)
	if err != nil {
		return err
	}
	mode := "reflector"
	if leaves == 1 {
		mode = "session"
	}
	fmt.Printf("gobgp=%s mode=%s routes=%d converged-s=%.2f advertised-s=%.2f CPU-s=%.2f peak-heap-MB=%.0f VmHWM-MB=%.0f speakers=%d spine-UPDATEs-in=%d spine-UPDATEs-out=%d load=%s\n",
		version, mode, total, elapsed.Seconds(), advertised.Seconds(), cpu.Seconds(),
		float64(peakHeap.Load())/(1<<20), vmHWM(), len(sp), upRecv, upSent, strings.Join(strings.Fields(string(load))[:3], ","))
	return nil
}

// startStar starts a spine route reflector and n leaves on loopback
// addresses and waits until every session is established.
func startStar(dir string, n int) ([]speaker, error) {
	port := int32(20000 + rand.IntN(20000))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}) }
	cfgs := []speakerConfig{{Name: "spine1", RouterID: netip.MustParseAddr("10.255.0.1"), Listen: addr(0), Port: port,
		GRPC: filepath.Join(dir, "spine1.sock")}}
	for i := 1; i <= n; i++ {
		cfgs[0].Peers = append(cfgs[0].Peers, peerConfig{Address: addr(i), RRClient: true, Passive: true})
		cfgs = append(cfgs, speakerConfig{Name: "leaf" + strconv.Itoa(i), RouterID: netip.AddrFrom4([4]byte{10, 255, 0, byte(10 + i)}),
			Port: -1, GRPC: filepath.Join(dir, fmt.Sprintf("leaf%d.sock", i)),
			Peers: []peerConfig{{Address: addr(0), Port: uint16(port), Local: addr(i)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sp []speaker
	for _, c := range cfgs {
		s, err := startSpeaker(ctx, c)
		if err != nil {
			return sp, fmt.Errorf("start %s: %w", c.Name, err)
		}
		sp = append(sp, s)
	}
	for {
		all := true
		for i, s := range sp {
			ok, err := s.established(ctx)
			if err != nil {
				return sp, fmt.Errorf("%s: %w", cfgs[i].Name, err)
			}
			all = all && ok
		}
		if all {
			return sp, nil
		}
		select {
		case <-ctx.Done():
			return sp, fmt.Errorf("sessions not established: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sampleHeap records the largest heap in use every 20 ms until the
// returned func is called.
func sampleHeap(peak *atomic.Uint64) func() {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// vmHWM is this process's peak resident set, in MB.
func vmHWM() float64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
