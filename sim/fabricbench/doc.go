// Package fabricbench benchmarks the simulator on the generations' own
// fabrics (gen 2 EVPN, gen 3 eBPF) built on a 4x16x16 spine-leaf topology.
package fabricbench
