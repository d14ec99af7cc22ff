// Package bpf is generation 3 on the kernel's own devices: per host
// cilium_host/cilium_net, an lxc veth per pod with bpf_lxc and the policy
// check on tc ingress (TCX), cilium_vxlan in flow-based mode with
// bpf_overlay (tunnel) or bpf_host on the NICs (direct routing), the
// BPF maps of package kmaps reconciled with the Go model (datapath/ebpf)
// on every Sync, and the fabric's leaves and spines routing the underlay
// in their own namespaces with the model's routes. Every policy verdict
// is also a flow event in a BPF ring buffer, read back as FlowEvent.
// A dual-stack model (tunnel mode) is dual-stack here too: the pods'
// IPv6 addresses go into the IPv6 maps, their packets are the programs'
// alone (the host's namespace keeps IPv6 off), and flow events carry
// IPv6 addresses (TestKernelFabricDualStack).
//
// Nothing is pinned: every TCX link, program and map lives as long as the
// process holds its file descriptor, so a killed run leaves nothing
// attached, and Close detaches and removes everything Build and Plug
// created (devices, addresses, routes) but the sysctls of the lab's
// namespaces (ip_forward on, rp_filter off).
package bpf
