package clab

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/internal/yamltext"
	"github.com/netbed/netbed/topologies"
)

// Keys netbed keeps its own attributes under: node labels for role, AZ and
// rack, link vars for rate and delay.
const (
	LabelRole = "netbed.role"
	LabelAZ   = "netbed.az"
	LabelRack = "netbed.rack"
	LabelSite = "netbed.site"
	VarRate   = "netbed.rate"
	VarDelay  = "netbed.delay"
)

// Classes of read errors, checked with errors.Is. Every error Read returns
// is a *ParseError (or several joined) wrapping one of them.
var (
	ErrSyntax        = errors.New("syntax error")
	ErrUnknownField  = errors.New("unknown field")
	ErrUndefinedNode = errors.New("undefined node")
	ErrInvalid       = errors.New("invalid value")
)

// ParseError is one problem in a topology file, with where it is.
type ParseError struct {
	File string
	Line int
	Path string // "topology.links[3].endpoints[1]"
	Err  error  // one of the Err* classes
	Msg  string
}

func (e *ParseError) Error() string {
	return yamltext.Where(e.File, e.Line, e.Path, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxErrors bounds how many problems one Read reports.
const maxErrors = 20

// linkTypes are containerlab's extended link types; only veth joins two
// nodes, the others join a node to the host and are not modelled.
var linkTypes = set("veth", "mgmt-net", "macvlan", "host", "vxlan", "vxlan-stitch", "dummy")

// specialNodes are pseudo-nodes of containerlab's brief link form.
var specialNodes = set("host", "mgmt-net", "macvlan")

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// nodeDef is a node, kind, group or defaults entry as written.
type nodeDef struct {
	line               int
	kind, image, group string
	labels             map[string]string
	labelLines         map[string]int
	extra              map[string]any // fields netbed carries without modelling them
}

type linkDef struct {
	path   string
	ends   [2]topologies.Endpoint
	mtu    int
	rate   int64
	delay  time.Duration
	skip   string   // why the link is not modelled, if it is not
	extras []string // link fields present that netbed does not carry
}

// Load reads the containerlab file at path, infers what it does not say,
// and validates the result. The error names the file, and for YAML
// problems the line.
func Load(path string) (*topologies.Topology, *Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load topology: %w", err)
	}
	t, rep, err := Read(path, data)
	if err != nil {
		return nil, nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, rep, fmt.Errorf("%s: topology %q is not valid:\n%w", path, t.Name, err)
	}
	return t, rep, nil
}

// Read parses a containerlab topology file; file names it in errors. It
// resolves defaults, kinds and groups as containerlab does, maps interface
// aliases to Linux names, and infers roles (and AZs) for nodes without
// netbed labels. The report says what was inferred or left out. Read does
// not run Topology.Validate.
func Read(file string, data []byte) (*topologies.Topology, *Report, error) {
	d := &decoder{file: file}
	if yamltext.Binary(data) {
		return nil, nil, &ParseError{File: file, Err: ErrSyntax, Msg: "not a text file (it holds binary data): a topology is a containerlab YAML file (.clab.yml); is this the file you meant?"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if line, key, ok := yamltext.TabIndent(data); ok {
			return nil, nil, &ParseError{File: file, Line: line, Path: key, Err: ErrSyntax, Msg: "this line is indented with a tab; YAML indents with spaces only"}
		}
		if line, key, msg, ok := yamltext.BadIndent(data, err); ok {
			return nil, nil, &ParseError{File: file, Line: line, Path: key, Err: ErrSyntax, Msg: msg}
		}
		return nil, nil, d.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, &ParseError{File: file, Line: 1, Err: ErrSyntax, Msg: "the file is empty; a topology needs at least name and topology.nodes"}
	}
	t, rep := d.document(doc.Content[0])
	if len(d.errs) > 0 {
		return nil, nil, errors.Join(d.errs...)
	}
	return t, rep, nil
}

type decoder struct {
	file string
	errs []error
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) yamlError(err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &ParseError{File: d.file, Line: line, Err: ErrSyntax, Msg: msg}
}

func (d *decoder) fail(n *yaml.Node, path string, class error, format string, a ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &ParseError{File: d.file, Line: line, Path: path, Err: class, Msg: fmt.Sprintf(format, a...)})
}

// resolve follows aliases (*anchor).
func resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 16; depth++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// pairs walks a mapping, checking keys against allowed (nil allows any)
// and rejecting duplicates. It calls f with each key and resolved value.
func (d *decoder) pairs(n *yaml.Node, path string, allowed map[string]bool, f func(key string, k, v *yaml.Node)) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrSyntax, "want a mapping (key: value lines), got %s", describe(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, ErrSyntax, "keys must be plain strings")
			continue
		}
		if k.Value == "<<" {
			d.fail(k, path, ErrSyntax, "YAML merge keys (<<) are not supported; write the fields out")
			continue
		}
		sub := join(path, k.Value)
		if seen[k.Value] {
			d.fail(k, sub, ErrSyntax, "%q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if allowed != nil && !allowed[k.Value] {
			d.fail(k, sub, ErrUnknownField, "unknown field %q%s", k.Value, suggest(k.Value, allowed))
			continue
		}
		f(k.Value, k, v)
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected YAML node"
}

