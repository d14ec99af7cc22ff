package bridge

import (
	"errors"
	"fmt"
)

// Device names on a leaf.
const (
	// DevAccess is the leaf's OVS bridge holding the host trunks and
	// one internal port per (access port, VLAN).
	DevAccess = "br-acc"
	// PrefixBridge and PrefixVXLAN name a VNI's bridge and VXLAN device
	// (br100, vx100; the L3 VNI's too: br50001, vx50001).
	PrefixBridge = "br"
	PrefixVXLAN  = "vx"
)

// PortVXLAN is the IANA VXLAN port, the default.
const PortVXLAN = 4789

// RulePriority is the priority of the ip rules selecting a tenant's
// table (before the main table's 32766).
const RulePriority = 1000

// Errors callers test with errors.Is.
var (
	ErrModel    = errors.New("model is not a gen-2 (datapath/evpn) fabric")
	ErrNotBuilt = errors.New("fabric not built")
)

// Options tune a Fabric. The zero value is the default.
type Options struct {
	// VXLANPort is the VXLAN devices' UDP port (0: PortVXLAN).
	VXLANPort int
}

// BridgeName is VNI vni's bridge.
func BridgeName(vni uint32) string { return fmt.Sprintf("%s%d", PrefixBridge, vni) }

// VXLANName is VNI vni's VXLAN device.
func VXLANName(vni uint32) string { return fmt.Sprintf("%s%d", PrefixVXLAN, vni) }

// AccessName is the leaf's internal port for VLAN vid on its port index
// port (an index in the topology's interfaces of the leaf).
func AccessName(port int, vid uint16) string { return fmt.Sprintf("a%dv%d", port, vid) }
