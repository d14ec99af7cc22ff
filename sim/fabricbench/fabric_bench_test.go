package fabricbench

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// The seed's fabric: 4 spines, 16 leaves, 16 hosts a leaf; one instance
// per host, so all pairs is 256 x 255 probes.
var params = topologies.SpineLeafParams{Spines: 4, Leaves: 16, HostsPerLeaf: 16}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// allPairs probes every ordered pair once per b.N iteration with trace
// recording off, checks every probe was answered and reports packet-hop
// events per CPU second ("events/s"), per wall second, and allocations
// per event.
func allPairs(b *testing.B, e *sim.Engine, names []string, insts []*stack.Instance) {
	e.SetRecord(false)
	n := len(names)
	addrs := make([]netip.Addr, n)
	for i, in := range insts {
		addrs[i] = in.Addr().Addr()
	}
	var replies int
	for _, in := range insts {
		in.OnReply(func(stack.Reply) { replies++ })
	}
	b.ResetTimer()
	c0, _ := e.Conservation()
	start, cpu0, m0 := time.Now(), cpuTime(), mallocs()
	for range b.N {
		replies = 0
		t := e.Now() + time.Millisecond
		for i := range n {
			for j := range n {
				if i == j {
					continue
				}
				if _, err := e.Probe(t, names[i], stack.ProbeSpec{Proto: stack.ICMP, Dst: addrs[j]}); err != nil {
					b.Fatal(err)
				}
				t += 100 * time.Nanosecond
			}
		}
		if err := e.RunUntilIdle(); err != nil {
			b.Fatal(err)
		}
		if replies != n*(n-1) {
			c, _ := e.Conservation()
			b.Fatalf("%d of %d probes answered; drops %v", replies, n*(n-1), c.Dropped)
		}
	}
	wall, cpu, allocs := time.Since(start), cpuTime()-cpu0, mallocs()-m0
	b.StopTimer()
	c, err := e.Conservation()
	if err != nil {
		b.Fatal(err)
	}
	hops := c.Hops - c0.Hops
	b.ReportMetric(float64(hops)/cpu.Seconds(), "events/s")
	b.ReportMetric(float64(hops)/wall.Seconds(), "events/wall-s")
	b.ReportMetric(float64(hops)/float64(b.N*n*(n-1)), "hops/probe")
	b.ReportMetric(float64(allocs)/float64(hops), "allocs/event")
}

func BenchmarkEBPFAllPairs(b *testing.B) {
	for _, mode := range []ebpf.Mode{ebpf.Tunnel, ebpf.Direct} {
		b.Run(mode.String(), func(b *testing.B) {
			e, names, insts := ebpfFabric(b, params, mode)
			allPairs(b, e, names, insts)
		})
	}
}

func BenchmarkEVPNAllPairs(b *testing.B) {
	e, names, insts := evpnFabric(b, params, nil)
	allPairs(b, e, names, insts)
}

// BenchmarkEVPNAllPairsCalibrated is BenchmarkEVPNAllPairs with every
// device costed from the calibration table, as the scenarios' sim runtime
// does (sim.Engine.SetDeviceCost): what costing each trace event adds.
func BenchmarkEVPNAllPairsCalibrated(b *testing.B) {
	e, names, insts := evpnFabric(b, params, cost.NewModel(nil).Of)
	allPairs(b, e, names, insts)
}

// BenchmarkVLANAllPairs is gen 1 (Ctrip's host model) on a three-tier
// fabric of the same 256 hosts: 4 pods of 4 racks of 16 hosts, one
// instance per host, a VLAN per rack (16, their gateways on the core, so
// 15 of 16 pairs are routed there), all pairs as above. A VLAN per rack
// rather than two across the fabric keeps the first round's ARP floods
// (every switch trunk carries every VLAN) within reach of -benchtime 1x.
func BenchmarkVLANAllPairs(b *testing.B) {
	e, names, insts := vlanFabric(b, topologies.ThreeTierParams{Pods: 4, RacksPerPod: 4, HostsPerRack: 16})
	allPairs(b, e, names, insts)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory reports the heap of the generations' fabrics in the
// engine: per fabric node (spines, leaves, hosts with their models and the
// engine's state) and per instance added (stack, host-side ports, engine).
func BenchmarkMemory(b *testing.B) {
	const podsPerHost = 8
	for _, gen := range []string{"ebpf-direct", "evpn"} {
		b.Run(gen, func(b *testing.B) {
			for range b.N {
				h0 := heapInUse()
				topo, err := topologies.SpineLeaf(params)
				if err != nil {
					b.Fatal(err)
				}
				var f datapath.Fabric
				switch gen {
				case "ebpf-direct":
					f, err = ebpf.New(topo, ebpf.Options{Mode: ebpf.Direct, PodsPerNode: podsPerHost})
				case "evpn":
					ef, e2 := evpn.New(topo, evpn.Options{TapSlots: podsPerHost})
					f, err = ef, e2
					if err == nil {
						err = ef.AddNetwork(datapath.NetworkSpec{Name: "a", Tenant: "t", Subnet: netip.MustParsePrefix("10.0.0.0/16"),
							Gateway: netip.MustParseAddr("10.0.0.1"), VLAN: 10, VNI: 10010})
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				e := sim.New(1)
				if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{QueueFrames: 64}); err != nil {
					b.Fatal(err)
				}
				h1 := heapInUse()
				hosts := topo.NodesByRole(topologies.RoleHost)
				k := 0
				for _, hn := range hosts {
					for range podsPerHost {
						k++
						s := datapath.InstanceSpec{Name: fmt.Sprintf("i%d", k), Host: hn.Name}
						if gen == "evpn" {
							s.Network = "a"
							s.MAC = net.HardwareAddr{2, 0x10, 0, 0, byte(k >> 8), byte(k)}
							s.IP = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte((k + 1) >> 8), byte(k + 1)}), 16)
							s.Gateway = netip.MustParseAddr("10.0.0.1")
						}
						if _, err := e.AddInstance(f, s); err != nil {
							b.Fatal(err)
						}
					}
				}
				h2 := heapInUse()
				b.ReportMetric(float64(h1-h0)/float64(len(f.Nodes())), "B/node")
				b.ReportMetric(float64(h2-h1)/float64(k), "B/instance")
				runtime.KeepAlive(e)
			}
		})
	}
}
