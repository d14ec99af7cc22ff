package spec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/internal/yamltext"
)

// ErrInvalid marks every error about a scenario file's content.
var ErrInvalid = errors.New("invalid scenario")

// Error is a problem at a place in a scenario file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	return yamltext.Where(e.File, e.Line, e.Field, e.Msg)
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(path, b)
}

// Parse parses and validates scenario YAML; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	if yamltext.Binary(data) {
		return nil, &Error{File: file, Msg: "not a text file (it holds binary data): a scenario is a YAML file; is this the file you meant?"}
	}
	if yamltext.Empty(data) {
		return nil, &Error{File: file, Msg: "empty file; a scenario needs at least name, topology and steps"}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if line, key, ok := yamltext.TabIndent(data); ok {
			return nil, &Error{File: file, Line: line, Field: key, Msg: "this line is indented with a tab; YAML indents with spaces only"}
		}
		if line, key, msg, ok := yamltext.BadIndent(data, err); ok {
			return nil, &Error{File: file, Line: line, Field: key, Msg: msg}
		}
		return nil, yamlError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty file; a scenario needs at least name, topology and steps"}
	}
	p := &parser{file: file}
	var raw rawScenario
	p.decode(doc.Content[0], "", &raw)
	if p.err != nil {
		return nil, p.err
	}
	s := p.build(&raw, doc.Content[0])
	if p.err != nil {
		return nil, p.err
	}
	s.lines = map[string]int{}
	recordLines(doc.Content[0], "", s.lines)
	return s, nil
}

// recordLines maps the path of every field under n (as errors name it:
// steps[2].drift.instances[0]) to its line: a mapping's entry to the line
// of its key.
func recordLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			f := join(path, n.Content[i].Value)
			lines[f] = n.Content[i].Line
			recordLines(n.Content[i+1], f, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			f := fmt.Sprintf("%s[%d]", path, i)
			lines[f] = c.Line
			recordLines(c, f, lines)
		}
	}
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

func yamlError(file string, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

type parser struct {
	file string
	err  error
}

func (p *parser) fail(line int, field, format string, a ...any) {
	if p.err == nil {
		p.err = &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
}

// decode decodes node into out (a pointer to a raw struct), rejecting keys
// the struct does not have, recursively, so a typo anywhere names its line.
func (p *parser) decode(node *yaml.Node, path string, out any) {
	if p.err != nil {
		return
	}
	p.checkKeys(node, path, reflect.TypeOf(out).Elem())
	if p.err != nil {
		return
	}
	if err := node.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			e := yamlError(p.file, errors.New(te.Errors[0])).(*Error)
			e.Field = path
			p.err = e
			return
		}
		p.fail(node.Line, path, "%v", err)
	}
}

func (p *parser) checkKeys(node *yaml.Node, path string, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		switch {
		case node.Kind == yaml.SequenceNode:
			for i, c := range node.Content {
				p.checkKeys(c, fmt.Sprintf("%s[%d]", path, i), t.Elem())
			}
		case !isNull(node):
			p.fail(node.Line, path, "want a list, like [a, b], got %s", describe(node))
		}
		return
	case reflect.Map:
		switch {
		case node.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(node.Content); i += 2 {
				p.checkKeys(node.Content[i+1], join(path, node.Content[i].Value), t.Elem())
			}
		case !isNull(node):
			p.fail(node.Line, path, "want a mapping, like {key: value}, got %s", describe(node))
		}
		return
	case reflect.Struct:
	default:
		p.checkScalar(node, path, t)
		return
	}
	if node.Kind != yaml.MappingNode {
		p.fail(node.Line, path, "expected a mapping, got %s", describe(node))
		return
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		ft, ok := fields[k.Value]
		if !ok {
			names := make([]string, 0, len(fields))
			for n := range fields {
				names = append(names, n)
			}
			sort.Strings(names)
			p.fail(k.Line, join(path, k.Value), "unknown field; expected one of %s", strings.Join(names, ", "))
			return
		}
		p.checkKeys(node.Content[i+1], join(path, k.Value), ft)
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// checkScalar fails when node cannot be decoded into a t (a number, a
// bool or a string), naming the field and the kind of value it wants,
// instead of the YAML library's "cannot unmarshal !!str into int".
func (p *parser) checkScalar(node *yaml.Node, path string, t reflect.Type) {
	if node.Kind == yaml.AliasNode || isNull(node) || node.Decode(reflect.New(t).Interface()) == nil {
		return
	}
	var want string
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.String:
		want = "a string"
	default:
		want = "a " + t.String()
	}
	p.fail(node.Line, path, "want %s, got %s", want, describe(node))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Raw shapes of the YAML. Durations and addresses stay strings here and
// are checked in build, where the line is known.
type rawScenario struct {
	Name        string                   `yaml:"name"`
	Description string                   `yaml:"description"`
	Topology    *rawTopo                 `yaml:"topology"`
	Topologies  map[string]rawTopo       `yaml:"topologies"`
	Generations []string                 `yaml:"generations"`
	Backend     string                   `yaml:"backend"`
	Seed        int64                    `yaml:"seed"`
	Congestion  bool                     `yaml:"expect_congestion"`
	Control     string                   `yaml:"control_plane"`
	BGP         *rawBGP                  `yaml:"bgp"`
	FRRLeaves   []string                 `yaml:"frr_leaves"`
	Controller  *rawController           `yaml:"controller"`
	Options     map[string]rawGenOptions `yaml:"options"`
	Networks    []rawNetwork             `yaml:"networks"`
	Sites       []rawSite                `yaml:"sites"`
	Steps       []rawStep                `yaml:"steps"`
}

// rawBGP is the bgp: block (BGPSettings).
type rawBGP struct {
	Hold      string `yaml:"hold"`
	Keepalive string `yaml:"keepalive"`
	Design    string `yaml:"design"`
	BFD       bool   `yaml:"bfd"`
}

type rawTopo struct {
	File    string         `yaml:"file"`
	Builder string         `yaml:"builder"`
	Params  map[string]int `yaml:"params"`
}

type rawController struct {
	Secure   bool   `yaml:"secure"`
	Replicas *int   `yaml:"replicas"`
	Store    string `yaml:"store"`
}

// rawCtlTarget is a fault's controller: true (the controller) or a
// replica's name (replica-2).
type rawCtlTarget string

func (c *rawCtlTarget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("controller: give true or a replica's name (replica-2)")
	}
	if n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		if b {
			*c = "true"
		}
		return nil
	}
	*c = rawCtlTarget(n.Value)
	return nil
}

