package bgpmodel

import (
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
	Node string
	ASN  uint32
	// RouteTargetASN numbers the route targets of what the speaker
	// originates (1..65535; default ASN).
	RouteTargetASN uint32
	RouterID       netip.Addr
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
	// BClient makes A a route reflector for B, AClient B one for A
	// (iBGP). A session between speakers of different ASes is eBGP.
	AClient, BClient bool
	// Delay is the link's propagation delay, which every message pays.
	Delay time.Duration
}

// Design defaults, as on netns (scenarios/netnsrt): both come from
// bgpevpn.NewDesign.
const (
	DefaultASN = bgpevpn.DefaultASN
	LabelASN   = bgpevpn.LabelASN
)

// SessionPool is where the leaf–spine links' /31 session addresses come
// from, in link order, as on netns.
var SessionPool = bgpevpn.SessionPool

// Gen2 is gen 2's design on t as netns runs it (bgpevpn.NewDesign), each
// speaker's router ID its node's loopback (a leaf's VTEP) as fab assigns
// it, a session per leaf–spine link and per link between border leaves
// of two availability zones (each reflecting for the other). iBGP (ebgp false): one AS, the
// spines route reflectors sharing one cluster ID, every leaf a client of
// every spine it has a link to. eBGP (RFC 7938): the spines one AS, each
// leaf its own, route targets in the spines' AS.
func Gen2(t *topologies.Topology, fab *evpn.Fabric, ebgp bool) (Design, error) {
	bd, err := bgpevpn.NewDesign(t, ebgp, fab.Loopback)
	if err != nil {
		return Design{}, err
	}
	var d Design
	for _, s := range bd.Speakers {
		sp := Speaker{Node: s.Node, ASN: s.ASN, RouteTargetASN: bd.RouteTargetASN, RouterID: s.RouterID, ClusterID: s.ClusterID}
		if s.Leaf {
			sp.Leaf, _ = fab.Leaf(s.Node)
		}
		d.Speakers = append(d.Speakers, sp)
	}
	for _, s := range bd.Sessions {
		d.Sessions = append(d.Sessions, Session{A: s.A, B: s.B, AddrA: s.AddrA, AddrB: s.AddrB, AClient: s.AClient, BClient: s.BClient, Delay: s.Delay})
	}
	return d, nil
}

// IBGP is Gen2's iBGP design, the default.
func IBGP(t *topologies.Topology, fab *evpn.Fabric) (Design, error) { return Gen2(t, fab, false) }
