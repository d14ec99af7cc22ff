package spec

import "net/netip"

// RouteType is an EVPN route's type (RFC 7432, RFC 9136), as a scenario
// names it: the same numbers as datapath/evpn's RouteType.
type RouteType uint8

// The EVPN route types a scenario can ask for.
const (
	MACIP              RouteType = 2 // MAC/IP advertisement
	InclusiveMulticast RouteType = 3 // inclusive multicast Ethernet tag
	IPPrefix           RouteType = 5 // IP prefix
)

// BGPSessionsExpect asks that every session of the named speakers (of
// every speaker when Nodes is empty) be established.
type BGPSessionsExpect struct {
	Nodes []string
}

// BGPRouteExpect asks that a route be held by the speakers PresentOn and
// by none of AbsentFrom. The other fields select the route; zero ones
// match anything.
type BGPRouteExpect struct {
	PresentOn, AbsentFrom []string
	Type                  RouteType // 2, 3 or 5; 0: any
	// MAC and IP are an address or the name of an instance, which stands
	// for its own.
	MAC, IP string
	Prefix  netip.Prefix
	// VNI is the L2 VNI (types 2 and 3) or the L3 VNI (type 5); Network,
	// a scenario network standing for its VNI.
	VNI     uint32
	Network string
	// Origin is the node that originated the route (its VTEP is the
	// node's router ID).
	Origin string
	Line   int
}
