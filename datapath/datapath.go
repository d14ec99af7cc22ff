package datapath

import (
	"time"
)

// Node is a packet processor: a switch, router, vswitch, VTEP, BPF-forwarding
// host or instance. It does no I/O. The same Node runs in the simulator (in
// virtual time) and in the userspace runtime (in real time over AF_PACKET
// sockets), so everything it knows about time comes from now.
//
// Contract:
//   - Receive is called with one frame that arrived on port (an index into
//     the node's ports, see Ports). The node may call out.Send any number of
//     times, and must call out.Trace once for every device inside it that the
//     frame crossed, in order (see HopRule).
//   - frame is the node's until Receive returns: the node may rewrite it
//     in place (MACs, TTL, a VLAN tag popped by moving the MACs up) and
//     pass it, or a slice of it (a decapsulated inner frame), to
//     out.Forward (or out.Send, which copies), so that a forwarded frame
//     is copied at most once per hop. The node must not retain frame
//     after Receive returns, and a runtime must not read frame after
//     handing it to Receive.
//   - Calls to Receive and SetPortState for one node never overlap.
type Node interface {
	// Name is the device name used in traces (the topology node name).
	Name() string
	// Ports lists the node's port names; a port's index is its number.
	Ports() []string
	Receive(now time.Duration, port int, frame []byte, out Output)
	// SetPortState tells the node that the link on port went down or came
	// back (a link fault, or the peer node failing). Models react here:
	// bond failover, ECMP rehash, MAC flush.
	SetPortState(now time.Duration, port int, up bool, out Output)
}

// Output is where a node sends frames and trace events.
type Output interface {
	// Send transmits a copy of frame on the node's port; the node may
	// reuse or rewrite frame as soon as Send returns.
	Send(port int, frame []byte)
	// Forward is Send for a node done with frame: from the call until
	// Receive returns the node neither reads nor writes frame again. When
	// frame is the one Receive was handed, or a slice of it, a runtime
	// may then send it without a copy (the simulator does, once per
	// received frame, for a slice from the frame's start); otherwise
	// Forward copies as Send does.
	Forward(port int, frame []byte)
	// Trace records that a device inside the node handled the frame.
	Trace(ev Event)
}

// DeviceKind says what sort of device a trace event comes from.
type DeviceKind string

// Device kinds. Every kind counts the same for hops (see HopRule).
const (
	KindNIC    DeviceKind = "nic"    // an instance's vNIC or a host's physical NIC
	KindTap    DeviceKind = "tap"    // tap device between instance and vswitch
	KindVeth   DeviceKind = "veth"   // one end of a veth pair (qvb, qvo, lxc, cilium_host...)
	KindBridge DeviceKind = "bridge" // OVS bridge (a vswitch's br-int, br-bond)
	// KindLinuxBridge is the kernel's bridge (stock OpenStack's qbr).
	KindLinuxBridge DeviceKind = "linux-bridge"
	KindPatch       DeviceKind = "patch"    // OVS patch port
	KindBond        DeviceKind = "bond"     // bond of host NICs
	KindSwitch      DeviceKind = "switch"   // L2 fabric switch (ToR, aggregation)
	KindRouter      DeviceKind = "router"   // L3 device (core, spine, routing leaf)
	KindVTEP        DeviceKind = "vtep"     // VXLAN tunnel endpoint on a leaf
	KindTunnel      DeviceKind = "tunnel"   // a host's software tunnel device (cilium_vxlan); not a switch hop
	KindBPF         DeviceKind = "bpf"      // a BPF program on a hook
	KindFirewall    DeviceKind = "firewall" // a firewall or security-group chain
	KindInstance    DeviceKind = "instance" // the VM or pod itself (source, sink)
)

// Action is what a device did with a frame.
type Action string

// Actions.
const (
	ActOriginate Action = "originate" // an instance sent the frame
	ActForward   Action = "forward"
	ActFlood     Action = "flood"
	ActRoute     Action = "route"
	ActEncap     Action = "encap"
	ActDecap     Action = "decap"
	ActRedirect  Action = "redirect" // BPF redirect to another interface
	ActDeliver   Action = "deliver"  // reached the destination instance's stack
	ActDrop      Action = "drop"
)

// Reason says why a frame was dropped.
type Reason string

// Drop reasons. Every drop carries one; the simulator's conservation check
// counts drops by reason.
const (
	ReasonNone         Reason = ""
	ReasonNoRoute      Reason = "no-route"
	ReasonNoARP        Reason = "arp-unresolved"
	ReasonPolicy       Reason = "policy-deny"
	ReasonPortDown     Reason = "port-down"
	ReasonNodeDown     Reason = "node-down"
	ReasonQueueFull    Reason = "queue-full"
	ReasonLoss         Reason = "link-loss"
	ReasonTTL          Reason = "ttl-exceeded"
	ReasonMalformed    Reason = "malformed"
	ReasonNotForMe     Reason = "not-for-me" // unicast to another MAC/IP, normal for floods
	ReasonVLANMismatch Reason = "vlan-mismatch"
	ReasonNoTunnel     Reason = "no-tunnel"
	ReasonSplitHorizon Reason = "split-horizon"
	// ReasonBondBackup: a frame arrived on the backup NIC of an
	// active-backup bond, which listens only on its active NIC.
	ReasonBondBackup Reason = "bond-backup"
)

// Incidental reports whether a drop of this reason is what happens to the
// extra copies of a frame in normal operation (a flood's copy for another
// MAC, one sent back where it came from, one on a bond's backup NIC), not
// the loss of the frame. A probe's outcome names a real drop before an
// incidental one.
func (r Reason) Incidental() bool {
	switch r {
	case ReasonNotForMe, ReasonSplitHorizon, ReasonBondBackup:
		return true
	}
	return false
}

// Event is one device handling one frame.
type Event struct {
	Time    time.Duration
	Node    string     // topology node (or instance) the device belongs to
	Device  string     // the device: "br-int", "tap-vm1", "leaf1"; equals Node for single-device nodes
	Kind    DeviceKind //
	InPort  string     // where the frame entered the device, if known
	OutPort string     // where it left; empty for deliver and drop
	Action  Action
	Reason  Reason // set when Action is ActDrop
	Rule    string // the rule or table entry that decided, e.g. "sg:allow-icmp", "policy:42"
	// Walked is how many rules of an iptables chain the device evaluated
	// to decide (stock OpenStack's security groups on qbr); 0 when it
	// walked none. The simulator costs each (package datapath/cost).
	Walked int
	// Probe identifies the probe the frame belongs to; set by the runtime,
	// not by nodes (0: not a probe).
	Probe uint64
}