type rawNetwork struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	Subnet string `yaml:"subnet"`
	// Subnet6 is the network's IPv6 subnet beside the IPv4 one.
	Subnet6 string   `yaml:"subnet6"`
	Labels  []string `yaml:"labels"`
	// Site is the hybrid network's site the network is in.
	Site string `yaml:"site"`
}

type rawStep struct {
	At      string      `yaml:"at"`
	Gens    []string    `yaml:"generations"`
	Spawn   *rawSpawn   `yaml:"spawn"`
	Churn   *rawChurn   `yaml:"churn"`
	Drift   *rawDrift   `yaml:"drift"`
	Fail    *rawTarget  `yaml:"fail"`
	Restore *rawTarget  `yaml:"restore"`
	Traffic *rawTraffic `yaml:"traffic"`
	Policy  *rawPolicy  `yaml:"policy"`
	Expect  *rawExpect  `yaml:"expect"`
	Comment string      `yaml:"comment"`
	// FloatingIP: {attach: [names]} or {detach: [names]}.
	FloatingIP *rawFloatingIP `yaml:"floating_ip"`
	// SecurityGroup: {group: sg-default, add: {...}} or {..., remove: {...}}.
	SecurityGroup *rawSecurityGroup `yaml:"security_group"`
}

type rawSecurityGroup struct {
	Group  string   `yaml:"group"`
	Add    *rawRule `yaml:"add"`
	Remove *rawRule `yaml:"remove"`
}

// rawRule is a security group's ingress rule.
type rawRule struct {
	Proto string `yaml:"proto"`
	Port  uint16 `yaml:"port"`
	From  string `yaml:"from"`
}

type rawFloatingIP struct {
	Attach []string `yaml:"attach"`
	Detach []string `yaml:"detach"`
}

type rawSpawn struct {
	Name    string            `yaml:"name"`
	Kind    string            `yaml:"kind"`
	Count   int               `yaml:"count"`
	Hosts   []string          `yaml:"hosts"`
	Place   string            `yaml:"placement"`
	Network string            `yaml:"network"`
	Label   string            `yaml:"label"`
	Labels  map[string]string `yaml:"labels"`
	// Namespace and Ports: see Spawn.
	Namespace string            `yaml:"namespace"`
	Ports     map[string]string `yaml:"ports"`
	// AllowFailures: see Spawn.AllowFailures.
	AllowFailures bool `yaml:"allow_failures"`
}

type rawChurn struct {
	Name     string  `yaml:"name"`
	Rate     float64 `yaml:"rate"`
	Duration string  `yaml:"duration"`
	Network  string  `yaml:"network"`
	Label    string  `yaml:"label"`
}

type rawDrift struct {
	Instances []string `yaml:"instances"`
	To        string   `yaml:"to"`
}

