package cloud

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/internal/yamltext"
)

//go:embed limits.yaml
var defaultLimits []byte

// DefaultLimits are the limits shipped in limits.yaml: AWS's published
// figures, with their sources in the file.
func DefaultLimits() *Limits {
	l, err := ParseLimits("limits.yaml", defaultLimits)
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return l
}

// LoadLimits reads a limits file; an empty path is the default.
func LoadLimits(path string) (*Limits, error) {
	if path == "" {
		return DefaultLimits(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cloud limits: %w", err)
	}
	return ParseLimits(path, b)
}

// ErrInvalidLimits is what every LimitsError wraps.
var ErrInvalidLimits = errors.New("invalid cloud limits")

// LimitsError is what is wrong in a limits file, and where.
type LimitsError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *LimitsError) Error() string {
	return yamltext.Where(e.File, e.Line, e.Field, e.Msg)
}

func (e *LimitsError) Unwrap() error { return ErrInvalidLimits }

// Actions are the API actions the model calls: a limits file gives each.
var Actions = []string{
	"CreateSubnet", "RunInstances", "TerminateInstances", "DescribeInstances",
	"CreateNetworkInterface", "AttachNetworkInterface", "DetachNetworkInterface",
	"DeleteNetworkInterface", "DescribeNetworkInterfaces",
	"AssignPrivateIpAddresses", "UnassignPrivateIpAddresses",
	"AllocateAddress", "AssociateAddress", "DisassociateAddress", "ReleaseAddress", "DescribeAddresses",
}

type limitsParser struct {
	file string
	err  *LimitsError
}

