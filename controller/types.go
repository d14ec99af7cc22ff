package controller

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/netbed/netbed/controller/ipam"
)

func fmtAny(v any) string { return fmt.Sprint(v) }

// SegmentType is how a network is isolated on the fabric.
type SegmentType string

const (
	// SegmentVLAN is generation 1: an 802.1Q VLAN ID, 1–4094.
	SegmentVLAN SegmentType = "vlan"
	// SegmentVXLAN is generation 2: a VXLAN VNI, 1–16777215.
	SegmentVXLAN SegmentType = "vxlan"
	// SegmentNone is a routed network without L2 segment (generation 3).
	SegmentNone SegmentType = ""
)

// Segment limits.
const (
	MaxVLAN = 4094
	MaxVNI  = 1<<24 - 1
)

// Segment is a network's L2 segment on the fabric.
type Segment struct {
	Type SegmentType `json:"type,omitempty"`
	ID   uint32      `json:"id,omitempty"`
}

func (s Segment) String() string {
	if s.Type == SegmentNone {
		return "none"
	}
	return fmt.Sprintf("%s:%d", s.Type, s.ID)
}

// Network is an L2 (or routed) network of a tenant.
type Network struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Labels  []string  `json:"labels,omitempty"`
	Tenant  string    `json:"tenant,omitempty"` // tenant / VPC
	Segment Segment   `json:"segment"`
	Created time.Time `json:"created"`
}

// HasLabel reports whether n carries label l.
func (n Network) HasLabel(l string) bool {
	for _, x := range n.Labels {
		if x == l {
			return true
		}
	}
	return false
}

// Subnet is an address range of a network from which ports get addresses.
type Subnet struct {
	ID              string       `json:"id"`
	Network         string       `json:"network"` // network ID
	CIDR            netip.Prefix `json:"cidr"`
	Gateway         netip.Addr   `json:"gateway,omitzero"`
	AllocationPools []ipam.Range `json:"allocation_pools"`
	Created         time.Time    `json:"created"`
}

func (s Subnet) pool() ipam.Pool {
	return ipam.Pool{ID: s.ID, Prefix: s.CIDR, Ranges: s.AllocationPools}
}

// DeviceOwner is what a port plugs in.
type DeviceOwner string

// Device owners.
const (
	OwnerVM        DeviceOwner = "vm"
	OwnerBaremetal DeviceOwner = "baremetal"
	OwnerPod       DeviceOwner = "pod"
)

// Valid reports whether o is a known owner.
func (o DeviceOwner) Valid() bool {
	return o == OwnerVM || o == OwnerBaremetal || o == OwnerPod
}

// FixedIP is one address of a port, with what a host needs to configure it.
type FixedIP struct {
	Subnet  string       `json:"subnet"`           // subnet ID
	Address netip.Addr   `json:"address"`          // the port's address
	Prefix  netip.Prefix `json:"prefix"`           // the subnet's CIDR
	Gateway netip.Addr   `json:"gateway,omitzero"` // the subnet's gateway
}

// Port is an endpoint's attachment to a network: its MAC, addresses, host
// binding and the underlay/overlay state machine.
type Port struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	Network       string       `json:"network"` // network ID
	MAC           string       `json:"mac"`
	IPs           []FixedIP    `json:"ips"`
	Host          string       `json:"host,omitempty"`
	DeviceOwner   DeviceOwner  `json:"device_owner"`
	UnderlayState State        `json:"underlay_state"`
	OverlayState  State        `json:"overlay_state"`
	Transitions   []Transition `json:"transitions,omitempty"`
	Created       time.Time    `json:"created"`
}

// Status is the port's derived state: ACTIVE_ACTIVE when both planes are
// ACTIVE; else ERROR when either is; else BUILD when either is BUILD or
// ACTIVE; else DOWN.
func (p Port) Status() Status { return DeriveStatus(p.UnderlayState, p.OverlayState) }

// Addrs returns the port's addresses.
func (p Port) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(p.IPs))
	for i, ip := range p.IPs {
		out[i] = ip.Address
	}
	return out
}

// Allocation is one address handed out by AllocateBatch or Reserve.
type Allocation struct {
	Network string     `json:"network"` // network ID
	Subnet  string     `json:"subnet"`  // subnet ID
	Address netip.Addr `json:"address"`
	Holder  string     `json:"holder"`
}
