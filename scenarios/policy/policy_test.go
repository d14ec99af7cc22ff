package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pod(ns, name, ip string, labels map[string]string, ports ...NamedPort) *Pod {
	return &Pod{Namespace: ns, Name: name, IP: netip.MustParseAddr(ip), Labels: labels, Ports: ports}
}

func mustParse(t *testing.T, src string) *Set {
	t.Helper()
	s, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var tcp = func(p uint16) Traffic { return Traffic{Protocol: "TCP", Port: p} }

type cell struct {
	from, to string
	t        Traffic
	want     bool
}

func check(t *testing.T, s *Set, c *Cluster, cells []cell) {
	t.Helper()
	byName := map[string]*Pod{}
	for _, p := range c.Pods {
		byName[p.String()] = p
	}
	peer := func(n string) Peer {
		if p, ok := byName[n]; ok {
			return Peer{Pod: p}
		}
		return Peer{IP: netip.MustParseAddr(n)}
	}
	for _, x := range cells {
		v := s.Evaluate(c, peer(x.from), peer(x.to), x.t)
		if v.Allowed != x.want {
			t.Errorf("%s -> %s %s: allowed %v, want %v (egress: %s; ingress: %s)", x.from, x.to, x.t, v.Allowed, x.want, v.Egress, v.Ingress)
		}
	}
}

// TestDocsTestNetworkPolicy is the documentation's test-network-policy:
// db pods accept 6379/TCP from 172.17.0.0/16 but 172.17.1.0/24, from any
// pod of a project=myproject namespace, and from role=frontend pods of
// default; they may only send 5978/TCP to 10.0.0.0/24.
func TestDocsTestNetworkPolicy(t *testing.T) {
	s, err := ReadFile(filepath.Join("testdata", "k8s-docs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Namespaces: s.Namespaces, Pods: []*Pod{
		pod("default", "db", "10.0.0.5", map[string]string{"role": "db"}),
		pod("default", "frontend", "10.0.1.5", map[string]string{"role": "frontend"}),
		pod("default", "other", "10.0.1.6", map[string]string{"role": "other"}),
		pod("myproject", "any", "10.0.2.5", map[string]string{"role": "other"}),
		pod("otherproject", "frontend", "10.0.3.5", map[string]string{"role": "frontend"}),
	}}
	check(t, s, c, []cell{
		{"default/frontend", "default/db", tcp(6379), true},
		{"default/frontend", "default/db", tcp(6380), false},
		{"default/frontend", "default/db", Traffic{Protocol: "ICMP"}, false},
		{"default/other", "default/db", tcp(6379), false},
		{"myproject/any", "default/db", tcp(6379), true},
		// podSelector alone selects in the policy's namespace only.
		{"otherproject/frontend", "default/db", tcp(6379), false},
		{"172.17.0.9", "default/db", tcp(6379), true},
		{"172.17.1.9", "default/db", tcp(6379), false}, // except
		// Egress: db is isolated; 10.0.0.0/24 on 5978 only (its own
		// address is in it: a pod is an address like any other).
		{"default/db", "10.0.0.77", tcp(5978), true},
		{"default/db", "10.0.0.77", tcp(5979), false},
		{"default/db", "default/frontend", tcp(80), false},
		// Others are not isolated for egress, frontend not for ingress.
		{"default/other", "default/frontend", tcp(80), true},
	})
}

const defaultDenyIngress = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
`

const allowAllIngress = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-ingress
spec:
  podSelector: {}
  ingress:
  - {}
  policyTypes:
  - Ingress
`

const defaultDenyEgress = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
`

const allowAllEgress = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-egress
spec:
  podSelector: {}
  egress:
  - {}
  policyTypes:
  - Egress
`

const defaultDenyAll = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
`

const endPortPolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
`

// TestDocsDefaults covers the documentation's default policies: deny or
// allow all ingress, egress, or both, in the namespace they are in.
func TestDocsDefaults(t *testing.T) {
	c := &Cluster{Pods: []*Pod{
		pod("default", "a", "10.0.0.1", map[string]string{"app": "a"}),
		pod("default", "b", "10.0.0.2", map[string]string{"app": "b"}),
		pod("other", "c", "10.0.0.3", map[string]string{"app": "c"}),
	}}
	cases := []struct {
		name, src string
		cells     []cell
	}{
		{"deny-ingress", defaultDenyIngress, []cell{
			{"default/a", "default/b", tcp(80), false},
			{"other/c", "default/a", tcp(80), false},
			{"default/a", "other/c", tcp(80), true}, // other is not selected
		}},
		{"deny-ingress+allow-all-ingress", defaultDenyIngress + "---" + allowAllIngress, []cell{
			{"default/a", "default/b", tcp(80), true},
			{"other/c", "default/a", Traffic{Protocol: "UDP", Port: 53}, true},
		}},
		{"deny-egress", defaultDenyEgress, []cell{
			{"default/a", "default/b", tcp(80), false},
			{"default/a", "other/c", Traffic{Protocol: "ICMP"}, false},
			{"other/c", "default/a", tcp(80), true},
		}},
		{"deny-egress+allow-all-egress", defaultDenyEgress + "---" + allowAllEgress, []cell{
			{"default/a", "default/b", tcp(80), true},
		}},
		{"deny-all", defaultDenyAll, []cell{
			{"default/a", "default/b", tcp(80), false},
			{"other/c", "default/a", tcp(80), false},
			{"default/a", "other/c", tcp(80), false},
			{"other/c", "other/c", tcp(80), true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check(t, mustParse(t, tc.src), c, tc.cells)
		})
	}
}

func TestDocsEndPort(t *testing.T) {
	c := &Cluster{Pods: []*Pod{pod("default", "db", "10.0.0.5", map[string]string{"role": "db"})}}
	check(t, mustParse(t, endPortPolicy), c, []cell{
		{"default/db", "10.0.0.9", tcp(31999), false},
		{"default/db", "10.0.0.9", tcp(32000), true},
		{"default/db", "10.0.0.9", tcp(32768), true},
		{"default/db", "10.0.0.9", tcp(32769), false},
		{"default/db", "10.0.1.9", tcp(32000), false},
		{"default/db", "10.0.0.9", Traffic{Protocol: "UDP", Port: 32000}, false},
	})
}

// TestDocsToFromSelectors: one peer with namespaceSelector and
// podSelector is their AND; two peers are an OR.
func TestDocsToFromSelectors(t *testing.T) {
	and := `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {user: alice}
      podSelector:
        matchLabels: {role: client}
`
	or := strings.Replace(and, "      podSelector:", "    - podSelector:", 1)
	ns := `
apiVersion: v1
kind: Namespace
metadata: {name: alice, labels: {user: alice}}
---`
	c := &Cluster{Pods: []*Pod{
		pod("default", "db", "10.0.0.5", map[string]string{"role": "db"}),
		pod("default", "client", "10.0.0.6", map[string]string{"role": "client"}),
		pod("alice", "client", "10.0.0.7", map[string]string{"role": "client"}),
		pod("alice", "web", "10.0.0.8", map[string]string{"role": "web"}),
	}}
	sAnd, sOr := mustParse(t, ns+and), mustParse(t, ns+or)
	c.Namespaces = sAnd.Namespaces
	check(t, sAnd, c, []cell{
		{"alice/client", "default/db", tcp(5432), true},
		{"alice/web", "default/db", tcp(5432), false},
		{"default/client", "default/db", tcp(5432), false},
	})
	check(t, sOr, c, []cell{
		{"alice/client", "default/db", tcp(5432), true},
		{"alice/web", "default/db", tcp(5432), true},
		{"default/client", "default/db", tcp(5432), true},
	})
	// Targeting a namespace by name: kubernetes.io/metadata.name.
	byName := strings.Replace(and, "{user: alice}", "{kubernetes.io/metadata.name: alice}", 1)
	check(t, mustParse(t, byName), &Cluster{Pods: c.Pods}, []cell{
		{"alice/client", "default/db", tcp(5432), true},
		{"default/client", "default/db", tcp(5432), false},
	})
}

// TestEdgeCases: what trips implementations (Cyclonus' list).
func TestEdgeCases(t *testing.T) {
	c := &Cluster{Pods: []*Pod{
		pod("x", "a", "10.1.0.1", map[string]string{"pod": "a"}, NamedPort{"serve", 80, "TCP"}),
		pod("x", "b", "10.1.0.2", map[string]string{"pod": "b"}, NamedPort{"serve", 81, "TCP"}),
		pod("z", "a", "10.1.0.3", map[string]string{"pod": "a"}, NamedPort{"serve", 80, "UDP"}),
	}}
	t.Run("egress-to-other-namespace", func(t *testing.T) {
		s := mustParse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
`)
		check(t, s, c, []cell{
			{"x/a", "z/a", tcp(80), true},
			{"x/a", "x/b", tcp(80), false},
			{"x/b", "x/a", tcp(80), true},
		})
	})
	t.Run("except-inside-ipblock", func(t *testing.T) {
		s := mustParse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: i, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - ipBlock: {cidr: 10.1.0.0/24, except: [10.1.0.2/32]}
`)
		check(t, s, c, []cell{
			{"x/b", "x/a", tcp(80), false},
			{"z/a", "x/a", tcp(80), true},
		})
	})
	t.Run("named-port-per-pod", func(t *testing.T) {
		s := mustParse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: n, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: serve}]
`)
		check(t, s, c, []cell{
			{"z/a", "x/a", tcp(80), true},
			{"z/a", "x/a", tcp(81), false},
			{"z/a", "x/b", tcp(81), true},
			{"z/a", "x/b", tcp(80), false},
		})
	})
	t.Run("selects-no-pod", func(t *testing.T) {
		s := mustParse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: none, namespace: x}
spec:
  podSelector: {matchLabels: {pod: nobody}}
  policyTypes: [Ingress, Egress]
`)
		check(t, s, c, []cell{{"x/a", "x/b", tcp(80), true}, {"z/a", "x/a", tcp(1), true}})
	})
	t.Run("policies-only-add", func(t *testing.T) {
		one := `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: one, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 80}]
`
		two := strings.NewReplacer("name: one", "name: two", "port: 80", "port: 81", "{pod: b}", "{pod: a}").Replace(one)
		s := mustParse(t, one+"---"+two)
		check(t, s, c, []cell{
			{"x/b", "x/a", tcp(80), true},
			{"x/b", "x/a", tcp(81), false},
			{"x/a", "x/a", tcp(81), true},
			{"x/a", "x/a", tcp(80), false},
		})
	})
}

