// Package ebpf is generation 3, Cilium's host model (seed Fig. 16): per-node
// cilium_host/cilium_net, an lxc veth per pod and BPF programs, written as Go
// functions over fixed-layout maps (endpoints, ipcache, tunnel, policy,
// conntrack), forwarding over a routed spine-leaf underlay in tunnel (VXLAN)
// or direct-routing mode.
//
// # Devices and programs
//
// A Node is one host. Its ports are the NICs (topology interfaces, towards
// the leaves) followed by a fixed number of lxc slots; a pod's eth0 (a
// stack.Instance) is wired to its lxc slot. The pod gets its address as a
// /32 with the node CIDR's first address (on cilium_host) as gateway, as
// Cilium configures pods, so it only ever ARPs for the gateway, and
// bpf_lxc answers every ARP request with cilium_host's MAC.
//
//	pod eth0 → lxcN → bpf_lxc ─┬→ lxcM → pod eth0                      (same node)
//	                           ├→ cilium_vxlan (encap) → NIC → leaf …  (Tunnel)
//	                           └→ NIC → leaf …                         (Direct)
//	… leaf → NIC ─┬→ cilium_vxlan (decap) → bpf_overlay → lxcM → pod eth0
//	              └→ bpf_host → lxcM → pod eth0
//
// Each device is one trace event, so by datapath.HopRule two pods on one
// node are 4 hops apart (eth0, lxc, BPF, lxc, eth0; no bridge, no ARP
// between pods). Pods on hosts under different leaves cross leaf → spine →
// leaf (3 switch hops); cilium_vxlan is a datapath.KindTunnel device and
// does not count as a switch hop.
//
// # Maps
//
// The programs read only Maps: endpoints (pod IP → lxc ifindex, MACs,
// identity, enforcement flag), ipcache (LPM: IP or prefix → identity,
// tunnel endpoint), tunnel (node CIDR → node IP), policy ((src identity,
// dst identity, proto, port) → allow/deny) and conntrack. Keys and values
// have the C layout the kernel programs use; package kmaps creates them
// as real BPF maps with cilium/ebpf, syncs a node's maps into them and
// runs bpf_lxc, bpf_overlay, bpf_host and the policy check as tc programs
// over them.
//
// Every node's ipcache holds every pod and node of the cluster, as
// Cilium's does. A fabric keeps what is the same on every node once, in a
// SharedIPCache that all its nodes' IPCache views read beneath their own
// entries (the node's addresses and local pods), so that a pod's address
// is one write, not one per node; each view still counts, looks up and
// lists the entries as if it held them all (a kmaps sync writes them all).
// The tunnel map, every other node's CIDR, is kept the same way
// (SharedHashMap beneath each node's OverlayHashMap).
//
// # Policy
//
// Identities come from pod labels (equal labels, equal identity; numbers
// from 256 in order of first appearance). Policies are compiled into the
// policy map (Compile) and checked at the destination (ingress): replies
// to tracked flows pass ("ct:reply"); otherwise at most six hash lookups
// from the most specific key to (any, dst, any, any) decide, O(1) in the
// number of rules; an endpoint selected by an allow policy denies what
// nothing allows ("policy:<src>-><dst>:default-deny"). Verdicts name the
// entry: "policy:<src-id>-><dst-id>:<proto>/<port>". Chain is the same
// rules as an iptables-style list scanned in order, for comparison.
// The source identity travels in the VXLAN VNI in tunnel mode and comes
// from the ipcache (the source IP) in direct mode.
//
// # Dual stack
//
// With Options.ClusterCIDR6 every node also has an IPv6 pod CIDR
// (Options.NodeMaskBits6, /120 by default, carved in host order) and
// every pod an IPv6 /128 from it beside its IPv4 address, with the
// CIDR's first address on cilium_host as gateway. The maps ending in 6
// (endpoints, ipcache, tunnel, conntrack) hold the IPv6 entries; bpf_lxc
// answers a pod's neighbour solicitations with cilium_host's MAC as it
// answers ARP, so pods resolve only their gateway. Policy is keyed by
// identities, so it holds over both families alike (an ICMP rule covers
// ICMPv6); the identity of an IPv6 source comes from the VNI in tunnel
// mode and from the IPv6 ipcache otherwise. The underlay stays IPv4:
// IPv6 pod packets cross it in VXLAN between node IPs, and direct
// routing refuses an IPv6 cluster CIDR (datapath.ErrNoIPv6).
//
// # Fabric
//
// New realises the model on a spine-leaf topology: spines, leaves and
// border leaves are l3.Routers with ECMP shortest-path routes to router
// loopbacks, node IPs and, in Direct mode, the node CIDRs (what BGP would
// advertise); node CIDRs are carved from the cluster CIDR in host order.
// When a router port changes state the fabric recomputes every router's
// routes at once (converged BGP, no timers).
//
// Not modelled: egress policy, L7 policy, masquerading of pod traffic
// leaving the cluster, IPv6 beyond the cluster's pods and with direct
// routing, host-originated traffic other than ICMP echo replies, and BGP
// timers.
package ebpf