type rawTarget struct {
	Node       string       `yaml:"node"`
	Role       string       `yaml:"role"`
	Link       string       `yaml:"link"`
	Controller rawCtlTarget `yaml:"controller"`
	Etcd       string       `yaml:"etcd"`
	Agent      string       `yaml:"agent"`
	After      string       `yaml:"after"`
	Mode       string       `yaml:"mode"`
}

type rawTraffic struct {
	Proto    string   `yaml:"proto"`
	Port     uint16   `yaml:"port"`
	From     []string `yaml:"from"`
	To       []string `yaml:"to"`
	Matrix   bool     `yaml:"matrix"`
	Count    int      `yaml:"count"`
	Rate     float64  `yaml:"rate"`
	Duration string   `yaml:"duration"`
	Tag      string   `yaml:"tag"`
	Family   string   `yaml:"family"`
	// Background: see Traffic.Background.
	Background bool `yaml:"background"`
	// Floating: see Traffic.Floating.
	Floating bool `yaml:"floating_ip"`
}

type rawPolicy struct {
	Action string            `yaml:"action"`
	Name   string            `yaml:"name"`
	From   map[string]string `yaml:"from"`
	To     map[string]string `yaml:"to"`
	Proto  string            `yaml:"proto"`
	Port   uint16            `yaml:"port"`
	Allow  *bool             `yaml:"allow"`
	File   string            `yaml:"file"`
}

type rawExpect struct {
	Tag           string         `yaml:"tag"`
	Reachable     []string       `yaml:"reachable"`
	Unreachable   []string       `yaml:"unreachable"`
	AllReachable  bool           `yaml:"all_reachable"`
	Hops          map[string]int `yaml:"hops"`
	SwitchHops    map[string]int `yaml:"switch_hops"`
	MaxLatency    string         `yaml:"max_latency"`
	Verdict       string         `yaml:"verdict"`
	Rule          string         `yaml:"rule"`
	IPUnchanged   []string       `yaml:"ip_unchanged"`
	PortState     string         `yaml:"port_state"`
	Within        string         `yaml:"within"`
	NoUnexplained bool           `yaml:"no_unexplained_drops"`
	Consistent    bool           `yaml:"controller_consistent"`
	Recovered     bool           `yaml:"recovered"`
	MaxOutage     string         `yaml:"max_outage"`
	// Control-plane checks (controlplane_parse.go): bgp_sessions is
	// "established" or a list of nodes, bgp_route one route or a list.
	BGPSessions      any      `yaml:"bgp_sessions"`
	BGPRoute         any      `yaml:"bgp_route"`
	FabricConsistent bool     `yaml:"fabric_consistent"`
	TruthTable       bool     `yaml:"truth_table"`
	Namespaces       []string `yaml:"namespaces"`
}

// child returns the value node of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lineOf(n *yaml.Node, fallback int) int {
	if n == nil {
		return fallback
	}
	return n.Line
}

var builders = []string{"three-tier", "spine-leaf", "multi-az", "vpc", "hybrid"}

