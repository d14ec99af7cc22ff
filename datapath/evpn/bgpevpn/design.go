package bgpevpn

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/netbed/netbed/topologies"
)

// The defaults of gen 2's iBGP design, shared by the real speakers
// (scenarios/netnsrt) and the model of them on sim (sim/bgpmodel), which
// must build the same fabric.
const (
	// DefaultASN is the fabric's AS unless its switches carry LabelASN.
	DefaultASN = 65000
	// LabelASN, on a topology's spines and leaves, sets the fabric's AS
	// number (one for all of them: the design is iBGP).
	LabelASN = "netbed.asn"
)

// SessionPool is where the leaf–spine links' /31 session addresses come
// from, in link order: link-local, so that they collide with no
// loopback, tenant subnet or anything routed.
var SessionPool = netip.MustParsePrefix("169.254.0.0/16")

// FabricASN is the AS every spine and leaf of t shares: LabelASN where
// set (the same on all of them), else DefaultASN. Route targets carry it
// in two bytes.
func FabricASN(t *topologies.Topology) (uint32, error) {
	asn, from := uint32(0), ""
	for _, n := range t.Nodes {
		if n.Role != topologies.RoleSpine && n.Role != topologies.RoleLeaf && n.Role != topologies.RoleBorder {
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