func (p *limitsParser) fail(n *yaml.Node, field, format string, a ...any) {
	if p.err == nil {
		line := 0
		if n != nil {
			line = n.Line
		}
		p.err = &LimitsError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// ParseLimits parses a limits file; file names it in errors, which say
// file:line: field: what is wrong.
func ParseLimits(file string, data []byte) (*Limits, error) {
	p := &limitsParser{file: file}
	if yamltext.Binary(data) {
		return nil, &LimitsError{File: file, Msg: "not a text file"}
	}
	if yamltext.Empty(data) {
		return nil, &LimitsError{File: file, Msg: "the file holds no YAML; see the cloud package's limits.yaml"}
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if line, key, ok := yamltext.TabIndent(data); ok {
			return nil, &LimitsError{File: file, Line: line, Field: key, Msg: "this line is indented with a tab; YAML indents with spaces only"}
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			return nil, &LimitsError{File: file, Line: n, Msg: m[2]}
		}
		return nil, &LimitsError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := doc.Content[0]
	l := &Limits{Classes: map[string]Bucket{}, Actions: map[string]Action{}}
	var actions *yaml.Node
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "sources":
			p.seq(v, key, func(i int, n *yaml.Node) { l.Sources = append(l.Sources, p.str(n, fmt.Sprintf("sources[%d]", i))) })
		case "elastic_ips":
			l.ElasticIPs = p.integer(v, key, 0)
		case "public_pool":
			s := p.str(v, key)
			pfx, err := netip.ParsePrefix(s)
			switch {
			case err != nil || !pfx.Addr().Is4():
				p.fail(v, key, "%q is not an IPv4 prefix like 198.51.100.0/24", s)
			case pfx.Bits() > 30:
				p.fail(v, key, "%s holds no usable address; give a /30 or larger", s)
			}
			l.PublicPool = pfx.Masked()
		case "classes":
			p.mapping(v, key, func(name string, _, c *yaml.Node) {
				l.Classes[name] = p.bucket(c, key+"."+name)
			})
		case "actions":
			actions = v
		case "instance_types":
			p.seq(v, key, func(i int, n *yaml.Node) {
				f := fmt.Sprintf("instance_types[%d]", i)
				var t InstanceType
				p.mapping(n, f, func(key string, _, v *yaml.Node) {
					switch key {
					case "name":
						t.Name = p.str(v, f+".name")
					case "enis":
						t.ENIs = p.integer(v, f+".enis", 1)
					case "ipv4_per_eni":
						t.IPv4PerENI = p.integer(v, f+".ipv4_per_eni", 1)
					default:
						p.fail(v, f+"."+key, "unknown field; an instance type has name, enis and ipv4_per_eni")
					}
				})
				switch {
				case t.Name == "":
					p.fail(n, f+".name", "give the instance type's name, like m5.large")
				case t.ENIs == 0 || t.IPv4PerENI == 0:
					p.fail(n, f, "%s: give enis and ipv4_per_eni", t.Name)
				}
				if _, dup := l.InstanceType(t.Name); dup {
					p.fail(n, f+".name", "%s is given twice", t.Name)
				}
				l.InstanceTypes = append(l.InstanceTypes, t)
			})
		default:
			p.fail(k, key, "unknown field; a limits file has sources, elastic_ips, public_pool, classes, actions and instance_types")
		}
	})
	if p.err == nil && actions != nil {
		p.mapping(actions, "actions", func(name string, _, n *yaml.Node) {
			f := "actions." + name
			if !slices.Contains(Actions, name) {
				p.fail(n, f, "not an action the cloud model has; it has %s", strings.Join(Actions, ", "))
				return
			}
			var a Action
			own := false
			p.mapping(n, f, func(key string, k, v *yaml.Node) {
				switch key {
				case "class":
					a.Class = p.str(v, f+".class")
					b, ok := l.Classes[a.Class]
					if !ok {
						p.fail(v, f+".class", "%q is not one of the classes", a.Class)
					}
					a.Bucket = b
				case "capacity":
					own = true
					a.Bucket.Capacity = p.integer(v, f+".capacity", 0)
				case "refill":
					own = true
					a.Bucket.Refill = p.float(v, f+".refill")
				case "latency":
					s := p.str(v, f+".latency")
					d, err := time.ParseDuration(s)
					if err != nil || d < 0 {
						p.fail(v, f+".latency", "%q is not a duration like 300ms or 2s", s)
					}
					a.Latency = d
				default:
					p.fail(k, f+"."+key, "unknown field; an action has class (or capacity and refill) and latency")
				}
			})
			if own && a.Class != "" {
				p.fail(n, f, "give a class or the action's own capacity and refill, not both")
			}
			if !own && a.Class == "" {
				p.fail(n, f, "give a class or the action's own capacity and refill")
			}
			l.Actions[name] = a
		})
	}
	if p.err == nil {
		var missing []string
		for _, a := range Actions {
			if _, ok := l.Actions[a]; !ok {
				missing = append(missing, a)
			}
		}
		switch {
		case len(missing) > 0:
			p.fail(orRoot(actions, root), "actions", "no entry for %s", strings.Join(missing, ", "))
		case len(l.InstanceTypes) == 0:
			p.fail(root, "instance_types", "give at least one instance type")
		case !l.PublicPool.IsValid():
			p.fail(root, "public_pool", "give the prefix floating IPs come from")
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return l, nil
}

func orRoot(n, root *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return root
}

func (p *limitsParser) bucket(n *yaml.Node, f string) Bucket {
	var b Bucket
	p.mapping(n, f, func(key string, k, v *yaml.Node) {
		switch key {
		case "capacity":
			b.Capacity = p.integer(v, f+".capacity", 0)
		case "refill":
			b.Refill = p.float(v, f+".refill")
		default:
			p.fail(k, f+"."+key, "unknown field; a bucket has capacity and refill")
		}
	})
	return b
}

func (p *limitsParser) mapping(n *yaml.Node, f string, each func(key string, k, v *yaml.Node)) {
	if p.err != nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, f, "want a mapping, like {key: value}")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && p.err == nil; i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			p.fail(k, join(f, k.Value), "given twice")
			return
		}
		seen[k.Value] = true
		each(k.Value, k, n.Content[i+1])
	}
}

func join(f, key string) string {
	if f == "" {
		return key
	}
	return f + "." + key
}

func (p *limitsParser) seq(n *yaml.Node, f string, each func(i int, n *yaml.Node)) {
	if p.err != nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, f, "want a list")
		return
	}
	for i, c := range n.Content {
		if p.err != nil {
			return
		}
		each(i, c)
	}
}

func (p *limitsParser) str(n *yaml.Node, f string) string {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		p.fail(n, f, "want a value")
	}
	return n.Value
}

func (p *limitsParser) integer(n *yaml.Node, f string, least int) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < least {
		p.fail(n, f, "%q is not a whole number of at least %d", n.Value, least)
	}
	return v
}

func (p *limitsParser) float(n *yaml.Node, f string) float64 {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
		p.fail(n, f, "%q is not a number of at least 0", n.Value)
	}
	return v
}
