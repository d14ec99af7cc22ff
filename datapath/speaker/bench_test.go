package speaker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/speaker"
)

// BenchmarkRoutes20k: the seed's largest zone, 20,000 instances, as
// type 2 routes originated across four leaves (5,000 each) behind a
// spine route reflector; the time from the first advertisement until
// every leaf's speaker holds all 20,000 as best paths (each leaf's watch
// has seen the 15,000 of the others). Speakers run in this process; the
// heap they grew, per speaker, is reported as MB/speaker.
func BenchmarkRoutes20k(b *testing.B) {
	const leaves, perLeaf = 4, 5000
	for range b.N {
		b.StopTimer()
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		clients := startStar(b, leaves)
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
		ctx, cancel := context.WithCancel(context.Background())
		var done sync.WaitGroup
		for l := range leaves {
			done.Add(1)
			seen := 0
			once := sync.Once{}
			go func() {
				_ = clients[l+1].Watch(ctx, func(u speaker.Update) {
					for _, r := range u.Adds {
						if r.VTEP != routes[l][0].VTEP {
							seen++
						}
					}
					if seen >= (leaves-1)*perLeaf {
						once.Do(done.Done)
					}
				})
			}()
		}
		time.Sleep(100 * time.Millisecond) // the watches are open
		b.StartTimer()
		var sent sync.WaitGroup
		for l := range leaves {
			sent.Add(1)
			go func() {
				defer sent.Done()
				if err := clients[l+1].Advertise(ctx, routes[l]...); err != nil {
					b.Error(err)
				}
			}()
		}
		sent.Wait()
		done.Wait()
		b.StopTimer()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(leaves+1)/(1<<20), "MB/speaker")
		cancel()
		b.StartTimer()
	}
}

// startStar starts a spine route reflector and n leaves in this process
// (clients[0] is the spine) and waits for every session.
func startStar(b testing.TB, n int) []*speaker.Client {
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
	var clients []*speaker.Client
	for _, c := range cfgs {
		s, err := speaker.Serve(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		cl, err := speaker.Dial(ctx, c.Node, c.GRPC, c.ASN)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cl.Close(); s.Stop() })
		clients = append(clients, cl)
	}
	for _, c := range clients {
		if err := c.WaitEstablished(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return clients
}
