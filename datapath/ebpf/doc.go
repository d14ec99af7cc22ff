// Package ebpf is generation 3, Cilium's host model (seed Fig. 16): per-node
// cilium_host/cilium_net, an lxc veth per pod and BPF programs, written as Go
// functions over fixed-layout maps (endpoints, ipcache, tunnel, policy,
// conntrack), forwarding over a routed spine-leaf underlay in tunnel (VXLAN)
// or direct-routing mode.
package ebpf
