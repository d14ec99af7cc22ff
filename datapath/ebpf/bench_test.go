package ebpf

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// policyRules draws n distinct exact rules over 64 source and 64
// destination identities, TCP and UDP, ports 1..4096.
func policyRules(n int, r *rand.Rand) []PolicyRule {
	seen := map[PolicyKey]bool{}
	var out []PolicyRule
	for len(out) < n {
		proto := ProtoTCP
		if r.IntN(2) == 0 {
			proto = ProtoUDP
		}
		k := NewPolicyKey(FirstPodIdentity+Identity(r.IntN(64)), FirstPodIdentity+Identity(r.IntN(64)), proto, uint16(1+r.IntN(4096)))
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, PolicyRule{Key: k, Action: PolicyAllow, Name: RuleName(k)})
	}
	return out
}

type query struct {
	src, dst Identity
	proto    Proto
	port     uint16
}

// policyQueries are lookups of installed rules (each chain position equally
// likely) mixed with 1 in 8 misses.
func policyQueries(rules []PolicyRule, r *rand.Rand) []query {
	qs := make([]query, 4096)
	for i := range qs {
		k := rules[r.IntN(len(rules))].Key
		q := query{Identity(k.SrcIdentity), Identity(k.DstIdentity), Proto(k.Proto), portOf(k.DPort)}
		if i%8 == 7 {
			q.port = 5000 + uint16(r.IntN(1000))
		}
		qs[i] = q
	}
	return qs
}

