package generation

// Generation 1: VLANs from the host's OVS through ToRs and aggregation to
// the core's gateways; addresses from the controller (Neutron).
func init() {
	gen1 := Desc{
		Family:   1,
		IPAM:     IPAMGlobal,
		Segment:  SegmentVLAN,
		Topology: "three-tier",
		Roles:    []string{"tor", "access", "aggregation", "core", "firewall"},
		Instance: "vm",
		Flood:    FloodLearnt,
	}
	vlan := gen1
	vlan.Name, vlan.Default, vlan.Colour = "vlan", true, "#4e79a7"
	vlan.Summary = "gen 1: Ctrip's VLAN host (br-int, patch ports, br-bond) without security groups"
	vlan.NoPolicy = "Ctrip's gen 1 host removed security groups for speed (the seed); use vlan-stock, stock OpenStack's host with its per-instance iptables chain"
	Register(vlan)

	stock := gen1
	stock.Name, stock.Colour = "vlan-stock", "#76b7b2"
	stock.Summary = "gen 1 with stock OpenStack's host: a Linux bridge qbr per instance, its security group as iptables rules (seed Fig. 6)"
	stock.Policy = true
	Register(stock)
}
