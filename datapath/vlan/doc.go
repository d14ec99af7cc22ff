// Package vlan is netbed's first generation (seed section 1): OpenStack
// provider networks on a three-tier L2 fabric, as datapath nodes. Hosts run
// OVS br-int and br-bond (Fig. 5; with a per-instance Linux bridge and an
// iptables-style security-group chain in the stock variant, Fig. 6), ToR and
// aggregation switches learn MACs per VLAN, and one core router holds every
// gateway.
//
// Loop freedom: the fabric computes, when built and again on every port
// state change, a spanning tree over the switches (ToR, access, aggregation,
// core) and their inter-switch links, rooted at the gateway core; links
// outside the tree are blocked on both ends. Every VLAN is carried on every
// inter-switch trunk, so the tree of each VLAN is the same tree (as MSTP with
// a single instance). Host-facing ports are edge ports and never blocked:
// hosts bond their NICs active-backup and drop what arrives on the backup
// NIC, so they never bridge between the two ToRs. A recomputation flushes
// every switch's MAC table (as an STP topology change does).
//
// Devices traced (datapath.HopRule): a host traces tap-<inst>, br-int,
// patch-int, patch-bond, br-bond and the NIC it used (the bond is br-bond's
// port, not a device of its own: Fig. 5 counts br-bond and the NIC); the
// stock host adds qbr-<inst>, qvb-<inst> and qvo-<inst>, and the
// security-group verdict is the qbr event's Rule ("sg:<group>:<n>"). A
// switch, a core and a firewall trace one event each. Between two
// instances in different subnets that gives Fig. 5's 19 devices, 18 hops
// (25 and 24 in the stock model).
package vlan