// TestRejects: what the API server rejects, with its reason, naming the
// document and the field.
func TestRejects(t *testing.T) {
	head := "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n"
	cases := []struct{ name, src, want string }{
		{"endPort-below-port", head + "  egress: [{ports: [{port: 80, endPort: 79}]}]\n",
			"spec.egress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"},
		{"endPort-named", head + "  ingress: [{ports: [{port: http, endPort: 90}]}]\n",
			"spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"},
		{"endPort-alone", head + "  ingress: [{ports: [{endPort: 90}]}]\n",
			"spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"},
		{"protocol", head + "  ingress: [{ports: [{protocol: ICMP}]}]\n",
			`spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`},
		{"port-range", head + "  ingress: [{ports: [{port: 70000}]}]\n",
			"spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"empty-peer", head + "  ingress: [{from: [{}]}]\n",
			"spec.ingress[0].from[0]: Required value: must specify a peer"},
		{"ipblock-and-pods", head + "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n",
			"spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"},
		{"except-outside", head + "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]\n",
			"spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`"},
		{"except-equal", head + "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]\n",
			"must be a strict subset of `cidr`"},
		{"policy-type", head + "  policyTypes: [Inbound]\n",
			`spec.policyTypes[0]: Unsupported value: "Inbound": supported values: "Ingress", "Egress"`},
		{"selector-operator", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}\n",
			`spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator`},
		{"name", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Bad_Name}\nspec: {podSelector: {}}\n",
			`metadata.name: Invalid value: "Bad_Name"`},
		{"unknown-field", head + "  ingres: []\n", `unknown field "spec.ingres"`},
		{"kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", `kind "Pod" of apiVersion "v1": not supported yet`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\n" + tc.src
			_, err := Parse("netpol.yaml", []byte(src))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "netpol.yaml: document 2") {
				t.Errorf("error %q\nwant it to name document 2 and say %q", err, tc.want)
			}
		})
	}
}