// suggest names the allowed key closest to an unknown one.
func suggest(key string, allowed map[string]bool) string {
	// Closest first; on a tie, the one sharing the longest prefix with key
	// ("kinds" is "kind", not "binds"), then the first alphabetically.
	best, bestD, bestP := "", 3, 0
	for k := range allowed {
		dist, pre := yamltext.EditDistance(key, k), commonPrefix(key, k)
		if dist < bestD || (dist == bestD && best != "" && (pre > bestP || pre == bestP && k < best)) {
			best, bestD, bestP = k, dist, pre
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// str reads a scalar as a string.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, path, ErrSyntax, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		d.fail(n, path, ErrInvalid, "want a non-negative whole number, got %q", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) document(root *yaml.Node) (*topologies.Topology, *Report) {
	t := &topologies.Topology{}
	rep := &Report{File: d.file}
	var topo *yaml.Node
	var topoKey *yaml.Node
	hasName := false
	if !d.pairs(root, "", accepted().top, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			t.Name, hasName = d.str(v, key)
			if hasName && t.Name == "" {
				d.fail(v, key, ErrInvalid, "the lab name is empty")
			}
		case "prefix":
			if isNull(v) {
				return // containerlab treats null as absent: the default "clab"
			}
			if p, ok := d.str(v, key); ok {
				t.Prefix = &p
			}
		case "debug":
			// containerlab generate writes its --debug flag here.
			if !isNull(v) && (v.Kind != yaml.ScalarNode || v.Tag != "!!bool") {
				d.fail(v, key, ErrInvalid, "want true or false, got %s", describe(v))
				return
			}
			rep.note("ignored: debug (containerlab's own debug flag; netbed does not use it)")
		case "mgmt", "settings":
			allowed := accepted().mgmt
			if key == "settings" {
				allowed = accepted().settings
			}
			// An empty section says nothing (and the schema rejects it).
			if isNull(v) || !d.pairs(v, key, allowed, func(string, *yaml.Node, *yaml.Node) {}) || len(v.Content) == 0 {
				return
			}
			rep.Unused = append(rep.Unused, key)
			var x any
			if err := v.Decode(&x); err != nil {
				d.fail(v, key, ErrSyntax, "%v", err)
				return
			}
			if t.Extra == nil {
				t.Extra = map[string]any{}
			}
			t.Extra[key] = x
		case "topology":
			topo, topoKey = v, k
		}
	}) {
		return nil, nil
	}
	if !hasName && len(d.errs) == 0 {
		d.fail(root, "name", ErrInvalid, "the lab has no name; add a top-level \"name:\"")
	}
	if topo == nil {
		if len(d.errs) == 0 {
			d.fail(root, "topology", ErrInvalid, "the file has no topology section; add topology.nodes")
		}
		return nil, nil
	}

	var defaults nodeDef
	kinds := map[string]nodeDef{}
	groups := map[string]nodeDef{}
	var nodeNames []string
	nodes := map[string]nodeDef{}
	var links []linkDef
	var linksNode *yaml.Node
	d.pairs(topo, "topology", accepted().topology, func(key string, k, v *yaml.Node) {
		path := "topology." + key
		switch key {
		case "defaults":
			defaults = d.nodeDef(v, path)
		case "kinds", "groups":
			if isNull(v) {
				return
			}
			into := kinds
			if key == "groups" {
				into = groups
			}
			d.pairs(v, path, nil, func(name string, _, nv *yaml.Node) {
				into[name] = d.nodeDef(nv, path+"."+name)
			})
		case "nodes":
			if isNull(v) {
				return
			}
			d.pairs(v, path, nil, func(name string, nk, nv *yaml.Node) {
				if msg := nodeNameProblem(name); msg != "" {
					d.fail(nk, path+"."+name, ErrInvalid, "node name %q: %s", name, msg)
				}
				nd := d.nodeDef(nv, path+"."+name)
				nd.line = nk.Line
				nodeNames = append(nodeNames, name)
				nodes[name] = nd
			})
		case "links":
			linksNode = v
		}
	})
	if len(nodeNames) == 0 && len(d.errs) == 0 {
		d.fail(topoKey, "topology.nodes", ErrInvalid, "the topology defines no nodes")
	}
	if linksNode != nil && !isNull(linksNode) {
		if linksNode.Kind != yaml.SequenceNode {
			d.fail(linksNode, "topology.links", ErrSyntax, "want a list of links, got %s", describe(linksNode))
		} else {
			for i, ln := range linksNode.Content {
				links = append(links, d.link(resolve(ln), fmt.Sprintf("topology.links[%d]", i), nodes))
			}
		}
	}
	if len(d.errs) > 0 {
		return nil, nil
	}

	// Resolve each node: node > group > kind > defaults, as containerlab.
	groupOf := map[string]string{}
	for _, name := range nodeNames {
		nd := nodes[name]
		n := &topologies.Node{Name: name}
		grp := first(nd.group, defaults.group)
		g := groups[grp]
		n.Kind = strings.ToLower(first(nd.kind, g.kind, defaults.kind))
		k := kinds[n.Kind]
		if grp == "" {
			grp = k.group
			g = groups[grp]
		}
		n.Image = first(nd.image, g.image, k.image, defaults.image)
		groupOf[name] = grp
		if n.Kind == "" {
			d.fail(&yaml.Node{Line: nd.line}, "topology.nodes."+name, ErrInvalid,
				"node %q has no kind; set kind on the node, its group or topology.defaults", name)
			continue
		}
		labels := map[string]string{}
		lines := map[string]int{}
		for _, src := range []nodeDef{defaults, k, g, nd} {
			for key, val := range src.labels {
				labels[key] = val
				lines[key] = src.labelLines[key]
			}
		}
		if r, ok := labels[LabelRole]; ok {
			role := topologies.Role(strings.ToLower(r))
			if !role.Valid() {
				d.fail(&yaml.Node{Line: lines[LabelRole]}, "topology.nodes."+name+".labels."+LabelRole, ErrInvalid,
					"unknown role %q; use one of %s", r, roleNames())
			}
			n.Role = role
		}
		n.AZ, n.Rack, n.Site = labels[LabelAZ], labels[LabelRack], labels[LabelSite]
		delete(labels, LabelSite)
		delete(labels, LabelRole)
		delete(labels, LabelAZ)
		delete(labels, LabelRack)
		if len(labels) > 0 {
			n.Labels = labels
		}
		n.Extra = mergeExtra(defaults, k, g, nd)
		t.Nodes = append(t.Nodes, n)
	}
	if len(d.errs) > 0 {
		return nil, nil
	}
	noteUnused(t.Nodes, rep)

	kindOf := map[string]string{}
	for _, n := range t.Nodes {
		kindOf[n.Name] = n.Kind
	}
	aliased := map[topologies.Endpoint]bool{}
	for _, ld := range links {
		if ld.skip != "" {
			rep.note("%s: %s; not modelled, skipped", ld.path, ld.skip)
			continue
		}
		for i := range ld.ends {
			e := &ld.ends[i]
			if linux, ok := linuxIface(kindOf[e.Node], e.Iface); ok {
				if !aliased[*e] {
					rep.note("%s: interface %s is a %s alias; using its Linux name %s", e.Node, e.Iface, kindOf[e.Node], linux)
					aliased[*e] = true
				}
				e.Iface = linux
			}
		}
		l := t.Connect(ld.ends[0].Node, ld.ends[0].Iface, ld.ends[1].Node, ld.ends[1].Iface)
		l.MTU, l.Rate = ld.mtu, ld.rate
		l.Delay = ld.delay
		if len(ld.extras) > 0 {
			rep.note("%s: %s not carried", ld.path, strings.Join(ld.extras, ", "))
		}
	}
	infer(t, groupOf, rep)
	return t, rep
}

