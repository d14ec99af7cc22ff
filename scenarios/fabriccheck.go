package scenarios

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/netbed/netbed/datapath/evpn"
)

// fabricProblems is fabric_consistent: what operators' fabric validations
// (netlab validate, NetQ's checks) look for in the speakers' best paths
// (routes, by node; failed nodes have none):
//
//   - a router ID that two speakers use;
//   - a VNI that two leaves map to different networks (a type-2 route's
//     L2 VNI in different L3 VNIs), or whose routes carry different route
//     targets from different leaves;
//   - a VNI two running leaves both have (each originates its type-3
//     route) where one leaf's routes of that VNI are missing from the
//     other's speaker (it does not import them);
//   - an IP address advertised with two MACs (a duplicate address).
//
// Each problem names the nodes and the route; none means consistent.
func fabricProblems(speakers []BGPSpeaker, routes map[string][]BGPRoute) []string {
	var bad []string
	byID := map[netip.Addr][]string{}
	for _, s := range speakers {
		byID[s.RouterID] = append(byID[s.RouterID], s.Node)
	}
	for _, id := range sortedKeys(byID, netip.Addr.Compare) {
		if len(byID[id]) > 1 {
			bad = append(bad, fmt.Sprintf("router ID conflict: %s is the router ID of %s", id, strings.Join(byID[id], " and ")))
		}
	}
	name := func(vtep netip.Addr) string {
		if ns := byID[vtep]; len(ns) == 1 {
			return ns[0]
		}
		return vtep.String()
	}

	// Every distinct route any speaker holds, with its route targets
	// and the speakers holding it.
	type held struct {
		rts string
		on  []string
	}
	all := map[evpn.Route]*held{}
	for _, s := range speakers {
		for _, r := range routes[s.Node] {
			h := all[r.Route]
			if h == nil {
				h = &held{rts: strings.Join(r.RouteTargets, " ")}
				all[r.Route] = h
			}
			h.on = append(h.on, s.Node)
		}
	}
	rs := sortedKeys(all, func(a, b evpn.Route) int { return strings.Compare(a.String(), b.String()) })

	// A VNI in two networks; route targets that differ between leaves
	// for the same kind of route of the same VNI.
	// (A type-2 route with an IP also carries its L3 VNI's target: its
	// class includes the L3 VNI, which the VNI check compares.)
	type class struct {
		typ   evpn.RouteType
		vni   uint32
		l3vni uint32
	}
	l3 := map[uint32]map[uint32]string{}   // L2 VNI → L3 VNI → first origin
	rtsOf := map[class]map[string]string{} // → route targets → first origin
	for _, r := range rs {
		from := name(r.VTEP)
		if r.Type == evpn.MACIP && r.IP.IsValid() {
			if l3[r.VNI] == nil {
				l3[r.VNI] = map[uint32]string{}
			}
			if _, ok := l3[r.VNI][r.L3VNI]; !ok {
				l3[r.VNI][r.L3VNI] = from
			}
		}
		c := class{typ: r.Type, vni: r.VNI}
		switch {
		case r.Type == evpn.IPPrefix:
			c.vni = r.L3VNI
		case r.IP.IsValid():
			c.l3vni = r.L3VNI
		}
		if rtsOf[c] == nil {
			rtsOf[c] = map[string]string{}
		}
		if _, ok := rtsOf[c][all[r].rts]; !ok {
			rtsOf[c][all[r].rts] = from
		}
	}
	for _, vni := range sortedKeys(l3, cmp.Compare) {
		if m := l3[vni]; len(m) > 1 {
			var parts []string
			for _, x := range sortedKeys(m, cmp.Compare) {
				parts = append(parts, fmt.Sprintf("l3vni %d on %s", x, m[x]))
			}
			bad = append(bad, fmt.Sprintf("VNI inconsistency: vni %d is in different networks: %s", vni, strings.Join(parts, ", ")))
		}
	}
	for _, c := range sortedKeys(rtsOf, func(a, b class) int {
		return cmp.Or(cmp.Compare(a.vni, b.vni), cmp.Compare(a.typ, b.typ), cmp.Compare(a.l3vni, b.l3vni))
	}) {
		if m := rtsOf[c]; len(m) > 1 {
			var parts []string
			for _, rt := range sortedKeys(m, strings.Compare) {
				parts = append(parts, fmt.Sprintf("[%s] from %s", rt, m[rt]))
			}
			bad = append(bad, fmt.Sprintf("route-target inconsistency: %s routes of vni %d carry %s", c.typ, c.vni, strings.Join(parts, ", ")))
		}
	}

	// A VNI two running leaves have: each must hold the other's routes
	// of it.
	type leaf struct {
		node string
		own  []evpn.Route
		vnis map[uint32]bool
		has  map[evpn.Route]bool
	}
	var leaves []leaf
	for _, s := range speakers {
		if !s.Leaf || !s.Running {
			continue
		}
		l := leaf{node: s.Node, vnis: map[uint32]bool{}, has: map[evpn.Route]bool{}}
		for _, r := range routes[s.Node] {
			l.has[r.Route] = true
			if r.VTEP != s.RouterID || r.Type == evpn.IPPrefix {
				continue
			}
			l.own = append(l.own, r.Route)
			if r.Type == evpn.InclusiveMulticast {
				l.vnis[r.VNI] = true
			}
		}
		leaves = append(leaves, l)
	}
	for _, to := range leaves {
		for _, from := range leaves {
			if from.node == to.node {
				continue
			}
			for _, r := range from.own {
				if to.vnis[r.VNI] && from.vnis[r.VNI] && !to.has[r] {
					bad = append(bad, fmt.Sprintf("VNI import: %s lacks %s of %s (both have vni %d)", to.node, r, from.node, r.VNI))
				}
			}
		}
	}

	// An IP address advertised with two MACs.
	type addr struct {
		l3vni uint32
		ip    netip.Addr
	}
	macs := map[addr]map[evpn.MAC][]string{}
	for _, r := range rs {
		if r.Type != evpn.MACIP || !r.IP.IsValid() {
			continue
		}
		a := addr{r.L3VNI, r.IP}
		if macs[a] == nil {
			macs[a] = map[evpn.MAC][]string{}
		}
		macs[a][r.MAC] = append(macs[a][r.MAC], name(r.VTEP))
	}
	for _, a := range sortedKeys(macs, func(x, y addr) int { return cmp.Or(cmp.Compare(x.l3vni, y.l3vni), x.ip.Compare(y.ip)) }) {
		if m := macs[a]; len(m) > 1 {
			var parts []string
			for _, mac := range sortedKeys(m, func(x, y evpn.MAC) int { return strings.Compare(x.String(), y.String()) }) {
				parts = append(parts, fmt.Sprintf("%s from %s", mac, strings.Join(m[mac], ", ")))
			}
			bad = append(bad, fmt.Sprintf("duplicate address: %s (l3vni %d) is advertised with %s", a.ip, a.l3vni, strings.Join(parts, " and ")))
		}
	}
	return bad
}

func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmp)
	return ks
}

// parseMAC parses a 6-byte MAC address.
func parseMAC(s string) (evpn.MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return evpn.MAC{}, fmt.Errorf("%q is not a MAC address like 52:54:00:12:34:56", s)
	}
	return evpn.MACOf(hw), nil
}
