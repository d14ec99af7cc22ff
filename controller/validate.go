package controller

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/netbed/netbed/controller/ipam"
)

// MaxNameLen bounds network, port and label names.
const MaxNameLen = 128

func validName(field, s string) error {
	if s == "" {
		return &FieldError{Field: field, Value: s, Reason: "must not be empty"}
	}
	if len(s) > MaxNameLen {
		return &FieldError{Field: field, Value: s[:16] + "...", Reason: fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:@", r)
		if !ok {
			return &FieldError{Field: field, Value: s, Reason: fmt.Sprintf("character %q not allowed (use letters, digits and - _ . : @)", r)}
		}
	}
	return nil
}

func validateSegment(s Segment) error {
	switch s.Type {
	case SegmentVLAN:
		if s.ID < 1 || s.ID > MaxVLAN {
			return &FieldError{Field: "segment.id", Value: s.ID, Reason: fmt.Sprintf("VLAN ID must be 1–%d (0 and 4095 are reserved by 802.1Q)", MaxVLAN)}
		}
	case SegmentVXLAN:
		if s.ID < 1 || s.ID > MaxVNI {
			return &FieldError{Field: "segment.id", Value: s.ID, Reason: fmt.Sprintf("VXLAN VNI must be 1–%d", MaxVNI)}
		}
	case SegmentNone:
		if s.ID != 0 {
			return &FieldError{Field: "segment.type", Value: "", Reason: fmt.Sprintf("segment ID %d given without a type; set type vlan or vxlan", s.ID)}
		}
	default:
		return &FieldError{Field: "segment.type", Value: string(s.Type), Reason: `want "vlan" (generation 1), "vxlan" (generation 2) or empty (routed)`}
	}
	return nil
}

// NetworkRequest asks for a network.
type NetworkRequest struct {
	Name    string   `json:"name"`
	Labels  []string `json:"labels,omitempty"`
	Tenant  string   `json:"tenant,omitempty"`
	Segment Segment  `json:"segment"`
}

func (r *NetworkRequest) validate() error {
	if err := validName("name", r.Name); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, l := range r.Labels {
		if err := validName(fmt.Sprintf("labels[%d]", i), l); err != nil {
			return err
		}
		if seen[l] {
			return &FieldError{Field: fmt.Sprintf("labels[%d]", i), Value: l, Reason: "listed twice"}
		}
		seen[l] = true
	}
	if r.Tenant != "" {
		if err := validName("tenant", r.Tenant); err != nil {
			return err
		}
	}
	return validateSegment(r.Segment)
}

// SubnetRequest asks for a subnet of a network. A zero Gateway means the
// first address after the network address; NoGateway leaves the subnet
// without one. Empty AllocationPools means every usable address but the
// gateway.
type SubnetRequest struct {
	Network         string       `json:"network"` // name or ID
	CIDR            netip.Prefix `json:"cidr"`
	Gateway         netip.Addr   `json:"gateway,omitzero"`
	NoGateway       bool         `json:"no_gateway,omitempty"`
	AllocationPools []ipam.Range `json:"allocation_pools,omitempty"`
}

// buildSubnet validates r and fills in defaults.
func (r *SubnetRequest) buildSubnet() (Subnet, error) {
	if r.Network == "" {
		return Subnet{}, &FieldError{Field: "network", Value: "", Reason: "name the network the subnet belongs to"}
	}
	if !r.CIDR.IsValid() {
		return Subnet{}, &FieldError{Field: "cidr", Value: nil, Reason: "want a CIDR such as 10.0.0.0/24 or fd00::/64"}
	}
	if r.CIDR.Masked() != r.CIDR {
		return Subnet{}, &FieldError{Field: "cidr", Value: r.CIDR.String(), Reason: fmt.Sprintf("host bits set; did you mean %v?", r.CIDR.Masked())}
	}
	def, ok := ipam.DefaultRange(r.CIDR)
	if !ok {
		return Subnet{}, &FieldError{Field: "cidr", Value: r.CIDR.String(), Reason: "too small to hold any address (IPv4 needs /30 or shorter)"}
	}
	s := Subnet{CIDR: r.CIDR}
	if !r.NoGateway {
		gw := r.Gateway
		if !gw.IsValid() {
			gw = def.Start
		}
		if !def.Contains(gw) {
			return Subnet{}, &FieldError{Field: "gateway", Value: gw.String(), Reason: fmt.Sprintf("outside %v's usable addresses %v", r.CIDR, def)}
		}
		s.Gateway = gw
	} else if r.Gateway.IsValid() {
		return Subnet{}, &FieldError{Field: "gateway", Value: r.Gateway.String(), Reason: "given together with no_gateway"}
	}
	pools := append([]ipam.Range(nil), r.AllocationPools...)
	if len(pools) == 0 {
		pools = []ipam.Range{def}
		if s.Gateway.IsValid() {
			pools = splitAround(def, s.Gateway)
		}
	} else {
		for i, p := range pools {
			if err := p.Validate(r.CIDR); err != nil {
				return Subnet{}, &FieldError{Field: fmt.Sprintf("allocation_pools[%d]", i), Value: p.String(), Reason: err.Error()}
			}
			if !def.Contains(p.Start) || !def.Contains(p.End) {
				return Subnet{}, &FieldError{Field: fmt.Sprintf("allocation_pools[%d]", i), Value: p.String(), Reason: fmt.Sprintf("includes the network or broadcast address; keep within %v", def)}
			}
			if s.Gateway.IsValid() && p.Contains(s.Gateway) {
				return Subnet{}, &FieldError{Field: fmt.Sprintf("allocation_pools[%d]", i), Value: p.String(), Reason: fmt.Sprintf("contains the gateway %v", s.Gateway)}
			}
		}
		sort.Slice(pools, func(i, j int) bool { return pools[i].Start.Less(pools[j].Start) })
		for i := 1; i < len(pools); i++ {
			if pools[i-1].Overlaps(pools[i]) {
				return Subnet{}, &FieldError{Field: "allocation_pools", Value: pools[i].String(), Reason: fmt.Sprintf("overlaps pool %v", pools[i-1])}
			}
		}
	}
	if len(pools) == 0 {
		return Subnet{}, &FieldError{Field: "allocation_pools", Value: nil, Reason: "no address left once the gateway is taken; use a larger CIDR"}
	}
	s.AllocationPools = pools
	return s, nil
}

// splitAround returns r without a.
func splitAround(r ipam.Range, a netip.Addr) []ipam.Range {
	if !r.Contains(a) {
		return []ipam.Range{r}
	}
	var out []ipam.Range
	if a != r.Start {
		out = append(out, ipam.Range{Start: r.Start, End: a.Prev()})
	}
	if a != r.End {
		out = append(out, ipam.Range{Start: a.Next(), End: r.End})
	}
	return out
}

// PortRequest asks for a port. Exactly one of Network and Label is set:
// Label picks the first network carrying it (by name) that still has room.
// Without IP the port gets the next free address of each IP family its
// network has; with IP it gets that address. Host, if set, binds the port.
type PortRequest struct {
	Name        string      `json:"name"`
	Network     string      `json:"network,omitempty"` // name or ID
	Label       string      `json:"label,omitempty"`
	DeviceOwner DeviceOwner `json:"device_owner,omitempty"` // default vm
	Host        string      `json:"host,omitempty"`
	MAC         string      `json:"mac,omitempty"`
	IP          netip.Addr  `json:"ip,omitzero"`
	// Underlay, when its State is set, is the host's report of the
	// port's underlay, recorded in the transaction that creates or binds
	// the port: a CNI plugin's BUILD as it starts wiring, one durable
	// write fewer than a SetUnderlayState after. It needs Host; its own
	// Host, if set, must be the same.
	Underlay StateUpdate `json:"underlay,omitzero"`
}

func (r *PortRequest) validate() error {
	if err := validName("name", r.Name); err != nil {
		return err
	}
	switch {
	case r.Network == "" && r.Label == "":
		return &FieldError{Field: "network", Value: "", Reason: "set network or label"}
	case r.Network != "" && r.Label != "":
		return &FieldError{Field: "label", Value: r.Label, Reason: "set network or label, not both"}
	}
	if r.DeviceOwner == "" {
		r.DeviceOwner = OwnerVM
	}
	if !r.DeviceOwner.Valid() {
		return &FieldError{Field: "device_owner", Value: string(r.DeviceOwner), Reason: "want vm, baremetal or pod"}
	}
	if r.Host != "" {
		if err := validName("host", r.Host); err != nil {
			return err
		}
	}
	if r.Underlay != (StateUpdate{}) {
		switch {
		case r.Host == "":
			return &FieldError{Field: "underlay", Value: string(r.Underlay.State), Reason: "a report needs the port bound: set host"}
		case r.Underlay.Host != "" && r.Underlay.Host != r.Host:
			return &FieldError{Field: "underlay.host", Value: r.Underlay.Host, Reason: fmt.Sprintf("differs from the port's host, %q", r.Host)}
		case !r.Underlay.State.Valid():
			return &FieldError{Field: "underlay.state", Value: string(r.Underlay.State), Reason: "want DOWN, BUILD, ACTIVE or ERROR"}
		}
	}
	if r.MAC != "" {
		m, err := normalMAC(r.MAC)
		if err != nil {
			return err
		}
		r.MAC = m
	}
	return nil
}

func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", &FieldError{Field: "mac", Value: s, Reason: "want a 6-byte MAC such as 02:00:0a:00:00:05"}
	}
	if hw[0]&1 != 0 {
		return "", &FieldError{Field: "mac", Value: s, Reason: "multicast MAC; the first byte must be even"}
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", &FieldError{Field: "mac", Value: s, Reason: "all-zero MAC"}
	}
	return hw.String(), nil
}

