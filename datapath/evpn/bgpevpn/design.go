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
	// Sessions: one per leaf–spine link and per link between border
	// leaves of different availability zones, in link order.
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
	// spine's router ID in their availability zone; a border leaf with
	// sessions to other zones: its own); invalid for everyone else.
	ClusterID netip.Addr
}

// DesignSession is the session over one link. A listens (a spine, or
// the border leaf at the link's A end), B dials. Over a leaf–spine link,
// iBGP: the leaf is the spine's route-reflector client (BClient); eBGP:
// the spine passes EVPN routes on with their next hop unchanged, and the
// leaf advertises its loopback in IPv4 unicast. Between the border
// leaves of two zones (iBGP only) each reflects for the other (AClient
// and BClient), so that a zone's routes, reflected to its border leaves
// by its spines, go on to the other zone's border leaves and from them
// to its spines, next hops unchanged; CLUSTER_LIST cuts the loops.
type DesignSession struct {
	A, B             topologies.Endpoint
	AddrA, AddrB     netip.Addr // the /31 on the link, from SessionPool
	AClient, BClient bool       // B reflects for A; A reflects for B
	Delay            time.Duration
}

// Spine says whether A is a spine: the session is over a leaf–spine
// link.
func (s DesignSession) Spine() bool { return !s.AClient }

// NewDesign designs gen 2's BGP on t: ASNs (DesignASNs), router IDs from
// loopback (the fabric's loopback address of a node), a session per
// leaf–spine link and per link between border leaves of different
// availability zones, with addresses from SessionPool. Every problem
// names the node. The eBGP design takes one zone: its spines share one
// AS, so a route could not cross into another zone's spines.
func NewDesign(t *topologies.Topology, ebgp bool, loopback func(node string) (netip.Addr, bool)) (Design, error) {
	asns, rtASN, err := DesignASNs(t, ebgp)
	if err != nil {
		return Design{}, err
	}
	d := Design{EBGP: ebgp, RouteTargetASN: rtASN}
	role := map[string]bool{} // node: is a leaf
	zone := map[string]string{}
	for _, n := range t.Nodes {
		zone[n.Name] = n.AZ
	}
	interZone := func(lk *topologies.Link) bool {
		a, b := t.Node(lk.A.Node), t.Node(lk.B.Node)
		return a != nil && b != nil && a.Role == topologies.RoleBorder && b.Role == topologies.RoleBorder && a.AZ != b.AZ
	}
	if ebgp {
		for _, lk := range t.Links {
			if interZone(lk) {
				return Design{}, fmt.Errorf("control_plane bgp: bgp.design ebgp: the link %s–%s joins availability zones %s and %s; the eBGP design (the spines one AS) runs one zone, use ibgp", lk.A, lk.B, zone[lk.A.Node], zone[lk.B.Node])
			}
		}
	}
	reflector := map[string]bool{} // border leaves with sessions to other zones
	for _, lk := range t.Links {
		if interZone(lk) {
			reflector[lk.A.Node], reflector[lk.B.Node] = true, true
		}
	}
	cluster := map[string]netip.Addr{} // per zone
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
			switch {
			case !leaves && !ebgp:
				if !cluster[n.AZ].IsValid() {
					cluster[n.AZ] = id
				}
				s.ClusterID = cluster[n.AZ]
			case reflector[n.Name]:
				s.ClusterID = id
			}
			role[n.Name] = leaves
			d.Speakers = append(d.Speakers, s)
		}
	}
	next := SessionPool.Masked().Addr()
	peers := map[string]int{}
	for _, lk := range t.Links {
		s, l := lk.A, lk.B
		ds := DesignSession{BClient: !ebgp, Delay: lk.Delay}
		if interZone(lk) {
			ds.AClient = true
		} else {
			if leaf, ok := role[s.Node]; !ok || leaf {
				s, l = l, s
			}
			if leaf, ok := role[s.Node]; !ok || leaf {
				continue
			}
			if leaf, ok := role[l.Node]; !ok || !leaf {
				continue // not a leaf–spine link
			}
		}
		ds.A, ds.B = s, l
		ds.AddrA, ds.AddrB = next, next.Next()
		next = ds.AddrB.Next()
		if !SessionPool.Contains(ds.AddrB) {
			return Design{}, fmt.Errorf("control_plane bgp: %s has more leaf–spine links than %s holds", t.Name, SessionPool)
		}
		d.Sessions = append(d.Sessions, ds)
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
