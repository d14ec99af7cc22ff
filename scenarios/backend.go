package scenarios

import (
	"context"
	"net/netip"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/topologies"
)

// Backend realises one generation on one topology and answers the runner's
// questions. sim is the in-memory implementation; netns runs the same node
// models on real namespaces.
//
// Contract: Start is called once, before anything else; Close once, last,
// whatever happened in between, and must remove everything the backend
// created. Calls never overlap. Time is the backend's own: virtual on sim,
// the wall clock elsewhere; Sleep advances it.
type Backend interface {
	Name() string
	Start(ctx context.Context, env Env) error
	// Spawn creates one instance and wires it, following the generation's
	// spawn flow; the instance's port reaches ACTIVE_ACTIVE in the backend's
	// time, not necessarily before Spawn returns.
	Spawn(ctx context.Context, req SpawnRequest) (Instance, error)
	Delete(ctx context.Context, name string) error
	// Move re-creates the instance on host with the same identity.
	Move(ctx context.Context, name, host string) (Instance, error)
	Fail(ctx context.Context, t Target) error
	Restore(ctx context.Context, t Target) error
	Policy(ctx context.Context, p Policy) error
	// Probe sends one probe and returns what happened to it once it was
	// answered or lost.
	Probe(ctx context.Context, req ProbeRequest) (reports.Probe, error)
	Sleep(ctx context.Context, d time.Duration) error
	Now() time.Duration
	// PortState returns the controller's status of the instance's port
	// ("ACTIVE_ACTIVE", "DOWN_BUILD", ...).
	PortState(ctx context.Context, name string) (string, error)
	// Finish fills the run's drops, tables, counters and timeline.
	Finish(run *reports.Run) error
	Close() error
}

// Env is what a backend is started with.
type Env struct {
	Generation Generation
	Topology   *topologies.Topology
	Seed       int64
	Networks   []NetworkSegment
	// Sites are a hybrid network's sites (the scenario's sites:), each
	// run by its own generation; empty for one generation's network.
	Sites []Site
	// SiteOptions are each site's options: its generation's (options.vpc
	// applies to every VPC of a hybrid network).
	SiteOptions map[string]GenOptions
	// Options is the generation's address plan (the zero value: the
	// fabric's own defaults).
	Options GenOptions
	// ControlPlane is the scenario's (gen 2 and ebpf-direct; other
	// generations ignore it).
	ControlPlane ControlPlane
	// BGP are the scenario's session settings (control_plane: bgp).
	BGP BGPSettings
	// Controller is how the controller runs (ControllerSpec).
	Controller ControllerSpec
	// Progress, if set, receives one-line progress messages.
	Progress func(string)
}

// NetworkSegment is a scenario network with the segment the runner chose
// for it: a VLAN (gen 1, and the host side of gen 2) and a VNI (gen 2).
type NetworkSegment struct {
	Network
	Gateway  netip.Addr
	Gateway6 netip.Addr // the IPv6 subnet's first address, when it has one
	VLAN     uint16
	VNI      uint32
}

// SpawnRequest asks for one instance.
type SpawnRequest struct {
	Name    string
	Kind    string // vm, baremetal, pod
	Host    string
	Network string // or Label
	Label   string
	Labels  map[string]string
}

// Instance is a spawned instance as the backend reports it.
type Instance struct {
	Name string
	Host string
	IP   netip.Addr
	IP6  netip.Addr // on a dual-stack network (zero: none)
	MAC  string
}

// ProbeRequest is one probe between two instances.
type ProbeRequest struct {
	From, To string
	Proto    string // icmp, udp, tcp
	Port     uint16
	Tag      string
	Timeout  time.Duration
	// Family is FamilyIPv6 to probe the destination's IPv6 address;
	// empty or FamilyIPv4 for its IPv4 one.
	Family string
	// Floating sends the probe to To's floating IP (FloatingIPs).
	Floating bool
	// Background is set by a background stream (RuntimeProbe.Background).
	Background bool
}
