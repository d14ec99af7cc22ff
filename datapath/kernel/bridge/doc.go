// Package bridge builds gen 2 (datapath/evpn: a spine-leaf VXLAN/EVPN
// fabric with a distributed anycast gateway) on the Linux bridge and
// VXLAN devices, and implements kernel.Fabric. The model stays the
// desired state: each leaf's tables (evpn.Leaf.State: its VNIs, MACs
// behind other VTEPs, flood lists, ARP bindings, host routes and
// prefixes), filled from its own BGP speaker's best paths with
// control_plane: bgp, are what Sync programs into the leaf's kernel, as
// FRR's zebra programs a VTEP from its BGP EVPN routes.
//
// Spines and leaves route the underlay in their namespaces: the
// loopback (the VTEP address) on lo, the model's ECMP routes to every
// other loopback on link through the neighbours' loopbacks (the fabric
// is unnumbered), forwarding on (kernel.ModelRoutes, shared with gen 3).
// A leaf named in kernel.Env.Foreign (FRR's, frr_leaves) is routed so
// and nothing more: its devices and tables are another program's.
//
// Per leaf and L2 VNI: a bridge br<VNI> holding the anycast gateway's
// address and MAC, and a VXLAN device vx<VNI> (nolearning, local VTEP
// the loopback, UDP 4789 or Options.VXLANPort) as its port with
// learning off and neigh_suppress on. Sync programs, from the leaf's
// tables: each remote MAC as two FDB entries, the bridge's (master,
// extern_learn: never aged or garbage-collected however many there are)
// and the VXLAN device's (self, dst the remote VTEP); each type-3 VTEP
// as an all-zero-MAC entry (head-end replication); each remote ARP
// binding as a neighbour on br<VNI> (noarp, extern_learn), which the
// bridge answers ARP requests from (neigh_suppress) instead of flooding
// them; each MAC the controller bound on an access port as a static
// entry on that port, so that frames for it are never flooded to the
// leaf's other hosts (the model's leaf never floods them either).
//
// Sync must follow every change to the model, the CNC's leaf
// configuration included: a leaf carries a VNI (its bridge and VXLAN
// device exist) only while the model's leaf maps an access VLAN to it,
// and a VTEP with no VXLAN device yet answers VXLAN with ICMP port
// unreachable.
//
// Access ports: this kernel has no 802.1Q devices and no VLAN
// filtering, and the hosts (gen 1's OVS hosts, ovs.HostConfig) send
// their networks' frames tagged. Each leaf therefore runs a private Open
// vSwitch (ovs.Vswitch, userspace datapath) whose bridge br-acc holds
// the host-facing links as trunks and, for every (access port, VLAN)
// the leaf maps to a VNI, an internal port a<port>v<VLAN> enslaved to
// that VNI's bridge; OpenFlow rules (fail mode secure: nothing else
// forwards) pop the tag from the trunk into the internal port and push
// it back the other way. The alternative, tc BPF programs popping and
// pushing tags into per-VNI veths, needs a new BPF program and relies
// on the kernel's VLAN offload metadata without the 8021q module; the
// vswitch is the code gen 1 already runs and tests, and one port per
// (port, VLAN) is exactly the model's mapping, so that frames between
// two hosts of the same leaf cross the Linux bridge (its FDB, its ARP
// suppression) as they cross the model's leaf. Above the internal
// ports everything is the kernel's: bridge, VXLAN, FDB, neighbours,
// routing. The cost is one userspace hop in each direction at the
// access port.
//
// Routing between subnets (symmetric IRB): this kernel has no VRF
// devices. Each tenant's VRF is a policy-routing table numbered by its
// L3 VNI, selected by ip rules on the ingress interface (every br<VNI>
// of the tenant, and its L3 VNI bridge br<L3VNI>, whose MAC is the
// leaf's router MAC and whose port is the VXLAN device vx<L3VNI>). The
// table holds the tenant's connected subnets, a /32 per remote host
// through the remote VTEP on link over br<L3VNI> (the VTEP's address a
// neighbour there with its router MAC, that MAC an FDB entry towards the
// VTEP: what zebra installs for an L3 VNI), the type-5 prefixes, and an
// unreachable default so that nothing falls through to the underlay's
// main table. A namespace per VRF was the other choice: it would split
// each leaf in two, with veths between the bridges and the VRF (more
// devices on every routed path than the model has) and the L3 VNI's
// VXLAN device apart from the loopback. Limits: the gateways'
// connected routes are also in the main table (locally generated
// replies use it), so two tenants may not reuse a subnet on one leaf.
//
// IPv6 (a network with a subnet6; ipv6_linux.go): the tenants' side is
// dual-stack over the IPv4 underlay. A dual-stack network's bridge gets
// IPv6 on and the anycast gateway's IPv6 address (nodad: every leaf holds
// it), remote type-2 MAC/IPv6 bindings are extern_learn neighbours there
// (neigh_suppress answers neighbour solicitations from them), and the
// tenant's table holds the IPv6 subnets, a /128 per remote host and the
// type-5 IPv6 prefixes through the remote VTEP's IPv4-mapped address
// ::ffff:<VTEP> on link over br<L3VNI> (the kernel takes no IPv4 next hop
// for an IPv6 route), that address an IPv6 neighbour with the VTEP's
// router MAC, as zebra installs them, and an unreachable IPv6 default;
// ip rules send both families to the table. The bridges do no multicast
// snooping, so solicitations are flooded as ARP requests are.
//
// Hosts are gen 1's: a private Open vSwitch per host with br-int (each
// instance's veth end an access port of its network's VLAN), the patch
// pair and br-bond with an active-backup bond of the host's first two
// NICs (package ovs's host code).
//
// Close stops every vswitch and removes the bridges, VXLAN devices,
// rules, routes and addresses it added.
package bridge
