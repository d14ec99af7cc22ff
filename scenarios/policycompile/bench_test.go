package policycompile

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/scenarios/policy"
)

// benchSet is 1,000 NetworkPolicies over 10,000 pods, written as teams
// write them: 100 namespaces of 100 pods (10 apps, 2 tiers, 5 pods each,
// every pod with a named port http=8080), and per namespace a default
// deny of ingress and 9 allows: app k takes 8080 (or its named port, or
// a 10-port range) from app k+1 of its namespace, and every third from
// app k+1 of every namespace of its team (namespaceSelector, 10
// namespaces a team), every ninth from an ipBlock.
func benchSet() (*policy.Set, *policy.Cluster) {
	c := &policy.Cluster{Namespaces: map[string]map[string]string{}}
	s := &policy.Set{}
	tcp := corev1.ProtocolTCP
	for n := range 100 {
		ns := fmt.Sprintf("ns-%d", n)
		c.Namespaces[ns] = map[string]string{"team": fmt.Sprintf("team-%d", n%10)}
		for i := range 100 {
			c.Pods = append(c.Pods, &policy.Pod{Namespace: ns, Name: fmt.Sprintf("p-%d-%d", n, i),
				Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%10), "tier": []string{"web", "db"}[i/10%2]},
				IP:     netip.AddrFrom4([4]byte{10, byte(n / 2), byte(n%2*128 + i), 1}), Ports: []policy.NamedPort{{Name: "http", Port: 8080, Protocol: "TCP"}}})
		}
		deny := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny", Namespace: ns}}
		s.NetworkPolicies = append(s.NetworkPolicies, deny)
		for k := range 9 {
			np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("allow-%d", k), Namespace: ns}}
			np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", k)}}
			peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", k+1)}}}
			if k%3 == 0 {
				peer.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("team-%d", n%10)}}
			}
			if k == 8 {
				peer = networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24"}}}
			}
			port := networkingv1.NetworkPolicyPort{Protocol: &tcp}
			switch k % 3 {
			case 0:
				p := intstr.FromInt32(8080)
				port.Port = &p
			case 1:
				p := intstr.FromString("http")
				port.Port = &p
			case 2:
				p, end := intstr.FromInt32(9000), int32(9009)
				port.Port, port.EndPort = &p, &end
			}
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{peer}, Ports: []networkingv1.NetworkPolicyPort{port}}}
			s.NetworkPolicies = append(s.NetworkPolicies, np)
		}
	}
	for i := range s.NetworkPolicies {
		policy.Default(&s.NetworkPolicies[i])
	}
	return s, c
}

// BenchmarkNetworkPolicies1000x10000 compiles benchSet for gen 3 (policy
// map entries; then the O(1) lookup per packet) and for gen 1's stock
// host (security-group rules; then the rules a new flow's first packet
// walks in the destination's chain, O(n)); gen3-lookup and gen1-match
// time one packet's verdict (run them with -benchtime 100000x).
func BenchmarkNetworkPolicies1000x10000(b *testing.B) {
	s, c := benchSet()
	ids := identities(c)
	var lookups *ebpf.HashMap[ebpf.PolicyKey, ebpf.PolicyEntry]
	var gen1 *Gen1
	b.Run("gen3", func(b *testing.B) {
		var cp ebpf.CompiledPolicy
		for b.Loop() {
			g, err := CompileGen3(s, c, ids)
			if err != nil {
				b.Fatal(err)
			}
			cp = ebpf.CompileRules(g.Rules, g.Enforced, g.EgressEnforced)
		}
		m := ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy", MaxEntries: 1 << 24})
		if _, err := ebpf.Install(m, cp); err != nil {
			b.Fatal(err)
		}
		distinct := map[ebpf.Identity]bool{}
		for _, id := range ids {
			distinct[id] = true
		}
		b.ReportMetric(float64(len(cp.Rules)), "entries")
		b.ReportMetric(float64(len(distinct)), "identities")
		lookups = m
	})
	b.Run("gen3-lookup", func(b *testing.B) {
		if lookups == nil { // gen3 did not run (-bench …/gen3-lookup)
			g, err := CompileGen3(s, c, ids)
			if err != nil {
				b.Fatal(err)
			}
			lookups = ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy", MaxEntries: 1 << 24})
			if _, err := ebpf.Install(lookups, ebpf.CompileRules(g.Rules, g.Enforced, g.EgressEnforced)); err != nil {
				b.Fatal(err)
			}
		}
		pairs := samplePairs(c, ids)
		for i := 0; b.Loop(); i++ {
			p := pairs[i%len(pairs)]
			ebpf.PolicyLookup(lookups, p[0], p[1], ebpf.ProtoTCP, 8080)
		}
	})
	b.Run("gen1", func(b *testing.B) {
		var g *Gen1
		for b.Loop() {
			var err error
			if g, err = CompileGen1(s, c); err != nil {
				b.Fatal(err)
			}
		}
		// The rules a first packet walks in the destination's ingress
		// chain, over a sample of pairs.
		walked, n := 0, 0
		for i := 0; i < len(c.Pods); i += 97 {
			dst := c.Pods[i]
			ch := vlan.NewSGChain(g.Groups[dst.String()], vlan.Accept, vlan.Accept)
			for j := 0; j < len(c.Pods); j += 991 {
				_, _, w := ch.Match(vlan.Ingress, 6, c.Pods[j].IP, 8080)
				walked += w
				n++
			}
		}
		b.ReportMetric(float64(g.Rules), "rules")
		b.ReportMetric(float64(walked)/float64(n), "walked/pkt")
		gen1 = g
	})
	b.Run("gen1-match", func(b *testing.B) {
		if gen1 == nil { // gen1 did not run (-bench …/gen1-match)
			var err error
			if gen1, err = CompileGen1(s, c); err != nil {
				b.Fatal(err)
			}
		}
		type probe struct {
			ch  *vlan.SGChain
			src netip.Addr
		}
		var probes []probe
		for i := 0; i < len(c.Pods); i += 97 {
			ch := vlan.NewSGChain(gen1.Groups[c.Pods[i].String()], vlan.Accept, vlan.Accept)
			for j := 0; j < len(c.Pods); j += 991 {
				probes = append(probes, probe{ch, c.Pods[j].IP})
			}
		}
		for i := 0; b.Loop(); i++ {
			p := probes[i%len(probes)]
			p.ch.Match(vlan.Ingress, 6, p.src, 8080)
		}
	})
}

// samplePairs are (source, destination) identities of about 1,000 pod
// pairs.
func samplePairs(c *policy.Cluster, ids map[string]ebpf.Identity) [][2]ebpf.Identity {
	var pairs [][2]ebpf.Identity
	for i := 0; i < len(c.Pods); i += 97 {
		for j := 0; j < len(c.Pods); j += 991 {
			pairs = append(pairs, [2]ebpf.Identity{ids[c.Pods[j].String()], ids[c.Pods[i].String()]})
		}
	}
	return pairs
}
