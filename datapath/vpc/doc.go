// Package vpc is the public cloud generation ("vpc"): Kubernetes nodes are
// VM instances in a VPC, and pods take VPC addresses as secondary private
// addresses of elastic network interfaces (ENIs) attached to their node, as
// the AWS VPC CNI does, so pod addresses are routable in the VPC with no
// overlay.
//
// The fabric's nodes, all datapath.Nodes that run unchanged in the
// simulator and in the userspace runtime:
//
//   - Host: a VM. Its ENIs are devices ens5, ens6, ... (by device index)
//     sharing the VM's one link to the VPC router, told apart by MAC. A pod
//     is a veth pair (host side eni<hash>) with a /32 address and the
//     gateway 169.254.1.1, answered by proxy ARP; the node routes by the
//     VPC CNI's policy rules: "to <pod> lookup main" (the pod's /32 on its
//     veth) and "from <pod> lookup <table of its ENI>" (default route out
//     of that ENI).
//   - Router: the VPC's implicit router. It holds the route table
//     (rtb-main: every subnet local, 0.0.0.0/0 to the internet gateway,
//     other prefixes to links such as dedicated lines), the mapping of
//     every private address to its ENI (the provider's mapping service:
//     an address not assigned to an ENI is dropped), the source/destination
//     check, and the stateful security groups of every ENI (sg-out on the
//     way out of the sending ENI, sg-in on the way into the receiving one).
//   - Edge: the internet gateway, where floating IPs are one-to-one NAT.
//   - Outside: a network outside the VPC whose instances (clients on the
//     internet) take addresses from OutsideCIDR.
//
// The control plane (which ENI exists, which address is on which ENI) is
// the cloud's (package cloud); the fabric only carries out what it is told
// through AttachENI, AssignAddress and AssociateFloatingIP.
package vpc
