package generation

// Generation 2: a spine-leaf fabric with VXLAN between leaves and EVPN
// routes, the leaves programmed by the controller's CNC; addresses from
// the controller, pods attached by the CNI plugin.
func init() {
	Register(Desc{
		Name:       "evpn",
		Family:     2,
		Summary:    "gen 2: spine-leaf, VXLAN and BGP EVPN between leaves, programmed by the controller's CNC",
		IPAM:       IPAMGlobal,
		PodsViaCNI: true,
		CNIMode:    "evpn",
		Segment:    SegmentVXLAN,
		NoPolicy:   "gen 2 filters at the hardware firewall beside the core, not per pod (the seed); restrict the step with generations",
		Topology:   "spine-leaf",
		Roles:      []string{"leaf", "spine", "border"},
		Instance:   "pod",
		Flood:      FloodVTEPs,
		BGP:        true,
		FRRLeaves:  true,
		Default:    true,
		Colour:     "#f28e2b",
	})
}
