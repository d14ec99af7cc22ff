package ovs

import (
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/netbed/netbed/topologies"
)

// Device names this package creates. A host's are Fig. 5's, with the
// patch pair named as OpenStack's OVS agent names it for a bridge
// br-bond (int-br-bond on br-int, phy-br-bond on br-bond).
const (
	DevBrInt     = "br-int"
	DevBrBond    = "br-bond"
	DevPatchInt  = "int-br-bond" // br-int's end of the patch pair
	DevPatchBond = "phy-br-bond" // br-bond's end
	DevBond      = "bond0"       // the bond port of br-bond
	// DevSwitch is the Linux bridge of every ToR, aggregation and core
	// switch.
	DevSwitch = "br0"
	// DevBrGW is the gateway core's OVS bridge holding the gateways; it
	// hangs off the core's DevSwitch by the pair DevGWTrunk (a port of
	// DevSwitch) - DevGWOVS (a trunk port of DevBrGW): OVS patch ports,
	// or a veth pair when DevSwitch is a Linux bridge.
	DevBrGW    = "br-gw"
	DevGWTrunk = "gw-trunk"
	DevGWOVS   = "gw-ovs"
	// PrefixSVI names a gateway's internal port: vlan<VID>.
	PrefixSVI = "vlan"
	// Stock OpenStack's per-instance devices: qbr<inst>, qvb<inst>,
	// qvo<inst> (the model's names; shortened with a hash when longer
	// than Linux's 15 characters).
	PrefixQbr = "qbr-"
	PrefixQvb = "qvb-"
	PrefixQvo = "qvo-"
)

// Spanning-tree timers of the switches' Linux bridges, the shortest the
// kernel's 802.1D accepts: a port forwards 2 x ForwardDelay after it
// comes up, and a bridge that stops hearing its root port's BPDUs
// reconverges after MaxAge + 2 x ForwardDelay.
const (
	ForwardDelayCS = 200 // centiseconds
	HelloTimeCS    = 100
	MaxAgeCS       = 600
)

// Errors callers test with errors.Is.
var (
	ErrModel       = errors.New("model is not a gen-1 (datapath/vlan) fabric")
	ErrNotBuilt    = errors.New("fabric not built")
	ErrUnknownPort = errors.New("unknown port")
)

// Priority returns the spanning-tree bridge priority of a switch: the
// gateway core 0, the root, as the model roots its tree there; then by
// tier (core, aggregation, ToR/access) and topology order, so that the
// kernel's tree prefers the neighbours the model's tree prefers.
func Priority(role topologies.Role, index int, gatewayCore bool) int {
	if gatewayCore {
		return 0
	}
	tier := 3
	switch role {
	case topologies.RoleCore:
		tier = 1
	case topologies.RoleAggregation:
		tier = 2
	}
	if index > 4095 {
		index = 4095
	}
	return tier*4096 + index
}

// DevName returns prefix+inst when it fits Linux's 15-character limit,
// otherwise prefix, the start of inst and a hash of inst (15 characters).
func DevName(prefix, inst string) string {
	if len(prefix)+len(inst) <= 15 {
		return prefix + inst
	}
	h := fnv.New32a()
	h.Write([]byte(inst))
	keep := max(0, 15-len(prefix)-8)
	return fmt.Sprintf("%s%s%08x", prefix, inst[:keep], h.Sum32())
}

// isSwitch reports whether r is a role this package realises as a Linux
// bridge.
func isSwitch(r topologies.Role) bool {
	switch r {
	case topologies.RoleToR, topologies.RoleAccess, topologies.RoleAggregation, topologies.RoleCore:
		return true
	}
	return false
}
