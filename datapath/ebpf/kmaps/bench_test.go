package kmaps

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
)

// BenchmarkKernelPolicy times the policy program in the kernel
// (BPF_PROG_TEST_RUN, per run) with 10 to 10000 exact rules in the kernel
// policy map: the O(1) lookup measured on real BPF maps.
func BenchmarkKernelPolicy(b *testing.B) {
	testutil.RequireRoot(b)
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			km, err := New()
			if err != nil {
				b.Fatal(err)
			}
			defer km.Close()
			prog, err := NewPolicyProgram(km, TCActOK)
			if err != nil {
				b.Fatal(err)
			}
			defer prog.Close()
			r := rand.New(rand.NewPCG(uint64(n), 5))
			m := gen3.NewMaps()
			ip := func(id int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(id / 200), byte(1 + id%200)}) }
			for id := range 64 {
				ident := gen3.FirstPodIdentity + gen3.Identity(id)
				_ = m.IPCache.Update(gen3.IPCacheKey{PrefixLen: 32, IP: ip(id).As4()}, gen3.IPCacheValue{Identity: uint32(ident)})
				_ = m.Endpoints.Update(gen3.EndpointKey{IP: ip(id).As4()}, gen3.EndpointInfo{Identity: uint32(ident), Flags: gen3.EndpointPolicyEnforced})
			}
			var rules []gen3.PolicyRule
			seen := map[gen3.PolicyKey]bool{}
			for len(rules) < n {
				k := gen3.NewPolicyKey(gen3.FirstPodIdentity+gen3.Identity(r.IntN(64)), gen3.FirstPodIdentity+gen3.Identity(r.IntN(64)), gen3.ProtoTCP, uint16(1+r.IntN(4096)))
				if !seen[k] {
					seen[k] = true
					rules = append(rules, gen3.PolicyRule{Key: k, Action: gen3.PolicyAllow})
				}
			}
			if _, err := gen3.Install(m.Policy, gen3.CompiledPolicy{Rules: rules}); err != nil {
				b.Fatal(err)
			}
			if err := km.Sync(m); err != nil {
				b.Fatal(err)
			}
			// A packet matching the last rule installed.
			k := rules[len(rules)-1].Key
			f := frame.TCP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				Src: ip(int(k.SrcIdentity - uint32(gen3.FirstPodIdentity))), Dst: ip(int(k.DstIdentity - uint32(gen3.FirstPodIdentity)))},
				40000, uint16(k.DPort[0])<<8|uint16(k.DPort[1]), 1, 0, frame.TCPFlags{SYN: true}, nil)
			ret, per, err := prog.Benchmark(f, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != TCActOK {
				b.Fatalf("verdict %d for an allowed packet", ret)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "kernel-ns/run")
		})
	}
}
