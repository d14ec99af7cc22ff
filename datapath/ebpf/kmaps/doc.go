// Package kmaps is gen 3 in the kernel: it creates the model's BPF maps
// with cilium/ebpf from the same key and value types, syncs a node's model
// maps into them, and loads tc programs written with cilium/ebpf's asm
// package over those maps: bpf_lxc's from-container path (ARP responder;
// redirect to a local endpoint's lxc with MAC rewrite; a tunnel key and a
// redirect to cilium_vxlan; or, in direct routing, the host stack),
// bpf_overlay and bpf_host (packets from the tunnel or a NIC to the local
// endpoint), the ingress policy check, and the egress policy check on the
// lxc devices (what a pod sends, on its own node, before bpf_lxc), both
// over the one policy map, ingress and egress entries told apart by the
// key's Egress byte as Cilium's policy key holds the direction.
//
// Every program carries IPv6 beside IPv4 (prog6.go): the IPv6 endpoints
// map, ipcache, tunnel map and conntrack map, the same policy map. The
// policy programs' bodies, the conntrack tuple and records and the
// endpoint lookup are written once and emitted for each family from its
// description (family.go: labels, maps, stack slots, packet layout).
// bpf_lxc answers a pod's neighbour solicitations with cilium_host's MAC
// as it answers ARP, and IPv6 pods cross nodes over the IPv4 underlay.
//
// Reconcile makes the kernel maps equal to a node's model maps (deleting
// what the model dropped, translating endpoints to the real lxc devices);
// the policy programs can also write every verdict to a ring buffer as a
// FlowRecord with its direction (NewEvents, PolicyConfig.Events), Hubble's
// flow events.
//
// The programs are tested against the Go model through BPF_PROG_TEST_RUN.
// They are also tested end to end in real network namespaces: two pods on
// one node (lxc → BPF → lxc, with policy allow and deny), and two nodes
// joined by an underlay veth, over flow-based cilium_vxlan devices or
// routed directly, with the policy check (conntrack replies, policy map,
// default deny) before delivery on the receiving node, and the same
// across nodes over IPv6 in namespaces with IPv6 off. Not yet in the
// kernel: conntrack expiry (the agent's GC, ExpireCT, runs on the agent's
// schedule, not the kernel's), and TTL decrement on the
// tunnel path. The policy program takes the source identity from the
// ipcache, not from the VNI, which bpf_lxc does fill.
package kmaps
