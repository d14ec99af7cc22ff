package datapath

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// PortRef names one port of one node.
type PortRef struct {
	Node string
	Port int
}

// Wire joins two node ports, as a topology link does. Zero Rate means
// unlimited (no serialisation delay); zero MTU means 1500 (9000 in the
// underlay of a VXLAN fabric is the fabric's choice).
type Wire struct {
	A, B  PortRef
	Rate  int64 // bits per second
	Delay time.Duration
	MTU   int
}

// PodMTUer is a Fabric whose pods need a smaller MTU than their host's
// links carry (an overlay encapsulating on the host: gen 3's VXLAN
// tunnel): PodMTU is the MTU both ends of a pod's veth get; 0 keeps the
// default. Every runtime that wires pods over real links asks it.
type PodMTUer interface {
	PodMTU() int
}

// VXLANOverhead is what VXLAN over IPv4 adds to a packet: outer
// Ethernet, IPv4, UDP and VXLAN headers.
const VXLANOverhead = 14 + 20 + 8 + 8

// ErrNoIPv6 is returned by a Fabric asked for an IPv6 subnet or address
// when its generation does not model IPv6 yet.
var ErrNoIPv6 = errors.New("IPv6 is not modelled in this generation yet")

// NetworkSpec is a tenant network as the controller defines it.
type NetworkSpec struct {
	Name    string
	Tenant  string       // VPC; two tenants may reuse a subnet
	Subnet  netip.Prefix // e.g. 10.0.1.0/24
	Gateway netip.Addr   // gen 1: on the core; gen 2: anycast on every leaf
	VLAN    uint16       // gen 1 and the host side of gen 2
	VNI     uint32       // gen 2 L2 VNI
	// Subnet6 and Gateway6 make the network dual-stack (zero: IPv4 only).
	Subnet6  netip.Prefix // e.g. fd00:1::/64
	Gateway6 netip.Addr
	// Site is the site of a hybrid network the network is in (the
	// topology's Node.Site); empty in a network of one site.
	Site string
}

// InstanceSpec is a VM, bare-metal instance or pod to attach to a host.
type InstanceSpec struct {
	Name    string
	Host    string // topology node with role host
	Network string // NetworkSpec.Name (gen 1, 2); empty for gen 3
	MAC     net.HardwareAddr
	IP      netip.Prefix
	Gateway netip.Addr
	// IP6 and Gateway6 are the instance's IPv6 address and gateway on a
	// dual-stack network (zero: IPv4 only).
	IP6      netip.Prefix
	Gateway6 netip.Addr
	// Labels feed gen 3 identities ("app=web").
	Labels map[string]string
}

// Fabric is one generation realised on a topology: the nodes to run, how
// their ports are wired, and how instances join and leave. sim runs a Fabric
// in virtual time; the userspace runtime runs the same nodes over namespaces.
//
// Contract: Nodes and Wires describe the fabric after construction; every
// successful AddInstance returns a new node and the wire joining it to its
// host, which the runtime adds; RemoveInstance undoes it. Wire ports refer to
// indices in the nodes' Ports. Methods are not safe for concurrent use.
type Fabric interface {
	Generation() string
	Nodes() []Node
	Wires() []Wire
	AddNetwork(n NetworkSpec) error
	AddInstance(s InstanceSpec) (Node, Wire, error)
	RemoveInstance(name string) error
}

// TableSize is how many entries one table of one node holds.
type TableSize struct {
	Node, Table string
	Entries     int
}

// TableReporter is a Fabric that reports its nodes' table sizes (MAC
// tables, routes, BPF maps), for capacity planning. now is the time of
// the nodes' clock (entries that aged out do not count); like every
// Fabric method it must not run while a node does.
type TableReporter interface {
	TableSizes(now time.Duration) []TableSize
}

// ControlPlane is a Fabric whose control plane hears of node failures:
// the routes a failed node advertised are withdrawn, as its peers withdraw
// them when its routing sessions drop, and advertised again when it comes
// back. A runtime that fails a node calls NodeStateChanged(node, false)
// FailureDetection after the node went down (its peers' BFD or hold
// timer; until then the data plane already reacts, e.g. bonds fail over),
// and NodeStateChanged(node, true) as soon as it is back; like every
// Fabric method, never while a node runs. NodeStateChanged returns how
// many routes were withdrawn (or advertised again).
type ControlPlane interface {
	FailureDetection() time.Duration
	NodeStateChanged(node string, up bool) int
}
