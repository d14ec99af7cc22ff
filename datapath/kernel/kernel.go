// Package kernel realises a generation's fabric on the Linux kernel's own
// devices, as it ran in production: Open vSwitch and the Linux bridge for
// gen 1, the bridge and VXLAN devices for gen 2, tc BPF programs for gen 3.
// Each generation's builder lives in a subpackage (ovs, bridge, bpf) and
// implements Fabric; the netns runtime runs it in place of the userspace
// datapath when a scenario runs with --backend kernel.
//
// The generation's Go model (datapath/vlan, evpn, ebpf) stays the desired
// state, as an agent's configuration is: the controller, the CNC's drivers
// and the node agents change the model, and Sync makes the kernel match
// it. Packets never pass through the model on this backend.
package kernel

import (
	"context"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/topologies"
)

// Lab is what a kernel fabric is built in: a deployed topology, one
// namespace per node and one veth pair per link, named as the topology
// names the node's interfaces. topologies/netns.Lab implements it.
type Lab interface {
	// Nodes returns the topology's node names.
	Nodes() []string
	// Do runs fn on a locked OS thread inside node's namespace; a process
	// fn starts (exec.Cmd.Start) is born in that namespace.
	Do(node string, fn func() error) error
	// Handle is a netlink handle acting in node's namespace (owned by the
	// lab: do not close it).
	Handle(node string) (*netlink.Handle, error)
	// NsHandle is node's open namespace (owned by the lab).
	NsHandle(node string) (netns.NsHandle, error)
}

// Env is what Build gets.
type Env struct {
	Lab      Lab
	Topology *topologies.Topology
	// Model is the generation's Go model built on Topology: networks,
	// VLANs and VNIs, addressing, gen 3's maps. Read it only inside
	// Build, Plug, Unplug and Sync (the caller serialises those with
	// every change to the model).
	Model datapath.Fabric
	// StateDir is the lab's own directory for daemons' run, db and log
	// files and BPF pins; `netbed down` removes it with the lab, and
	// kills every process still running in the lab's namespaces.
	StateDir string
	// Progress, if set, receives one-line progress messages.
	Progress func(string)
	// Foreign names switches another program realises on their
	// namespaces' kernels (FRR's zebra and bgpd: frr_leaves). A fabric
	// routes its underlay to and from them as to its own (forwarding,
	// the loopback, the underlay routes) but builds none of their other
	// devices and writes none of their other tables.
	Foreign []string
}

// Port is an instance's attachment: the instance's namespace holds eth0,
// and the other end of its veth, HostIf, is already in the host's
// namespace, up, with no address.
type Port struct {
	Instance string
	Host     string // topology node the instance runs on
	HostIf   string // the veth end in Host's namespace
	MAC      net.HardwareAddr
	IP       netip.Prefix
	Gateway  netip.Addr
	// Network is the controller network (gen 1, 2; empty for gen 3):
	// the model has its VLAN and VNI.
	Network string
	Labels  map[string]string
}

// Fabric is one generation on kernel devices.
//
// Contract: Build is called once, first, after the lab's links are up;
// Close once, last, and stops every daemon, BPF link and pin the fabric
// created (the namespaces themselves belong to the lab). Calls never
// overlap.
type Fabric interface {
	Build(ctx context.Context, env Env) error
	// Plug joins p to its host's datapath (an OVS access port, a bridge
	// port, an lxc veth with its programs) once the model holds the
	// instance; Unplug undoes it.
	Plug(ctx context.Context, p Port) error
	Unplug(ctx context.Context, p Port) error
	// Sync makes the kernel's tables (FDB, neighbours, routes, BPF maps,
	// flows, rules) match the model after a change to it.
	Sync(ctx context.Context) error
	Close() error
}

// Resyncer is a Fabric whose Sync writes only what changed in the model
// since its last Sync, trusting the kernel to hold what it wrote. When
// something outside the model changed the kernel's tables (a node's
// links set down and up again, the routes over them gone with them),
// Resync reads the fabric's tables back from the kernel and makes them
// the model's, as the first Sync did.
type Resyncer interface {
	Resync(ctx context.Context) error
}

// PodMTUer is datapath's: a kernel Fabric knows its pods' MTU after
// Build.
type PodMTUer = datapath.PodMTUer

// PathReporter is a Fabric whose hosts forward where the kernel cannot
// see (Open vSwitch's userspace datapath: its bridges and patch ports are
// no kernel devices): ProbePath returns the devices a packet from src to
// dst crosses, from the datapath's own view (ofproto/trace and the
// bridges' tables), and the runtime takes the hosts' devices from it.
type PathReporter interface {
	ProbePath(ctx context.Context, src, dst Port) (datapath.Path, error)
}

// ProgramReporter is a Fabric whose hosts hand packets on with programs
// on their devices' ingress (gen 3's tc programs): IngressProgram names
// the program that hands on what iface of node receives, as the kernel
// says is attached there (the last of a chain: the others pass what they
// let through to it), or "" when none is.
type ProgramReporter interface {
	IngressProgram(node, iface string) string
}

// FlowCache is a Fabric whose switches learn where a MAC is in a slow
// path of their own and forward by flows cached from it (Open vSwitch's
// userspace datapath). A frame that a cached flow forwards teaches the
// MAC tables nothing until the switch's revalidators next revisit that
// flow: a migrated instance's announcement that matches a flow its
// earlier announcements took (from the same MAC, in on the same port)
// passes the switch without moving the MAC, and the switch goes on
// sending frames for the instance to its old place. Hardware switches,
// the Linux bridge and netbed's models learn from every frame.
type FlowCache interface {
	// ForgetFlows drops every switch's cached flows, so that the next
	// frames (the announcements) are forwarded by the tables as they are
	// and teach them.
	ForgetFlows(ctx context.Context) error
}

// Drop is one packet the kernel (or a BPF program, or OVS) discarded.
type Drop struct {
	Node   string // the node whose namespace dropped it
	Iface  string // the interface it was last seen on, if known
	Reason string // the kernel's drop reason (NETFILTER_DROP), or the program's
	Func   string // the kernel function that freed it (nf_hook_slow), if known
}

// Event is one sighting of a packet on a device, in the order the kernel
// saw them.
type Event struct {
	Node  string // namespace's node (or instance) name
	Iface string
	Out   bool // transmitted (net_dev_start_xmit) rather than received
	// Reply is set for the answer's way back (the echo reply, the
	// SYN-ACK, an ICMP error about the request).
	Reply bool
	// Encap is set when the packet was inside a VXLAN header on this
	// device (an underlay device).
	Encap bool
	// TCPFlags are a TCP packet's flags (SYN 0x02, RST 0x04, ACK 0x10):
	// they tell a connect's SYN and its SYN-ACK or RST from the ACK and
	// RST that follow under the same key.
	TCPFlags uint8
	// Drop is set when the kernel freed the packet as a drop.
	Drop *Drop
	// Nanos is the kernel's monotonic clock (bpf_ktime_get_ns).
	Nanos uint64
}
