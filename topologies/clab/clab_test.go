package clab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/topologies"
)

// built returns topologies from every builder, with defaults and without.
func built(t testing.TB) map[string]*topologies.Topology {
	t.Helper()
	out := map[string]*topologies.Topology{}
	must := func(name string, topo *topologies.Topology, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = topo
	}
	tt, err := topologies.ThreeTier(topologies.ThreeTierParams{})
	must("three-tier", tt, err)
	tt2, err := topologies.ThreeTier(topologies.ThreeTierParams{Pods: 2, RacksPerPod: 2, HostsPerRack: 3, Firewalls: 2})
	must("three-tier-2pods", tt2, err)
	sl, err := topologies.SpineLeaf(topologies.SpineLeafParams{})
	must("spine-leaf", sl, err)
	sld, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 4, Leaves: 8, HostsPerLeaf: 2, DualHomed: true, Kind: "nokia_srlinux", Image: "ghcr.io/nokia/srlinux"})
	must("spine-leaf-dual-srl", sld, err)
	maz, err := topologies.MultiAZ(topologies.MultiAZParams{AZs: 3})
	must("multi-az", maz, err)
	empty := ""
	sl.Prefix = &empty
	lab := topologies.PrefixLabName
	maz.Prefix = &lab
	return out
}

// foreign lists the hand-written and generated containerlab files in testdata.
func foreign(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.clab.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata files: %v", err)
	}
	return files
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("schema/clab.schema.json")
	if err != nil {
		t.Fatalf("compile containerlab schema: %v", err)
	}
	return sch
}

// asJSON converts YAML to the JSON data model the validator expects.
func asJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestWriteValidatesAgainstSchema(t *testing.T) {
	sch := compileSchema(t)
	check := func(t *testing.T, topo *topologies.Topology) {
		b, err := Write(topo)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(asJSON(t, b)); err != nil {
			t.Fatalf("written file does not validate against the containerlab schema:\n%v\n%s", err, b)
		}
	}
	for name, topo := range built(t) {
		t.Run(name, func(t *testing.T) { check(t, topo) })
	}
	for _, f := range foreign(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			topo, _, err := Read(f, data)
			if err != nil {
				t.Fatal(err)
			}
			check(t, topo)
		})
	}
	// The shipped examples, as they are on disk.
	examples, _ := filepath.Glob("../examples/*.clab.yml")
	if len(examples) < 3 {
		t.Fatalf("found %d shipped examples, want at least 3", len(examples))
	}
	for _, f := range examples {
		t.Run("examples/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(asJSON(t, data)); err != nil {
				t.Fatalf("%s does not validate against the containerlab schema:\n%v", f, err)
			}
		})
	}
}

// TestSchemaCatchesBadFiles makes sure the schema check above can fail.
func TestSchemaCatchesBadFiles(t *testing.T) {
	sch := compileSchema(t)
	for _, bad := range []string{
		"name: x\ntopology:\n  nodes:\n    a: {kind: linux, colour: red}\n",
		"name: x\n",
		"name: x\ntopology:\n  nodes: {a: {kind: nosuchkind}}\n",
		"name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - endpoints: [\"a-eth1\", \"b:eth1\"]\n",
	} {
		if err := sch.Validate(asJSON(t, []byte(bad))); err == nil {
			t.Errorf("schema accepted %q", bad)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	stable := func(t *testing.T, first []byte) *topologies.Topology {
		t.Helper()
		topo, rep, err := Read("first.clab.yml", first)
		if err != nil {
			t.Fatalf("read back: %v\n%s", err, first)
		}
		if len(rep.Inferred) > 0 || len(rep.Unresolved) > 0 {
			t.Errorf("reading netbed's own file inferred something:\n%s", rep)
		}
		second, err := Write(topo)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Errorf("write, read, write is not byte-stable:\n--- first\n%s\n--- second\n%s", first, second)
		}
		return topo
	}
	for name, topo := range built(t) {
		t.Run(name, func(t *testing.T) {
			b, err := Write(topo)
			if err != nil {
				t.Fatal(err)
			}
			back := stable(t, b)
			if !reflect.DeepEqual(topo, back) {
				t.Errorf("read(write(t)) differs from t:\n%+v\n%+v", topo, back)
			}
		})
	}
	for _, f := range foreign(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			topo, _, err := Read(f, data)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Write(topo)
			if err != nil {
				t.Fatal(err)
			}
			back := stable(t, b)
			if !reflect.DeepEqual(topo, back) {
				t.Errorf("imported topology changed on write/read")
			}
		})
	}
}

