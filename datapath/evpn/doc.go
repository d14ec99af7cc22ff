// Package evpn models netbed's generation 2 datapath, a VXLAN/EVPN spine-leaf
// fabric: an EVPN route table (type 2, 3 and 5 routes), leaves that are VTEPs
// with a distributed anycast gateway, ARP and ND suppression and symmetric
// IRB over IPv4 and IPv6, and spines that route the underlay with ECMP.
//
// # Devices in traces
//
// Every leaf and spine crossing is one trace event, so a probe between two
// hosts on different leaves counts leaf → spine → leaf = 3 switch hops (see
// datapath.HopRule) and one between two hosts on the same leaf counts 1.
// The event's Kind says what the device did on that crossing:
//
//   - a leaf that encapsulates or decapsulates VXLAN (bridged or routed, the
//     latter by symmetric IRB over the tenant's L3 VNI) is KindVTEP;
//   - a leaf that routes between two local subnets is KindRouter;
//   - a leaf that bridges between two local access ports, answers an ARP
//     request itself (ARP suppression) or floods only locally is KindSwitch;
//   - a spine, routing the underlay, is KindRouter, and so is a border
//     leaf routing underlay transit between availability zones;
//   - a leaf answering an ICMP echo to the anycast gateway is KindRouter
//     (deliver, then the reply leaves the same crossing).
//
// Below the leaf, hosts are the generation 1 host model (package vlan): the
// host tags an instance's frames with its network's VLAN on its uplink trunk
// and the leaf maps (access port, VLAN) to the network's L2 VNI.
//
// The route table does no I/O. Every route enters it through the leaf
// that originates it, as through that leaf's BGP speaker (Leaf.Advertise
// and Leaf.Withdraw, the leaf's Adj-RIB-Out): the fabric or the
// controller's CNC advertises an instance's type-2 route from its leaf,
// and a leaf advertises a type-3 route for every VNI in which it has local
// endpoints and re-advertises a type-2 route when a known MAC appears on
// one of its access ports (a dual-homed host's bond failed over to it: MAC
// mobility). A leaf whose BGP session drops (Leaf.SetSession; the fabric
// does it when a runtime reports the leaf failed, see
// datapath.ControlPlane) has all its routes withdrawn from the table, and
// every other leaf, fed only by the table's add and withdraw events,
// removes what pointed at it; they are advertised again when the session
// is back. The table and every leaf that shares it must be driven from one
// goroutine (the simulator does; a real-time runtime must serialise route
// updates with Receive).
//
// With Options.LeafTables every leaf has a route table of its own, as a
// real VTEP's BGP RIB: what a leaf originates goes to its table and to
// its Exporter (its BGP speaker, Leaf.SetExporter), and other leaves'
// routes reach its table only through Leaf.Import, from its speaker's
// best paths. The netns runtime does this with a GoBGP speaker per leaf
// and spine (control_plane: bgp); the shared table stays the default,
// and the only mode the simulator runs.
//
// # Limits
//
// The tenant side is dual-stack, the underlay IPv4 (VXLAN between IPv4
// loopbacks): a network may have an IPv6 subnet beside its IPv4 one, an
// instance an IPv6 address with a type-2 route of its own, and the leaf
// answers neighbour solicitations (for the gateway, and from type-2
// MAC/IPv6 routes) as it answers ARP, and routes IPv6 by symmetric IRB
// with /128 host routes and type-5 IPv6 prefixes. Multihoming is a
// host's active-backup bond with MAC mobility, not EVPN multihoming (no
// ESI, aliasing or designated forwarder). Control-plane convergence, of
// the route table and of the underlay after a link change, is instant,
// except that a failed leaf's routes are withdrawn only after the failure
// detection time (Options.FailureDetection, BFD's 300 ms by default).
package evpn
