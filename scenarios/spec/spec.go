package spec

import (
	"net/netip"
	"time"

	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/scenarios/policy"
)

// Generation names a datapath generation a scenario compares; what each
// is and can do is its registered description (package generation).
type Generation = generation.Name

// The generations. vlan-stock is gen 1 with stock OpenStack's per-instance
// Linux bridge (seed Fig. 6); ebpf-direct is gen 3 with BGP direct routing
// instead of the VXLAN tunnel. Code outside a generation's own files looks
// the generation up (generation.Lookup) rather than comparing names.
const (
	GenVLAN       Generation = "vlan"
	GenVLANStock  Generation = "vlan-stock"
	GenEVPN       Generation = "evpn"
	GenEBPF       Generation = "ebpf"
	GenEBPFDirect Generation = "ebpf-direct"
	GenVPC        Generation = "vpc"
)

// Generations lists every generation registered when the package was
// initialised, in report order; generation.Names() is the live list.
var Generations = generation.Names()

// ControlPlane says how gen 2's EVPN routes travel between leaves, and
// how gen 3's direct routing learns the hosts' pod CIDRs.
type ControlPlane string

// Control planes.
const (
	// ControlPlaneShared is one route table every leaf shares, as after
	// BGP has converged (every runtime; the default).
	ControlPlaneShared ControlPlane = "shared"
	// ControlPlaneBGP runs a GoBGP speaker in every leaf's and spine's
	// namespace (iBGP, the spines route reflectors) and builds each leaf's
	// tables from its own speaker's best paths. On netns the speakers are
	// GoBGP processes; on sim, the calibrated model of package
	// sim/bgpmodel. For ebpf-direct, a speaker on every host advertises
	// its pod CIDR to its leaves', and a leaf routes only what its
	// speaker learnt (netns only).
	ControlPlaneBGP ControlPlane = "bgp"
)

// BGPSettings are a scenario's BGP session settings (bgp: in the file),
// for control_plane: bgp. Zero fields take the speakers' defaults.
type BGPSettings struct {
	// Hold is every session's hold time: 0 the default (9 s), NoHoldTimer
	// none at all (RFC 4271's hold time 0: no keepalives, a silent peer is
	// never noticed), else at least 3 s in whole seconds.
	Hold time.Duration
	// Keepalive is the keepalive interval, below Hold (default Hold/3).
	Keepalive time.Duration
	// Design is gen 2's session design: DesignIBGP ("", the default) or
	// DesignEBGP.
	Design string
	// BFD runs BFD (RFC 5880, single hop) beside every leaf–spine session
	// and takes the BGP session down when it finds the peer silent
	// (netns, and sim's BGP model; FRR's bfdd on FRR leaves).
	BFD bool
	// FRRLeaves (frr_leaves: in the file) are gen 2 leaves realised as
	// FRR, Debian's zebra and bgpd, on the kernel's bridge and VXLAN
	// devices instead of netbed's leaf (netns only; see FRRProblems).
	FRRLeaves []string
}

// Gen 2's BGP designs (BGPSettings.Design).
const (
	// DesignIBGP is one AS for the fabric, the spines route reflectors
	// and every leaf a client of every spine (the default).
	DesignIBGP = "ibgp"
	// DesignEBGP is RFC 7938's: the spines share one AS, every leaf has
	// an AS of its own, eBGP on every leaf–spine link carrying IPv4
	// unicast (the leaves' VTEP loopbacks) and l2vpn-evpn (the overlay,
	// its next hop the VTEP unchanged through the spines), route targets
	// numbered in the spines' AS on every leaf.
	DesignEBGP = "ebgp"
)

// NoHoldTimer is BGPSettings.Hold for "hold: 0": sessions without a hold
// timer or keepalives.
const NoHoldTimer time.Duration = -1

// Fail modes of a node (Target.Mode).
const (
	// FailPower takes the carrier down on every link of the node (the
	// default): its neighbours notice at once.
	FailPower = "power"
	// FailSilent keeps the node's links up and makes it drop everything,
	// as a hung line card does: its neighbours notice only what BGP's
	// hold timer (or BFD) tells them.
	FailSilent = "silent"
)

