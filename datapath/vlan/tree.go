package vlan

import (
	"sort"
	"sync"
	"sync/atomic"
)

// tree is the fabric's spanning-tree oracle: it knows every inter-switch
// link, hears about port state changes from the switches, and recomputes
// which links forward. Switches read the result through atomics, so the
// userspace runtime may run them on separate goroutines.
type tree struct {
	mu    sync.Mutex
	rank  map[string]int // lower is preferred as root and as parent
	links []*treeLink
	gen   atomic.Uint64 // bumped on every recomputation that changed something
}

type treeLink struct {
	a, b     string
	upA, upB bool
	blocked  atomic.Bool
}

func newTree(rank map[string]int) *tree { return &tree{rank: rank} }

func (t *tree) add(a, b string) *treeLink {
	l := &treeLink{a: a, b: b, upA: true, upB: true}
	t.links = append(t.links, l)
	return l
}

// setEnd records the state of one end of l and recomputes the tree.
func (t *tree) setEnd(l *treeLink, node string, up bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l.a == node {
		l.upA = up
	}
	if l.b == node {
		l.upB = up
	}
	t.compute()
}

// compute builds a breadth-first tree from the best-ranked switch of each
// connected component over the links that are up, preferring better-ranked
// neighbours and then link order: the tree STP converges to with equal
// path costs and bridge IDs given by rank. Every other link is blocked.
func (t *tree) compute() {
	adj := map[string][]*treeLink{}
	var nodes []string
	seen := map[string]bool{}
	for _, l := range t.links {
		for _, n := range []string{l.a, l.b} {
			if !seen[n] {
				seen[n] = true
				nodes = append(nodes, n)
			}
		}
		if l.upA && l.upB {
			adj[l.a] = append(adj[l.a], l)
			adj[l.b] = append(adj[l.b], l)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return t.rank[nodes[i]] < t.rank[nodes[j]] })
	inTree := map[*treeLink]bool{}
	visited := map[string]bool{}
	for _, root := range nodes {
		if visited[root] {
			continue
		}
		visited[root] = true
		queue := []string{root}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			ls := append([]*treeLink(nil), adj[u]...)
			sort.SliceStable(ls, func(i, j int) bool {
				return t.rank[other(ls[i], u)] < t.rank[other(ls[j], u)]
			})
			for _, l := range ls {
				v := other(l, u)
				if visited[v] {
					continue
				}
				visited[v] = true
				inTree[l] = true
				queue = append(queue, v)
			}
		}
	}
	changed := false
	for _, l := range t.links {
		b := !inTree[l]
		if l.blocked.Swap(b) != b {
			changed = true
		}
	}
	if changed {
		t.gen.Add(1)
	}
}

func other(l *treeLink, u string) string {
	if l.a == u {
		return l.b
	}
	return l.a
}

// blockedLinks returns "a-b" for every blocked link whose ends are up.
func (t *tree) blockedLinks() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range t.links {
		if l.blocked.Load() && l.upA && l.upB {
			out = append(out, l.a+"-"+l.b)
		}
	}
	return out
}
