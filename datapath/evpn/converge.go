package evpn

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/topologies"
)

// underlayGraph is the routed part of the topology (spines, leaves and
// border leaves) with each router's ports numbered as in the topology, so
// that routes can be recomputed with some links down without renumbering.
type underlayGraph struct {
	names []string
	idx   map[string]int
	adj   [][]underlayAdj
	loop  map[string]netip.Prefix
}

type underlayAdj struct {
	port, peer, peerPort int
	link                 *topologies.Link
}

func newUnderlayGraph(t *topologies.Topology, loop map[string]netip.Prefix) *underlayGraph {
	g := &underlayGraph{idx: map[string]int{}, loop: loop}
	for _, n := range t.Nodes {
		if l3.IsRouterRole(n.Role) {
			g.idx[n.Name] = len(g.names)
			g.names = append(g.names, n.Name)
		}
	}
	g.adj = make([][]underlayAdj, len(g.names))
	ifaces := map[string][]string{}
	port := func(node, iface string) int {
		if _, ok := ifaces[node]; !ok {
			ifaces[node] = t.Interfaces(node)
		}
		return slices.Index(ifaces[node], iface)
	}
	for _, lk := range t.Links {
		a, aok := g.idx[lk.A.Node]
		b, bok := g.idx[lk.B.Node]
		if !aok || !bok || a == b {
			continue
		}
		pa, pb := port(lk.A.Node, lk.A.Iface), port(lk.B.Node, lk.B.Iface)
		g.adj[a] = append(g.adj[a], underlayAdj{port: pa, peer: b, peerPort: pb, link: lk})
		g.adj[b] = append(g.adj[b], underlayAdj{port: pb, peer: a, peerPort: pa, link: lk})
	}
	return g
}

// routes computes, for every router, ECMP shortest-path routes to every
// loopback over the links that are not down (what the fabric's BGP
// underlay converges to). A router's own loopback is a LocalPort route.
// Next hops are sorted by port, routes by prefix.
func (g *underlayGraph) routes(down map[*topologies.Link]bool) map[string][]l3.Route {
	out := make(map[string][]l3.Route, len(g.names))
	dist := make([]int, len(g.names))
	var queue []int
	dsts := slices.Clone(g.names)
	slices.SortFunc(dsts, func(a, b string) int { return g.loop[a].Addr().Compare(g.loop[b].Addr()) })
	for _, dname := range dsts {
		lo, ok := g.loop[dname]
		if !ok {
			continue
		}
		d := g.idx[dname]
		for i := range dist {
			dist[i] = -1
		}
		dist[d] = 0
		queue = append(queue[:0], d)
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for _, e := range g.adj[x] {
				if !down[e.link] && dist[e.peer] < 0 {
					dist[e.peer] = dist[x] + 1
					queue = append(queue, e.peer)
				}
			}
		}
		for r, name := range g.names {
			switch {
			case r == d:
				out[name] = append(out[name], l3.Route{Prefix: lo, NextHops: []l3.NextHop{{Port: l3.LocalPort}}})
			case dist[r] > 0:
				var nhs []l3.NextHop
				for _, e := range g.adj[r] {
					if !down[e.link] && dist[e.peer] == dist[r]-1 {
						nhs = append(nhs, l3.NextHop{Port: e.port, MAC: l3.PortMAC(g.names[e.peer], e.peerPort)})
					}
				}
				slices.SortFunc(nhs, func(a, b l3.NextHop) int { return a.Port - b.Port })
				nhs = slices.CompactFunc(nhs, func(a, b l3.NextHop) bool { return a.Port == b.Port })
				out[name] = append(out[name], l3.Route{Prefix: lo, NextHops: nhs})
			}
		}
	}
	return out
}

// linkAt returns the topology link on a router's port, or nil.
func (g *underlayGraph) linkAt(node string, port int) *topologies.Link {
	i, ok := g.idx[node]
	if !ok {
		return nil
	}
	for _, e := range g.adj[i] {
		if e.port == port {
			return e.link
		}
	}
	return nil
}

// installUnderlay computes the underlay routes with the links in down
// removed and installs them on every spine and leaf.
func (f *Fabric) installUnderlay() error {
	routes := f.graph.routes(f.linkDown)
	for _, name := range f.graph.names {
		rs := routes[name]
		if s, ok := f.spines[name]; ok {
			if err := s.SetRoutes(rs); err != nil {
				return fmt.Errorf("install underlay on spine %s: %w", name, err)
			}
			continue
		}
		l, ok := f.leaves[name]
		if !ok {
			continue
		}
		l.u.fib = map[uint32]*ecmpGroup{}
		for _, r := range rs {
			var nhs []NextHop
			for _, nh := range r.NextHops {
				if nh.Port != l3.LocalPort {
					nhs = append(nhs, NextHop{Port: nh.Port, MAC: MACOf(nh.MAC)})
				}
			}
			if len(nhs) > 0 {
				if err := l.SetUnderlayRoute(r.Prefix.Addr(), nhs); err != nil {
					return fmt.Errorf("install underlay: %w", err)
				}
			}
		}
	}
	return nil
}

// portChanged is every router's port hook, a leaf's or a spine's at any
// tier (a superspine is a spine): a fabric link going down or up makes the
// underlay reconverge at once (the BGP underlay withdrawing and
// re-advertising the loopbacks behind it), so that no spine keeps
// attracting traffic for a leaf it can no longer reach, nor a superspine
// for a pod. Both ends of a link report it; the second changes nothing.
func (f *Fabric) portChanged(node string, port int, up bool) {
	lk := f.graph.linkAt(node, port)
	if lk == nil || f.linkDown[lk] == !up {
		return
	}
	if up {
		delete(f.linkDown, lk)
	} else {
		f.linkDown[lk] = true
	}
	f.reconverged++
	_ = f.installUnderlay() // routes from the fabric's own graph: always valid
}

// Reconvergences counts underlay recomputations after link changes.
func (f *Fabric) Reconvergences() int { return f.reconverged }
