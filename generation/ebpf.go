package generation

// Generation 3: Cilium-like eBPF on every node, a pod CIDR per node with
// local IPAM, identities and a policy map.
func init() {
	gen3 := Desc{
		Family:     3,
		IPAM:       IPAMLocal,
		PodsViaCNI: true,
		CNIMode:    "ebpf",
		Segment:    SegmentNone,
		Policy:     true,
		Topology:   "spine-leaf",
		Roles:      []string{"leaf", "spine", "border"},
		Instance:   "pod",
		Flood:      FloodNone,
	}
	tunnel := gen3
	tunnel.Name, tunnel.Default, tunnel.Colour = "ebpf", true, "#59a14f"
	tunnel.Summary = "gen 3: eBPF on every node, local IPAM, a VXLAN tunnel between nodes"
	Register(tunnel)

	direct := gen3
	direct.Name, direct.Colour = "ebpf-direct", "#e15759"
	direct.Summary = "gen 3 with BGP direct routing instead of the VXLAN tunnel"
	direct.BGP = true // control_plane: bgp: its hosts' speakers advertise their pod CIDRs
	Register(direct)
}
