package kmaps

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

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

// BenchmarkKernelPrograms times each program of an lxc's hook in the
// kernel (BPF_PROG_TEST_RUN) on the same TCP SYN between two local pods
// over IPv4 and over IPv6: the egress check (the source enforces, an
// allow entry), the ingress check (the destination enforces, an allow
// entry; each run also refreshes the conntrack entry) and bpf_lxc (the
// redirect to the destination's lxc, timed one run per call: it rewrites
// the packet). What IPv6's longer keys and addresses cost per packet.
func BenchmarkKernelPrograms(b *testing.B) {
	km := testMaps(b)
	const idA, idB = gen3.FirstPodIdentity, gen3.FirstPodIdentity + 1
	a4, b4 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	a6, b6 := netip.MustParseAddr("fd10::2"), netip.MustParseAddr("fd10::3")
	infoA := gen3.EndpointInfo{IfIndex: 1, Identity: uint32(idA), Flags: gen3.EndpointEgressEnforced}
	infoB := gen3.EndpointInfo{IfIndex: 1, Identity: uint32(idB), Flags: gen3.EndpointPolicyEnforced}
	for _, x := range []struct {
		m    *ebpf.Map
		k, v any
	}{
		{km.Endpoints, gen3.EndpointKey{IP: a4.As4()}, infoA}, {km.Endpoints, gen3.EndpointKey{IP: b4.As4()}, infoB},
		{km.Endpoints6, gen3.EndpointKey6{IP: a6.As16()}, infoA}, {km.Endpoints6, gen3.EndpointKey6{IP: b6.As16()}, infoB},
		{km.IPCache, gen3.IPCacheKey{PrefixLen: 32, IP: a4.As4()}, gen3.IPCacheValue{Identity: uint32(idA)}},
		{km.IPCache, gen3.IPCacheKey{PrefixLen: 32, IP: b4.As4()}, gen3.IPCacheValue{Identity: uint32(idB)}},
		{km.IPCache6, gen3.IPCacheKey6{PrefixLen: 128, IP: a6.As16()}, gen3.IPCacheValue{Identity: uint32(idA)}},
		{km.IPCache6, gen3.IPCacheKey6{PrefixLen: 128, IP: b6.As16()}, gen3.IPCacheValue{Identity: uint32(idB)}},
		{km.Policy, gen3.NewPolicyKey(idA, idB, gen3.ProtoTCP, 80), gen3.PolicyEntry{Action: gen3.PolicyAllow}},
		{km.Policy, gen3.NewEgressKey(idA, idB, gen3.ProtoTCP, 80), gen3.PolicyEntry{Action: gen3.PolicyAllow}},
	} {
		if err := x.m.Put(x.k, x.v); err != nil {
			b.Fatal(err)
		}
	}
	load := loader(b)
	egress := load(NewEgressProgram(km, PolicyConfig{Pass: TCActOK}))
	ingress := load(NewPolicyProgram(km, TCActOK))
	lxc := load(NewFromContainerProgram(km, LxcConfig{HostMAC: hostMAC}))
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, fam := range []struct {
		name     string
		src, dst netip.Addr
	}{{"ipv4", a4, b4}, {"ipv6", a6, b6}} {
		f := frame.TCP(frame.IPv4{SrcMAC: mac, DstMAC: hostMAC, Src: fam.src, Dst: fam.dst}, 40000, 80, 1, 0, frame.TCPFlags{SYN: true}, nil)
		for _, p := range []struct {
			name string
			prog *ebpf.Program
			want uint32
		}{{"egress", egress, TCActOK}, {"ingress", ingress, TCActOK}, {"lxc", lxc, TCActRedirect}} {
			b.Run(p.name+"/"+fam.name, func(b *testing.B) {
				if p.prog != lxc {
					ret, per, err := p.prog.Benchmark(f, b.N, b.ResetTimer)
					if err != nil {
						b.Fatal(err)
					}
					if ret != p.want {
						b.Fatalf("verdict %d, want %d", ret, p.want)
					}
					b.ReportMetric(float64(per.Nanoseconds()), "kernel-ns/run")
					return
				}
				// bpf_lxc rewrites the packet (MACs, TTL or hop
				// limit), and a test run's repeats share one skb:
				// one run per call, each on a fresh copy.
				var total time.Duration
				for range b.N {
					ret, per, err := p.prog.Benchmark(f, 1, nil)
					if err != nil {
						b.Fatal(err)
					}
					if ret != p.want {
						b.Fatalf("verdict %d, want %d", ret, p.want)
					}
					total += per
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "kernel-ns/run")
			})
		}
	}
}
