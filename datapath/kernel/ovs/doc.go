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
// Instance ports are added and removed over the vswitch's OVSDB
// connection (package ovsdb, kept open from the first port to the
// vswitch's stop), one transaction and then a wait until ovs-vswitchd has
// applied it, as ovs-vsctl waits, rather than an ovs-vsctl process per
// port (BenchmarkPlugPort). Stock OpenStack (Fig. 6) adds per instance a Linux bridge qbr-<inst>
// holding the instance's veth end and qvb-<inst>, whose peer qvo-<inst> is
// the access port, and the security groups as iptables rules in the host
// namespace (FORWARD with physdev matches, bridge-nf-call-iptables on),
// each rule's comment the model's rule name, and as ip6tables rules for
// IPv6 (RenderSecurityGroups6).
//
// Switches: every ToR, access, aggregation and core switch is an Open
// vSwitch bridge br0 (its own private vswitch) whose ports are trunks, with
// RSTP: host-facing ports are edge ports, bridge priorities follow the
// model's ranks (the gateway core is the root, then cores, aggregation,
// ToRs; RSTP's priority steps of 4096 by tier and the bridge address by
// topology order), so the kernel's tree is the model's (TestGen1 checks
// it, before and after a link fails). Max age is 6 s and the transmit
// hold count 10 (the standard's limits): when the root fails, its last
// BPDUs circulate between the tiers until their message age reaches max
// age (RSTP's count to infinity), about 8 s with the default 20 and
// under a second with these. RSTP then reconverges in about a second
// after a failure, as the model's tree does at once; the shipped
// core-failure scenario needs that. Build returns once the tree has
// settled (Settle): every port forwarding or blocking, and the topology
// change that follows convergence over, during which every bridge that
// hears of it flushes its MAC table. Open vSwitch shows neither tcWhile
// nor the flushes, so the switches' namespaces watch the BPDUs they
// receive: the change is over on a port when its last BPDU has no TC
// flag, or had it and was followed by two hello times of silence (a
// port whose tcWhile runs sends one every hello time). Options.LinuxBridges makes them Linux
// bridges without VLAN filtering (tags pass untouched; learning shared
// across VLANs) with the kernel's own 802.1D spanning tree at its
// shortest timers (forward delay 2 s, hello 1 s, max age 6 s): no daemon
// per switch, so a lab starts in about half the time, but a port forwards
// 4 s after it comes up and a failure is routed around in 4 to 10 s (a
// failed root costs max age first), which cuts same-subnet pairs in
// core-failure.
//
// Cores: as in the model, one core holds every gateway (vlan.Options.
// GatewayCore, by default the first) and the other is a switch like the
// rest; there is no gateway failover (the seed's gateways were configured
// by hand, and the model has none). The gateway core's switch bridge has a
// trunk (an OVS patch pair; a veth pair beside a Linux bridge) to an OVS
// bridge br-gw, where each network has an internal port vlan<VID> tagged
// with its VLAN, holding the gateway address (and a dual-stack network's
// IPv6 gateway, nodad) and the model's router MAC; the core's kernel
// routes between them, IPv4 and IPv6. (The internal ports cannot sit on
// br0 itself: OVS leaves internal ports out of RSTP and then forwards
// nothing to them.)
//
// Not built: firewalls (their links are left as the lab made them, so the
// core has no default route), VLAN pruning (the model carries on a
// host-facing port only its instances' VLANs; these bridges carry all),
// and br-int's local VLANs (its tags are the provider VLANs).
//
// Paths: PathOut, PathIn and ProbePath list the devices a frame crosses as
// the devices report them (ofproto/trace and dpif/show for OVS, bridge
// membership for qbr, the switches' MAC tables), so that hops are counted over real devices: gen 1's 18 and
// stock OpenStack's 24 between instances on different subnets.
package ovs
