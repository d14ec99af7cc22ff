// Package ovs builds gen 1 (datapath/vlan: Ctrip's host model, and stock
// OpenStack's with security groups) on the devices it ran on, and
// implements kernel.Fabric. The model stays the desired state: Build,
// Plug and Sync read its networks, gateways and security groups.
//
// Hosts (seed Fig. 5): a private ovsdb-server and ovs-vswitchd per host
// namespace (userspace datapath, datapath_type=netdev; sockets, database
// and logs in Env.StateDir/<host>), br-int with each instance on an
// access port tagged with its network's VLAN, the patch pair
// int-br-bond/phy-br-bond, and br-bond with an OVS active-backup bond of
// the host's first two NICs, the first active (as in the model) and no
// preemption when it comes back. Instance veth ends have transmit
// checksum offload off: the userspace datapath never fills checksums in.
// Stock OpenStack (Fig. 6) adds per instance a Linux bridge qbr-<inst>
// holding the instance's veth end and qvb-<inst>, whose peer qvo-<inst> is
// the access port, and the security groups as iptables rules in the host
// namespace (FORWARD with physdev matches, bridge-nf-call-iptables on),
// each rule's comment the model's rule name.
//
// Switches: every ToR, access, aggregation and core switch is a Linux
// bridge br0 without VLAN filtering, which forwards tagged frames by MAC
// with the tag untouched (learning is shared across VLANs; MACs are
// unique), with the kernel's own 802.1D spanning tree at the shortest
// timers it accepts (forward delay 2 s, hello 1 s, max age 6 s). This is a
// real spanning tree rather than the model's oracle, so that the two can
// be compared (they agree: TestGen1), and needs no daemon per switch;
// bridge priorities follow the model's ranks (the gateway core is the
// root, then cores, aggregation, ToRs, in topology order). Its price is
// 802.1D's: a port forwards 4 s after it comes up (Build's start overlaps
// it with the OVS starts) and a failed tree link is routed around in 4 to
// 9 s; RSTP on OVS would take well under a second, at the cost of a
// vswitch per switch.
//
// Cores: as in the model, one core holds every gateway (vlan.Options.
// GatewayCore, by default the first) and the other is a switch like the
// rest; there is no gateway failover (the seed's gateways were configured
// by hand, and the model has none). The gateway core's bridge has a veth
// trunk to its own OVS bridge br-gw, where each network has an internal
// port vlan<VID> tagged with its VLAN, holding the gateway address and the
// model's router MAC; the core's kernel routes between them.
//
// Not built: firewalls (their links are left as the lab made them, so the
// core has no default route), VLAN pruning (the model carries on a
// host-facing port only its instances' VLANs; these bridges carry all),
// and br-int's local VLANs (its tags are the provider VLANs).
//
// Paths: PathOut, PathIn and ProbePath list the devices a frame crosses as
// the devices report them (ofproto/trace and dpif/show for OVS, bridge
// membership for qbr, the bridges' forwarding databases for the
// switches), so that hops are counted over real devices: gen 1's 18 and
// stock OpenStack's 24 between instances on different subnets.
package ovs