// BenchmarkPolicyLookup compares Cilium's O(1) policy map lookup with an
// iptables-style O(n) chain holding the same rules.
func BenchmarkPolicyLookup(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		rules := policyRules(n, r)
		qs := policyQueries(rules, r)
		m := NewHashMap[PolicyKey, PolicyEntry](MapSpec{"policy", 0})
		if _, err := Install(m, CompiledPolicy{Rules: rules}); err != nil {
			b.Fatal(err)
		}
		chain := NewChain(rules)
		b.Run(fmt.Sprintf("map/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i, hits := 0, 0
			for b.Loop() {
				q := &qs[i&4095]
				if _, _, ok := PolicyLookup(m, q.src, q.dst, q.proto, q.port); ok {
					hits++
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
		})
		b.Run(fmt.Sprintf("chain/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i, hits := 0, 0
			for b.Loop() {
				q := &qs[i&4095]
				if _, ok := chain.Match(q.src, q.dst, q.proto, q.port); ok {
					hits++
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
		})
	}
}

type discard struct{ sent int }

func (d *discard) Forward(port int, b []byte) { d.Send(port, b) }
func (d *discard) Send(int, []byte)           { d.sent++ }
func (d *discard) Trace(datapath.Event)       {}

func benchNode(b *testing.B, mode Mode) (*Node, *Endpoint, *Endpoint) {
	n, err := NewNode(NodeConfig{Name: "host1", Mode: mode, NodeIP: netip.MustParseAddr("172.16.128.1"),
		NodeCIDR: netip.MustParsePrefix("10.0.0.0/24"), ClusterCIDR: netip.MustParsePrefix("10.0.0.0/16"),
		NICs: []NIC{{Name: "eth1", MAC: DeviceMAC("host1", "eth1"), GatewayMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}})
	if err != nil {
		b.Fatal(err)
	}
	a, err := n.AddEndpoint("a", netip.MustParseAddr("10.0.0.2"), PodMAC("a"), FirstPodIdentity, nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := n.AddEndpoint("c", netip.MustParseAddr("10.0.0.3"), PodMAC("c"), FirstPodIdentity+1, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.SetTunnel(netip.MustParsePrefix("10.0.1.0/24"), netip.MustParseAddr("172.16.128.2")); err != nil {
		b.Fatal(err)
	}
	// An enforced destination with an allow rule, so the policy map is on
	// the path.
	cp := CompiledPolicy{Enforced: map[Identity]bool{FirstPodIdentity + 1: true},
		Rules: []PolicyRule{{Key: NewPolicyKey(FirstPodIdentity, FirstPodIdentity+1, ProtoUDP, 7), Action: PolicyAllow, Name: "allow"}}}
	if err := n.SetPolicy(cp); err != nil {
		b.Fatal(err)
	}
	return n, a, c
}

// BenchmarkNodeForward measures frames/s through the node's programs.
func BenchmarkNodeForward(b *testing.B) {
	payload := make([]byte, 64)
	cases := []struct {
		name string
		mode Mode
		make func(n *Node, a, c *Endpoint) (port int, f []byte)
	}{
		{"lxc-bpf-lxc", Tunnel, func(n *Node, a, c *Endpoint) (int, []byte) {
			return a.Port, frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: c.IP}, 40000, 7, payload)
		}},
		{"tunnel-encap", Tunnel, func(n *Node, a, c *Endpoint) (int, []byte) {
			return a.Port, frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: netip.MustParseAddr("10.0.1.9")}, 40000, 7, payload)
		}},
		{"overlay-decap", Tunnel, func(n *Node, a, c *Endpoint) (int, []byte) {
			inner := frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: netip.MustParseAddr("10.0.1.9"), Dst: c.IP}, 40000, 7, payload)
			return 0, frame.VXLANEncap(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: n.cfg.NICs[0].MAC,
				Src: netip.MustParseAddr("172.16.128.2"), Dst: n.cfg.NodeIP}, uint32(FirstPodIdentity), inner)
		}},
		{"direct-out", Direct, func(n *Node, a, c *Endpoint) (int, []byte) {
			return a.Port, frame.UDP(frame.IPv4{SrcMAC: a.MAC, DstMAC: n.HostMAC(), Src: a.IP, Dst: netip.MustParseAddr("10.0.1.9")}, 40000, 7, payload)
		}},
		{"direct-in", Direct, func(n *Node, a, c *Endpoint) (int, []byte) {
			return 0, frame.UDP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: n.cfg.NICs[0].MAC,
				Src: netip.MustParseAddr("10.0.1.9"), Dst: c.IP}, 40000, 7, payload)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			n, a, dst := benchNode(b, c.mode)
			if c.name == "direct-in" {
				// The remote pod's identity is known from the ipcache.
				_ = n.SetRemote(netip.MustParsePrefix("10.0.1.9/32"), FirstPodIdentity, netip.Addr{})
			}
			port, f := c.make(n, a, dst)
			out := &discard{}
			b.ReportAllocs()
			for b.Loop() {
				n.Receive(time.Duration(0), port, f, out)
			}
			if out.sent != b.N {
				b.Fatalf("sent %d of %d frames", out.sent, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkPolicyMapVsChain runs the map and the chain in alternating
// batches of the same queries, so that a busy machine slows both alike,
// and reports both costs and their ratio.
func BenchmarkPolicyMapVsChain(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(n), 1))
			rules := policyRules(n, r)
			qs := policyQueries(rules, r)
			m := NewHashMap[PolicyKey, PolicyEntry](MapSpec{"policy", 0})
			if _, err := Install(m, CompiledPolicy{Rules: rules}); err != nil {
				b.Fatal(err)
			}
			chain := NewChain(rules)
			const batch = 64
			var tMap, tChain time.Duration
			lookups, hitsMap, hitsChain := 0, 0, 0
			for i := 0; i < b.N; i++ {
				base := (i * batch) & 4095
				start := time.Now()
				for j := range batch {
					q := &qs[(base+j)&4095]
					if _, _, ok := PolicyLookup(m, q.src, q.dst, q.proto, q.port); ok {
						hitsMap++
					}
				}
				mid := time.Now()
				for j := range batch {
					q := &qs[(base+j)&4095]
					if _, ok := chain.Match(q.src, q.dst, q.proto, q.port); ok {
						hitsChain++
					}
				}
				tMap += mid.Sub(start)
				tChain += time.Since(mid)
				lookups += batch
			}
			if hitsMap != hitsChain {
				b.Fatalf("map hit %d, chain %d", hitsMap, hitsChain)
			}
			b.ReportMetric(float64(tMap.Nanoseconds())/float64(lookups), "map-ns/lookup")
			b.ReportMetric(float64(tChain.Nanoseconds())/float64(lookups), "chain-ns/lookup")
			b.ReportMetric(float64(tChain)/float64(tMap), "chain/map")
		})
	}
}
