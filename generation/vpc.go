package generation

// The public cloud: Kubernetes nodes are VM instances in a VPC, pods take
// secondary addresses of the ENIs attached to their node (the AWS VPC
// CNI), the VPC's router, route table, security groups and internet
// gateway are the fabric; addresses come from the cloud's API through the
// controller.
func init() {
	Register(Desc{
		Name:     "vpc",
		Family:   4,
		Summary:  "the public cloud: VMs in a VPC, pods on secondary addresses of their node's ENIs (AWS VPC CNI), the VPC router, security groups and an internet gateway with floating IPs",
		IPAM:     IPAMCloud,
		Segment:  SegmentNone,
		NoPolicy: "vpc filters with the security groups of the ENIs (datapath/vpc), not per-pod policies; restrict the step with generations",
		Topology: "vpc",
		Roles:    []string{"vpc-router", "internet-gateway", "external"},
		Instance: "pod",
		Flood:    FloodNone,
		Colour:   "#b07aa1",
	})
}