func TestCilium(t *testing.T) {
	s := mustParse(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: x}
spec:
  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {"k8s:pod": b}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": z}}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {pod: b}}]
    toPorts: [{ports: [{port: "8080", endPort: 8090}]}]
  egress:
  - toEntities: [cluster]
    toPorts: [{ports: [{port: serve, protocol: TCP}]}]
`)
	c := &Cluster{Pods: []*Pod{
		pod("x", "a", "10.1.0.1", map[string]string{"pod": "a"}, NamedPort{"serve", 80, "TCP"}),
		pod("x", "b", "10.1.0.2", map[string]string{"pod": "b"}, NamedPort{"serve", 81, "TCP"}),
		pod("z", "b", "10.1.0.3", map[string]string{"pod": "b"}, NamedPort{"serve", 80, "UDP"}),
	}}
	check(t, s, c, []cell{
		{"x/b", "x/a", tcp(80), true},
		{"x/b", "x/a", tcp(81), false},
		{"z/b", "x/a", tcp(81), true}, // namespace z, any port
		{"x/b", "x/a", Traffic{Protocol: "UDP", Port: 8085}, false},
		{"x/a", "x/b", tcp(81), true},  // egress to the named port of b
		{"x/a", "x/b", tcp(80), false}, // not b's serve
		{"x/a", "203.0.113.1", tcp(81), false},
	})
	deny := mustParse(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: d, namespace: x}
spec:
  endpointSelector: {}
  ingress: [{fromEntities: [all]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {pod: b}}]
    toPorts: [{ports: [{port: "8080", endPort: 8090}]}]
`)
	check(t, deny, c, []cell{
		{"x/b", "x/a", tcp(8085), false}, // deny wins
		{"x/b", "x/a", tcp(8091), true},
		{"z/b", "x/a", tcp(8085), true}, // the deny's fromEndpoints is confined to x
	})
}

