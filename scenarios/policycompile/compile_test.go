package policycompile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/scenarios/policy"
)

func testCluster() *policy.Cluster {
	mk := func(ns, name, ip string, l map[string]string, ports ...policy.NamedPort) *policy.Pod {
		return &policy.Pod{Namespace: ns, Name: name, IP: netip.MustParseAddr(ip), Labels: l, Ports: ports}
	}
	return &policy.Cluster{
		Namespaces: map[string]map[string]string{"x": {"team": "red"}, "z": {"team": "blue"}},
		Pods: []*policy.Pod{
			mk("x", "a", "10.1.0.1", map[string]string{"pod": "a", "tier": "web"}, policy.NamedPort{Name: "serve", Port: 80, Protocol: "TCP"}),
			mk("x", "b", "10.1.0.2", map[string]string{"pod": "b", "tier": "web"}, policy.NamedPort{Name: "serve", Port: 81, Protocol: "TCP"}),
			mk("x", "c", "10.1.0.3", map[string]string{"pod": "c", "tier": "db"}),
			mk("z", "a", "10.1.1.1", map[string]string{"pod": "a", "tier": "web"}, policy.NamedPort{Name: "serve", Port: 80, Protocol: "UDP"}),
			mk("z", "b", "10.1.1.2", map[string]string{"pod": "b", "tier": "db"}),
			mk("default", "db", "10.0.0.5", map[string]string{"role": "db"}),
			mk("default", "frontend", "10.0.0.6", map[string]string{"role": "frontend"}),
		},
	}
}

var traffics = []policy.Traffic{
	{Protocol: "TCP", Port: 80}, {Protocol: "TCP", Port: 81}, {Protocol: "UDP", Port: 80}, {Protocol: "UDP", Port: 53},
	{Protocol: "ICMP"}, {Protocol: "TCP", Port: 5978}, {Protocol: "TCP", Port: 6379}, {Protocol: "TCP", Port: 32000},
}

// identities gives pods with the same namespace and labels one identity.
func identities(c *policy.Cluster) map[string]ebpf.Identity {
	ids := ebpf.NewIdentities()
	out := map[string]ebpf.Identity{}
	for _, p := range c.Pods {
		l := map[string]string{"io.kubernetes.pod.namespace": p.Namespace}
		for k, v := range p.Labels {
			l[k] = v
		}
		out[p.String()] = ids.Allocate(l)
	}
	return out
}

var protoOf = map[string]ebpf.Proto{"TCP": ebpf.ProtoTCP, "UDP": ebpf.ProtoUDP, "ICMP": ebpf.ProtoICMP, "SCTP": 132}

// gen3Allows is the gen 3 model's verdict: the egress check on the
// source's node, then the ingress check on the destination's.
func gen3Allows(m *ebpf.HashMap[ebpf.PolicyKey, ebpf.PolicyEntry], g *Gen3, src, dst ebpf.Identity, t policy.Traffic) bool {
	proto := protoOf[t.Protocol]
	if g.EgressEnforced[src] {
		_, e, ok := ebpf.EgressLookup(m, src, dst, proto, t.Port)
		if !ok || e.Action != ebpf.PolicyAllow {
			return false
		}
	}
	if _, e, ok := ebpf.PolicyLookup(m, src, dst, proto, t.Port); ok {
		return e.Action == ebpf.PolicyAllow
	}
	return !g.Enforced[dst]
}

// gen1Allows is the stock host's verdict: the source's chain (egress),
// then the destination's (ingress).
func gen1Allows(g *Gen1, src, dst *policy.Pod, t policy.Traffic) bool {
	proto := uint8(protoOf[t.Protocol])
	v, _, _ := vlan.NewSGChain(g.Groups[src.String()], vlan.Accept, vlan.Accept).Match(vlan.Egress, proto, dst.IP, t.Port)
	if v != vlan.Accept {
		return false
	}
	v, _, _ = vlan.NewSGChain(g.Groups[dst.String()], vlan.Accept, vlan.Accept).Match(vlan.Ingress, proto, src.IP, t.Port)
	return v == vlan.Accept
}