func (p *parser) build(r *rawScenario, root *yaml.Node) *Scenario {
	s := &Scenario{Name: r.Name, Description: r.Description, Backend: r.Backend, Seed: r.Seed, Congestion: r.Congestion, File: p.file,
		Topologies: map[string]TopologySpec{}}
	if s.Name == "" {
		p.fail(root.Line, "name", "missing; give the scenario a name")
	}
	switch s.Backend {
	case "":
		s.Backend = "auto"
	case "sim", "netns", "kernel", "auto":
	default:
		p.fail(lineOf(child(root, "backend"), root.Line), "backend", "%q is not a backend; use sim, netns, kernel or auto", s.Backend)
	}
	switch ControlPlane(r.Control) {
	case "":
		s.ControlPlane = ControlPlaneShared
	case ControlPlaneShared, ControlPlaneBGP:
		s.ControlPlane = ControlPlane(r.Control)
	default:
		p.fail(lineOf(child(root, "control_plane"), root.Line), "control_plane", "%q is not a control plane; use shared (one route table, the default) or bgp (a BGP speaker per switch: GoBGP on netns, its model on sim)", r.Control)
	}
	if r.BGP != nil {
		s.BGP = p.bgpSettings(r.BGP, child(root, "bgp"), s.ControlPlane)
	}
	if n := child(root, "frr_leaves"); n != nil {
		s.BGP.FRRLeaves = p.frrLeaves(n, r.FRRLeaves, s)
	}
	if r.Controller != nil {
		s.Controller = p.controller(r.Controller, child(root, "controller"), root.Line)
	}
	if r.Topology != nil {
		if _, both := r.Topologies["default"]; both {
			p.fail(lineOf(child(root, "topology"), root.Line), "topology", "give the default topology once: as topology or as topologies.default")
		}
		if r.Topologies == nil {
			r.Topologies = map[string]rawTopo{}
		}
		r.Topologies["default"] = *r.Topology
		r.Topology = nil
	}
	p.genOptions(r.Options, root, s)
	topoNode := child(root, "topologies")
	if len(r.Topologies) == 0 {
		p.fail(root.Line, "topology", "missing; name a file (topology: {file: x.clab.yml}) or a builder (topology: {builder: spine-leaf})")
	}
	for key, t := range r.Topologies {
		line := lineOf(child(topoNode, key), lineOf(child(root, "topology"), root.Line))
		if key != "default" && !generation.Known(Generation(key)) {
			p.fail(line, "topologies."+key, "not a generation; use default or one of %v", generation.Names())
		}
		if (t.File == "") == (t.Builder == "") {
			p.fail(line, "topology", "give exactly one of file and builder")
		}
		if t.Builder != "" && !slices.Contains(builders, t.Builder) {
			p.fail(line, "topology.builder", "%q is not a builder; use one of %s", t.Builder, strings.Join(builders, ", "))
		}
		s.Topologies[key] = TopologySpec{File: t.File, Builder: t.Builder, Params: t.Params, Line: line}
	}
	gensNode := child(root, "generations")
	for i, g := range r.Generations {
		if !generation.Known(Generation(g)) {
			p.fail(lineOf(gensNode, root.Line), fmt.Sprintf("generations[%d]", i), "%q is not a generation; use %v", g, generation.Names())
		}
		s.Generations = append(s.Generations, Generation(g))
	}
	if len(s.Generations) == 0 {
		s.Generations = generation.Defaults()
	}
	for _, g := range s.Generations {
		if _, ok := s.Topologies[string(g)]; !ok {
			if _, ok := s.Topologies["default"]; !ok {
				p.fail(lineOf(topoNode, root.Line), "topologies", "no topology for generation %s and no default", g)
			}
		}
	}
	netsNode := child(root, "networks")
	names := map[string]bool{}
	for i, rn := range r.Networks {
		line := lineOf(netsNode, root.Line)
		if netsNode != nil && i < len(netsNode.Content) {
			line = netsNode.Content[i].Line
		}
		field := fmt.Sprintf("networks[%d]", i)
		pfx, err := netip.ParsePrefix(rn.Subnet)
		if err != nil {
			p.fail(line, field+".subnet", "%q is not a CIDR like 10.0.1.0/24", rn.Subnet)
		} else if !pfx.Addr().Is4() {
			p.fail(line, field+".subnet", "%v is IPv6: put it in subnet6, beside an IPv4 subnet", pfx)
		}
		var pfx6 netip.Prefix
		if rn.Subnet6 != "" {
			var nn *yaml.Node
			if netsNode != nil && i < len(netsNode.Content) {
				nn = netsNode.Content[i]
			}
			nl := lineOf(child(nn, "subnet6"), line)
			pfx6, err = netip.ParsePrefix(rn.Subnet6)
			switch {
			case err != nil:
				p.fail(nl, field+".subnet6", "%q is not an IPv6 CIDR like fd00:1::/64", rn.Subnet6)
			case !pfx6.Addr().Is6() || pfx6.Addr().Is4In6():
				p.fail(nl, field+".subnet6", "%v is not IPv6; use a prefix like fd00:1::/64", pfx6)
			case pfx6.Bits() > 120:
				p.fail(nl, field+".subnet6", "%v leaves fewer than 8 host bits; use a /64 (or up to /120)", pfx6)
			}
			for j, o := range s.Networks {
				if o.Subnet6.IsValid() && pfx6.IsValid() && o.Subnet6.Overlaps(pfx6) && (o.Tenant == rn.Tenant) {
					p.fail(nl, field+".subnet6", "%v overlaps networks[%d] (%s, %v) of the same tenant", pfx6, j, o.Name, o.Subnet6)
				}
			}
		}
		if rn.Name == "" || names[rn.Name] {
			p.fail(line, field+".name", "missing or duplicate network name %q", rn.Name)
		}
		names[rn.Name] = true
		s.Networks = append(s.Networks, Network{Name: rn.Name, Tenant: rn.Tenant, Subnet: pfx.Masked(), Subnet6: pfx6.Masked(), Labels: rn.Labels,
			Site: rn.Site, Line: line})
	}
	p.sites(r, root, s)
	stepsNode := child(root, "steps")
	if len(r.Steps) == 0 {
		p.fail(root.Line, "steps", "missing; a scenario needs at least one step")
	}
	var last time.Duration
	for i := range r.Steps {
		n := stepsNode.Content[i]
		st := p.step(&r.Steps[i], n, fmt.Sprintf("steps[%d]", i), names, s.Controller)
		if st.At < 0 { // no "at": right after the previous step
			st.At = last
		}
		if st.At < last {
			p.fail(n.Line, fmt.Sprintf("steps[%d].at", i), "%v is before the previous step's %v; steps run in order", st.At, last)
		}
		last = st.At
		s.Steps = append(s.Steps, st)
	}
	return s
}

