package policycompile

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/scenarios/policy"
)

// cidrIdentity is the ipcache's answer for an address outside the pods,
// by a scan of every CIDR identity for the longest prefix holding it:
// that prefix's identity, else world.
func cidrIdentity(g *Gen3, a netip.Addr) ebpf.Identity {
	id, best := ebpf.IdentityWorld, -1
	for p, i := range g.CIDRs {
		if p.Contains(a) && p.Bits() > best {
			id, best = i, p.Bits()
		}
	}
	return id
}

// TestCompileGen3CIDRIdentities is a truth table of ipBlocks with IPv4
// and IPv6 CIDRs and excepts, nested and overlapping across policies:
// every pod against every outside address of both families, both ways,
// on every traffic, compiled for gen 3 into CIDR identities and
// policy-map entries, must agree with the evaluator written from the
// Kubernetes semantics.
func TestCompileGen3CIDRIdentities(t *testing.T) {
	c := testCluster()
	s, err := policy.Parse("cidr.yaml", []byte(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-out, namespace: x}
spec:
  podSelector: {matchLabels: {tier: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}}, {ipBlock: {cidr: "2001:db8:100::/48", except: ["2001:db8:100:1::/64"]}}]
    ports: [{port: 443}]
  - to: [{ipBlock: {cidr: "2001:db8:100:1::/64"}}]
    ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-out, namespace: x}