// differ compiles s for gens 1 and 3 and checks every pod pair on every
// traffic against the reference evaluator.
func differ(t *testing.T, s *policy.Set, c *policy.Cluster) {
	t.Helper()
	ids := identities(c)
	g3, err := CompileGen3(s, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	m := ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy", MaxEntries: ebpf.MaxPolicy})
	if _, err := ebpf.Install(m, ebpf.CompileRules(g3.Rules, g3.Enforced, g3.EgressEnforced)); err != nil {
		t.Fatal(err)
	}
	g1, err := CompileGen1(s, c)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, a := range c.Pods {
		for _, b := range c.Pods {
			for _, tr := range traffics {
				want := s.Evaluate(c, policy.Peer{Pod: a}, policy.Peer{Pod: b}, tr)
				if got := gen3Allows(m, g3, ids[a.String()], ids[b.String()], tr); got != want.Allowed && bad < 10 {
					bad++
					t.Errorf("gen 3: %s -> %s %s: allowed %v, want %v (egress: %s; ingress: %s)", a, b, tr, got, want.Allowed, want.Egress, want.Ingress)
				}
				if got := gen1Allows(g1, a, b, tr); got != want.Allowed && bad < 10 {
					bad++
					t.Errorf("gen 1: %s -> %s %s: allowed %v, want %v (egress: %s; ingress: %s)", a, b, tr, got, want.Allowed, want.Egress, want.Ingress)
				}
			}
		}
	}
}

func TestCompileAgrees(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "k8s-docs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	np := func(name, spec string) string {
		return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name + ", namespace: x}\nspec:\n" + spec + "\n---\n"
	}
	cases := map[string]string{
		"k8s-docs":              string(docs),
		"deny-all-x":            np("deny", "  podSelector: {}\n  policyTypes: [Ingress, Egress]"),
		"egress-other-ns":       np("e", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {tier: db}}}]\n    ports: [{port: 80}, {protocol: UDP, port: 53}]"),
		"ipblock-except":        np("i", "  podSelector: {matchLabels: {tier: web}}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.1.0.0/30, 10.1.1.2/32]}}]"),
		"named-ports":           np("n", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress: [{ports: [{port: serve}]}]\n  egress: [{ports: [{port: serve}, {protocol: UDP, port: serve}]}]"),
		"named-ports-egress-to": np("n", "  podSelector: {matchLabels: {pod: c}}\n  policyTypes: [Egress]\n  egress: [{to: [{namespaceSelector: {}}], ports: [{port: serve, protocol: UDP}, {port: 81}]}]"),
		"selects-none":          np("none", "  podSelector: {matchLabels: {pod: nobody}}\n  policyTypes: [Ingress, Egress]"),
		"only-add": np("one", "  podSelector: {matchLabels: {tier: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}], ports: [{port: 80}]}]") +
			np("two", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 81, endPort: 6379}]}]"),
		"cilium": `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c, namespace: x}
spec:
  endpointSelector: {matchLabels: {tier: web}}
  ingress:
  - fromEntities: [cluster]
  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": z}}]
    toPorts: [{ports: [{port: serve}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {pod: c}}]
    toPorts: [{ports: [{port: "80", endPort: 81, protocol: TCP}]}]
  egress:
  - toEndpoints: [{}]
  - toPorts: [{ports: [{port: "53", protocol: UDP}]}]
  egressDeny:
  - toEndpoints: [{matchLabels: {pod: c}}]
    toPorts: [{ports: [{port: "0", protocol: ANY}]}]
`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := policy.Parse(name+".yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			c := testCluster()
			for n, l := range s.Namespaces {
				c.Namespaces[n] = l
			}
			differ(t, s, c)
		})
	}
}

// TestCompileAgreesRandom: random NetworkPolicies over the test cluster,
// each compiled for gens 1 and 3 and checked cell by cell against the
// evaluator (the differential test against the slow obvious model).
func TestCompileAgreesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	for i := range 60 {
		s := &policy.Set{}
		for j := range 1 + rng.IntN(3) {
			np := randomPolicy(rng, fmt.Sprintf("r%d", j))
			policy.Default(&np)
			if errs := policy.ValidateNetworkPolicy(&np); len(errs) > 0 {
				t.Fatalf("generated an invalid policy: %v", errs)
			}
			s.NetworkPolicies = append(s.NetworkPolicies, np)
		}
		c := testCluster()
		t.Run(fmt.Sprint(i), func(t *testing.T) { differ(t, s, c) })
	}
}