func (p *parser) duration(n *yaml.Node, field, v string) time.Duration {
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(lineOf(n, 0), field, "%q is not a duration like 500ms or 2s", v)
	}
	return d
}

// bgpSettings checks the bgp: block (n) against RFC 4271's timers: a
// hold time of 0 (none) or at least 3 s, a keepalive interval below it,
// both in whole seconds, as BGP carries them.
func (p *parser) bgpSettings(r *rawBGP, n *yaml.Node, cp ControlPlane) BGPSettings {
	if cp != ControlPlaneBGP {
		p.fail(lineOf(n, 0), "bgp", "session settings need control_plane: bgp (this scenario's control plane is %s)", cp)
	}
	b := BGPSettings{BFD: r.BFD}
	switch r.Design {
	case "", DesignIBGP:
	case DesignEBGP:
		b.Design = DesignEBGP
	default:
		p.fail(lineOf(child(n, "design"), n.Line), "bgp.design", "%q: use ibgp (one AS, the spines route reflectors; the default) or ebgp (RFC 7938: the spines one AS, one AS per leaf)", r.Design)
	}
	seconds := func(key, v string) time.Duration {
		kn := child(n, key)
		d := p.duration(kn, "bgp."+key, v)
		if d%time.Second != 0 {
			p.fail(lineOf(kn, n.Line), "bgp."+key, "%v: BGP counts its timers in whole seconds", d)
		}
		return d
	}
	hold := seconds("hold", r.Hold)
	switch {
	case r.Hold == "":
	case hold == 0:
		b.Hold = NoHoldTimer
	case hold < 3*time.Second:
		p.fail(lineOf(child(n, "hold"), n.Line), "bgp.hold", "%v: a hold time is 0 (none) or at least 3s (RFC 4271)", hold)
	default:
		b.Hold = hold
	}
	b.Keepalive = seconds("keepalive", r.Keepalive)
	if r.Keepalive == "" {
		return b
	}
	kl := lineOf(child(n, "keepalive"), n.Line)
	limit := b.Hold
	if limit == 0 {
		limit = 9 * time.Second // the speakers' default
	}
	switch {
	case b.Hold == NoHoldTimer:
		p.fail(kl, "bgp.keepalive", "with hold 0 no keepalives are sent; leave keepalive out")
	case b.Keepalive == 0:
		p.fail(kl, "bgp.keepalive", "0: give an interval of at least 1s below the hold time, or leave keepalive out (hold/3)")
	case b.Keepalive >= limit:
		p.fail(kl, "bgp.keepalive", "%v is not below the hold time %v", b.Keepalive, limit)
	}
	return b
}

