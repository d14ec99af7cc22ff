package vlan

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// BenchmarkFabricAllPairs runs all-pairs ICMP probes over a gen-1 fabric of
// 2 pods x 4 racks x 4 hosts (32 hosts, 16 ToRs), two instances per host
// in four networks, in the simulator, and reports packet-hop events per
// second (frames handed to a node's Receive) with tracing on.
func BenchmarkFabricAllPairs(b *testing.B) {
	topo, err := topologies.ThreeTier(topologies.ThreeTierParams{Pods: 2, RacksPerPod: 4, HostsPerRack: 4})
	if err != nil {
		b.Fatal(err)
	}
	var hops uint64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		f, err := New(topo, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for v := range 4 {
			if err := f.AddNetwork(datapath.NetworkSpec{Name: fmt.Sprintf("n%d", v), VLAN: uint16(100 + v),
				Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(v), 0, 0}), 16)}); err != nil {
				b.Fatal(err)
			}
		}
		e := sim.New(1)
		if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
			b.Fatal(err)
		}
		var insts []string
		for h := 1; h <= 32; h++ {
			for k := range 2 {
				name := fmt.Sprintf("i%d-%d", h, k)
				v := (h + k) % 4
				ip := netip.AddrFrom4([4]byte{10, byte(v), byte(h), byte(10 + k)})
				if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: fmt.Sprintf("host%d", h),
					Network: fmt.Sprintf("n%d", v), IP: netip.PrefixFrom(ip, 16)}); err != nil {
					b.Fatal(err)
				}
				insts = append(insts, name)
			}
		}
		b.StartTimer()
		start := time.Now()
		m, err := e.AllPairs(0, 10*time.Microsecond, insts, stack.ProbeSpec{Proto: stack.ICMP})
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		if got, want := m.Reachable(), len(insts)*(len(insts)-1); got != want {
			b.Fatalf("%d of %d pairs reachable", got, want)
		}
		c, err := e.Conservation()
		if err != nil {
			b.Fatal(err)
		}
		hops += c.Hops
	}
	b.ReportMetric(float64(hops)/elapsed.Seconds(), "events/s")
}