func TestImport(t *testing.T) {
	type want struct {
		roles    map[string]topologies.Role
		prefix   string // LabPrefix
		links    int
		ifaces   map[string][]string // node -> interfaces in link order
		azs      map[string]string
		inferred []string // substrings of the report
		valid    bool
	}
	cases := map[string]want{
		"generated-srl-3tier.clab.yml": {
			roles:  map[string]topologies.Role{"node1-1": "leaf", "node1-4": "leaf", "node2-1": "spine", "node2-2": "spine", "node3-1": "spine"},
			prefix: "clab-3tier-", links: 4*2 + 2*1,
			ifaces: map[string][]string{"node1-1": {"e1-1", "e1-2"}, "node2-1": {"e1-1", "e1-2", "e1-3", "e1-4", "e1-5"}, "node3-1": {"e1-1", "e1-2"}},
			inferred: []string{"node1-1: role leaf (from group tier-1", "node3-1: role spine (from group tier-3: super-spine", "node2-2: role spine (from group tier-2",
				"note ignored: debug", "unused node field type on 7 nodes (node1-1 ... node3-1): kept, and written back on export; netbed does not use it"},
			valid: true,
		},
		"generated-linux-2tier.clab.yml": {
			roles:  map[string]topologies.Role{"node1-1": "leaf", "node1-3": "leaf", "node2-1": "spine", "node2-2": "spine"},
			prefix: "clab-clos-", links: 8,
			ifaces:   map[string][]string{"node1-2": {"eth1", "eth2"}, "node2-2": {"eth1", "eth2", "eth3", "eth4"}},
			inferred: []string{"node1-1: role leaf (from group tier-1", "note ignored: debug"},
			valid:    true,
		},
		"generated-srl-2tier.clab.yml": {
			roles:  map[string]topologies.Role{"node1-1": "leaf", "node1-4": "leaf", "node2-1": "spine", "node2-2": "spine"},
			prefix: "clab-clos-", links: 8,
			ifaces:   map[string][]string{"node1-4": {"e1-1", "e1-2"}, "node2-1": {"e1-1", "e1-2", "e1-3", "e1-4"}},
			inferred: []string{"node2-2: role spine (from group tier-2", "note ignored: debug"},
			valid:    true,
		},
		"nos-srl-ceos.clab.yml": {
			roles:  map[string]topologies.Role{"dc1-leaf1": "leaf", "dc1-leaf2": "leaf", "dc1-spine1": "spine", "dc1-spine2": "spine", "client1": "host", "client2": "host"},
			prefix: "evpn-dc-", links: 6,
			ifaces: map[string][]string{"dc1-leaf1": {"e1-49", "e1-50", "e1-1"}, "dc1-spine1": {"eth1", "eth2"}, "dc1-spine2": {"eth1", "eth2"}},
			inferred: []string{`dc1-leaf1: role leaf (from name, word "leaf")`, `client1: role host (from name, word "client")`,
				"interface ethernet-1/49 is a nokia_srlinux alias; using its Linux name e1-49", "interface Ethernet2 is a arista_ceos alias; using its Linux name eth2",
				"link type host"},
			valid: true,
		},
		"nos-anonymous.clab.yml": {
			roles:  map[string]topologies.Role{"r1": "leaf", "r2": "leaf", "r3": "spine", "r4": "spine", "c1": "host", "c2": "host", "c3": "host"},
			prefix: "clab-anon-", links: 8,
			inferred: []string{"c2: role host (from shape", "r1: role leaf (from shape: links to 2 host(s))", "r3: role spine (from shape: links only to leaves"},
			valid:    true,
		},
		"legacy-three-tier.clab.yml": {
			roles: map[string]topologies.Role{"core-a": "core", "core-b": "core", "fw": "firewall", "agg-a": "aggregation", "agg-b": "aggregation",
				"sw1": "tor", "sw2": "tor", "srv1": "host", "srv2": "host"},
			prefix: "clab-legacy-dc-", links: 15,
			inferred: []string{`fw: role firewall (from name, word "fw")`, "sw1: role tor (from shape: links to 2 host(s) and to aggregation)",
				`srv2: role host (from name, word "srv")`},
			valid: true,
		},
		"groups-labels.clab.yml": {
			roles:  map[string]topologies.Role{"s1": "spine", "s2": "spine", "t1": "leaf", "t2": "leaf", "web1": "host", "db1": "host"},
			prefix: "lab-grouped-", links: 6,
			azs:      map[string]string{"s1": "az-east", "t1": ""},
			inferred: []string{`t1: role leaf (from group leaves, word "leaves")`, `web1: role host (from group servers`},
			valid:    true,
		},
	}
	for _, f := range foreign(t) {
		base := filepath.Base(f)
		w, ok := cases[base]
		if !ok {
			t.Errorf("testdata file %s has no expectations in TestImport", base)
			continue
		}
		t.Run(base, func(t *testing.T) {
			topo, rep, err := Load(f)
			if (err == nil) != w.valid {
				t.Fatalf("Load: %v (want valid=%v)\n%s", err, w.valid, rep)
			}
			for n, r := range w.roles {
				if got := topo.Node(n); got == nil || got.Role != r {
					t.Errorf("node %s: got %+v, want role %s", n, got, r)
				}
			}
			for _, n := range topo.Nodes {
				if _, ok := w.roles[n.Name]; !ok && !strings.HasPrefix(n.Name, "node1-") {
					t.Errorf("node %s (role %s) not covered by the test", n.Name, n.Role)
				}
			}
			if got := topo.LabPrefix(); got != w.prefix {
				t.Errorf("lab prefix %q, want %q", got, w.prefix)
			}
			if len(topo.Links) != w.links {
				t.Errorf("%d links, want %d", len(topo.Links), w.links)
			}
			for n, ifs := range w.ifaces {
				if got := topo.Interfaces(n); !slices.Equal(got, ifs) {
					t.Errorf("node %s interfaces %v, want %v", n, got, ifs)
				}
			}
			for n, az := range w.azs {
				if got := topo.Node(n).AZ; got != az {
					t.Errorf("node %s AZ %q, want %q", n, got, az)
				}
			}
			report := rep.String()
			for _, s := range w.inferred {
				if !strings.Contains(report, s) {
					t.Errorf("report lacks %q:\n%s", s, report)
				}
			}
			if len(rep.Unresolved) > 0 {
				t.Errorf("unresolved nodes: %v", rep.Unresolved)
			}
		})
	}
}

