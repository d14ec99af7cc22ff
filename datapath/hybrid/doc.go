// Package hybrid joins the fabrics of several sites into one network: a
// private cloud (generation 2, evpn) and VPCs in other regions (vpc), each
// built on its own site's nodes of one topology (topologies.Node.Site) and
// joined by dedicated lines, the topology's links between two sites, with
// their WAN delay and rate. The lines are routed: a border leaf hands off
// in a tenant's VRF (evpn.Leaf.AttachLine: its type-5 routes bring the
// tenant's leaves to it), a VPC router routes the other sites' prefixes to
// its line (vpc.Fabric.RouteOverLine), so that an instance on one side
// reaches one on the other by its own address, with no NAT.
package hybrid