spec:
  podSelector: {matchLabels: {tier: db}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.168.1.0/24, except: [192.168.1.128/25]}}, {ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:100::/48"]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: "fd99::/64", except: ["fd99::8/125"]}}, {ipBlock: {cidr: 172.20.0.0/14}}]
    ports: [{port: 5978}]
`))
	if err != nil {
		t.Fatal(err)
	}
	outside := []string{
		"192.168.0.9", "192.168.1.9", "192.168.1.200", "192.169.0.1", "172.21.3.4", "172.24.0.1", "8.8.8.8",
		"2001:db8:100::9", "2001:db8:100:1::9", "2001:db8:100:2::9", "2001:db8:7::1", "2001:db9::1",
		"fd99::1", "fd99::9", "fd99:0:0:1::1",
	}
	ids := identities(c)
	g, err := CompileGen3(s, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	var has4, has6 bool
	for p, id := range g.CIDRs {
		has4, has6 = has4 || p.Addr().Is4(), has6 || p.Addr().Is6()
		if !id.IsCIDR() {
			t.Errorf("%v has identity %d, not a CIDR identity", p, id)
		}
	}
	if !has4 || !has6 {
		t.Fatalf("CIDR identities %v: want IPv4 and IPv6 prefixes", g.CIDRs)
	}
	cells, allowed := outsideAgrees(t, s, c, g, ids, outside)
	if allowed == 0 || allowed == cells {
		t.Errorf("%d of %d cells allowed: the table should hold both verdicts", allowed, cells)
	}
}

// outsideAgrees checks g, compiled from s over c, for every pod against
// every address of outside, both ways, on every traffic, against the
// evaluator; it returns how many cells it checked and how many the
// evaluator allows.
func outsideAgrees(t *testing.T, s *policy.Set, c *policy.Cluster, g *Gen3, ids map[string]ebpf.Identity, outside []string) (cells, allowed int) {
	t.Helper()
	m := ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy", MaxEntries: ebpf.MaxPolicy})
	if _, err := ebpf.Install(m, ebpf.CompileRules(g.Rules, g.Enforced, g.EgressEnforced)); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, pod := range c.Pods {
		for _, o := range outside {
			a := netip.MustParseAddr(o)
			ext := cidrIdentity(g, a)
			for _, tr := range traffics {
				proto := protoOf[tr.Protocol]
				// The pod to the address: its node's egress check only.
				out := true
				if src := ids[pod.String()]; g.EgressEnforced[src] {
					_, e, ok := ebpf.EgressLookup(m, src, ext, proto, tr.Port)
					out = ok && e.Action == ebpf.PolicyAllow
				}
				// The address to the pod: the pod's ingress check.
				in := !g.Enforced[ids[pod.String()]]
				if _, e, ok := ebpf.PolicyLookup(m, ext, ids[pod.String()], proto, tr.Port); ok {
					in = e.Action == ebpf.PolicyAllow
				}
				for _, cell := range []struct {
					name     string
					got      bool
					src, dst policy.Peer
				}{
					{pod.String() + " -> " + o, out, policy.Peer{Pod: pod}, policy.Peer{IP: a}},
					{o + " -> " + pod.String(), in, policy.Peer{IP: a}, policy.Peer{Pod: pod}},
				} {
					cells++
					want := s.Evaluate(c, cell.src, cell.dst, tr)
					if want.Allowed {
						allowed++
					}
					if cell.got != want.Allowed && bad < 10 {
						bad++
						t.Errorf("%s %s: gen 3 allows %v (identity %d), want %v (egress: %s; ingress: %s)", cell.name, tr, cell.got, ext, want.Allowed, want.Egress, want.Ingress)
					}
				}
			}
		}
	}
	return cells, allowed
}

// TestCompileCiliumCIDR: a CiliumNetworkPolicy's CIDR rules compiled for
// gen 3 admit the outside addresses of their blocks by CIDR identity and
// no pod, even one whose address a block holds (10.0.0.0/8 holds every
// pod of the test cluster): every pod pair and every outside address
// agree with the evaluator. Gen 1 cannot express "the block but not its
// pods" and refuses such a rule naming the pod; a block that holds no
// pod compiles for gen 1 and agrees too.
func TestCompileCiliumCIDR(t *testing.T) {
	c := testCluster()
	cnp := func(ingress, egress string) *policy.Set {
		s, err := policy.Parse("cidr.yaml", []byte(`
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: x}
spec:
  endpointSelector: {matchLabels: {tier: web}}
  ingress:
  - fromCIDRSet: [{cidr: `+ingress+`}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {pod: c}}]
  egress:
  - toCIDR: [`+egress+`]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := cnp(`10.0.0.0/8, except: [10.9.0.0/16]`, `"2001:db8::/32", 10.1.0.0/16`)
	ids := identities(c)
	g, err := CompileGen3(s, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	cells, allowed := outsideAgrees(t, s, c, g, ids, []string{"10.2.0.1", "10.9.0.1", "10.1.0.200", "192.0.2.1", "2001:db8::1", "2001:db9::1"})
	if allowed == 0 || allowed == cells {
		t.Errorf("%d of %d outside cells allowed: the table should hold both verdicts", allowed, cells)
	}
	m := ebpf.NewHashMap[ebpf.PolicyKey, ebpf.PolicyEntry](ebpf.MapSpec{Name: "policy", MaxEntries: ebpf.MaxPolicy})
	if _, err := ebpf.Install(m, ebpf.CompileRules(g.Rules, g.Enforced, g.EgressEnforced)); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Pods {
		for _, b := range c.Pods {
			for _, tr := range traffics {
				want := s.Evaluate(c, policy.Peer{Pod: a}, policy.Peer{Pod: b}, tr)
				if got := gen3Allows(m, g, ids[a.String()], ids[b.String()], tr); got != want.Allowed {
					t.Errorf("gen 3: %s -> %s %s: allowed %v, want %v (egress: %s; ingress: %s)", a, b, tr, got, want.Allowed, want.Egress, want.Ingress)
				}
			}
		}
	}
	_, err = CompileGen1(s, c)
	if err == nil || !errors.Is(err, ErrNoHostPolicy) || !strings.Contains(err.Error(), "CIDR 10.0.0.0/8 except 10.9.0.0/16 holds pod") {
		t.Errorf("gen 1 compile of a CIDR rule that holds pods: %v", err)
	}
	differ(t, cnp(`192.0.2.0/24, except: [192.0.2.128/25]`, `198.51.100.0/24`), c)
}