func (p *parser) step(r *rawStep, n *yaml.Node, field string, networks map[string]bool, ctl ControllerSpec) Step {
	st := Step{Line: n.Line, At: -1}
	if r.At != "" {
		st.At = p.duration(child(n, "at"), field+".at", r.At)
	}
	for _, g := range r.Gens {
		if !generation.Known(Generation(g)) {
			p.fail(lineOf(child(n, "generations"), n.Line), field+".generations", "%q is not a generation", g)
		}
		st.Gens = append(st.Gens, Generation(g))
	}
	set := 0
	for _, ok := range []bool{r.Spawn != nil, r.Churn != nil, r.Drift != nil, r.Fail != nil, r.Restore != nil, r.Traffic != nil, r.Policy != nil, r.Expect != nil, r.FloatingIP != nil, r.SecurityGroup != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		p.fail(n.Line, field, "a step needs exactly one action (spawn, churn, drift, fail, restore, traffic, policy, expect, floating_ip, security_group); found %d", set)
		return st
	}
	checkNet := func(k, network, label string) {
		if network == "" && label == "" {
			p.fail(lineOf(child(n, k), n.Line), field+"."+k, "give a network or a label")
		}
		if network != "" && !networks[network] {
			p.fail(lineOf(child(child(n, k), "network"), n.Line), field+"."+k+".network", "unknown network %q; define it under networks", network)
		}
	}
	switch {
	case r.Spawn != nil:
		sp := r.Spawn
		f := field + ".spawn"
		if sp.Count < 1 {
			p.fail(lineOf(child(child(n, "spawn"), "count"), n.Line), f+".count", "must be at least 1")
		}
		if sp.Name == "" {
			p.fail(lineOf(child(n, "spawn"), n.Line), f+".name", "missing; instances are named <name>-1, <name>-2, ...")
		}
		if sp.Kind == "" {
			sp.Kind = "vm"
		}
		if !slices.Contains([]string{"vm", "baremetal", "pod"}, sp.Kind) {
			p.fail(lineOf(child(child(n, "spawn"), "kind"), n.Line), f+".kind", "%q: use vm, baremetal or pod", sp.Kind)
		}
		place := Placement(sp.Place)
		if place == "" {
			place = PlaceSpread
		}
		if place != PlaceSpread && place != PlacePacked {
			p.fail(lineOf(child(child(n, "spawn"), "placement"), n.Line), f+".placement", "%q: use spread or packed", sp.Place)
		}
		checkNet("spawn", sp.Network, sp.Label)
		st.Spawn = &Spawn{Name: sp.Name, Kind: sp.Kind, Count: sp.Count, Hosts: sp.Hosts, Place: place, Network: sp.Network, Label: sp.Label, Labels: sp.Labels,
			Namespace: sp.Namespace, Ports: p.namedPorts(child(child(n, "spawn"), "ports"), f+".ports", sp.Ports), AllowFailures: sp.AllowFailures}
	case r.Churn != nil:
		c := r.Churn
		if c.Rate <= 0 {
			p.fail(lineOf(child(n, "churn"), n.Line), field+".churn.rate", "must be positive (pods per second)")
		}
		checkNet("churn", c.Network, c.Label)
		st.Churn = &Churn{Name: c.Name, Rate: c.Rate, Network: c.Network, Label: c.Label,
			Duration: p.duration(child(child(n, "churn"), "duration"), field+".churn.duration", c.Duration)}
	case r.Drift != nil:
		if len(r.Drift.Instances) == 0 {
			p.fail(lineOf(child(n, "drift"), n.Line), field+".drift.instances", "name at least one instance")
		}
		st.Drift = &Drift{Instances: r.Drift.Instances, To: r.Drift.To}
	case r.Fail != nil, r.Restore != nil:
		t, k := r.Fail, "fail"
		if t == nil {
			t, k = r.Restore, "restore"
		}
		nset := 0
		for _, ok := range []bool{t.Node != "", t.Role != "", t.Link != "", t.Controller != "", t.Etcd != "", t.Agent != ""} {
			if ok {
				nset++
			}
		}
		if nset != 1 {
			p.fail(lineOf(child(n, k), n.Line), field+"."+k, "name exactly one of node, role, link, controller, etcd, agent")
		}
		tg := &Target{Node: t.Node, Role: t.Role, Link: t.Link, Agent: t.Agent}
		p.ctlTarget(tg, t, ctl, child(n, k), field+"."+k)
		if t.After != "" {
			an := child(child(n, k), "after")
			tg.After = p.duration(an, field+"."+k+".after", t.After)
			if !tg.Controller && tg.Replica == "" && tg.Etcd == "" {
				p.fail(lineOf(an, n.Line), field+"."+k+".after", "only a controller, replica or etcd fault can happen after a delay (while the next steps run)")
			}
		}
		if t.Mode != "" {
			mn := child(child(n, k), "mode")
			switch {
			case k != "fail":
				p.fail(lineOf(mn, n.Line), field+".restore.mode", "a restore undoes the node's failure whatever its mode; mode belongs on the fail step")
			case t.Node == "" && t.Role == "":
				p.fail(lineOf(mn, n.Line), field+".fail.mode", "only a node (node or role) fails in a mode")
			case t.Mode != FailPower && t.Mode != FailSilent:
				p.fail(lineOf(mn, n.Line), field+".fail.mode", "%q: use power (every link loses carrier, the default) or silent (links stay up, the node drops everything)", t.Mode)
			}
			if t.Mode == FailSilent {
				tg.Mode = FailSilent
			}
		}
		if k == "fail" {
			st.Fail = tg
		} else {
			st.Restore = tg
		}
	case r.Traffic != nil:
		tr := r.Traffic
		f := field + ".traffic"
		if tr.Proto == "" {
			tr.Proto = "icmp"
		}
		if !slices.Contains([]string{"icmp", "udp", "tcp"}, tr.Proto) {
			p.fail(lineOf(child(child(n, "traffic"), "proto"), n.Line), f+".proto", "%q: use icmp, udp or tcp", tr.Proto)
		}
		if len(tr.From) == 0 || len(tr.To) == 0 {
			p.fail(lineOf(child(n, "traffic"), n.Line), f, "needs from and to")
		}
		tn := child(n, "traffic")
		if tr.Count < 0 {
			p.fail(lineOf(child(tn, "count"), n.Line), f+".count", "must be at least 1")
		}
		if tr.Rate < 0 {
			p.fail(lineOf(child(tn, "rate"), n.Line), f+".rate", "must be positive (probes per second per pair)")
		}
		if tr.Duration != "" {
			d := p.duration(child(tn, "duration"), f+".duration", tr.Duration)
			switch {
			case tr.Count != 0:
				p.fail(lineOf(child(tn, "duration"), n.Line), f+".duration", "set count or duration, not both")
			case tr.Rate <= 0:
				p.fail(lineOf(child(tn, "duration"), n.Line), f+".rate", "a duration needs a rate (probes per second per pair)")
			default:
				// Probes at 0, 1/rate, … while within the duration.
				tr.Count = max(1, int(math.Ceil(tr.Rate*d.Seconds())))
			}
		}
		if tr.Background && tr.Rate <= 0 {
			p.fail(lineOf(child(tn, "background"), n.Line), f+".rate", "a background stream needs a rate (probes per second per pair)")
		}
		if tr.Count == 0 {
			tr.Count = 1
		}
		switch tr.Family {
		case "", FamilyIPv4, FamilyIPv6, FamilyDual:
		default:
			p.fail(lineOf(child(tn, "family"), n.Line), f+".family", "%q: use ipv4, ipv6 or dual (both, every pair)", tr.Family)
		}
		if tr.Family == FamilyIPv6 || tr.Family == FamilyDual {
			if tr.Background {
				p.fail(lineOf(child(tn, "family"), n.Line), f+".family", "a background stream probes over IPv4 only, for now")
			}
		}
		st.Traffic = &Traffic{Proto: tr.Proto, Port: tr.Port, From: tr.From, To: tr.To, Matrix: tr.Matrix, Count: tr.Count, Rate: tr.Rate, Tag: tr.Tag, Family: tr.Family, Background: tr.Background, Floating: tr.Floating}
	case r.FloatingIP != nil:
		fl := r.FloatingIP
		switch {
		case len(fl.Attach) > 0 && len(fl.Detach) == 0:
			st.FloatingIP = &FloatingIP{Action: "attach", Instances: fl.Attach}
		case len(fl.Detach) > 0 && len(fl.Attach) == 0:
			st.FloatingIP = &FloatingIP{Action: "detach", Instances: fl.Detach}
		default:
			p.fail(lineOf(child(n, "floating_ip"), n.Line), field+".floating_ip", "name the instances to attach or to detach, not both: {attach: [web-1]}")
		}
	case r.SecurityGroup != nil:
		st.SecurityGroup = p.securityGroup(r.SecurityGroup, child(n, "security_group"), field+".security_group")
	case r.Policy != nil:
		po := r.Policy
		if po.Action == "" {
			po.Action = "apply"
		}
		if po.Action != "apply" && po.Action != "remove" {
			p.fail(lineOf(child(n, "policy"), n.Line), field+".policy.action", "%q: use apply or remove", po.Action)
		}
		allow := po.Allow == nil || *po.Allow
		st.Policy = &Policy{Action: po.Action, Name: po.Name, From: po.From, To: po.To, Proto: po.Proto, Port: po.Port, Allow: allow}
		if po.File != "" {
			st.Policy.File, st.Policy.Set = p.policyFile(child(n, "policy"), field+".policy", po)
		}
	case r.Expect != nil:
		e := r.Expect
		en := child(n, "expect")
		f := field + ".expect"
		x := &Expect{Tag: e.Tag, AllReachable: e.AllReachable, Verdict: e.Verdict, Rule: e.Rule, IPUnchanged: e.IPUnchanged,
			PortState: e.PortState, NoUnexplained: e.NoUnexplained, ControllerConsistent: e.Consistent, Recovered: e.Recovered,
			MaxLatency: p.duration(child(en, "max_latency"), f+".max_latency", e.MaxLatency),
			MaxOutage:  p.duration(child(en, "max_outage"), f+".max_outage", e.MaxOutage),
			Within:     p.duration(child(en, "within"), f+".within", e.Within)}
		x.Reachable = p.pairs(child(en, "reachable"), f+".reachable", e.Reachable)
		x.Unreachable = p.pairs(child(en, "unreachable"), f+".unreachable", e.Unreachable)
		x.Hops = p.genInts(child(en, "hops"), f+".hops", e.Hops)
		x.SwitchHops = p.genInts(child(en, "switch_hops"), f+".switch_hops", e.SwitchHops)
		if x.Verdict != "" && x.Verdict != "forwarded" && x.Verdict != "dropped" {
			p.fail(lineOf(child(en, "verdict"), n.Line), f+".verdict", "%q: use forwarded or dropped", x.Verdict)
		}
		if x.PortState != "" && x.PortState != "ACTIVE_ACTIVE" {
			p.fail(lineOf(child(en, "port_state"), n.Line), f+".port_state", "%q: only ACTIVE_ACTIVE can be expected", x.PortState)
		}
		p.controlPlaneExpect(en, f, e, x, networks)
		x.TruthTable, x.Namespaces = e.TruthTable, e.Namespaces
		if len(e.Namespaces) > 0 && !e.TruthTable {
			p.fail(lineOf(child(en, "namespaces"), n.Line), f+".namespaces", "selects the namespaces of a truth table; add truth_table: true")
		}
		st.Expect = x
	}
	return st
}

