// Package ovs builds gen 1 (datapath/vlan: Ctrip's host model, and stock
// OpenStack's with security groups) on the devices it ran on: a private
// Open vSwitch per host (userspace datapath), Linux bridges with the
// kernel's spanning tree for the ToR, aggregation and core switches, OVS
// internal ports holding the gateways on the core, and iptables on a
// per-instance Linux bridge for stock OpenStack. It implements
// kernel.Fabric.
package ovs
