// Package ktrace follows registered probe packets through the kernel's
// devices in every namespace, as pwru does: BPF programs on the
// net:netif_receive_skb, net:net_dev_start_xmit and skb:kfree_skb
// tracepoints match each sk_buff to a watched probe key (the IPv4 or IPv6
// 5-tuple, or ICMP or ICMPv6 echo id and sequence; inside a VXLAN header,
// or quoted by an ICMP or ICMPv6 error) and report the device, its namespace, the direction and the
// kernel's drop reason, resolved to node and interface names.
//
// A runtime creates one Tracer for a lab (New, with a Namespaces resolver
// naming the lab's nodes and, as they are wired, its instances), watches
// each probe's Key under the probe's ID before sending it, and after the
// answer or the timeout calls Sync, then Take(id) for the events in time
// order, and Unwatch.
//
// The programs are tp_btf (BTF-typed raw tracepoints), written with
// cilium/ebpf's asm package: their argument is the sk_buff itself, so the
// skb and device fields are direct loads the verifier checks against the
// running kernel's BTF (offsets come from /sys/kernel/btf/vmlinux at load;
// no clang, no CO-RE relocations), and tracepoints are a stabler point than
// the fentry of internal functions. Packet bytes are read with
// bpf_probe_read_kernel: at receive from skb->data (after eth_type_trans),
// at transmit past the Ethernet header (and a VLAN tag) at skb->data, at a
// drop from skb->head + network_header. An IPv6 packet's next header is
// taken as its transport: probes carry no extension headers, and
// neighbour discovery (ICMPv6, but no echo) is never a probe's.
//
// What the kernel reports is reported, including drops that are not the
// probe's fate: the prober's kernel frees an echo reply as NO_SOCKET once
// the raw socket has its copy; a TCP or UDP probe to a closed port is
// freed as NO_SOCKET after the RST or ICMP error went out; a device that a
// userspace datapath reads through a packet socket (OVS's netdev
// datapath) hands its own copy of each frame to the stack, which frees it
// as OTHERHOST; the ACK and RST that end a TCP probe's connection follow
// under the same key (TCPFlags tells them apart). Switching inside OVS's
// userspace datapath (patch ports, bonds) crosses no kernel device and is
// not seen.
package ktrace
