package l3

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/netbed/netbed/topologies"
)

// ErrUnknownRouter is returned for an attachment at a node that is not a
// router of the topology.
var ErrUnknownRouter = errors.New("not a router of the topology")

// IsRouterRole reports whether role routes IP in a spine-leaf fabric:
// spine, leaf and border.
func IsRouterRole(r topologies.Role) bool {
	return r == topologies.RoleSpine || r == topologies.RoleLeaf || r == topologies.RoleBorder
}

// Attachment is a prefix reachable at a router: a host's pod CIDR or node
// IP at its leaf (Port towards the host, MAC the host NIC's), or one of the
// router's own addresses (Port LocalPort).
type Attachment struct {
	Router string
	Prefix netip.Prefix
	Port   int
	MAC    net.HardwareAddr
}

// Underlay describes what route computation needs to know.
type Underlay struct {
	Topology *topologies.Topology
	// IsRouter selects the routing nodes; nil means IsRouterRole(n.Role).
	IsRouter func(n *topologies.Node) bool
	// PortMAC gives the MAC of a router's port, numbered as in
	// Topology.Interfaces(node); nil means PortMAC (the package function).
	PortMAC func(node string, port int) net.HardwareAddr
	// Attached lists the prefixes and where they attach. A prefix may
	// attach at several routers (anycast, a dual-homed host): each router
	// then routes to the nearest ones.
	Attached []Attachment
	// LinkUp filters the router-to-router links routing may use; nil
	// means all. (Attachments over a failed link are the caller's to
	// leave out.)
	LinkUp func(l *topologies.Link) bool
}

// PortMAC is the default MAC of a router port: locally administered,
// derived from the node name and port number.
func PortMAC(node string, port int) net.HardwareAddr {
	h := fnv32(2166136261, []byte(node))
	return net.HardwareAddr{0x02, byte(h >> 16), byte(h >> 8), byte(h), byte(port >> 8), byte(port)}
}

// Loopbacks assigns a /32 from pool to every router of t, in topology
// order (the first router gets the pool's first address + 1).
func Loopbacks(t *topologies.Topology, isRouter func(*topologies.Node) bool, pool netip.Prefix) (map[string]netip.Prefix, error) {
	if isRouter == nil {
		isRouter = func(n *topologies.Node) bool { return IsRouterRole(n.Role) }
	}
	out := map[string]netip.Prefix{}
	a := pool.Masked().Addr()
	for _, n := range t.Nodes {
		if !isRouter(n) {
			continue
		}
		a = a.Next()
		if !pool.Contains(a) {
			return nil, fmt.Errorf("assign loopbacks from %v: pool too small for the routers of %s", pool, t.Name)
		}
		out[n.Name] = netip.PrefixFrom(a, 32)
	}
	return out, nil
}

type adj struct {
	port     int
	peer     int // router index
	peerPort int
}

