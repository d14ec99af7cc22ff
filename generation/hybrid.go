package generation

// The hybrid network: a private cloud (gen 2) and VPCs in other regions
// (vpc) joined by dedicated lines, each site run by its own generation;
// every instance's port comes from the one controller, through the
// cloud's API on a VPC.
func init() {
	Register(Desc{
		Name:     "hybrid",
		Family:   5,
		Summary:  "a hybrid network: a private cloud (evpn) and VPCs in other regions (vpc) joined by dedicated lines, each site its own generation, every address routable across (no NAT)",
		IPAM:     IPAMGlobal,
		Segment:  SegmentNone,
		NoPolicy: "a hybrid network's sites filter their own way (gen 2 at its firewall, a VPC by security groups); restrict the step with generations",
		Topology: "hybrid",
		Roles:    []string{"leaf", "spine", "border", "vpc-router", "internet-gateway", "external"},
		Instance: "pod",
		Flood:    FloodNone,
		Colour:   "#9c755f",
		Sites:    true,
	})
}
