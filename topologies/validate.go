package topologies

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Classes of validation problems, checked with errors.Is on the error
// Validate returns.
var (
	ErrDanglingLink   = errors.New("dangling link end")
	ErrDuplicateIface = errors.New("interface used by more than one link")
	ErrDuplicateNode  = errors.New("duplicate node name")
	ErrNoRole         = errors.New("node without a role")
	ErrUnknownRole    = errors.New("unknown role")
	ErrDisconnected   = errors.New("disconnected fabric")
	ErrSelfLoop       = errors.New("self-loop")
	ErrInvalidName    = errors.New("invalid name")
)

// MaxIfaceLen is the longest interface name Linux accepts (IFNAMSIZ-1).
const MaxIfaceLen = 15

// Validate checks the topology and returns every problem found, joined with
// errors.Join, or nil. Each problem names the node or link concerned and
// wraps one of the Err* classes above.
func (t *Topology) Validate() error {
	var errs []error
	add := func(class error, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", class, fmt.Sprintf(format, a...)))
	}

	nodes := map[string]*Node{}
	for i, n := range t.Nodes {
		if n == nil {
			add(ErrInvalidName, "node %d is empty", i)
			continue
		}
		if msg := badName(n.Name); msg != "" {
			add(ErrInvalidName, "node %d %q: %s", i, n.Name, msg)
		}
		if _, dup := nodes[n.Name]; dup {
			add(ErrDuplicateNode, "node %q is defined more than once; rename one of them", n.Name)
			continue
		}
		nodes[n.Name] = n
		switch {
		case n.Role == "":
			add(ErrNoRole, "node %q has no role; set one of %s (label netbed.role in a containerlab file)", n.Name, roleList())
		case !n.Role.Valid():
			add(ErrUnknownRole, "node %q has role %q; use one of %s", n.Name, n.Role, roleList())
		}
	}

	used := map[Endpoint]int{} // endpoint -> index of the first link using it
	for i, l := range t.Links {
		if l == nil {
			add(ErrInvalidName, "link %d is empty", i)
			continue
		}
		desc := fmt.Sprintf("link %d (%s -- %s)", i, l.A, l.B)
		if l.A.Node == l.B.Node && l.A.Node != "" {
			add(ErrSelfLoop, "%s joins node %q to itself", desc, l.A.Node)
		}
		for _, e := range []Endpoint{l.A, l.B} {
			if _, ok := nodes[e.Node]; !ok {
				add(ErrDanglingLink, "%s: node %q is not defined; add the node or fix the endpoint", desc, e.Node)
			}
			if msg := badIface(e.Iface); msg != "" {
				add(ErrInvalidName, "%s: endpoint %s: interface %q: %s", desc, e, e.Iface, msg)
			}
			if first, dup := used[e]; dup {
				add(ErrDuplicateIface, "node %q: interface %q is used by link %d and link %d; give each link its own interface", e.Node, e.Iface, first, i)
			} else {
				used[e] = i
			}
		}
	}

	if cut := t.cutOff(nodes); len(cut) > 0 {
		add(ErrDisconnected, "%d node(s) cannot reach the rest of the fabric: %s; link them or remove them", len(cut), strings.Join(cut, ", "))
	}
	return errors.Join(errs...)
}

// cutOff returns the names of the nodes outside the largest connected
// component (ties go to the component of the earliest node), sorted.
func (t *Topology) cutOff(nodes map[string]*Node) []string {
	if len(nodes) < 2 {
		return nil
	}
	adj := map[string][]string{}
	for _, l := range t.Links {
		if l == nil || nodes[l.A.Node] == nil || nodes[l.B.Node] == nil {
			continue
		}
		adj[l.A.Node] = append(adj[l.A.Node], l.B.Node)
		adj[l.B.Node] = append(adj[l.B.Node], l.A.Node)
	}
	comp := map[string]int{}
	var sizes []int
	for _, n := range t.Nodes {
		if n == nil || comp[n.Name] != 0 {
			continue
		}
		id := len(sizes) + 1
		sizes = append(sizes, 0)
		stack := []string{n.Name}
		comp[n.Name] = id
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			sizes[id-1]++
			for _, nb := range adj[cur] {
				if comp[nb] == 0 {
					comp[nb] = id
					stack = append(stack, nb)
				}
			}
		}
	}
	if len(sizes) < 2 {
		return nil
	}
	main := 1
	for i, s := range sizes {
		if s > sizes[main-1] {
			main = i + 1
		}
	}
	var out []string
	for name, c := range comp {
		if c != main {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func badName(s string) string {
	switch {
	case s == "":
		return "the name is empty"
	case strings.ContainsAny(s, " \t\n/:"):
		return "names may not contain spaces, '/' or ':'"
	}
	return ""
}

func badIface(s string) string {
	if msg := badName(s); msg != "" {
		return msg
	}
	if len(s) > MaxIfaceLen {
		return fmt.Sprintf("Linux interface names have at most %d characters", MaxIfaceLen)
	}
	return ""
}

func roleList() string {
	var s []string
	for _, r := range Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
