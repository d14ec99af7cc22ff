package bgpevpn

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/netbed/netbed/topologies"
)

// The defaults of gen 2's BGP designs, shared by the real speakers
// (scenarios/netnsrt) and the model of them on sim (sim/bgpmodel), which
// build the same fabric from NewDesign.
const (
	// DefaultASN is the fabric's AS (iBGP) or the spines' (eBGP) unless
	// its switches carry LabelASN.
	DefaultASN = 65000
	// DefaultLeafASN is the first leaf's AS in the eBGP design, unless
	// the leaves carry LabelASN: the next leaves count up from it in
	// topology order.
	DefaultLeafASN = 65001
	// LabelASN, on a topology's spines and leaves, sets the fabric's AS
	// number (iBGP: one for all of them) or the node's (eBGP).
	LabelASN = "netbed.asn"
)

// SessionPool is where the leaf–spine links' /31 session addresses come
// from, in link order: link-local, so that they collide with no
// loopback, tenant subnet or anything routed.
var SessionPool = netip.MustParsePrefix("169.254.0.0/16")

// Design is gen 2's BGP control plane for a topology: who runs a
// speaker, in which AS, and the sessions, whatever runs it (real
// speakers on netns, the model on sim).
type Design struct {
	// EBGP: RFC 7938's design (spines one AS, a leaf one each); else
	// iBGP with the spines as route reflectors.
	EBGP bool
	// RouteTargetASN numbers every leaf's route targets (two bytes).
	RouteTargetASN uint32
	// Speakers: spines first, then leaves (and border leaves), each in
	// topology order.
	Speakers []DesignSpeaker
	// Sessions: one per leaf–spine link, in link order.
	Sessions []DesignSession
}

// DesignSpeaker is one switch's speaker.
type DesignSpeaker struct {
	Node string
	Leaf bool // a leaf or border leaf; else a spine
	ASN  uint32
	// RouterID is the node's loopback (a leaf's VTEP address).
	RouterID netip.Addr
	// ClusterID is a route reflector's cluster (iBGP spines: the first
	// spine's router ID); invalid for everyone else.
	ClusterID netip.Addr
}

// DesignSession is the session over one leaf–spine link. iBGP: the
// leaf is the spine's route-reflector client; eBGP: the spine passes
// EVPN routes on with their next hop unchanged, and the leaf advertises
// its loopback in IPv4 unicast.
type DesignSession struct {
	Spine, Leaf         topologies.Endpoint
	SpineAddr, LeafAddr netip.Addr // the /31 on the link, from SessionPool
	Delay               time.Duration
}

