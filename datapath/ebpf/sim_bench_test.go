package ebpf

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkSimAllPairs probes all pairs of 16 pods (2 per host, 8 hosts on
// 4 leaves, 2 spines) in the simulator and reports packet-hop events per
// second through gen 3's nodes.
func BenchmarkSimAllPairs(b *testing.B) {
	for _, mode := range []Mode{Tunnel, Direct} {
		b.Run(mode.String(), func(b *testing.B) {
			var hops uint64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2})
				if err != nil {
					b.Fatal(err)
				}
				f, err := New(topo, Options{Mode: mode, PodsPerNode: 4})
				if err != nil {
					b.Fatal(err)
				}
				e := sim.New(1)
				if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
					b.Fatal(err)
				}
				var names []string
				for h, n := range topo.NodesByRole(topologies.RoleHost) {
					for p := range 2 {
						name := fmt.Sprintf("pod%d-%d", h, p)
						if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: n.Name}); err != nil {
							b.Fatal(err)
						}
						names = append(names, name)
					}
				}
				start := time.Now()
				m, err := e.AllPairs(time.Millisecond, time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if m.Reachable() != len(names)*(len(names)-1) {
					b.Fatalf("reachable %d:\n%s", m.Reachable(), m)
				}
				c, err := e.Conservation()
				if err != nil {
					b.Fatal(err)
				}
				hops += c.Hops
			}
			b.ReportMetric(float64(hops)/elapsed.Seconds(), "hops/s")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkFabricMemory builds a 4-spine, 16-leaf, 16-hosts-per-leaf gen 3
// fabric (256 Cilium nodes) and attaches 20 pods per node, and reports
// the heap per node (fabric, routes, maps, lxc slots) and per pod
// (endpoint, stack, ipcache entries on every other node).
func BenchmarkFabricMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 4, Leaves: 16, HostsPerLeaf: 16})
		if err != nil {
			b.Fatal(err)
		}
		hosts := topo.NodesByRole(topologies.RoleHost)
		before := heapInUse()
		f, err := New(topo, Options{Mode: Tunnel, PodsPerNode: 32})
		if err != nil {
			b.Fatal(err)
		}
		built := heapInUse()
		const perNode = 20
		for _, h := range hosts {
			for p := range perNode {
				if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: fmt.Sprintf("%s-p%d", h.Name, p), Host: h.Name}); err != nil {
					b.Fatal(err)
				}
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(built-before)/float64(len(hosts)), "B/node")
		b.ReportMetric(float64(after-built)/float64(len(hosts)*perNode), "B/pod")
		runtime.KeepAlive(f)
	}
}
