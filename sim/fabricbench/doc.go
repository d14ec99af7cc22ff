// Package fabricbench benchmarks the simulator on the generations' own
// fabrics (gen 1 vlan on a three-tier topology, gen 2 EVPN and gen 3 eBPF
// on a 4x16x16 spine-leaf), and tests that a packet-hop event on each of
// them allocates nothing once the fabric has learnt its addresses.
package fabricbench