func (p *parser) pairs(n *yaml.Node, field string, in []string) []Pair {
	var out []Pair
	for i, s := range in {
		a, b, ok := strings.Cut(s, "->")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if !ok || a == "" || b == "" {
			line := lineOf(n, 0)
			if n != nil && i < len(n.Content) {
				line = n.Content[i].Line
			}
			p.fail(line, fmt.Sprintf("%s[%d]", field, i), "%q: write pairs as \"from -> to\"", s)
			continue
		}
		out = append(out, Pair{From: a, To: b})
	}
	return out
}

func (p *parser) genInts(n *yaml.Node, field string, in map[string]int) map[Generation]int {
	if len(in) == 0 {
		return nil
	}
	out := map[Generation]int{}
	for k, v := range in {
		if !generation.Known(Generation(k)) {
			p.fail(lineOf(child(n, k), lineOf(n, 0)), field+"."+k, "not a generation; use %v", generation.Names())
		}
		out[Generation(k)] = v
	}
	return out
}

// maxReplicas bounds controller.replicas: a lab's replicas and etcd
// members are processes on this machine.
const maxReplicas = 5

// controller builds the controller: section.
func (p *parser) controller(r *rawController, n *yaml.Node, line int) ControllerSpec {
	c := ControllerSpec{Secure: r.Secure, Replicas: 1, Store: r.Store}
	if r.Replicas != nil {
		c.Replicas = *r.Replicas
		if c.Replicas < 1 || c.Replicas > maxReplicas {
			p.fail(lineOf(child(n, "replicas"), line), "controller.replicas", "%d: give 1 to %d replicas", c.Replicas, maxReplicas)
		}
	}
	switch c.Store {
	case "":
		c.Store = StoreBolt
		if c.Replicas > 1 {
			c.Store = StoreEtcd
		}
	case StoreBolt:
		if c.Replicas > 1 {
			p.fail(lineOf(child(n, "store"), line), "controller.store", "bbolt serves one controller; %d replicas need store: etcd", c.Replicas)
		}
	case StoreEtcd:
	default:
		p.fail(lineOf(child(n, "store"), line), "controller.store", "%q is not a store; use bbolt (one controller, the default) or etcd (replicas on a 3-member etcd)", c.Store)
	}
	return c
}

