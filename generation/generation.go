package generation

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Name names a generation, as scenario files, flags and reports spell it.
type Name string

// IPAM is where a generation's instances get their addresses.
type IPAM string

// IPAM kinds.
const (
	// IPAMGlobal: the controller's IPAM (Neutron's), one pool per
	// network, asked for a port by the compute node or the CNI plugin.
	IPAMGlobal IPAM = "global"
	// IPAMLocal: a pool per node (the node's pod CIDR), no controller.
	IPAMLocal IPAM = "local"
	// IPAMCloud: a public cloud's addresses on the nodes' network
	// interfaces, through its API; the controller records each as the
	// instance's port (vpc).
	IPAMCloud IPAM = "cloud"
)

// Segment is what separates a generation's tenant networks on the wire.
type Segment string

// Segments.
const (
	SegmentVLAN  Segment = "vlan"  // a VLAN per network, fabric-wide
	SegmentVXLAN Segment = "vxlan" // a VNI per network (and a VLAN per network on each host's access side)
	SegmentNone  Segment = ""      // routed: no per-network segment
)

// Flood says how far one broadcast reaches, as plans measure it.
type Flood string

// Flood domains.
const (
	// FloodLearnt: every device that learnt the VLAN's MACs (the "macs"
	// tables) is in the flood domain.
	FloodLearnt Flood = "learnt"
	// FloodVTEPs: a leaf's largest head-end replication list (the "flood
	// vteps" tables).
	FloodVTEPs Flood = "vteps"
	// FloodNone: routed, nothing floods.
	FloodNone Flood = "none"
)

// Desc describes one generation: everything the code outside its fabric
// needs to know about it.
type Desc struct {
	Name Name
	// Family is the generation's number in the seed: 1 (VLAN), 2 (EVPN),
	// 3 (eBPF), 4 (the public cloud's VPC). Variants of one design share
	// it.
	Family int
	// Summary says in a line what the generation is (docs, --help).
	Summary string
	// IPAM is where instances get their addresses.
	IPAM IPAM
	// PodsViaCNI: pods attach through the CNI plugin when the runtime has
	// one (a PodAttacher), with CNIMode; VMs, and every instance of a
	// generation without it, follow the controller's spawn flow (seed
	// Fig. 10) or, with local IPAM, the backend's own endpoint creation.
	PodsViaCNI bool
	// CNIMode is the netbed-cni mode its pods attach with: "evpn" (an
	// address from the controller's global IPAM) or "ebpf" (the node's
	// local IPAM).
	CNIMode string
	// Segment separates its tenant networks.
	Segment Segment
	// Policy: the hosts enforce scenario policies (NetworkPolicies,
	// policy steps). Without it NoPolicy says why, and what to use.
	Policy   bool
	NoPolicy string
	// Topology is the topology builder capacity studies and plans build
	// it on ("three-tier", "spine-leaf"), and Instance the kind of
	// instance they spawn ("vm", "pod").
	Topology string
	Instance string
	// Roles are the node roles its fabrics are built from besides
	// "host" (the topologies package's names): a topology with another
	// role cannot carry it, which `netbed validate` says before a run.
	Roles []string
	// Flood is how plans measure what one broadcast reaches.
	Flood Flood
	// BGP: control_plane: bgp applies (its leaves can learn their
	// routes from BGP speakers).
	BGP bool
	// FRRLeaves: frr_leaves applies (its leaves can be FRR's zebra and
	// bgpd on the kernel's bridge and VXLAN devices, on netns).
	FRRLeaves bool
	// Default: in a scenario that names no generations.
	Default bool
	// Colour is its colour in every plot (#rrggbb).
	Colour string
	// Sites: the generation is a network of sites, each run by its own
	// generation (a scenario's sites:) and joined by dedicated lines; the
	// fields above describe the network as a whole (IPAM: every site's
	// instances get ports from the controller).
	Sites bool
}

// LocalIPAM reports whether instances take addresses from their node's
// own pool rather than from the controller.
func (d Desc) LocalIPAM() bool { return d.IPAM == IPAMLocal }

