package bgpevpn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/netbed/netbed/datapath/evpn"
)

// ErrNotEVPN is returned for NLRI or messages that carry no EVPN route
// netbed models.
var ErrNotEVPN = errors.New("not an EVPN route netbed models")

// Path is one EVPN route as BGP carries it: the NLRI and, for an
// advertisement, its path attributes (next hop in MP_REACH_NLRI, route
// targets, VXLAN encapsulation, router MAC, PMSI tunnel).
type Path struct {
	NLRI  *bgp.EVPNNLRI
	Attrs []bgp.PathAttributeInterface
}

// Encoding choices, shared by Encode and Decode:
//
//   - RD: type 1, the originating VTEP's address : the VNI's low 16 bits;
//   - Ethernet tag: the L2 VNI (VLAN-aware bundle service), so that a
//     withdrawn type 3 route still names its VNI; 0 for type 5;
//   - labels: the L2 VNI, then the L3 VNI for a type 2 route with an IP
//     (RFC 8365: a VNI in the label field); the L3 VNI for type 5;
//   - route targets AS:VNI for the L2 VNI and the L3 VNI it imports into.

// Encode returns r as a BGP path originated in as.
func Encode(r evpn.Route, as uint16) (Path, error) {
	if err := r.Validate(); err != nil {
		return Path{}, fmt.Errorf("encode: %w", err)
	}
	vni := r.VNI
	if r.Type == evpn.IPPrefix {
		vni = r.L3VNI
	}
	rd := bgp.NewRouteDistinguisherIPAddressAS(r.VTEP.String(), uint16(vni))
	encap := bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN)
	rt := func(v uint32) bgp.ExtendedCommunityInterface {
		return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, as, v, true)
	}
	var nlri *bgp.EVPNNLRI
	comms := []bgp.ExtendedCommunityInterface{rt(vni), encap}
	var extra []bgp.PathAttributeInterface
	switch r.Type {
	case evpn.MACIP:
		labels := []uint32{r.VNI}
		ip := ""
		if r.IP.IsValid() {
			ip = r.IP.String()
			labels = append(labels, r.L3VNI)
			comms = append(comms, rt(r.L3VNI), bgp.NewRoutersMacExtended(r.RouterMAC.String()))
		}
		nlri = bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, r.VNI, r.MAC.String(), ip, labels)
	case evpn.InclusiveMulticast:
		nlri = bgp.NewEVPNMulticastEthernetTagRoute(rd, r.VNI, r.VTEP.String())
		extra = append(extra, bgp.NewPathAttributePmsiTunnel(bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL, false, r.VNI,
			bgp.NewIngressReplTunnelID(r.VTEP.String())))
	case evpn.IPPrefix:
		gw := "0.0.0.0"
		if r.Prefix.Addr().Is6() {
			gw = "::"
		}
		nlri = bgp.NewEVPNIPPrefixRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, uint8(r.Prefix.Bits()),
			r.Prefix.Addr().String(), gw, r.L3VNI)
		comms = append(comms, bgp.NewRoutersMacExtended(r.RouterMAC.String()))
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeMpReachNLRI(r.VTEP.String(), []bgp.AddrPrefixInterface{nlri}),
		bgp.NewPathAttributeExtendedCommunities(comms),
	}
	return Path{NLRI: nlri, Attrs: append(attrs, extra...)}, nil
}

// Decode returns the route a path carries. Without attributes (a
// withdrawal) the VTEP comes from the route distinguisher (type 2, 5) or
// the originating router's address (type 3).
func Decode(p Path) (evpn.Route, error) {
	if p.NLRI == nil {
		return evpn.Route{}, fmt.Errorf("decode: no NLRI: %w", ErrNotEVPN)
	}
	var r evpn.Route
	var nexthop net.IP
	var rmac net.HardwareAddr
	var pmsiLabel uint32
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			nexthop = a.Nexthop
		case *bgp.PathAttributeExtendedCommunities:
			for _, c := range a.Value {
				if m, ok := c.(*bgp.RouterMacExtended); ok {
					rmac = m.Mac
				}
			}
		case *bgp.PathAttributePmsiTunnel:
			pmsiLabel = a.Label
		}
	}
	rdVTEP := func(rd bgp.RouteDistinguisherInterface) netip.Addr {
		if x, ok := rd.(*bgp.RouteDistinguisherIPAddressAS); ok {
			a, _ := netip.AddrFromSlice(x.Admin.To4())
			return a
		}
		return netip.Addr{}
	}
	switch d := p.NLRI.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		r.Type = evpn.MACIP
		if len(d.MacAddress) != 6 || len(d.Labels) == 0 {
			return evpn.Route{}, fmt.Errorf("decode %s: MAC %v, %d labels: %w", d, d.MacAddress, len(d.Labels), ErrNotEVPN)
		}
		r.MAC, r.VNI = evpn.MACOf(d.MacAddress), d.Labels[0]
		if d.IPAddressLength != 0 {
			ip, ok := netip.AddrFromSlice(d.IPAddress)
			if !ok {
				return evpn.Route{}, fmt.Errorf("decode %s: IP %v: %w", d, d.IPAddress, ErrNotEVPN)
			}
			r.IP = ip.Unmap()
			if len(d.Labels) > 1 {
				r.L3VNI = d.Labels[1]
			}
		}
		r.VTEP = rdVTEP(d.RD)
	case *bgp.EVPNMulticastEthernetTagRoute:
		r.Type = evpn.InclusiveMulticast
		r.VNI = d.ETag
		if pmsiLabel != 0 {
			r.VNI = pmsiLabel
		}
		if a, ok := netip.AddrFromSlice(d.IPAddress); ok {
			r.VTEP = a.Unmap()
		}
	case *bgp.EVPNIPPrefixRoute:
		r.Type = evpn.IPPrefix
		a, ok := netip.AddrFromSlice(d.IPPrefix)
		if !ok {
			return evpn.Route{}, fmt.Errorf("decode %s: prefix %v: %w", d, d.IPPrefix, ErrNotEVPN)
		}
		pfx, err := a.Unmap().Prefix(int(d.IPPrefixLength))
		if err != nil {
			return evpn.Route{}, fmt.Errorf("decode %s: %w", d, err)
		}
		r.Prefix, r.L3VNI = pfx, d.Label
		r.VTEP = rdVTEP(d.RD)
	default:
		return evpn.Route{}, fmt.Errorf("decode EVPN route type %d: %w", p.NLRI.RouteType, ErrNotEVPN)
	}
	if nexthop != nil {
		if a, ok := netip.AddrFromSlice(nexthop); ok {
			r.VTEP = a.Unmap()
		}
	}
	if len(rmac) == 6 && (r.Type == evpn.IPPrefix || r.IP.IsValid()) {
		r.RouterMAC = evpn.MACOf(rmac)
	}
	if err := r.Validate(); err != nil {
		return evpn.Route{}, fmt.Errorf("decode: %w", err)
	}
	return r, nil
}