// ctlTarget fills a fault's controller, replica or etcd member, checked
// against the scenario's controller.
func (p *parser) ctlTarget(tg *Target, t *rawTarget, c ControllerSpec, n *yaml.Node, field string) {
	switch {
	case t.Controller == "true":
		tg.Controller = true
		if c.Replicas > 1 {
			p.fail(lineOf(child(n, "controller"), n.Line), field+".controller", "the controller runs as %d replicas: name one (replica-1 … replica-%d)", c.Replicas, c.Replicas)
		}
	case t.Controller == CNCLeader:
		if c.Replicas < 2 {
			p.fail(lineOf(child(n, "controller"), n.Line), field+".controller", "%s: the CNC's leader is one of several replicas; set controller: {replicas: 3, store: etcd}", CNCLeader)
		}
		tg.Replica = CNCLeader
	case t.Controller != "":
		i, ok := Ordinal(string(t.Controller), "replica-")
		if !ok || i > c.Replicas {
			p.fail(lineOf(child(n, "controller"), n.Line), field+".controller", "%q: give true, a replica, replica-1 … replica-%d (controller.replicas is %d), or %s", t.Controller, c.Replicas, c.Replicas, CNCLeader)
		}
		tg.Replica = string(t.Controller)
	case t.Etcd != "":
		i, ok := Ordinal(t.Etcd, "member-")
		if c.Store != StoreEtcd {
			p.fail(lineOf(child(n, "etcd"), n.Line), field+".etcd", "the controller's store is not etcd: set controller: {store: etcd}")
		} else if !ok || i > EtcdMembers {
			p.fail(lineOf(child(n, "etcd"), n.Line), field+".etcd", "%q: name a member, member-1 … member-%d", t.Etcd, EtcdMembers)
		}
		tg.Etcd = t.Etcd
	}
}

// Ordinal parses prefix+N with N ≥ 1.
func Ordinal(s, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil && i >= 1
}
