package scenarios

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn/evpndriver"
	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/topologies"
)

// FabricEnv is what a generation's fabric is built from.
type FabricEnv struct {
	Generation Generation
	Desc       generation.Desc
	Topology   *topologies.Topology
	Options    GenOptions
	// ControlPlane is the scenario's control_plane; BGP is set when it
	// is bgp and the generation has a BGP control plane (Desc.BGP).
	ControlPlane ControlPlane
	BGP          bool
	// Locker serialises a leaf driver's changes with the runtime's
	// nodes (the runtime's pause).
	Locker sync.Locker
	// Sites are a hybrid network's (Env.Sites); Site, when set, builds
	// the generation on that site's nodes of Topology only.
	Sites []Site
	Site  string
}

// BuiltFabric is a generation's fabric, as sim and netns run it.
type BuiltFabric struct {
	Fabric datapath.Fabric
	// Driver is the CNC's leaf driver of a fabric the controller's CNC
	// programs (gen 2); nil otherwise.
	Driver *evpndriver.Driver
	// NodeCIDR and PodMAC, for a generation with local IPAM: a node's
	// pod CIDR (false: not a node) and the MAC of a pod's endpoint.
	NodeCIDR func(host string) (netip.Prefix, bool)
	PodMAC   func(name string) net.HardwareAddr
	// NodeCIDR6 is a node's IPv6 pod CIDR in a dual-stack cluster
	// (false, or nil: IPv4 only); each pod then takes an IPv6 address
	// from it too.
	NodeCIDR6 func(host string) (netip.Prefix, bool)
}

// FabricBuilder builds a generation's fabric on a topology.
type FabricBuilder func(FabricEnv) (BuiltFabric, error)

var fabrics = struct {
	sync.RWMutex
	m map[Generation]FabricBuilder
}{m: map[Generation]FabricBuilder{}}

// RegisterFabric registers how generation g's fabric is built for the
// runtimes that run datapath.Fabric models (sim, netns). g must be a
// registered generation (package generation); registering twice panics.
// Call it from an init function, in scenarios/gen_<name>.go.
func RegisterFabric(g Generation, b FabricBuilder) {
	if !generation.Known(g) {
		panic(fmt.Sprintf("scenarios.RegisterFabric: %q is not a registered generation (generation.Register it first)", g))
	}
	fabrics.Lock()
	defer fabrics.Unlock()
	if _, ok := fabrics.m[g]; ok {
		panic(fmt.Sprintf("scenarios.RegisterFabric: %s registered twice", g))
	}
	fabrics.m[g] = b
}

// FabricGenerations lists the generations with a fabric builder, sorted.
func FabricGenerations() []Generation {
	fabrics.RLock()
	defer fabrics.RUnlock()
	var out []Generation
	for g := range fabrics.m {
		out = append(out, g)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// buildFabric builds env.Generation's fabric with its registered builder.
func buildFabric(env FabricEnv) (BuiltFabric, error) {
	d, ok := generation.Lookup(env.Generation)
	if !ok {
		return BuiltFabric{}, fmt.Errorf("unknown generation %q", env.Generation)
	}
	fabrics.RLock()
	b, ok := fabrics.m[env.Generation]
	fabrics.RUnlock()
	if !ok {
		return BuiltFabric{}, fmt.Errorf("generation %s has no fabric builder (scenarios.RegisterFabric)", env.Generation)
	}
	env.Desc = d
	env.BGP = env.ControlPlane == ControlPlaneBGP && d.BGP
	bf, err := b(env)
	if err != nil {
		return BuiltFabric{}, err
	}
	if d.LocalIPAM() && (bf.NodeCIDR == nil || bf.PodMAC == nil) {
		return BuiltFabric{}, fmt.Errorf("generation %s has local IPAM but its builder gave no NodeCIDR or PodMAC", env.Generation)
	}
	return bf, nil
}

// RegisterFabricForTest registers b for g until the test t ends.
func RegisterFabricForTest(t generation.Cleaner, g Generation, b FabricBuilder) {
	RegisterFabric(g, b)
	t.Cleanup(func() {
		fabrics.Lock()
		defer fabrics.Unlock()
		delete(fabrics.m, g)
	})
}