// NewDesign designs gen 2's BGP on t: ASNs (DesignASNs), router IDs from
// loopback (the fabric's loopback address of a node), a session per
// leaf–spine link with addresses from SessionPool. Every problem names
// the node.
func NewDesign(t *topologies.Topology, ebgp bool, loopback func(node string) (netip.Addr, bool)) (Design, error) {
	asns, rtASN, err := DesignASNs(t, ebgp)
	if err != nil {
		return Design{}, err
	}
	d := Design{EBGP: ebgp, RouteTargetASN: rtASN}
	role := map[string]bool{} // node: is a leaf
	var cluster netip.Addr
	for _, leaves := range []bool{false, true} {
		for _, n := range t.Nodes {
			if _, ok := asns[n.Name]; !ok || isLeaf(n) != leaves {
				continue
			}
			id, ok := loopback(n.Name)
			if !ok {
				return Design{}, fmt.Errorf("control_plane bgp: node %s: no loopback address for its router ID", n.Name)
			}
			s := DesignSpeaker{Node: n.Name, Leaf: leaves, ASN: asns[n.Name], RouterID: id}
			if !leaves && !ebgp {
				if !cluster.IsValid() {
					cluster = id
				}
				s.ClusterID = cluster
			}
			role[n.Name] = leaves
			d.Speakers = append(d.Speakers, s)
		}
	}
	next := SessionPool.Masked().Addr()
	peers := map[string]int{}
	for _, lk := range t.Links {
		s, l := lk.A, lk.B
		if leaf, ok := role[s.Node]; !ok || leaf {
			s, l = l, s
		}
		if leaf, ok := role[s.Node]; !ok || leaf {
			continue
		}
		if leaf, ok := role[l.Node]; !ok || !leaf {
			continue // not a leaf–spine link
		}
		sa, la := next, next.Next()
		next = la.Next()
		if !SessionPool.Contains(la) {
			return Design{}, fmt.Errorf("control_plane bgp: %s has more leaf–spine links than %s holds", t.Name, SessionPool)
		}
		d.Sessions = append(d.Sessions, DesignSession{Spine: s, Leaf: l, SpineAddr: sa, LeafAddr: la, Delay: lk.Delay})
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

func isLeaf(n *topologies.Node) bool {
	return n.Role == topologies.RoleLeaf || n.Role == topologies.RoleBorder
}

// FabricASN is the AS every spine and leaf of t shares: LabelASN where
// set (the same on all of them), else DefaultASN. Route targets carry it
// in two bytes.
func FabricASN(t *topologies.Topology) (uint32, error) {
	asn, from := uint32(0), ""
	for _, n := range t.Nodes {
		if n.Role != topologies.RoleSpine && !isLeaf(n) {
			continue
		}
		v, ok := n.Labels[LabelASN]
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(v, 10, 32)
		if err != nil || a == 0 || a > 65535 {
			return 0, fmt.Errorf("control_plane bgp: node %s: label %s: %q is not an AS number 1..65535", n.Name, LabelASN, v)
		}
		if asn != 0 && uint32(a) != asn {
			return 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d, but %s has AS %d; the fabric is one AS (iBGP)", n.Name, LabelASN, a, from, asn)
		}
		asn, from = uint32(a), n.Name
	}
	if asn == 0 {
		asn = DefaultASN
	}
	return asn, nil
}

// DesignASNs returns the AS of every spine and leaf of t, and the AS the
// route targets are numbered in (the same on every leaf). iBGP: one AS
// for all (FabricASN). eBGP (RFC 7938): the spines share one AS
// (LabelASN or DefaultASN, at most 65535: route targets carry it in two
// bytes), and every leaf has its own (LabelASN, or DefaultLeafASN
// counting up in topology order), none equal to another leaf's or the
// spines'. Every problem names the node and the label.
func DesignASNs(t *topologies.Topology, ebgp bool) (map[string]uint32, uint32, error) {
	out := map[string]uint32{}
	if !ebgp {
		asn, err := FabricASN(t)
		if err != nil {
			return nil, 0, err
		}
		for _, n := range t.Nodes {
			if n.Role == topologies.RoleSpine || isLeaf(n) {
				out[n.Name] = asn
			}
		}
		return out, asn, nil
	}
	label := func(n *topologies.Node) (uint32, bool, error) {
		v, ok := n.Labels[LabelASN]
		if !ok {
			return 0, false, nil
		}
		a, err := strconv.ParseUint(v, 10, 32)
		if err != nil || a == 0 {
			return 0, false, fmt.Errorf("control_plane bgp: node %s: label %s: %q is not an AS number 1..4294967295 (0 is reserved)", n.Name, LabelASN, v)
		}
		return uint32(a), true, nil
	}
	spineAS, spineFrom := uint32(0), ""
	for _, n := range t.Nodes {
		if n.Role != topologies.RoleSpine {
			continue
		}
		a, ok, err := label(n)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			a = DefaultASN
		}
		if spineFrom != "" && a != spineAS {
			return nil, 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d, but spine %s has AS %d; in the eBGP design (RFC 7938) the spines share one AS", n.Name, LabelASN, a, spineFrom, spineAS)
		}
		if a > 65535 {
			return nil, 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d: the spines' AS numbers the route targets, which carry two bytes; use 1..65535", n.Name, LabelASN, a)
		}
		spineAS, spineFrom = a, n.Name
		out[n.Name] = a
	}
	if spineFrom == "" {
		spineAS = DefaultASN
	}
	// Labelled leaves first, so that the defaults go around them.
	owner := map[uint32]string{}
	for _, n := range t.Nodes {
		if !isLeaf(n) {
			continue
		}
		a, ok, err := label(n)
		switch {
		case err != nil:
			return nil, 0, err
		case !ok:
			continue
		case a == spineAS:
			return nil, 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d is the spines'; in the eBGP design every leaf has an AS of its own", n.Name, LabelASN, a)
		case owner[a] != "":
			return nil, 0, fmt.Errorf("control_plane bgp: node %s: label %s: AS %d is also leaf %s's; in the eBGP design every leaf has an AS of its own", n.Name, LabelASN, a, owner[a])
		}
		owner[a] = n.Name
		out[n.Name] = a
	}
	next := uint32(DefaultLeafASN)
	for _, n := range t.Nodes {
		if !isLeaf(n) || out[n.Name] != 0 {
			continue
		}
		for next == spineAS || owner[next] != "" {
			next++
		}
		owner[next] = n.Name
		out[n.Name] = next
	}
	return out, spineAS, nil
}