// Scenario is one parsed scenario file.
type Scenario struct {
	Name        string
	Description string
	// Topologies maps a generation (or "default") to its topology.
	Topologies  map[string]TopologySpec
	Generations []Generation
	Backend     string // sim, netns or auto
	Seed        int64
	// Congestion says the scenario expects frames lost to full queues
	// and receive rings; otherwise such a loss is unexplained and fails
	// the run's conservation check.
	Congestion bool
	// ControlPlane is how gen 2's leaves learn each other's EVPN routes:
	// ControlPlaneShared (default) or ControlPlaneBGP.
	ControlPlane ControlPlane
	// BGP are the session settings with control_plane: bgp.
	BGP BGPSettings
	// Controller is how the controller runs: controller: {secure: true}.
	Controller ControllerSpec
	Networks   []Network
	// Sites make the scenario's network a hybrid one: each site run by
	// its own generation, joined by dedicated lines; every network names
	// its site. Empty: one site, the generation under test.
	Sites []Site
	// Options are address plans by generation or "default" (OptionsFor).
	Options map[string]GenOptions
	Steps   []Step
	// File is the path the scenario was read from, for error messages.
	File string
	// lines maps a field's path (steps[2].drift.to) to its line in File.
	lines map[string]int
}

// TopologySpec names a topology: a file, or a builder with parameters.
type TopologySpec struct {
	File    string
	Builder string // three-tier, spine-leaf, multi-az
	Params  map[string]int
	Line    int
	// Flag names where the spec was given when not in the scenario file
	// (netbed run --topology): errors name it instead of a line.
	Flag string
}

// Network is a tenant network every generation gets.
type Network struct {
	Name   string
	Tenant string
	Subnet netip.Prefix
	// Subnet6 makes the network dual-stack: every port on it gets an
	// IPv6 address beside its IPv4 one (zero: IPv4 only).
	Subnet6 netip.Prefix
	Labels  []string
	// Site is the site of a hybrid network the network is in (Sites).
	Site string
	Line int
}

// Site is one site of a hybrid network (sites: in the file): the private
// cloud or a VPC, run by its own generation on the topology's nodes of
// that site (topologies.Node.Site).
type Site struct {
	Name       string
	Generation Generation
	// CIDR is a VPC's address range: its networks (the pods' subnets)
	// lie inside it. Zero for a private cloud.
	CIDR netip.Prefix
	Line int
}

// Step is one timed action. Exactly one of the action fields is set.
type Step struct {
	At      time.Duration
	Gens    []Generation // restrict the step to these generations; empty: all
	Spawn   *Spawn
	Churn   *Churn
	Drift   *Drift
	Fail    *Target
	Restore *Target
	Traffic *Traffic
	Policy  *Policy
	Expect  *Expect
	// FloatingIP attaches or detaches floating IPs (vpc).
	FloatingIP *FloatingIP
	// SecurityGroup adds or removes an ingress rule of a VPC's security
	// group (vpc, and a hybrid network's VPCs).
	SecurityGroup *SecurityGroupChange
	Line          int
}

// SecurityGroupChange adds an ingress rule to a security group, or
// removes one, on every VPC of the run: traffic of Proto ("all", "icmp",
// "tcp", "udp") to Port (0: any) from an address in From is allowed.
type SecurityGroupChange struct {
	Group  string // "" : sg-default, every ENI's group
	Action string // add or remove
	Proto  string
	Port   uint16
	From   netip.Prefix
}

// FloatingIP attaches floating IPs to instances, or detaches them: one-to-
// one NAT at the VPC's internet gateway, so that instances outside the
// VPC reach them (traffic with floating_ip: true).
type FloatingIP struct {
	Action    string // attach or detach
	Instances []string
}

// Kind returns the step's action name.
func (s *Step) Kind() string {
	switch {
	case s.Spawn != nil:
		return "spawn"
	case s.Churn != nil:
		return "churn"
	case s.Drift != nil:
		return "drift"
	case s.Fail != nil:
		return "fail"
	case s.Restore != nil:
		return "restore"
	case s.Traffic != nil:
		return "traffic"
	case s.Policy != nil:
		return "policy"
	case s.Expect != nil:
		return "expect"
	case s.FloatingIP != nil:
		return "floating_ip"
	case s.SecurityGroup != nil:
		return "security_group"
	}
	return ""
}

// Placement says how spawned instances are spread over hosts.
type Placement string

// Placements.
const (
	PlaceSpread Placement = "spread" // round-robin over hosts
	PlacePacked Placement = "packed" // fill a host before the next
)

// Spawn creates Count instances named Name-1 … Name-Count.
type Spawn struct {
	Name    string
	Kind    string // vm, baremetal, pod
	Count   int
	Hosts   []string // explicit hosts, or empty for all hosts
	Place   Placement
	Network string // network name, or
	Label   string // any network with this label
	Labels  map[string]string
	// Namespace is the pods' Kubernetes namespace (policy files; empty:
	// default), Ports their named container ports.
	Namespace string
	Ports     []policy.NamedPort
	// AllowFailures: an instance the backend cannot spawn (a cloud's
	// limit) is recorded in the spawn timeline and the run's
	// failed_spawns counter, and the step goes on.
	AllowFailures bool
}

