package clab

import (
	"bytes"
	"fmt"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/topologies"
)

// header opens every file netbed writes; editors that understand the
// yaml-language-server comment validate the file against containerlab's
// schema.
const header = `# yaml-language-server: $schema=https://raw.githubusercontent.com/srl-labs/containerlab/main/schemas/clab.schema.json
# Written by netbed. Node labels netbed.role, netbed.az and netbed.rack and
# link vars netbed.rate and netbed.delay carry what containerlab has no field for.
`

// Write renders t as a containerlab topology file. The output is
// deterministic (nodes and links in topology order, labels sorted), uses
// the brief link form, validates against containerlab's JSON schema, and
// reads back to the same topology, so write, read, write gives the same
// bytes. A kind or image shared by every node goes to topology.defaults.
func Write(t *topologies.Topology) ([]byte, error) {
	root := mapping()
	add(root, "name", str(t.Name))
	if t.Prefix != nil {
		add(root, "prefix", str(*t.Prefix))
	}
	if err := addExtra(root, t.Extra, "name", "prefix", "topology"); err != nil {
		return nil, fmt.Errorf("write topology %q: %w", t.Name, err)
	}
	topo := mapping()
	add(root, "topology", topo)

	kind, image := common(t, func(n *topologies.Node) string { return n.Kind }), common(t, func(n *topologies.Node) string { return n.Image })
	if kind != "" || image != "" {
		defaults := mapping()
		if kind != "" {
			add(defaults, "kind", str(kind))
		}
		if image != "" {
			add(defaults, "image", str(image))
		}
		add(topo, "defaults", defaults)
	}

	nodes := mapping()
	for _, n := range t.Nodes {
		if n == nil {
			return nil, fmt.Errorf("write topology %q: nil node", t.Name)
		}
		nm := mapping()
		if kind == "" && n.Kind != "" {
			add(nm, "kind", str(n.Kind))
		}
		if image == "" && n.Image != "" {
			add(nm, "image", str(n.Image))
		}
		if n.Role != "" {
			add(nm, "group", str(string(n.Role)))
		}
		labels := map[string]string{}
		for k, v := range n.Labels {
			labels[k] = v
		}
		set := func(k, v string) {
			if v != "" {
				labels[k] = v
			} else {
				delete(labels, k)
			}
		}
		set(LabelRole, string(n.Role))
		set(LabelAZ, n.AZ)
		set(LabelRack, n.Rack)
		set(LabelSite, n.Site)
		if len(labels) > 0 {
			add(nm, "labels", sortedMap(labels))
		}
		if err := addExtra(nm, n.Extra, "kind", "image", "group", "labels"); err != nil {
			return nil, fmt.Errorf("write topology %q: node %q: %w", t.Name, n.Name, err)
		}
		if len(nm.Content) == 0 {
			nm.Style = yaml.FlowStyle
		}
		add(nodes, n.Name, nm)
	}
	add(topo, "nodes", nodes)

	if len(t.Links) > 0 {
		links := &yaml.Node{Kind: yaml.SequenceNode}
		for _, l := range t.Links {
			if l == nil {
				return nil, fmt.Errorf("write topology %q: nil link", t.Name)
			}
			lm := mapping()
			eps := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, e := range []topologies.Endpoint{l.A, l.B} {
				s := str(e.String())
				s.Style = yaml.DoubleQuotedStyle
				eps.Content = append(eps.Content, s)
			}
			add(lm, "endpoints", eps)
			if l.MTU != 0 {
				add(lm, "mtu", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(l.MTU)})
			}
			vars := map[string]string{}
			if l.Rate != 0 {
				vars[VarRate] = topologies.FormatRate(l.Rate)
			}
			if l.Delay != 0 {
				vars[VarDelay] = topologies.FormatDelay(l.Delay)
			}
			if len(vars) > 0 {
				add(lm, "vars", sortedMap(vars))
			}
			links.Content = append(links.Content, lm)
		}
		add(topo, "links", links)
	}

	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("write topology %q: %w", t.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write topology %q: %w", t.Name, err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes t to path as a containerlab file.
func WriteFile(path string, t *topologies.Topology) error {
	b, err := Write(t)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write topology file: %w", err)
	}
	return nil
}

// common returns the value every node shares, or "".
func common(t *topologies.Topology, get func(*topologies.Node) string) string {
	if len(t.Nodes) == 0 || t.Nodes[0] == nil {
		return ""
	}
	v := get(t.Nodes[0])
	for _, n := range t.Nodes[1:] {
		if n == nil || get(n) != v {
			return ""
		}
	}
	return v
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func sortedMap(m map[string]string) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := mapping()
	for _, k := range keys {
		add(out, k, str(m[k]))
	}
	return out
}

// addExtra appends fields carried from a containerlab file, sorted by key;
// none may be one of the fields netbed writes itself.
func addExtra(m *yaml.Node, extra map[string]any, own ...string) error {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if slices.Contains(own, k) {
			return fmt.Errorf("extra field %q clashes with the field netbed writes; set it through the topology instead", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var v yaml.Node
		if err := v.Encode(extra[k]); err != nil {
			return fmt.Errorf("field %s: %w", k, err)
		}
		add(m, k, &v)
	}
	return nil
}
