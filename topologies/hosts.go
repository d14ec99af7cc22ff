package topologies

import (
	"fmt"
	"regexp"
	"strconv"
)

// AddHostsPerLeaf puts perLeaf new hosts below every leaf (and ToR) of t,
// as SpineLeaf does for its own leaves: a linux host (DefaultKind,
// DefaultImage) named hostN, numbered on from the highest hostN already in
// t, linked from its eth1 to the leaf's next free interface at 25G and the
// host MTU. A leaf without a rack gets rackN (its place among the leaves)
// and shares it with its hosts. It is the way to make a fabric that came
// without servers, such as one from containerlab generate, carry
// instances. It returns the hosts it added.
func AddHostsPerLeaf(t *Topology, perLeaf int) ([]*Node, error) {
	if perLeaf < 0 {
		return nil, fmt.Errorf("%w: hosts per leaf must not be negative (got %d)", ErrBadParams, perLeaf)
	}
	var leaves []*Node
	for _, n := range t.Nodes {
		if n.Role == RoleLeaf || n.Role == RoleToR {
			leaves = append(leaves, n)
		}
	}
	if perLeaf > 0 && len(leaves) == 0 {
		return nil, fmt.Errorf("%w: topology %s has no leaf or ToR to put hosts below", ErrBadParams, t.Name)
	}
	next := 0
	for _, n := range t.Nodes {
		if m := hostName.FindStringSubmatch(n.Name); m != nil {
			k, _ := strconv.Atoi(m[1])
			next = max(next, k)
		}
	}
	var added []*Node
	for i, leaf := range leaves {
		if leaf.Rack == "" && perLeaf > 0 {
			leaf.Rack = fmt.Sprintf("rack%d", i+1)
		}
		for range perLeaf {
			next++
			h := t.AddNode(fmt.Sprintf("host%d", next), RoleHost)
			h.Kind, h.Image, h.Rack, h.AZ = DefaultKind, DefaultImage, leaf.Rack, leaf.AZ
			l := t.Connect(h.Name, "eth1", leaf.Name, nextIface(t, leaf.Name))
			l.Rate, l.MTU = Rate25G, HostMTU
			added = append(added, h)
		}
	}
	return added, nil
}

var (
	hostName    = regexp.MustCompile(`^host(\d+)$`)
	numberedIfc = regexp.MustCompile(`^(.*?)(\d+)$`)
)

// nextIface names the interface after node's highest numbered one in the
// same style ("e1-2" -> "e1-3", "eth4" -> "eth5"); eth1 on a node without
// links.
func nextIface(t *Topology, node string) string {
	prefix, top := "", -1
	for _, name := range t.Interfaces(node) {
		m := numberedIfc.FindStringSubmatch(name)
		if m == nil || (top >= 0 && m[1] != prefix) {
			continue
		}
		k, _ := strconv.Atoi(m[2])
		if top < 0 || k > top {
			prefix, top = m[1], k
		}
	}
	if top < 0 {
		return "eth1"
	}
	return prefix + strconv.Itoa(top+1)
}
