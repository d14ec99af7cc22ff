package spec

import (
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/topologies"
)

// GenOptions are the address plan a generation runs with: a scenario's
// `options:` (per generation, or default for all) over DefaultGenOptions.
type GenOptions struct {
	// ClusterCIDR holds every pod address of gen 3; each host gets a node
	// CIDR of NodeMask bits from it, in host order.
	ClusterCIDR netip.Prefix
	NodeMask    int
	// ClusterCIDR6, when set, makes gen 3 dual-stack: each host also gets
	// an IPv6 node CIDR of NodeMask6 bits from it, in host order, and
	// every pod an IPv6 address from its node's (Cilium's
	// cluster-pool-ipv6-cidr and its mask size). Zero: IPv4 only.
	ClusterCIDR6 netip.Prefix
	NodeMask6    int
	// VLANs are the VLAN IDs the scenario's networks take, in order (gen
	// 1, and the host side of gen 2); VNIs their VNIs (gen 2).
	VLANs IDRange
	VNIs  IDRange
	// VPC is the vpc generation's cloud.
	VPC VPCOptions
}

// VPCOptions configure the vpc generation's cloud: its nodes' instance
// type (InstanceType; empty: m5.large), their warm pools (the AWS VPC
// CNI's WARM_ENI_TARGET, WARM_IP_TARGET and MINIMUM_IP_TARGET; all zero:
// no warm pool, every pod's address asked for on its spawn) and the
// cloud's limits file (Limits; empty: the built-in
// datapath/vpc/cloud/limits.yaml).
type VPCOptions struct {
	InstanceType                                 string
	WarmENITarget, WarmIPTarget, MinimumIPTarget int
	Limits                                       string
	// CNILimits is the limits file the nodes' ipamd holds when it differs
	// from the cloud's (empty: the cloud's): an ENI it believes fits and
	// the cloud refuses is AttachmentLimitExceeded.
	CNILimits string
}

func (v VPCOptions) poolSet() bool {
	return v.WarmENITarget != 0 || v.WarmIPTarget != 0 || v.MinimumIPTarget != 0
}

// IDRange is the IDs First to Last, both included.
type IDRange struct{ First, Last uint32 }

// Size is how many IDs the range holds.
func (r IDRange) Size() int { return int(r.Last) - int(r.First) + 1 }

func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// DefaultGenOptions hold the seed's scale: 4 zones of 500+ nodes is
// 2,000+ node CIDRs, and the cluster CIDR holds 4,096 of /24 (253 pods a
// node; node_mask: 23 for the seed's 500 pods on one node, 2,048 nodes).
// The first 256 node CIDRs are those of the Kubernetes-style /16 default
// that held only 256 nodes. VLANs and VNIs take every ID the wire allows
// from 100 and 10100 on. The cluster CIDR and node mask are
// datapath/ebpf's defaults (scenarios' TestDefaultGenOptionsAreEBPFs).
var DefaultGenOptions = GenOptions{
	ClusterCIDR: netip.MustParsePrefix("10.0.0.0/12"),
	NodeMask:    24,
	NodeMask6:   120,
	VLANs:       IDRange{100, MaxVLAN},
	VNIs:        IDRange{10100, MaxVNI},
}

// The IPv6 node masks gen 3 takes: a node's pool holds at most 2^24
// addresses (controller/ipam.MaxNodeHostBits) and at least a gateway and
// two pods.
const (
	MinNodeMask6 = 104
	MaxNodeMask6 = 126
)

// The largest IDs: 12 bits of 802.1Q less the reserved 4095; 24 bits of
// VXLAN.
const (
	MaxVLAN = 4094
	MaxVNI  = 1<<24 - 1
)

// OptionsFor is gen's address plan: the defaults, overridden by the
// scenario's default options, overridden by gen's own.
func (s *Scenario) OptionsFor(gen Generation) GenOptions {
	o := DefaultGenOptions
	for _, key := range []string{"default", string(gen)} {
		x, ok := s.Options[key]
		if !ok {
			continue
		}
		if x.ClusterCIDR.IsValid() {
			o.ClusterCIDR = x.ClusterCIDR
		}
		if x.NodeMask != 0 {
			o.NodeMask = x.NodeMask
		}
		if x.ClusterCIDR6.IsValid() {
			o.ClusterCIDR6 = x.ClusterCIDR6
		}
		if x.NodeMask6 != 0 {
			o.NodeMask6 = x.NodeMask6
		}
		if x.VLANs.First != 0 {
			o.VLANs = x.VLANs
		}
		if x.VNIs.First != 0 {
			o.VNIs = x.VNIs
		}
		if x.VPC.InstanceType != "" {
			o.VPC.InstanceType = x.VPC.InstanceType
		}
		if x.VPC.poolSet() {
			o.VPC.WarmENITarget, o.VPC.WarmIPTarget, o.VPC.MinimumIPTarget = x.VPC.WarmENITarget, x.VPC.WarmIPTarget, x.VPC.MinimumIPTarget
		}
		if x.VPC.Limits != "" {
			o.VPC.Limits = x.VPC.Limits
		}
		if x.VPC.CNILimits != "" {
			o.VPC.CNILimits = x.VPC.CNILimits
		}
	}
	return o
}