// Update builds a BGP UPDATE message that advertises adds and withdraws
// withdrawn (each in MP_REACH_NLRI / MP_UNREACH_NLRI of the L2VPN EVPN
// family). All adds must share one next hop (one VTEP per message, as a
// VTEP's own speaker sends them).
func Update(adds, withdrawn []evpn.Route, as uint16) (*bgp.BGPMessage, error) {
	var attrs []bgp.PathAttributeInterface
	if len(adds) > 0 {
		var nlri []bgp.AddrPrefixInterface
		var comms []bgp.ExtendedCommunityInterface
		seen := map[string]bool{}
		var pmsi bgp.PathAttributeInterface
		for _, r := range adds {
			if r.VTEP != adds[0].VTEP {
				return nil, fmt.Errorf("build update: routes from %s and %s: one next hop per message", adds[0].VTEP, r.VTEP)
			}
			p, err := Encode(r, as)
			if err != nil {
				return nil, fmt.Errorf("build update: %w", err)
			}
			nlri = append(nlri, p.NLRI)
			for _, a := range p.Attrs {
				switch a := a.(type) {
				case *bgp.PathAttributeExtendedCommunities:
					for _, c := range a.Value {
						if k := c.String(); !seen[k] {
							seen[k] = true
							comms = append(comms, c)
						}
					}
				case *bgp.PathAttributePmsiTunnel:
					pmsi = a
				}
			}
		}
		attrs = append(attrs, bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
			bgp.NewPathAttributeMpReachNLRI(adds[0].VTEP.String(), nlri),
			bgp.NewPathAttributeExtendedCommunities(comms))
		if pmsi != nil && len(adds) == 1 {
			attrs = append(attrs, pmsi)
		}
	}
	if len(withdrawn) > 0 {
		var nlri []bgp.AddrPrefixInterface
		for _, r := range withdrawn {
			p, err := Encode(r, as)
			if err != nil {
				return nil, fmt.Errorf("build update: withdraw: %w", err)
			}
			nlri = append(nlri, p.NLRI)
		}
		attrs = append(attrs, bgp.NewPathAttributeMpUnreachNLRI(nlri))
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nil), nil
}

// Routes returns the EVPN routes an UPDATE message advertises and
// withdraws. Routes of other families are ignored.
func Routes(msg *bgp.BGPMessage) (adds, withdrawn []evpn.Route, err error) {
	u, ok := msg.Body.(*bgp.BGPUpdate)
	if !ok {
		return nil, nil, fmt.Errorf("read update: message type %d: %w", msg.Header.Type, ErrNotEVPN)
	}
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			for _, n := range a.Value {
				e, ok := n.(*bgp.EVPNNLRI)
				if !ok {
					continue
				}
				r, err := Decode(Path{NLRI: e, Attrs: u.PathAttributes})
				if err != nil {
					return nil, nil, fmt.Errorf("read update: %w", err)
				}
				adds = append(adds, r)
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			for _, n := range a.Value {
				e, ok := n.(*bgp.EVPNNLRI)
				if !ok {
					continue
				}
				r, err := Decode(Path{NLRI: e})
				if err != nil {
					return nil, nil, fmt.Errorf("read update: withdraw: %w", err)
				}
				withdrawn = append(withdrawn, r)
			}
		}
	}
	return adds, withdrawn, nil
}

// Apply applies an UPDATE message to table: withdrawals first, then
// advertisements.
func Apply(table *evpn.RouteTable, msg *bgp.BGPMessage) error {
	adds, withdrawn, err := Routes(msg)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range withdrawn {
		if err := table.Withdraw(r); err != nil && !errors.Is(err, evpn.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	for _, r := range adds {
		if err := table.Add(r); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("apply update: %w", err)
	}
	return nil
}