func randomPolicy(rng *rand.Rand, name string) networkingv1.NetworkPolicy {
	sel := func() *metav1.LabelSelector {
		switch rng.IntN(4) {
		case 0:
			return &metav1.LabelSelector{}
		case 1:
			return &metav1.LabelSelector{MatchLabels: map[string]string{"tier": []string{"web", "db"}[rng.IntN(2)]}}
		case 2:
			return &metav1.LabelSelector{MatchLabels: map[string]string{"pod": []string{"a", "b", "c"}[rng.IntN(3)]}}
		}
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "pod", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a"}}}}
	}
	nsSel := func() *metav1.LabelSelector {
		if rng.IntN(2) == 0 {
			return &metav1.LabelSelector{}
		}
		return &metav1.LabelSelector{MatchLabels: map[string]string{"team": []string{"red", "blue"}[rng.IntN(2)]}}
	}
	peers := func() []networkingv1.NetworkPolicyPeer {
		var out []networkingv1.NetworkPolicyPeer
		for range rng.IntN(3) {
			var p networkingv1.NetworkPolicyPeer
			switch rng.IntN(4) {
			case 0:
				p.PodSelector = sel()
			case 1:
				p.NamespaceSelector = nsSel()
			case 2:
				p.PodSelector, p.NamespaceSelector = sel(), nsSel()
			default:
				p.IPBlock = &networkingv1.IPBlock{CIDR: "10.1.0.0/23"}
				if rng.IntN(2) == 0 {
					p.IPBlock.Except = []string{[]string{"10.1.0.2/32", "10.1.1.0/24", "10.1.0.0/30"}[rng.IntN(3)]}
				}
			}
			out = append(out, p)
		}
		return out
	}
	ports := func() []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for range rng.IntN(3) {
			proto := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}[rng.IntN(2)]
			p := networkingv1.NetworkPolicyPort{Protocol: &proto}
			switch rng.IntN(4) {
			case 0:
				v := intstr.FromInt32(int32([]int{80, 81, 53}[rng.IntN(3)]))
				p.Port = &v
			case 1:
				v := intstr.FromInt32(80)
				end := int32(81 + rng.IntN(6300))
				p.Port, p.EndPort = &v, &end
			case 2:
				v := intstr.FromString("serve")
				p.Port = &v
			}
			out = append(out, p)
		}
		return out
	}
	np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: []string{"x", "z"}[rng.IntN(2)]}}
	np.Spec.PodSelector = *sel()
	if rng.IntN(3) > 0 {
		for range 1 + rng.IntN(2) {
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers(), Ports: ports()})
		}
	}
	if rng.IntN(2) == 0 {
		for range rng.IntN(3) {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers(), Ports: ports()})
		}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		if rng.IntN(2) == 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		}
	}
	return np
}

func TestCompileGen3SplitIdentity(t *testing.T) {
	c := testCluster()
	s, err := policy.Parse("p.yaml", []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.1.0.0/24, except: [10.1.0.2/32]}}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	ids := identities(c)
	ids["x/b"] = ids["x/a"] // one identity, either side of the except
	_, err = CompileGen3(s, c, ids)
	if err == nil || !strings.Contains(err.Error(), "x/a and x/b share identity") {
		t.Fatalf("got %v, want a compile error naming x/a and x/b", err)
	}
}

// TestCompileAgreesIPv6: the formats, the evaluator and both compilers
// take IPv6 pod addresses and ipBlocks (the datapath models do not carry
// IPv6 yet: this checks the policy layer only).
func TestCompileAgreesIPv6(t *testing.T) {
	c := testCluster()
	for i, p := range c.Pods {
		p.IP = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
	}
	s, err := policy.Parse("v6.yaml", []byte(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v6, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{ipBlock: {cidr: "2001:db8::/64", except: ["2001:db8::4/126"]}}]
  egress:
  - to: [{ipBlock: {cidr: "2001:db8::/125"}}]
    ports: [{port: 80}]
`))
	if err != nil {
		t.Fatal(err)
	}
	differ(t, s, c)
}
