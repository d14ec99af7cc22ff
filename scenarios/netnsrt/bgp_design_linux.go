package netnsrt

import (
	"fmt"
	"strconv"

	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/topologies"
)

// DefaultLeafASN is the first leaf's AS in the eBGP design, unless the
// leaves carry LabelASN: the next leaves count up from it in topology
// order.
const DefaultLeafASN = 65001

// designASNs returns the AS of every spine and leaf of t, and the AS the
// route targets are numbered in (the same on every leaf). iBGP: one AS
// for all (bgpevpn.FabricASN). eBGP (RFC 7938): the spines share one AS (LabelASN
// or DefaultASN, at most 65535: route targets carry it in two bytes), and
// every leaf has its own (LabelASN, or DefaultLeafASN counting up in
// topology order), none equal to another leaf's or the spines'. Every
// problem names the node and the label.
func designASNs(t *topologies.Topology, ebgp bool) (map[string]uint32, uint32, error) {
	isLeaf := func(n *topologies.Node) bool { return n.Role == topologies.RoleLeaf || n.Role == topologies.RoleBorder }
	out := map[string]uint32{}
	if !ebgp {
		asn, err := bgpevpn.FabricASN(t)
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