func TestImportDetails(t *testing.T) {
	topo, _, err := Load("testdata/nos-srl-ceos.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	leaf := topo.Node("dc1-leaf1")
	if leaf.Kind != "nokia_srlinux" || leaf.Image != "ghcr.io/nokia/srlinux:24.10.1" {
		t.Errorf("leaf kind/image from kinds: got %q %q", leaf.Kind, leaf.Image)
	}
	if sp := topo.Node("dc1-spine1"); sp.Labels["graph-level"] != "1" || sp.Image != "ceos:4.32.0F" {
		t.Errorf("spine1 labels %v image %q", sp.Labels, sp.Image)
	}
	_, l, ok := topo.Peer(topologies.Endpoint{Node: "dc1-leaf2", Iface: "e1-50"})
	if !ok || l.MTU != 9100 || l.Rate != topologies.Rate100G || l.B != (topologies.Endpoint{Node: "dc1-spine2", Iface: "eth2"}) {
		t.Errorf("extended link: %+v", l)
	}
	// Fields netbed does not model are carried, resolved as containerlab does.
	wantExtra := map[string]map[string]any{
		"dc1-leaf1":  {"env": map[string]any{"TZ": "UTC"}, "type": "ixrd3l", "startup-config": "configs/leaf1.cfg", "mgmt-ipv4": "172.80.80.11"},
		"dc1-spine2": {"env": map[string]any{"TZ": "UTC"}},
		"client2":    {"env": map[string]any{"TZ": "UTC"}, "binds": []any{"configs/client2.sh:/client.sh"}},
	}
	for n, want := range wantExtra {
		if got := topo.Node(n).Extra; !reflect.DeepEqual(got, want) {
			t.Errorf("%s extra fields %v, want %v", n, got, want)
		}
	}
	if m, ok := topo.Extra["mgmt"].(map[string]any); !ok || m["ipv4-subnet"] != "172.80.80.0/24" {
		t.Errorf("mgmt not carried: %v", topo.Extra)
	}
	g, _, err := Load("testdata/groups-labels.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	if w := g.Node("web1"); w.Image != "ghcr.io/hellt/network-multitool" || w.Kind != "linux" {
		t.Errorf("web1 from group template and defaults: %+v", w)
	}
	if t2 := g.Node("t2"); t2.Rack != "r2" || t2.Labels["owner"] != "netops" || len(t2.Labels) != 1 {
		t.Errorf("t2 rack %q labels %v", t2.Rack, t2.Labels)
	}
	_, l, _ = g.Peer(topologies.Endpoint{Node: "web1", Iface: "eth1"})
	if l.Rate != topologies.Rate25G || l.Delay.Microseconds() != 50 {
		t.Errorf("web1 link rate %d delay %v", l.Rate, l.Delay)
	}
}

func TestReadErrors(t *testing.T) {
	const file = "spine-leaf.clab.yml"
	cases := []struct {
		name  string
		yaml  string
		class error
		want  string // exact error text, or a substring when it starts with "~"
	}{
		{"undefined node", `name: sl
topology:
  nodes:
    leaf1: {kind: linux}
    spine1: {kind: linux}
  links:
    - endpoints: ["leaf1:eth1", "spine1:eth1"]
    - endpoints: ["leaf1:eth2", "leaf9:eth1"]
`, ErrUndefinedNode, `spine-leaf.clab.yml:8: topology.links[1].endpoints[1]: node "leaf9" is not defined; add it under topology.nodes or fix the endpoint`},
		{"unknown node field", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      imgae: alpine\n",
			ErrUnknownField, `spine-leaf.clab.yml:6: topology.nodes.a.imgae: unknown field "imgae"; did you mean "image"?`},
		{"unknown top field", "name: x\ntopolgy:\n  nodes: {a: {kind: linux}}\n", ErrUnknownField, `~:2: topolgy: unknown field "topolgy"`},
		{"unknown link field", "name: x\ntopology:\n  nodes: {a: {kind: linux}, b: {kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      speed: 10G\n",
			ErrUnknownField, `~:6: topology.links[0].speed: unknown field`},
		{"unknown endpoint field", "name: x\ntopology:\n  nodes: {a: {kind: linux}, b: {kind: linux}}\n  links:\n    - type: veth\n      endpoints:\n        - {node: a, interface: eth1, port: 3}\n        - {node: b, interface: eth1}\n",
			ErrUnknownField, `~:7: topology.links[0].endpoints[0].port`},
		{"bad endpoint", "name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - endpoints: [a-eth1, a:eth2]\n",
			ErrInvalid, `~:5: topology.links[0].endpoints[0]: endpoint "a-eth1": want "node:interface"`},
		{"three endpoints", "name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - endpoints: [a:eth1, a:eth2, a:eth3]\n",
			ErrInvalid, `~topology.links[0].endpoints: want exactly two endpoints, got 3`},
		{"bad role label", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      labels:\n        netbed.role: router\n",
			ErrInvalid, `~:7: topology.nodes.a.labels.netbed.role: unknown role "router"`},
		{"bad rate", "name: x\ntopology:\n  nodes: {a: {kind: linux}, b: {kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      vars: {netbed.rate: fast}\n",
			ErrInvalid, `~:6: topology.links[0].vars.netbed.rate: rate "fast"`},
		{"bad mtu", "name: x\ntopology:\n  nodes: {a: {kind: linux}, b: {kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      mtu: big\n",
			ErrInvalid, `~:6: topology.links[0].mtu`},
		{"no kind", "name: x\ntopology:\n  nodes:\n    a:\n", ErrInvalid, `~:4: topology.nodes.a: node "a" has no kind`},
		{"duplicate key", "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    a: {kind: linux}\n", ErrSyntax, `~:5: topology.nodes.a: "a" is set twice`},
		{"yaml syntax", "name: x\ntopology:\n  nodes: [\n", ErrSyntax, `~spine-leaf.clab.yml:3: `},
		{"empty", "", ErrSyntax, `~the file is empty`},
		{"no name", "topology:\n  nodes: {a: {kind: linux}}\n", ErrInvalid, `~the lab has no name`},
		{"no topology", "name: x\n", ErrInvalid, `~no topology section`},
		{"not a mapping", "- a\n- b\n", ErrSyntax, `~want a mapping`},
		{"node name with colon", "name: x\ntopology:\n  nodes:\n    \"a:b\": {kind: linux}\n", ErrInvalid, `~:4: topology.nodes.a:b: node name "a:b"`},
		{"unknown link type", "name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - type: wormhole\n      endpoint: {node: a, interface: eth1}\n",
			ErrInvalid, `~unknown link type "wormhole"`},
		{"no endpoints", "name: x\ntopology:\n  nodes: {a: {kind: linux}}\n  links:\n    - mtu: 1500\n", ErrInvalid, `~the link has no endpoints`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, rep, err := Read(file, []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error; got %v, report %v", topo, rep)
			}
			if topo != nil {
				t.Errorf("a topology came back with the error")
			}
			if !errors.Is(err, c.class) {
				t.Errorf("error %q is not %v", err, c.class)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != file {
				t.Errorf("error %q is not a *ParseError naming the file", err)
			}
			got := err.Error()
			if sub, ok := strings.CutPrefix(c.want, "~"); ok {
				if !strings.Contains(got, sub) {
					t.Errorf("error\n  %s\ndoes not contain\n  %s", got, sub)
				}
			} else if got != c.want {
				t.Errorf("error\n  %s\nwant\n  %s", got, c.want)
			}
		})
	}
}

func TestReadReportsSeveralErrors(t *testing.T) {
	src := "name: x\ntopology:\n  nodes:\n    a: {kind: linux, colour: red}\n    b: {kind: linux, size: 3}\n"
	_, _, err := Read("f.yml", []byte(src))
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 2 {
		t.Fatalf("want two joined errors, got %v", err)
	}
}

func TestPrefix(t *testing.T) {
	cases := []struct {
		line string
		want *string
		lab  string
	}{
		{"", nil, "clab-p-"},
		{"prefix: null\n", nil, "clab-p-"},
		{"prefix: ~\n", nil, "clab-p-"},
		{"prefix: \"\"\n", ptr(""), ""},
		{"prefix: __lab-name\n", ptr("__lab-name"), "p-"},
		{"prefix: dc\n", ptr("dc"), "dc-p-"},
	}
	for _, c := range cases {
		topo, _, err := Read("p.yml", []byte("name: p\n"+c.line+"topology:\n  nodes: {a: {kind: linux}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(topo.Prefix, c.want) || topo.LabPrefix() != c.lab {
			t.Errorf("%q: prefix %v (lab prefix %q), want %v (%q)", c.line, topo.Prefix, topo.LabPrefix(), c.want, c.lab)
		}
		b, err := Write(topo)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := Read("p.yml", b)
		if err != nil || !reflect.DeepEqual(back.Prefix, c.want) {
			t.Errorf("%q: prefix not kept through write/read: %v %v", c.line, back, err)
		}
	}
}

func ptr(s string) *string { return &s }

// generateClos writes what 'containerlab generate --name name --nodes ...'
// writes (cmd/generate.go in containerlab, marshalled by yaml.v2): tiers of
// nodes named nodeT-N in groups tier-T, every node of a tier linked to every
// node of the next; a node's links to the tier above are numbered after its
// links to the tier below. ifFormat gives each kind's interface names.
func generateClos(name string, tiers []int, kinds []string, ifFormat map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nprefix: null\nmgmt: {}\nsettings: null\ntopology:\n  nodes:\n", name)
	for i, n := range tiers {
		for j := 1; j <= n; j++ {
			fmt.Fprintf(&b, "    node%d-%d:\n      kind: %s\n      group: tier-%d\n", i+1, j, kinds[i], i+1)
		}
	}
	b.WriteString("  links:\n")
	for i := 0; i+1 < len(tiers); i++ {
		offset := 0
		if i > 0 {
			offset = tiers[i-1]
		}
		for j := 1; j <= tiers[i]; j++ {
			for k := 1; k <= tiers[i+1]; k++ {
				fmt.Fprintf(&b, "  - endpoints:\n    - node%d-%d:%s\n    - node%d-%d:%s\n",
					i+1, j, fmt.Sprintf(ifFormat[kinds[i]], k+offset), i+2, k, fmt.Sprintf(ifFormat[kinds[i+1]], j))
			}
		}
	}
	b.WriteString("debug: false\n")
	return b.String()
}

// TestImportGeneratedAnyKind imports what containerlab generate writes for
// each kind it can generate (the interface formats are containerlab's),
// with 2, 3 and 4 tiers: no error, a valid topology, the first tier leaves
// and the rest spines, interfaces under their Linux names.
func TestImportGeneratedAnyKind(t *testing.T) {
	formats := map[string]string{
		"srl": "e1-%d", "nokia_srlinux": "e1-%d", "linux": "eth%d", "ceos": "eth%d", "crpd": "eth%d", "sonic-vs": "eth%d",
		"cisco_iol": "eth%d", "xrd": "eth%d", "nvidia_cumulusvx": "swp%d", "bridge": "eth%d",
		"juniper_vjunosswitch": "et-0/0/%d", "juniper_vjunosevolved": "et-0/0/%d", "juniper_vmx": "ge-0/0/%d",
		"cisco_xrd_vrouter": "Te0/0/0/%d", "cisco_xrv9k": "Gi0/0/0/%d", "arista_veos": "Et1/%d", "nokia_sros": "1/1/%d",
	}
	// generate numbers ports from 1; Juniper and Cisco VMs count theirs
	// from 0 (et-0/0/0 is eth1), so a generated lab starts at eth2.
	linuxOf := map[string]string{"juniper_vjunosswitch": "eth2", "juniper_vjunosevolved": "eth2", "juniper_vmx": "eth2",
		"cisco_xrd_vrouter": "eth2", "cisco_xrv9k": "eth2", "arista_veos": "eth1", "nokia_sros": "eth1", "srl": "e1-1", "nokia_srlinux": "e1-1"}
	kinds := slices.Sorted(maps.Keys(formats))
	cases := map[string][]string{"mixed ceos-srl": {"ceos", "srl"}, "mixed linux-vjunos-xrd": {"linux", "juniper_vjunosswitch", "cisco_xrd_vrouter"}}
	for _, k := range kinds {
		cases[k] = []string{k}
	}
	for name, ks := range cases {
		for _, tiers := range [][]int{{4, 2}, {4, 2, 1}, {4, 4, 2, 1}} {
			perTier := make([]string, len(tiers))
			for i := range tiers {
				perTier[i] = ks[min(i, len(ks)-1)]
			}
			t.Run(fmt.Sprintf("%s/%d-tier", name, len(tiers)), func(t *testing.T) {
				src := generateClos("gen", tiers, perTier, formats)
				topo, rep, err := Read("gen.clab.yml", []byte(src))
				if err != nil {
					t.Fatalf("%v\n%s", err, src)
				}
				if err := topo.Validate(); err != nil {
					t.Fatalf("not valid: %v\n%s", err, rep)
				}
				if len(rep.Unresolved) > 0 || !rep.GeneratedClos || !strings.Contains(rep.String(), "note ignored: debug") {
					t.Errorf("report:\n%s", rep)
				}
				for _, n := range topo.Nodes {
					want := topologies.RoleSpine
					if strings.HasPrefix(n.Name, "node1-") {
						want = topologies.RoleLeaf
					}
					if n.Role != want {
						t.Errorf("%s: role %s, want %s", n.Name, n.Role, want)
					}
				}
				first := topo.Interfaces("node1-1")[0]
				if want, ok := linuxOf[perTier[0]]; ok && first != want {
					t.Errorf("node1-1's first interface %s, want %s", first, want)
				}
			})
		}
	}
}

func TestAliases(t *testing.T) {
	cases := []struct {
		kind, in, out string
		ok            bool
	}{
		{"nokia_srlinux", "ethernet-1/49", "e1-49", true},
		{"srl", "ethernet-2/3/1", "e2-3-1", true},
		{"nokia_srlinux", "e1-49", "", false},
		{"arista_ceos", "Ethernet1", "eth1", true},
		{"ceos", "Ethernet3/1", "eth3_1", true},
		{"arista_ceos", "Et12", "eth12", true},
		{"arista_ceos", "eth1", "", false},
		{"linux", "Ethernet1", "", false},
		{"linux", "ethernet-1/1", "", false},
		{"juniper_vjunosswitch", "et-0/0/0", "eth1", true},
		{"vr-vmx", "ge-0/0/4", "eth5", true},
		{"cisco_xrd_vrouter", "Te0/0/0/2", "eth3", true},
		{"vr-cisco_xrv9k", "GigabitEthernet0/0/0/0", "eth1", true},
		{"arista_veos", "Et1/3", "eth3", true},
		{"nokia_sros", "1/1/2", "eth2", true},
		{"nokia_sros", "1/2/2", "", false},
		{"nokia_srsim", "1/1/c1/1", "e1-1-c1-1", true},
		{"nokia_srsim", "2/1/c22/1", "e2-1-c22-1", true},
		{"nokia_srsim", "1/2/3", "e1-2-3", true},
		{"nokia_srsim", "1/x2/3/4", "e1-x2-3-4", true},
		{"nokia_srsim", "1/x2/3/c4/5", "e1-x2-3-c4-5", true},
		{"nokia_srsim", "e1-1-c1-1", "", false},
		{"nokia_srsim", "0/1/1", "", false},
		{"juniper_vmx", "ge-1/0/0", "", false},
	}
	for _, c := range cases {
		out, ok := linuxIface(c.kind, c.in)
		if out != c.out || ok != c.ok {
			t.Errorf("%s %s: got %q %v, want %q %v", c.kind, c.in, out, ok, c.out, c.ok)
		}
	}
}

// schemaDef is the part of a JSON schema the field tests walk.
type schemaDef struct {
	Ref               string                `json:"$ref"`
	Type              any                   `json:"type"`
	Properties        map[string]*schemaDef `json:"properties"`
	PatternProperties map[string]*schemaDef `json:"patternProperties"`
	Items             *schemaDef            `json:"items"`
	OneOf             []*schemaDef          `json:"oneOf"`
	AnyOf             []*schemaDef          `json:"anyOf"`
	Definitions       map[string]*schemaDef `json:"definitions"`
}

func loadSchema(t *testing.T) *schemaDef {
	t.Helper()
	raw, err := os.ReadFile("schema/clab.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schemaDef
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// deref follows $ref and takes the first non-null alternative of oneOf or
// anyOf.
func (s *schemaDef) deref(root *schemaDef) *schemaDef {
	for d := 0; s != nil && d < 8; d++ {
		switch {
		case s.Ref != "":
			s = root.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
		case len(s.OneOf)+len(s.AnyOf) > 0:
			alts := append(slices.Clone(s.OneOf), s.AnyOf...)
			next := alts[0]
			for _, a := range alts {
				if a.Type != "null" {
					next = a
					break
				}
			}
			s = next
		default:
			return s
		}
	}
	return s
}

// TestFieldsMatchSchema walks containerlab's schema from the top and checks
// that the reader accepts every field the schema has at every level it
// checks: top level, topology, defaults, kinds, nodes, links, mgmt and
// settings.
func TestFieldsMatchSchema(t *testing.T) {
	root := loadSchema(t)
	checked := 0
	check := func(where string, s *schemaDef, accepted map[string]bool) {
		t.Helper()
		s = s.deref(root)
		if s == nil || len(s.Properties) == 0 {
			t.Fatalf("%s: the schema has no properties there", where)
		}
		for k := range s.Properties {
			checked++
			if !accepted[k] {
				t.Errorf("%s: field %q of the schema is not accepted", where, k)
			}
		}
	}
	check("top level", root, accepted().top)
	topo := root.Properties["topology"].deref(root)
	check("topology", topo, accepted().topology)
	check("topology.defaults", topo.Properties["defaults"], accepted().node)
	for kind, s := range topo.Properties["kinds"].deref(root).Properties {
		check("topology.kinds."+kind, s, accepted().node)
	}
	for _, s := range topo.Properties["nodes"].deref(root).PatternProperties {
		check("topology.nodes.*", s, accepted().node)
	}
	if g, ok := topo.Properties["groups"]; ok {
		for _, s := range g.deref(root).PatternProperties {
			check("topology.groups.*", s, accepted().node)
		}
	}
	check("topology.links[]", topo.Properties["links"].deref(root).Items, accepted().brief)
	check("mgmt", root.Properties["mgmt"], accepted().mgmt)
	check("settings", root.Properties["settings"], accepted().settings)
	if checked < 100 {
		t.Errorf("checked only %d fields; is the schema walk broken?", checked)
	}
	// What containerlab itself writes beyond the schema.
	for _, k := range []string{"debug"} {
		if !accepted().top[k] {
			t.Errorf("top-level %q (containerlab generate writes it) is not accepted", k)
		}
	}
}

// sample is a value of the schema's type for s.
func sample(root, s *schemaDef) any {
	s = s.deref(root)
	typ, _ := s.Type.(string)
	if l, ok := s.Type.([]any); ok && len(l) > 0 {
		typ, _ = l[0].(string)
	}
	switch typ {
	case "object":
		return map[string]any{}
	case "array":
		return []any{"x"}
	case "integer", "number":
		return 1
	case "boolean":
		return true
	}
	return "x"
}

// everyField sets every field of s with a sample value, then the given
// fields.
func everyField(root, s *schemaDef, set map[string]any) map[string]any {
	out := map[string]any{}
	for k, p := range s.deref(root).Properties {
		out[k] = sample(root, p)
	}
	for k, v := range set {
		out[k] = v
	}
	return out
}

// TestReadEveryField reads a file that sets every field the schema knows at
// every level the reader checks, plus what containerlab generate writes
// beyond it: no error, and the fields netbed does not use are in the
// report's notes.
func TestReadEveryField(t *testing.T) {
	root := loadSchema(t)
	topo := root.Properties["topology"].deref(root)
	nodeCfg := root.Definitions["node-config"]
	node := func(role string) map[string]any {
		return everyField(root, nodeCfg, map[string]any{"kind": "linux", "image": "alpine:3", "group": "g",
			"labels": map[string]any{LabelRole: role}, "type": "t"})
	}
	kinds := map[string]any{}
	for kind := range topo.Properties["kinds"].deref(root).Properties {
		kinds[kind] = everyField(root, nodeCfg, map[string]any{"kind": kind, "labels": map[string]any{"k": "v"}, "group": "g"})
	}
	doc := everyField(root, root, map[string]any{
		"name":     "every",
		"prefix":   "p",
		"debug":    false,
		"mgmt":     everyField(root, root.Properties["mgmt"], nil),
		"settings": everyField(root, root.Properties["settings"], nil),
		"topology": everyField(root, topo, map[string]any{
			"defaults": everyField(root, nodeCfg, map[string]any{"kind": "linux", "labels": map[string]any{"k": "v"}, "group": "g"}),
			"kinds":    kinds,
			"groups":   map[string]any{"g": everyField(root, nodeCfg, map[string]any{"labels": map[string]any{"k": "v"}, "group": "g"})},
			"nodes":    map[string]any{"a": node("leaf"), "b": node("spine")},
			"links": []any{everyField(root, topo.Properties["links"].deref(root).Items, map[string]any{
				"endpoints": []any{"a:eth1", "b:eth1"}, "vars": map[string]any{"x": "y"}, "mtu": 1500, "labels": map[string]any{"x": "y"}})},
		}),
	})
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, rep, err := Read("every.clab.yml", b)
	if err != nil {
		t.Fatalf("a file with every schema field: %v\n%s", err, b)
	}
	if len(got.Nodes) != 2 || len(got.Links) != 1 {
		t.Fatalf("read %d nodes and %d links, want 2 and 1", len(got.Nodes), len(got.Links))
	}
	report := rep.String()
	for _, want := range []string{"note ignored: debug", "unused mgmt: kept", "unused settings: kept",
		"unused node field startup-config on 2 nodes (a ... b): kept", "topology.links[0]: labels.x, vars.x not carried"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	// One field more, at each level, is still an error, with a suggestion.
	for _, c := range []struct{ yaml, want string }{
		{"name: x\ndebugg: true\ntopology: {nodes: {a: {kind: linux}}}\n", `:2: debugg: unknown field "debugg"; did you mean "debug"?`},
		{"name: x\nmgmt: {ipv4_subnet: 10.0.0.0/24}\ntopology: {nodes: {a: {kind: linux}}}\n", `:2: mgmt.ipv4_subnet: unknown field "ipv4_subnet"; did you mean "ipv4-subnet"?`},
		{"name: x\nsettings: {certificate-authorty: {}}\ntopology: {nodes: {a: {kind: linux}}}\n", `settings.certificate-authorty: unknown field "certificate-authorty"; did you mean "certificate-authority"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, group: {}}\n", `topology.group: unknown field "group"; did you mean "groups"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, defaults: {imag: x}}\n", `topology.defaults.imag: unknown field "imag"; did you mean "image"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, kinds: {linux: {lables: {}}}}\n", `topology.kinds.linux.lables: unknown field "lables"; did you mean "labels"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, groups: {g: {kinds: x}}}\n", `topology.groups.g.kinds: unknown field "kinds"; did you mean "kind"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, links: [{endpoints: [a:eth1, a:eth2], mtus: 1}]}\n", `topology.links[0].mtus: unknown field "mtus"; did you mean "mtu"?`},
		{"name: x\ntopology: {nodes: {a: {kind: linux}}, links: [{type: veth, endpoints: [{node: a, interface: eth1, ipv5: x}, {node: a, interface: eth2}]}]}\n", `topology.links[0].endpoints[0].ipv5: unknown field "ipv5"; did you mean "ipv4"?`},
	} {
		_, _, err := Read("f.clab.yml", []byte(c.yaml))
		if !errors.Is(err, ErrUnknownField) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an unknown-field error containing %q", c.yaml, err, c.want)
		}
	}
}

func TestLoadRejectsInvalidTopology(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.clab.yml")
	src := "name: bad\ntopology:\n  nodes:\n    leaf1: {kind: linux}\n    leaf2: {kind: linux}\n    mystery: {kind: nokia_srlinux}\n  links:\n    - endpoints: [leaf1:eth1, leaf2:eth1]\n    - endpoints: [leaf1:eth1, leaf2:eth2]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rep, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted an invalid topology")
	}
	for _, class := range []error{topologies.ErrDuplicateIface, topologies.ErrNoRole, topologies.ErrDisconnected} {
		if !errors.Is(err, class) {
			t.Errorf("error lacks %v:\n%v", class, err)
		}
	}
	if !strings.Contains(err.Error(), path) || rep == nil || !slices.Equal(rep.Unresolved, []string{"mystery"}) {
		t.Errorf("error %q should name %s; report %+v", err, path, rep)
	}
	if _, _, err := Load(filepath.Join(dir, "missing.clab.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWriteRejectsClashingExtra(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 1, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	topo.Nodes[0].Extra = map[string]any{"startup-config": "a.cfg"}
	if _, err := Write(topo); err != nil {
		t.Fatalf("harmless extra field: %v", err)
	}
	for _, bad := range []func(){
		func() { topo.Nodes[0].Extra = map[string]any{"labels": map[string]any{"x": "y"}} },
		func() { topo.Nodes[0].Extra, topo.Extra = nil, map[string]any{"topology": "x"} },
	} {
		bad()
		if _, err := Write(topo); err == nil || !strings.Contains(err.Error(), "clashes") {
			t.Errorf("clashing extra field written: %v", err)
		}
	}
}
