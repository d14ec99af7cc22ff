// Package ktrace follows registered probe packets through the kernel's
// devices in every namespace, as pwru does: BPF programs on the
// net:netif_receive_skb, net:net_dev_start_xmit and skb:kfree_skb
// tracepoints match each sk_buff to a watched probe key (the IPv4 5-tuple,
// or ICMP echo id and sequence; inside a VXLAN header, or quoted by an
// ICMP error) and report the device, its namespace, the direction and the
// kernel's drop reason, resolved to node and interface names.
package ktrace