// Controlled reports whether instances get their ports from the
// controller (global IPAM, or the cloud's through the controller).
func (d Desc) Controlled() bool { return d.IPAM == IPAMGlobal || d.IPAM == IPAMCloud }

// CloudIPAM reports whether instances take their addresses from a public
// cloud's API.
func (d Desc) CloudIPAM() bool { return d.IPAM == IPAMCloud }

var (
	mu    sync.RWMutex
	descs []Desc // in registration order
)

// Register adds d. It panics when d is incomplete or its name is taken: a
// registration is a program's constant, made in an init function.
func Register(d Desc) {
	if err := d.validate(); err != nil {
		panic(fmt.Sprintf("generation.Register: %v", err))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range descs {
		if o.Name == d.Name {
			panic(fmt.Sprintf("generation.Register: %s registered twice", d.Name))
		}
	}
	descs = append(descs, d)
}

func (d Desc) validate() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("a generation needs a name")
	case d.Family < 1:
		return fmt.Errorf("%s: family %d, want 1 or more", d.Name, d.Family)
	case d.IPAM != IPAMGlobal && d.IPAM != IPAMLocal && d.IPAM != IPAMCloud:
		return fmt.Errorf("%s: IPAM %q, want %q, %q or %q", d.Name, d.IPAM, IPAMGlobal, IPAMLocal, IPAMCloud)
	case d.PodsViaCNI && d.CNIMode == "":
		return fmt.Errorf("%s: pods attach through the CNI plugin but no CNIMode", d.Name)
	case !d.Policy && d.NoPolicy == "":
		return fmt.Errorf("%s: no host policy, and NoPolicy does not say why", d.Name)
	case d.Instance != "vm" && d.Instance != "pod":
		return fmt.Errorf("%s: Instance %q, want vm or pod", d.Name, d.Instance)
	case len(d.Roles) == 0:
		return fmt.Errorf("%s: no Roles: which switch roles does its fabric build on?", d.Name)
	}
	return nil
}

// Lookup returns the description of the generation named n.
func Lookup(n Name) (Desc, bool) {
	mu.RLock()
	defer mu.RUnlock()
	for _, d := range descs {
		if d.Name == n {
			return d, true
		}
	}
	return Desc{}, false
}

// All returns every generation's description in report order: by family,
// then in registration order.
func All() []Desc {
	mu.RLock()
	out := slices.Clone(descs)
	mu.RUnlock()
	sort.SliceStable(out, func(a, b int) bool { return out[a].Family < out[b].Family })
	return out
}

// Names returns every generation's name in report order.
func Names() []Name {
	var out []Name
	for _, d := range All() {
		out = append(out, d.Name)
	}
	return out
}

// Defaults returns the generations a scenario compares when it names none,
// in report order.
func Defaults() []Name {
	var out []Name
	for _, d := range All() {
		if d.Default {
			out = append(out, d.Name)
		}
	}
	return out
}

// Known reports whether n is a registered generation.
func Known(n Name) bool {
	_, ok := Lookup(n)
	return ok
}

// Desc returns n's description; the zero Desc (family 0) for a name that
// is not registered.
func (n Name) Desc() Desc {
	d, _ := Lookup(n)
	return d
}

// Family is the generation's number in the seed: 1, 2 or 3 (0: not a
// registered generation).
func (n Name) Family() int { return n.Desc().Family }

// Colour returns the generation's plot colour, "" for one not registered.
func Colour(n string) string { return Name(n).Desc().Colour }

// Cleaner is what RegisterForTest needs of a test: testing.TB's Cleanup.
type Cleaner interface{ Cleanup(func()) }

// RegisterForTest registers d until the test t ends: a test's own
// generation, which the parser, backends and reports then know like any
// other.
func RegisterForTest(t Cleaner, d Desc) {
	Register(d)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		descs = slices.DeleteFunc(descs, func(o Desc) bool { return o.Name == d.Name })
	})
}
