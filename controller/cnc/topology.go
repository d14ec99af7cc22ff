package cnc

import (
	"sort"

	"github.com/netbed/netbed/topologies"
)

// Attachment is one leaf port a host is wired to.
type Attachment struct {
	Leaf  string // the leaf's node name
	Iface string // the leaf's interface facing the host
}

// wiring is the part of a topology the CNC needs, indexed once.
type wiring struct {
	topo   *topologies.Topology
	leaves map[string][]Attachment // host -> its leaf ports, sorted
	hosts  map[string][]string     // leaf -> hosts wired to it, sorted
	up     map[string][]string     // leaf -> non-host, non-leaf neighbours (spines, borders)
}

func newWiring(t *topologies.Topology) *wiring {
	w := &wiring{topo: t, leaves: map[string][]Attachment{}, hosts: map[string][]string{}, up: map[string][]string{}}
	role := map[string]topologies.Role{}
	for _, n := range t.Nodes {
		role[n.Name] = n.Role
	}
	seenHost := map[[2]string]bool{}
	seenUp := map[[2]string]bool{}
	add := func(host, leaf topologies.Endpoint) {
		w.leaves[host.Node] = append(w.leaves[host.Node], Attachment{Leaf: leaf.Node, Iface: leaf.Iface})
		if k := [2]string{leaf.Node, host.Node}; !seenHost[k] {
			seenHost[k] = true
			w.hosts[leaf.Node] = append(w.hosts[leaf.Node], host.Node)
		}
	}
	addUp := func(leaf, other string) {
		if k := [2]string{leaf, other}; !seenUp[k] {
			seenUp[k] = true
			w.up[leaf] = append(w.up[leaf], other)
		}
	}
	for _, l := range t.Links {
		ra, rb := role[l.A.Node], role[l.B.Node]
		switch {
		case ra == topologies.RoleHost && rb == topologies.RoleLeaf:
			add(l.A, l.B)
		case rb == topologies.RoleHost && ra == topologies.RoleLeaf:
			add(l.B, l.A)
		case ra == topologies.RoleLeaf && rb != topologies.RoleLeaf && rb != topologies.RoleHost:
			addUp(l.A.Node, l.B.Node)
		case rb == topologies.RoleLeaf && ra != topologies.RoleLeaf && ra != topologies.RoleHost:
			addUp(l.B.Node, l.A.Node)
		}
	}
	for h := range w.leaves {
		sort.Slice(w.leaves[h], func(i, j int) bool {
			a, b := w.leaves[h][i], w.leaves[h][j]
			if a.Leaf != b.Leaf {
				return a.Leaf < b.Leaf
			}
			return a.Iface < b.Iface
		})
	}
	for _, m := range []map[string][]string{w.hosts, w.up} {
		for k := range m {
			sort.Strings(m[k])
		}
	}
	return w
}

// leafSet returns the distinct leaves of a host.
func (w *wiring) leafSet(host string) map[string]bool {
	out := map[string]bool{}
	for _, a := range w.leaves[host] {
		out[a.Leaf] = true
	}
	return out
}
