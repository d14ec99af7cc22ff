// Package kmaps creates gen 3's BPF maps in the kernel with cilium/ebpf,
// from the same key and value types the Go model uses, and syncs a node's
// model maps into them.
package kmaps