// noteUnused reports the node fields netbed carries without using them,
// one note per field.
func noteUnused(nodes []*topologies.Node, rep *Report) {
	on := map[string][]string{}
	for _, n := range nodes {
		for k := range n.Extra {
			on[k] = append(on[k], n.Name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(on)) {
		names := on[k]
		which := names[0]
		if len(names) > 1 {
			which = fmt.Sprintf("%d nodes (%s ... %s)", len(names), names[0], names[len(names)-1])
		}
		rep.Unused = append(rep.Unused, fmt.Sprintf("node field %s on %s", k, which))
	}
}

// mergeExtra resolves the fields netbed carries without modelling them as
// containerlab does: the most specific of node, group, kind and defaults
// wins, except that env and sysctls maps merge key by key and binds lists
// add up.
func mergeExtra(levels ...nodeDef) map[string]any {
	out := map[string]any{}
	for _, l := range levels {
		for k, v := range l.extra {
			prev, seen := out[k]
			switch {
			case seen && (k == "env" || k == "sysctls"):
				pm, ok1 := prev.(map[string]any)
				vm, ok2 := v.(map[string]any)
				if ok1 && ok2 {
					m := make(map[string]any, len(pm)+len(vm))
					for mk, mv := range pm {
						m[mk] = mv
					}
					for mk, mv := range vm {
						m[mk] = mv
					}
					v = m
				}
			case seen && k == "binds":
				pl, ok1 := prev.([]any)
				vl, ok2 := v.([]any)
				if ok1 && ok2 {
					l := slices.Clone(pl)
					for _, b := range vl {
						if bs, ok := b.(string); !ok || !slices.Contains(l, any(bs)) {
							l = append(l, b)
						}
					}
					v = l
				}
			}
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func nodeNameProblem(name string) string {
	switch {
	case name == "":
		return "names may not be empty"
	case strings.ContainsAny(name, " \t\r\n/:\\"):
		return "names may not contain spaces, ':', '/' or '\\'"
	}
	return ""
}

// nodeDef reads a node-config mapping (node, kind, group or defaults).
func (d *decoder) nodeDef(n *yaml.Node, path string) nodeDef {
	nd := nodeDef{}
	if isNull(n) {
		return nd
	}
	nd.line = n.Line
	d.pairs(n, path, accepted().node, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "kind":
			nd.kind, _ = d.str(v, p)
		case "image":
			nd.image, _ = d.str(v, p)
		case "group":
			nd.group, _ = d.str(v, p)
		case "labels":
			if isNull(v) {
				return
			}
			nd.labels = map[string]string{}
			nd.labelLines = map[string]int{}
			d.pairs(v, p, nil, func(lk string, _, lv *yaml.Node) {
				if s, ok := d.str(lv, p+"."+lk); ok {
					nd.labels[lk] = s
					nd.labelLines[lk] = lv.Line
				}
			})
		default:
			var x any
			if err := v.Decode(&x); err != nil {
				d.fail(v, p, ErrSyntax, "%v", err)
				return
			}
			if nd.extra == nil {
				nd.extra = map[string]any{}
			}
			nd.extra[key] = x
		}
	})
	return nd
}

// link reads one entry of topology.links in brief or extended form.
func (d *decoder) link(n *yaml.Node, path string, nodes map[string]nodeDef) linkDef {
	ld := linkDef{path: path}
	if n == nil || n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrSyntax, "want a link mapping with endpoints, got %s", describe(n))
		return ld
	}
	// Decide the form: extended when there is a type, a single endpoint,
	// or endpoints written as mappings.
	extended := false
	var typ string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, resolve(n.Content[i+1])
		switch {
		case k == "type", k == "endpoint":
			extended = true
		case k == "endpoints" && v != nil && v.Kind == yaml.SequenceNode && len(v.Content) > 0 && resolve(v.Content[0]) != nil && resolve(v.Content[0]).Kind == yaml.MappingNode:
			extended = true
		}
	}
	allowed := accepted().brief
	if extended {
		allowed = accepted().extended
	}
	var endpoints *yaml.Node
	d.pairs(n, path, allowed, func(key string, k, v *yaml.Node) {
		p := path + "." + key
		switch key {
		case "type":
			if s, ok := d.str(v, p); ok {
				typ = s
				if !linkTypes[s] {
					d.fail(v, p, ErrInvalid, "unknown link type %q; containerlab knows veth, mgmt-net, macvlan, host, vxlan, vxlan-stitch and dummy", s)
				}
			}
		case "endpoints":
			endpoints = v
		case "mtu":
			ld.mtu, _ = d.integer(v, p)
		case "vars", "labels":
			if isNull(v) {
				return
			}
			d.pairs(v, p, nil, func(vk string, _, vv *yaml.Node) {
				switch vk {
				case VarRate:
					if s, ok := d.str(vv, p+"."+vk); ok {
						r, err := topologies.ParseRate(s)
						if err != nil {
							d.fail(vv, p+"."+vk, ErrInvalid, "%v", err)
						}
						ld.rate = r
					}
				case VarDelay:
					if s, ok := d.str(vv, p+"."+vk); ok {
						dl, err := topologies.ParseDelay(s)
						if err != nil {
							d.fail(vv, p+"."+vk, ErrInvalid, "%v", err)
						}
						ld.delay = dl
					}
				default:
					ld.extras = append(ld.extras, key+"."+vk)
				}
			})
		default:
			// ipv4, ipv6, and the fields of the one-ended link types
			// skipped below.
			ld.extras = append(ld.extras, key)
		}
	})
	if extended && typ == "" && endpoints != nil {
		typ = "veth"
	}
	if extended && typ != "veth" {
		if typ != "" && linkTypes[typ] {
			ld.skip = fmt.Sprintf("link type %s joins a node to the host, not to another node", typ)
		} else if typ == "" {
			d.fail(n, path, ErrInvalid, "an extended link needs a type (veth for node-to-node links)")
		}
		return ld
	}
	if endpoints == nil {
		d.fail(n, path, ErrInvalid, "the link has no endpoints; write endpoints: [\"node1:eth1\", \"node2:eth1\"]")
		return ld
	}
	if endpoints.Kind != yaml.SequenceNode || len(endpoints.Content) != 2 {
		d.fail(endpoints, path+".endpoints", ErrInvalid, "want exactly two endpoints, got %s", countOf(endpoints))
		return ld
	}
	for i, en := range endpoints.Content {
		en = resolve(en)
		p := fmt.Sprintf("%s.endpoints[%d]", path, i)
		var e topologies.Endpoint
		if extended {
			if en == nil || en.Kind != yaml.MappingNode {
				d.fail(en, p, ErrSyntax, "want {node: ..., interface: ...}, got %s", describe(en))
				continue
			}
			d.pairs(en, p, accepted().endpoint, func(key string, _, v *yaml.Node) {
				switch key {
				case "node":
					e.Node, _ = d.str(v, p+".node")
				case "interface":
					e.Iface, _ = d.str(v, p+".interface")
				default:
					ld.extras = append(ld.extras, fmt.Sprintf("endpoints[%d].%s", i, key))
				}
			})
			if e.Node == "" || e.Iface == "" {
				d.fail(en, p, ErrInvalid, "an endpoint needs both node and interface")
				continue
			}
		} else {
			s, ok := d.str(en, p)
			if !ok {
				continue
			}
			node, iface, found := strings.Cut(s, ":")
			if !found || node == "" || iface == "" {
				d.fail(en, p, ErrInvalid, "endpoint %q: want \"node:interface\"", s)
				continue
			}
			e = topologies.Endpoint{Node: node, Iface: iface}
		}
		if _, ok := nodes[e.Node]; !ok {
			if !extended && specialNodes[e.Node] {
				ld.skip = fmt.Sprintf("endpoint %s is containerlab's %q pseudo-node", e, e.Node)
				continue
			}
			d.fail(en, p, ErrUndefinedNode, "node %q is not defined; add it under topology.nodes or fix the endpoint", e.Node)
			continue
		}
		ld.ends[i] = e
	}
	return ld
}

func countOf(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.SequenceNode {
		return describe(n)
	}
	return strconv.Itoa(len(n.Content))
}

func roleNames() string {
	var s []string
	for _, r := range topologies.Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}
