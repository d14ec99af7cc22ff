package bgpmodel

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/topologies"
)

// Design is who runs a speaker and who peers with whom: the model's
// input, so that another design (eBGP, gen 3's node speakers) is another
// Design, not another model.
type Design struct {
	Speakers []Speaker // spines first, then leaves, in topology order
	Sessions []Session
}

// Speaker is one node's BGP process.
type Speaker struct {
	Node     string
	ASN      uint32
	RouterID netip.Addr
	// ClusterID is the route-reflection cluster when the speaker has
	// route-reflector clients (default: RouterID).
	ClusterID netip.Addr
	// Leaf is the leaf the speaker feeds (nil for a spine): it exports
	// what it originates to the speaker and imports the speaker's best
	// paths.
	Leaf *evpn.Leaf
}

// Session is one BGP session, over the link between A and B.
type Session struct {
	A, B topologies.Endpoint
	// AddrA and AddrB are the session's addresses on the link's two ends.
	AddrA, AddrB netip.Addr
	// BClient makes A a route reflector for B (iBGP).
	BClient bool
	// Delay is the link's propagation delay, which every message pays.
	Delay time.Duration
}

// Design defaults, as on netns (scenarios/netnsrt): one AS for the
// fabric unless its switches carry LabelASN, session addresses from a
// link-local pool.
const (
	DefaultASN = bgpevpn.DefaultASN
	LabelASN   = bgpevpn.LabelASN
)

// SessionPool is where the leaf–spine links' /31 session addresses come
// from, in link order, as on netns.
var SessionPool = bgpevpn.SessionPool

// IBGP is gen 2's default design on t, the one netns runs: one AS (iBGP),
// the spines route reflectors sharing one cluster ID (the first spine's
// router ID), every leaf a client of every spine it has a link to, each
// speaker's router ID its node's loopback (a leaf's VTEP) as fab assigns
// it, a session per leaf–spine link.
func IBGP(t *topologies.Topology, fab *evpn.Fabric) (Design, error) {
	asn, err := bgpevpn.FabricASN(t)
	if err != nil {
		return Design{}, err
	}
	var d Design
	idx := map[string]int{}
	var cluster netip.Addr
	for _, leaves := range []bool{false, true} {
		for _, n := range t.Nodes {
			isLeaf := n.Role == topologies.RoleLeaf || n.Role == topologies.RoleBorder
			if isLeaf != leaves || (!isLeaf && n.Role != topologies.RoleSpine) {
				continue
			}
			id, ok := fab.Loopback(n.Name)
			if !ok {
				return Design{}, fmt.Errorf("control_plane bgp: node %s: no loopback address for its router ID", n.Name)
			}
			s := Speaker{Node: n.Name, ASN: asn, RouterID: id}
			if isLeaf {
				s.Leaf, _ = fab.Leaf(n.Name)
			} else {
				if !cluster.IsValid() {
					cluster = id
				}
				s.ClusterID = cluster
			}
			idx[n.Name] = len(d.Speakers)
			d.Speakers = append(d.Speakers, s)
		}
	}
	isSpine := func(n string) bool { i, ok := idx[n]; return ok && d.Speakers[i].Leaf == nil }
	isLeaf := func(n string) bool { i, ok := idx[n]; return ok && d.Speakers[i].Leaf != nil }
	next := SessionPool.Masked().Addr()
	peers := map[string]int{}
	for _, lk := range t.Links {
		s, l := lk.A, lk.B
		if !isSpine(s.Node) {
			s, l = l, s
		}
		if !isSpine(s.Node) || !isLeaf(l.Node) {
			continue // not a leaf–spine link
		}
		sa, la := next, next.Next()
		next = la.Next()
		if !SessionPool.Contains(la) {
			return Design{}, fmt.Errorf("control_plane bgp: %s has more leaf–spine links than %s holds", t.Name, SessionPool)
		}
		d.Sessions = append(d.Sessions, Session{A: s, B: l, AddrA: sa, AddrB: la, BClient: true, Delay: lk.Delay})
		peers[s.Node]++
		peers[l.Node]++
	}
	for _, s := range d.Speakers {
		if peers[s.Node] == 0 {
			return Design{}, fmt.Errorf("control_plane bgp: node %s has no leaf–spine link to run a session on", s.Node)
		}
	}
	return d, nil
}