// ComputeRoutes returns, for every router, the ECMP shortest-path (hop
// count) routes to every attached prefix. Only router-to-router links
// carry transit traffic. Next hops are sorted by port, routes by prefix.
func ComputeRoutes(u Underlay) (map[string][]Route, error) {
	t := u.Topology
	isRouter := u.IsRouter
	if isRouter == nil {
		isRouter = func(n *topologies.Node) bool { return IsRouterRole(n.Role) }
	}
	portMAC := u.PortMAC
	if portMAC == nil {
		portMAC = PortMAC
	}
	var names []string
	idx := map[string]int{}
	for _, n := range t.Nodes {
		if isRouter(n) {
			idx[n.Name] = len(names)
			names = append(names, n.Name)
		}
	}
	portIdx := func(node, iface string) int { return slices.Index(t.Interfaces(node), iface) }
	adjs := make([][]adj, len(names))
	for _, l := range t.Links {
		a, aok := idx[l.A.Node]
		b, bok := idx[l.B.Node]
		if !aok || !bok || a == b || u.LinkUp != nil && !u.LinkUp(l) {
			continue
		}
		pa, pb := portIdx(l.A.Node, l.A.Iface), portIdx(l.B.Node, l.B.Iface)
		adjs[a] = append(adjs[a], adj{port: pa, peer: b, peerPort: pb})
		adjs[b] = append(adjs[b], adj{port: pb, peer: a, peerPort: pa})
	}
	// Distances from each router that has attachments.
	dist := map[int][]int{}
	bfs := func(src int) []int {
		if d, ok := dist[src]; ok {
			return d
		}
		d := make([]int, len(names))
		for i := range d {
			d[i] = -1
		}
		d[src] = 0
		q := []int{src}
		for len(q) > 0 {
			x := q[0]
			q = q[1:]
			for _, e := range adjs[x] {
				if d[e.peer] < 0 {
					d[e.peer] = d[x] + 1
					q = append(q, e.peer)
				}
			}
		}
		dist[src] = d
		return d
	}
	type att struct {
		router int
		nh     NextHop
	}
	byPrefix := map[netip.Prefix][]att{}
	var prefixes []netip.Prefix
	for _, a := range u.Attached {
		r, ok := idx[a.Router]
		if !ok {
			return nil, fmt.Errorf("attach %v at %q: %w", a.Prefix, a.Router, ErrUnknownRouter)
		}
		if !a.Prefix.Addr().Is4() {
			return nil, fmt.Errorf("attach %v at %q: %w", a.Prefix, a.Router, ErrNotIPv4)
		}
		p := a.Prefix.Masked()
		if _, seen := byPrefix[p]; !seen {
			prefixes = append(prefixes, p)
		}
		byPrefix[p] = append(byPrefix[p], att{router: r, nh: NextHop{Port: a.Port, MAC: a.MAC}})
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := make(map[string][]Route, len(names))
	for _, p := range prefixes {
		atts := byPrefix[p]
		for r := range names {
			best := -1
			for _, a := range atts {
				if d := bfs(a.router)[r]; d >= 0 && (best < 0 || d < best) {
					best = d
				}
			}
			if best < 0 {
				continue
			}
			var nhs []NextHop
			for _, a := range atts {
				d := bfs(a.router)
				if d[r] != best {
					continue
				}
				if best == 0 {
					nhs = append(nhs, a.nh)
					continue
				}
				for _, e := range adjs[r] {
					if d[e.peer] == best-1 {
						nhs = append(nhs, NextHop{Port: e.port, MAC: portMAC(names[e.peer], e.peerPort)})
					}
				}
			}
			nhs = dedupe(nhs)
			out[names[r]] = append(out[names[r]], Route{Prefix: p, NextHops: nhs})
		}
	}
	return out, nil
}

func dedupe(nhs []NextHop) []NextHop {
	slices.SortFunc(nhs, func(a, b NextHop) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.MAC.String(), b.MAC.String())
	})
	return slices.CompactFunc(nhs, func(a, b NextHop) bool { return a.Port == b.Port && a.MAC.String() == b.MAC.String() })
}

// RoutersFor builds a Router for every router of t with ports named and
// numbered as t.Interfaces(node) and MACs from portMAC (nil: PortMAC),
// adds each router's loopback as a local address, and returns them by
// name. Install routes with SetRoutes(ComputeRoutes(...)[name]).
func RoutersFor(t *topologies.Topology, isRouter func(*topologies.Node) bool, portMAC func(string, int) net.HardwareAddr, loopbacks map[string]netip.Prefix) (map[string]*Router, error) {
	if isRouter == nil {
		isRouter = func(n *topologies.Node) bool { return IsRouterRole(n.Role) }
	}
	if portMAC == nil {
		portMAC = PortMAC
	}
	out := map[string]*Router{}
	for _, n := range t.Nodes {
		if !isRouter(n) {
			continue
		}
		var ports []Port
		for i, ifc := range t.Interfaces(n.Name) {
			ports = append(ports, Port{Name: ifc, MAC: portMAC(n.Name, i)})
		}
		r, err := NewRouter(n.Name, ports)
		if err != nil {
			return nil, fmt.Errorf("build routers of %s: %w", t.Name, err)
		}
		if lo, ok := loopbacks[n.Name]; ok {
			r.AddLocal(lo.Addr())
		}
		out[n.Name] = r
	}
	return out, nil
}
