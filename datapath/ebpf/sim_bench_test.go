package ebpf

import (
	"fmt"
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