// TestCiliumCIDR: fromCIDR/toCIDR and fromCIDRSet/toCIDRSet select
// addresses outside the cluster, less a set's excepts, and never a pod
// whose address lies in the CIDR (Cilium's "CIDR rules do not apply to
// traffic where both sides are managed by Cilium").
func TestCiliumCIDR(t *testing.T) {
	s := mustParse(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: x}
spec:
  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromCIDR: [10.0.0.0/8, 192.0.2.7]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - fromCIDRSet: [{cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}]
  egress:
  - toCIDRSet: [{cidr: 198.51.100.0/24, except: [198.51.100.128/25]}]
    toPorts: [{ports: [{port: "443"}]}]
`)
	c := &Cluster{Pods: []*Pod{
		pod("x", "a", "10.1.0.1", map[string]string{"pod": "a"}),
		pod("x", "b", "10.1.0.2", map[string]string{"pod": "b"}),
	}}
	check(t, s, c, []cell{
		{"10.9.9.9", "x/a", tcp(80), true},
		{"10.9.9.9", "x/a", tcp(81), false},
		{"192.0.2.7", "x/a", tcp(80), true}, // a bare address is its /32
		{"192.0.2.8", "x/a", tcp(80), false},
		{"x/b", "x/a", tcp(80), false}, // a pod in 10.0.0.0/8 is not selected
		{"2001:db8:2::1", "x/a", tcp(22), true},
		{"2001:db8:1::1", "x/a", tcp(22), false}, // except
		{"x/a", "198.51.100.9", tcp(443), true},
		{"x/a", "198.51.100.200", tcp(443), false}, // except
		{"x/a", "198.51.100.9", tcp(80), false},
		{"x/a", "x/b", tcp(443), false}, // egress isolated, no pod peer
	})
	head := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspec:\n  endpointSelector: {}\n"
	for _, tc := range []struct{ src, want string }{
		{head + "  ingress: [{fromCIDR: [10.0.0.0/33]}]\n", `spec.ingress[0].fromCIDR[0]: invalid: Invalid value: "10.0.0.0/33"`},
		{head + "  egress: [{toCIDR: [nope]}]\n", `spec.egress[0].toCIDR[0]: invalid: Invalid value: "nope"`},
		{head + "  egress: [{toCIDRSet: [{cidr: 10.0.0.0/16, except: [10.1.0.0/24]}]}]\n", `spec.egress[0].toCIDRSet[0].except[0]: invalid: Invalid value: "10.1.0.0/24": must lie inside cidr 10.0.0.0/16`},
		{head + "  ingress: [{fromCIDRSet: [{except: [10.1.0.0/24]}]}]\n", `spec.ingress[0].fromCIDRSet[0].cidr: invalid: Required value`},
	} {
		_, err := Parse("cnp.yaml", []byte(tc.src))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestCiliumUnsupported(t *testing.T) {
	head := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspec:\n  endpointSelector: {}\n"
	for _, tc := range []struct{ src, want string }{
		{head + "  ingress: [{fromRequires: [{matchLabels: {a: b}}]}]\n", "spec.ingress[0].fromRequires: not supported yet"},
		{head + "  egress: [{toCIDRSet: [{cidrGroupRef: g}]}]\n", "spec.egress[0].toCIDRSet[0].cidrGroupRef: not supported yet"},
		{head + "  egress: [{toFQDNs: [{matchName: x}]}]\n", "spec.egress[0].toFQDNs: not supported yet"},
		{head + "  ingress: [{toPorts: [{ports: [{port: \"80\"}], rules: {http: []}}]}]\n", "spec.ingress[0].toPorts[0].rules: not supported yet"},
		{head + "  ingress: [{fromEntities: [host]}]\n", `spec.ingress[0].fromEntities[0]: entity "host": not supported yet`},
		{head + "  ingress: [{icmps: [{fields: []}]}]\n", "spec.ingress[0].icmps: not supported yet"},
		{"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspecs: []\n", "specs: not supported yet"},
	} {
		_, err := Parse("cnp.yaml", []byte(tc.src))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cnp.yaml: document 1") {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestMergeRemove(t *testing.T) {
	a := mustParse(t, defaultDenyIngress+"---"+defaultDenyEgress)
	b := mustParse(t, allowAllIngress)
	m := Merge(a, b)
	if got := strings.Join(m.Keys(), ","); got != "NetworkPolicy default/default-deny-ingress,NetworkPolicy default/default-deny-egress,NetworkPolicy default/allow-all-ingress" {
		t.Fatalf("merged %s", got)
	}
	r, err := Remove(m, mustParse(t, defaultDenyEgress))
	if err != nil || r.Len() != 2 {
		t.Fatalf("remove: %v, %d left", err, r.Len())
	}
	if _, err := Remove(r, mustParse(t, defaultDenyEgress)); err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("removing twice: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{defaultDenyIngress, allowAllIngress, endPortPolicy, defaultDenyAll + "---\n" + allowAllEgress} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "k8s-docs.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		c := &Cluster{Namespaces: s.Namespaces, Pods: []*Pod{pod("default", "a", "10.0.0.1", map[string]string{"a": "b"})}}
		s.Evaluate(c, Peer{Pod: c.Pods[0]}, Peer{Pod: c.Pods[0]}, tcp(80))
	})
}
