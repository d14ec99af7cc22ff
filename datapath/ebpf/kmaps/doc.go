// Package kmaps is gen 3 in the kernel: it creates the model's BPF maps
// with cilium/ebpf from the same key and value types, syncs a node's model
// maps into them, and loads two tc programs written with cilium/ebpf's asm
// package over those maps: bpf_lxc's from-container path (ARP responder,
// redirect to a local endpoint's lxc with MAC rewrite) and the ingress
// policy check.
//
// Tested against the Go model through BPF_PROG_TEST_RUN, and end to end with
// two pods in real network namespaces whose lxc devices carry the programs
// on tc ingress. Not yet in the kernel: conntrack, the tunnel and
// direct-routing paths (cilium_vxlan, bpf_host, bpf_overlay).
package kmaps