// optionField names the options field that set gen's value of name, as
// errors name it (options.ebpf.cluster_cidr), or says it is the default.
func (s *Scenario) optionField(gen Generation, name string, set func(GenOptions) bool) string {
	for _, key := range []string{string(gen), "default"} {
		if x, ok := s.Options[key]; ok && set(x) {
			return "options." + key + "." + name
		}
	}
	return fmt.Sprintf("options.%s.%s (default)", gen, name)
}

// capacityProblems says, as (field, message) pairs, where gen's address
// plan cannot hold topology t or the scenario's networks: the option, and
// the size it would need.
func (s *Scenario) capacityProblems(gen Generation, t *topologies.Topology) [][2]string {
	var out [][2]string
	o := s.OptionsFor(gen)
	d := gen.Desc()
	// Local IPAM carves a node CIDR per host from the cluster CIDR.
	if d.LocalIPAM() {
		hosts := len(t.NodesByRole(topologies.RoleHost))
		c := o.ClusterCIDR
		switch {
		case o.NodeMask < c.Bits() || o.NodeMask > 30:
			out = append(out, [2]string{s.optionField(gen, "node_mask", func(x GenOptions) bool { return x.NodeMask != 0 }),
				fmt.Sprintf("/%d: a node CIDR must lie between the cluster CIDR's /%d and /30", o.NodeMask, c.Bits())})
		case hosts > 1<<(o.NodeMask-c.Bits()):
			// The longest cluster prefix with room for every host.
			need := o.NodeMask - bits.Len(uint(hosts-1))
			msg := fmt.Sprintf("%v holds %d node CIDRs of /%d, topology %s has %d hosts: it needs a /%d or larger",
				c, 1<<(o.NodeMask-c.Bits()), o.NodeMask, t.Name, hosts, need)
			if need < 8 {
				msg = fmt.Sprintf("%v holds %d node CIDRs of /%d, topology %s has %d hosts: no IPv4 cluster CIDR holds as many; use a longer node_mask",
					c, 1<<(o.NodeMask-c.Bits()), o.NodeMask, t.Name, hosts)
			}
			out = append(out, [2]string{s.optionField(gen, "cluster_cidr", func(x GenOptions) bool { return x.ClusterCIDR.IsValid() }), msg})
		}
		if c6 := o.ClusterCIDR6; c6.IsValid() {
			switch {
			case o.NodeMask6 < c6.Bits() || o.NodeMask6 > MaxNodeMask6:
				out = append(out, [2]string{s.optionField(gen, "node_mask6", func(x GenOptions) bool { return x.NodeMask6 != 0 }),
					fmt.Sprintf("/%d: an IPv6 node CIDR must lie between the cluster CIDR's /%d and /%d", o.NodeMask6, c6.Bits(), MaxNodeMask6)})
			case o.NodeMask6-c6.Bits() < 32 && hosts > 1<<(o.NodeMask6-c6.Bits()):
				need := o.NodeMask6 - bits.Len(uint(hosts-1))
				out = append(out, [2]string{s.optionField(gen, "cluster_cidr6", func(x GenOptions) bool { return x.ClusterCIDR6.IsValid() }),
					fmt.Sprintf("%v holds %d node CIDRs of /%d, topology %s has %d hosts: it needs a /%d or larger",
						c6, 1<<(o.NodeMask6-c6.Bits()), o.NodeMask6, t.Name, hosts, need)})
			}
		}
	}
	// A segmented generation numbers every network with a VLAN (gen 2:
	// on each host's access side), and a VXLAN one with a VNI too.
	if n := len(s.Networks); n > 0 && d.Segment != generation.SegmentNone {
		if n > o.VLANs.Size() {
			out = append(out, [2]string{s.optionField(gen, "vlans", func(x GenOptions) bool { return x.VLANs.First != 0 }),
				idShortfall(o.VLANs, n, MaxVLAN, "VLANs", "802.1Q has 4,094 usable VLAN IDs: the seed's gen 1 limit")})
		}
		if d.Segment == generation.SegmentVXLAN && n > o.VNIs.Size() {
			out = append(out, [2]string{s.optionField(gen, "vnis", func(x GenOptions) bool { return x.VNIs.First != 0 }),
				idShortfall(o.VNIs, n, MaxVNI, "VNIs", "VXLAN has 16,777,215 VNIs")})
		}
	}
	return out
}

// idShortfall says that r cannot number n networks, and which range of
// IDs up to limit would.
func idShortfall(r IDRange, n int, limit uint32, what, wire string) string {
	msg := fmt.Sprintf("%v holds %d %s, the scenario has %d networks", r, r.Size(), what, n)
	if n > int(limit) {
		return msg + ": no range holds as many (" + wire + ")"
	}
	first := min(int(r.First), int(limit)-n+1)
	return fmt.Sprintf("%s: it needs %d, like %d-%d", msg, n, first, first+n-1)
}

// CapacityError is capacityProblems as one error, each problem with the
// file and line of its option (the topology's, for a default).
func (s *Scenario) CapacityError(gen Generation, t *topologies.Topology) error {
	ps := s.capacityProblems(gen, t)
	if len(ps) == 0 {
		return nil
	}
	line := s.lineOf(ps[0][0])
	if line == 0 {
		line = s.TopologyFor(gen).Line
	}
	return &Error{File: s.File, Line: line, Field: ps[0][0], Msg: ps[0][1]}
}