// AllocRequest asks for Count addresses (default 1) of one IP family in a
// network or in any networks carrying a label, held by Holder.
type AllocRequest struct {
	Network string `json:"network,omitempty"`
	Label   string `json:"label,omitempty"`
	Count   int    `json:"count,omitempty"`
	Family  int    `json:"family,omitempty"` // 4 or 6; 0: IPv4 if there is any
	Holder  string `json:"holder"`
}

// MaxBatch caps one batch allocation.
const MaxBatch = 65536

func (r *AllocRequest) validate() error {
	switch {
	case r.Network == "" && r.Label == "":
		return &FieldError{Field: "network", Value: "", Reason: "set network or label"}
	case r.Network != "" && r.Label != "":
		return &FieldError{Field: "label", Value: r.Label, Reason: "set network or label, not both"}
	}
	if r.Count == 0 {
		r.Count = 1
	}
	if r.Count < 0 || r.Count > MaxBatch {
		return &FieldError{Field: "count", Value: r.Count, Reason: fmt.Sprintf("want 1–%d", MaxBatch)}
	}
	if r.Family != 0 && r.Family != 4 && r.Family != 6 {
		return &FieldError{Field: "family", Value: r.Family, Reason: "want 4 or 6"}
	}
	return validHolder(r.Holder)
}

func validHolder(h string) error {
	if err := validName("holder", h); err != nil {
		return err
	}
	if strings.HasPrefix(h, portHolderPrefix) {
		return &FieldError{Field: "holder", Value: h, Reason: fmt.Sprintf("the prefix %q is kept for ports", portHolderPrefix)}
	}
	return nil
}

// StateUpdate reports one plane's state. When Host is set, the port must
// still be bound to it, so a late report from a host the port drifted away
// from is refused with ErrStale.
type StateUpdate struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	Host   string `json:"host,omitempty"`
}