// Churn creates and deletes pods at Rate per second for Duration.
type Churn struct {
	Name     string
	Rate     float64
	Duration time.Duration
	Network  string
	Label    string
}

// Drift moves instances to another host.
type Drift struct {
	Instances []string
	To        string // host; empty: the next host in order
}

// Target is what a fail or restore step acts on.
type Target struct {
	Node       string // a topology node
	Role       string // or the first node with this role ("leaf", "core"...)
	Link       string // or a link "a:eth1"
	Controller bool   // or the controller
	Replica    string // or one of its replicas (replica-2)
	Etcd       string // or a member of its etcd (member-1)
	Agent      string // or the host agent on this host
	// Mode is how a node fails: FailPower ("", the default) or
	// FailSilent. A restore undoes either.
	Mode string
	// After, for the controller (its replicas, its etcd), makes the step return at once and the
	// fault happen that long later (backend time), while the next steps
	// run: a controller killed in the middle of a spawn storm.
	After time.Duration
}

// Traffic sends probes.
type Traffic struct {
	Proto string // icmp, udp, tcp
	Port  uint16
	From  []string // instances or name prefixes ("web" matches web-1, web-2)
	To    []string
	// Matrix probes every From to every To; otherwise pairs are zipped.
	Matrix bool
	Count  int     // probes per pair (a duration in the file: Rate × it)
	Rate   float64 // probes per second per pair
	Tag    string  // names the probes for expectations
	// Family is the address family the probes use: FamilyIPv4 (the
	// default), FamilyIPv6, or FamilyDual, which probes every pair over
	// both, IPv4 first.
	Family string
	// Background keeps the step probing at Rate while later steps run
	// (see stream): a continuous probe stream that measures drift
	// outages.
	Background bool
	// Floating probes the destinations' floating IPs (FloatingIP).
	Floating bool
}

// Policy applies or removes an allow rule between labelled instances, or
// the policies of a file (File and Set: Kubernetes NetworkPolicies and
// CiliumNetworkPolicies, see scenarios/policy).
type Policy struct {
	File   string
	Set    *policy.Set
	Action string // apply or remove
	Name   string
	From   map[string]string
	To     map[string]string
	Proto  string
	Port   uint16
	Allow  bool
}

// Expect checks what the last traffic step (or a tagged one) observed.
type Expect struct {
	Tag           string
	Reachable     []Pair
	Unreachable   []Pair
	Hops          map[Generation]int // per generation, for every probed pair of the tag
	SwitchHops    map[Generation]int
	MaxLatency    time.Duration
	Verdict       string // forwarded or dropped
	Rule          string // the rule that decided, for dropped
	IPUnchanged   []string
	PortState     string // ACTIVE_ACTIVE
	Within        time.Duration
	NoUnexplained bool // no drops without a reason that the scenario expects
	AllReachable  bool
	// ControllerConsistent: every live instance's port is in the
	// controller with the address the instance was given (no acknowledged
	// address lost), no address is held twice, and the controller's own
	// consistency check passes.
	ControllerConsistent bool
	// Recovered: every drift during the tag's background stream was
	// followed by an answer on each of the drifted instance's flows;
	// MaxOutage: and within this long (see reports.Outage).
	Recovered bool
	MaxOutage time.Duration
	// Control-plane checks (control_plane: bgp; see
	// ControlPlaneInspector), polled until they hold or Within passes:
	// BGPSessions, every session of the named speakers established;
	// BGPRoutes, routes present on or absent from named speakers;
	// FabricConsistent, no router-ID conflict, VNI or route-target
	// inconsistency between leaves, or duplicate address.
	BGPSessions      *BGPSessionsExpect
	BGPRoutes        []BGPRouteExpect
	FabricConsistent bool
	// TruthTable probes every pod pair of Namespaces (empty: every
	// namespace) on every traffic the applied policy files name, plus
	// one they do not, against the reference evaluator.
	TruthTable bool
	Namespaces []string
}

// Pair is one from→to pair of instances (or prefixes).
type Pair struct {
	From, To string
}

// Address families of a traffic step (Traffic.Family).
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
	FamilyDual = "dual"
)

// Families lists the address families a traffic step probes, in order.
func (t *Traffic) Families() []string {
	switch t.Family {
	case FamilyIPv6:
		return []string{FamilyIPv6}
	case FamilyDual:
		return []string{FamilyIPv4, FamilyIPv6}
	}
	return []string{FamilyIPv4}
}
