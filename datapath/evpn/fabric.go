package evpn

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/topologies"
)

// Generation is the name Fabric.Generation returns.
const Generation = "evpn"

// Defaults for Options left at zero.
var (
	DefaultLoopbackPool = netip.MustParsePrefix("10.255.0.0/16")
	// DefaultGatewayMAC is the anycast gateway MAC every leaf answers for.
	DefaultGatewayMAC = MAC{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
)

// DefaultL3VNIBase is added to a tenant's number (1, 2, ... in order of
// first appearance) to give its L3 VNI.
const DefaultL3VNIBase = 50000

// Errors the fabric returns for bad requests.
var (
	ErrExists    = errors.New("already exists")
	ErrBadSpec   = errors.New("bad specification")
	ErrNotLeaf   = errors.New("host has no leaf")
	ErrBadFabric = errors.New("topology is not a spine-leaf fabric")
)

// Options configure a fabric. Zero values take the defaults.
type Options struct {
	// LoopbackPool is where leaf and spine loopbacks (VTEP addresses)
	// come from, in topology order.
	LoopbackPool netip.Prefix
	GatewayMAC   MAC
	L3VNIBase    uint32
	// Host configures the hosts below the leaves (gen 1's host model).
	Host vlan.HostOptions
	// TapSlots is how many instances one host can hold (DefaultTapSlots).
	// A host lists its uplinks and every slot as ports from the start, so
	// a runtime that reads a node's ports once can wire later instances.
	TapSlots int
	// ExternalOverlay leaves the leaves to a controller: AddInstance only
	// wires the underlay (the tap on the host's br-int, its VLAN on the
	// trunk) and RemoveInstance only unplugs it, while the VLAN → VNI
	// mappings, local bindings and type-2 routes come from the CNC (its
	// EVPN driver), as in the seed's spawn flow (Fig. 10, steps 7–9).
	ExternalOverlay bool
	// FailureDetection is how long a failed leaf's peers take to notice
	// that its BGP session is gone (DefaultFailureDetection).
	FailureDetection time.Duration
	// LeafTables gives every leaf a route table of its own instead of one
	// the fabric shares: a leaf's originations then reach the others only
	// through an Exporter (its BGP speaker, see Leaf.SetExporter) and its
	// table learns theirs only through Leaf.Import. A runtime that runs
	// real speakers sets the exporters and feeds the imports (the netns
	// runtime with control_plane: bgp); failure detection is then the
	// speakers' own, so FailureDetection is 0.
	LeafTables bool
	// Site, when set, builds the fabric on the nodes of that site of a
	// hybrid topology (topologies.Node.Site) only: nodes of other sites
	// are another generation's, and a border leaf's link to one is a
	// dedicated line (AttachLine).
	Site string
}

// DefaultFailureDetection is BFD's detection time with 100 ms intervals
// and a multiplier of 3, a common setting for EVPN fabrics' BGP sessions.
const DefaultFailureDetection = 300 * time.Millisecond

// DefaultTapSlots is the default number of instance slots per host (the
// seed runs 500+ pods on one node).
const DefaultTapSlots = 512

// ErrHostFull is returned when a host has no free instance slot.
var ErrHostFull = errors.New("host has no free instance slot")

// hostNode is a vlan.Host whose port list has a fixed length: uplinks,
// then TapSlots tap ports named when an instance attaches ("" while free).
type hostNode struct {
	*vlan.Host
	names []string
}

func newHostNode(h *vlan.Host, slots int) *hostNode {
	names := make([]string, len(h.Ports())+slots)
	copy(names, h.Ports())
	return &hostNode{Host: h, names: names}
}

// Ports implements datapath.Node.
func (h *hostNode) Ports() []string { return h.names }

func (h *hostNode) sync() {
	for i := range h.names {
		h.names[i] = ""
	}
	copy(h.names, h.Host.Ports())
}

type uplink struct {
	leaf     *Leaf
	leafPort int // the leaf's port towards the host
}

type netState struct {
	spec  datapath.NetworkSpec
	l3vni uint32
}

type instState struct {
	spec     datapath.InstanceSpec
	net      *netState
	host     string
	primary  *Leaf
	leafPort int
	route    Route
	route6   Route // the type-2 route of its IPv6 address (Type 0: none)
	node     *stack.Instance
	external bool // the overlay is a controller's (Options.ExternalOverlay)
}

type vniMAC struct {
	vni uint32
	mac MAC
}

type l3Addr struct {
	l3vni uint32
	ip    netip.Addr
}

// index records in under its MAC and addresses; unindex forgets them.
func (f *Fabric) index(in *instState) {
	f.byMAC[vniMAC{in.net.spec.VNI, in.route.MAC}] = in
	f.byIP[l3Addr{in.net.l3vni, in.spec.IP.Addr()}] = in
	if in.spec.IP6.IsValid() {
		f.byIP[l3Addr{in.net.l3vni, in.spec.IP6.Addr()}] = in
	}
}

func (f *Fabric) unindex(in *instState) {
	delete(f.byMAC, vniMAC{in.net.spec.VNI, in.route.MAC})
	delete(f.byIP, l3Addr{in.net.l3vni, in.spec.IP.Addr()})
	if in.spec.IP6.IsValid() {
		delete(f.byIP, l3Addr{in.net.l3vni, in.spec.IP6.Addr()})
	}
}

type portUse struct {
	leaf *Leaf
	port int
	vlan uint16
}

// Fabric is generation 2 on a spine-leaf topology: spines are underlay
// routers (l3.Router) with ECMP, leaves and border leaves are VTEPs (Leaf)
// and hosts are gen 1's host model (vlan.Host), dual-homed where the
// topology links a host to two leaves; the host's bond is active-backup,
// its first uplink active, so an instance is advertised (type 2) behind the
// leaf on that uplink while both leaves carry the port configuration.
type Fabric struct {
	topo   *topologies.Topology
	opts   Options
	table  *RouteTable
	nodes  []datapath.Node
	wires  []datapath.Wire
	leaves map[string]*Leaf
	spines map[string]*l3.Router
	hosts  map[string]*hostNode
	loop   map[string]netip.Prefix
	up     map[string][]uplink // host → its leaves, in the host's interface order

	networks  map[string]*netState
	byVNI     map[uint32]*netState
	byVLAN    map[uint16]*netState
	tenants   map[string]uint32
	instances map[string]*instState
	// byMAC and byIP index the instances by (VNI, MAC) and (L3 VNI,
	// address, v4 or v6) for AddInstance's uniqueness checks.
	byMAC    map[vniMAC]*instState
	byIP     map[l3Addr]*instState
	portRefs map[portUse]int
	byVTEP   map[netip.Addr]*Leaf

	graph       *underlayGraph
	linkDown    map[*topologies.Link]bool
	reconverged int
}

var (
	_ datapath.Fabric        = (*Fabric)(nil)
	_ datapath.TableReporter = (*Fabric)(nil)
	_ datapath.ControlPlane  = (*Fabric)(nil)
)

// New builds the fabric on t: nodes with role spine become underlay
// routers, leaf and border become VTEPs, host become hosts. Underlay
// routes (ECMP shortest paths to every loopback) are computed and
// installed.
func New(t *topologies.Topology, opts Options) (*Fabric, error) {
	if !opts.LoopbackPool.IsValid() {
		opts.LoopbackPool = DefaultLoopbackPool
	}
	if opts.GatewayMAC == (MAC{}) {
		opts.GatewayMAC = DefaultGatewayMAC
	}
	if opts.L3VNIBase == 0 {
		opts.L3VNIBase = DefaultL3VNIBase
	}
	if opts.TapSlots <= 0 {
		opts.TapSlots = DefaultTapSlots
	}
	if opts.FailureDetection <= 0 {
		opts.FailureDetection = DefaultFailureDetection
	}
	f := &Fabric{
		topo: t, opts: opts,
		leaves: map[string]*Leaf{}, spines: map[string]*l3.Router{}, hosts: map[string]*hostNode{},
		up:       map[string][]uplink{},
		networks: map[string]*netState{}, byVNI: map[uint32]*netState{}, byVLAN: map[uint16]*netState{},
		tenants: map[string]uint32{}, instances: map[string]*instState{},
		byMAC: map[vniMAC]*instState{}, byIP: map[l3Addr]*instState{},
		portRefs: map[portUse]int{}, byVTEP: map[netip.Addr]*Leaf{},
	}
	if !opts.LeafTables {
		f.table = NewRouteTable()
	}
	isRouter := func(n *topologies.Node) bool { return l3.IsRouterRole(n.Role) }
	loop, err := l3.Loopbacks(t, isRouter, opts.LoopbackPool)
	if err != nil {
		return nil, fmt.Errorf("build evpn fabric: %w", err)
	}
	f.loop = loop
	f.graph = newUnderlayGraph(t, loop)
	f.linkDown = map[*topologies.Link]bool{}
	spines, err := l3.RoutersFor(t, func(n *topologies.Node) bool { return n.Role == topologies.RoleSpine }, nil, loop)
	if err != nil {
		return nil, fmt.Errorf("build evpn fabric: %w", err)
	}
	for _, n := range t.Nodes {
		if f.foreign(n.Name) {
			continue
		}
		ifaces := t.Interfaces(n.Name)
		switch n.Role {
		case topologies.RoleSpine:
			r := spines[n.Name]
			name := n.Name
			r.OnPortState(func(_ time.Duration, port int, up bool) { f.portChanged(name, port, up) })
			f.spines[n.Name] = r
			f.nodes = append(f.nodes, r)
		case topologies.RoleLeaf, topologies.RoleBorder:
			l, err := f.newLeaf(n.Name, ifaces)
			if err != nil {
				return nil, fmt.Errorf("build evpn fabric: %w", err)
			}
			f.leaves[n.Name] = l
			f.byVTEP[l.VTEP()] = l
			f.nodes = append(f.nodes, l)
		case topologies.RoleHost:
			h := newHostNode(vlan.NewHost(n.Name, ifaces, opts.Host), opts.TapSlots)
			f.hosts[n.Name] = h
			f.nodes = append(f.nodes, h)
		default:
			return nil, fmt.Errorf("build evpn fabric on %s: node %s has role %q: %w (roles: spine, leaf, border, host)", t.Name, n.Name, n.Role, ErrBadFabric)
		}
	}
	if len(f.leaves) == 0 {
		return nil, fmt.Errorf("build evpn fabric on %s: no leaves: %w", t.Name, ErrBadFabric)
	}
	if err := f.installUnderlay(); err != nil {
		return nil, fmt.Errorf("build evpn fabric on %s: %w", t.Name, err)
	}
	for _, lk := range t.Links {
		if f.foreign(lk.A.Node) || f.foreign(lk.B.Node) {
			continue // a dedicated line: the hybrid network's wire
		}
		w := datapath.Wire{Rate: lk.Rate, Delay: lk.Delay, MTU: lk.MTU,
			A: datapath.PortRef{Node: lk.A.Node, Port: slices.Index(t.Interfaces(lk.A.Node), lk.A.Iface)},
			B: datapath.PortRef{Node: lk.B.Node, Port: slices.Index(t.Interfaces(lk.B.Node), lk.B.Iface)}}
		f.wires = append(f.wires, w)
		for _, e := range [][2]datapath.PortRef{{w.A, w.B}, {w.B, w.A}} {
			if _, isHost := f.hosts[e[0].Node]; !isHost {
				continue
			}
			l, ok := f.leaves[e[1].Node]
			if !ok {
				return nil, fmt.Errorf("build evpn fabric on %s: host %s is linked to %s, which is not a leaf: %w", t.Name, e[0].Node, e[1].Node, ErrBadFabric)
			}
			f.up[e[0].Node] = append(f.up[e[0].Node], uplink{leaf: l, leafPort: e[1].Port})
		}
	}
	// Order each host's leaves by the host's interface order: the first
	// is on the bond's active NIC.
	for h, ups := range f.up {
		ifaces := t.Interfaces(h)
		idx := func(u uplink) int {
			for _, lk := range t.Links {
				for _, e := range [][2]topologies.Endpoint{{lk.A, lk.B}, {lk.B, lk.A}} {
					if e[0].Node == h && e[1].Node == u.leaf.Name() && slices.Index(t.Interfaces(u.leaf.Name()), e[1].Iface) == u.leafPort {
						return slices.Index(ifaces, e[0].Iface)
					}
				}
			}
			return -1
		}
		slices.SortStableFunc(ups, func(a, b uplink) int { return idx(a) - idx(b) })
	}
	return f, nil
}

// foreign reports whether node belongs to another site (Options.Site).
func (f *Fabric) foreign(node string) bool {
	if f.opts.Site == "" {
		return false
	}
	n := f.topo.Node(node)
	return n == nil || n.Site != f.opts.Site
}

// AttachLine makes port of leaf a dedicated line to another site in
// tenant's VRF (its far end's MAC peer) and routes prefixes over it
// (Leaf.AttachLine). One of the tenant's networks must exist.
func (f *Fabric) AttachLine(leaf string, port int, tenant string, peer MAC, prefixes ...netip.Prefix) error {
	l, ok := f.leaves[leaf]
	if !ok {
		return fmt.Errorf("attach line to %s: not a leaf of %s", leaf, f.topo.Name)
	}
	l3vni, ok := f.tenants[tenant]
	if !ok {
		return fmt.Errorf("attach line to %s: tenant %q has no network in the fabric yet", leaf, tenant)
	}
	return l.AttachLine(port, l3vni, peer, prefixes...)
}

func (f *Fabric) newLeaf(name string, ifaces []string) (*Leaf, error) {
	cfg := LeafConfig{Name: name, Ports: ifaces, VTEP: f.loop[name].Addr(),
		RouterMAC: MACOf(l3.PortMAC(name, 0xffff)), GatewayMAC: f.opts.GatewayMAC}
	for i := range ifaces {
		cfg.PortMACs = append(cfg.PortMACs, MACOf(l3.PortMAC(name, i)))
		peer, _, ok := f.topo.Peer(topologies.Endpoint{Node: name, Iface: ifaces[i]})
		if ok {
			if pn := f.topo.Node(peer.Node); pn != nil && l3.IsRouterRole(pn.Role) {
				cfg.Uplinks = append(cfg.Uplinks, i)
			}
		}
	}
	table := f.table
	if f.opts.LeafTables {
		table = NewRouteTable()
	}
	l, err := NewLeaf(cfg, table)
	if err != nil {
		return nil, err
	}
	l.portHook = func(port int, up bool) { f.portChanged(name, port, up) }
	return l, nil
}

// Generation implements datapath.Fabric.
func (f *Fabric) Generation() string { return Generation }

// Nodes implements datapath.Fabric: spines, leaves and hosts in topology
// order (instances are returned by AddInstance).
func (f *Fabric) Nodes() []datapath.Node { return slices.Clone(f.nodes) }

// Wires implements datapath.Fabric: one per topology link.
func (f *Fabric) Wires() []datapath.Wire { return slices.Clone(f.wires) }

// Table returns the fabric's EVPN route table, nil when every leaf has
// its own (Options.LeafTables: see Leaf.Table).
func (f *Fabric) Table() *RouteTable { return f.table }

// LeafTables reports whether every leaf has a route table of its own
// (Options.LeafTables).
func (f *Fabric) LeafTables() bool { return f.opts.LeafTables }

// Leaves returns the names of the leaves and border leaves, sorted.
func (f *Fabric) Leaves() []string { return f.leafNames() }

// Loopback returns the loopback address of a leaf (its VTEP) or spine,
// which is also its BGP router ID.
func (f *Fabric) Loopback(node string) (netip.Addr, bool) {
	p, ok := f.loop[node]
	return p.Addr(), ok
}

// Leaf returns the leaf (or border leaf) called name.
func (f *Fabric) Leaf(name string) (*Leaf, bool) { l, ok := f.leaves[name]; return l, ok }

// Spine returns the spine called name.
func (f *Fabric) Spine(name string) (*l3.Router, bool) { s, ok := f.spines[name]; return s, ok }

// Host returns the host called name.
func (f *Fabric) Host(name string) (*vlan.Host, bool) {
	h, ok := f.hosts[name]
	if !ok {
		return nil, false
	}
	return h.Host, true
}

// HostLeaves returns the leaves of host, the active bond member's first.
func (f *Fabric) HostLeaves(host string) []string {
	var out []string
	for _, u := range f.up[host] {
		out = append(out, u.leaf.Name())
	}
	return out
}

// InstanceLeaf returns the leaf that advertises instance now: its host's
// active leaf when it attached, another leaf of the host after a bond
// failover.
func (f *Fabric) InstanceLeaf(instance string) (string, bool) {
	in, ok := f.instances[instance]
	if !ok {
		return "", false
	}
	if f.table == nil {
		// Every leaf its own table: the leaf whose Adj-RIB-Out holds it.
		for _, name := range f.leafNames() {
			if _, ok := f.leaves[name].rib[in.route.key()]; ok {
				return name, true
			}
		}
		return "", false
	}
	r, ok := f.table.Lookup(in.route.VNI, in.route.MAC, in.route.IP)
	if !ok || f.byVTEP[r.VTEP] == nil {
		return "", false
	}
	return f.byVTEP[r.VTEP].Name(), true
}

// L3VNI returns the tenant's L3 VNI, once one of its networks exists.
func (f *Fabric) L3VNI(tenant string) (uint32, bool) { v, ok := f.tenants[tenant]; return v, ok }

// AddNetwork implements datapath.Fabric. A network's VNI and VLAN must be
// unique in the fabric; its subnet must not overlap another of the same
// tenant (other tenants may reuse it). Every leaf gets the network's SVI
// (the anycast gateway) configuration.
func (f *Fabric) AddNetwork(n datapath.NetworkSpec) error {
	where := fmt.Sprintf("add network %q", n.Name)
	switch {
	case n.Name == "":
		return fmt.Errorf("add network: %w: name is empty", ErrBadSpec)
	case f.networks[n.Name] != nil:
		return fmt.Errorf("%s: %w", where, ErrExists)
	case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30:
		return fmt.Errorf("%s: %w: subnet %v must be an IPv4 prefix of /30 or shorter", where, ErrBadSpec, n.Subnet)
	case !n.Subnet.Contains(n.Gateway):
		return fmt.Errorf("%s: %w: gateway %v is outside subnet %v", where, ErrBadSpec, n.Gateway, n.Subnet)
	case n.Subnet6.IsValid() && (!n.Subnet6.Addr().Is6() || n.Subnet6.Addr().Is4In6() || n.Subnet6.Bits() > 126):
		return fmt.Errorf("%s: %w: IPv6 subnet %v must be an IPv6 prefix of /126 or shorter", where, ErrBadSpec, n.Subnet6)
	case !n.Subnet6.IsValid() && n.Gateway6.IsValid():
		return fmt.Errorf("%s: %w: IPv6 gateway %v without an IPv6 subnet", where, ErrBadSpec, n.Gateway6)
	case n.VLAN == 0 || n.VLAN > 4094:
		return fmt.Errorf("%s: %w: VLAN %d must be 1..4094", where, ErrBadSpec, n.VLAN)
	case n.VNI == 0 || n.VNI >= 1<<24:
		return fmt.Errorf("%s: %w: VNI %d must be 1..16777215", where, ErrBadSpec, n.VNI)
	case f.byVNI[n.VNI] != nil:
		return fmt.Errorf("%s: %w: VNI %d is network %q's", where, ErrExists, n.VNI, f.byVNI[n.VNI].spec.Name)
	case f.byVLAN[n.VLAN] != nil:
		return fmt.Errorf("%s: %w: VLAN %d is network %q's", where, ErrExists, n.VLAN, f.byVLAN[n.VLAN].spec.Name)
	}
	if n.Subnet6.IsValid() {
		n.Subnet6 = n.Subnet6.Masked()
		if !n.Gateway6.IsValid() {
			n.Gateway6 = n.Subnet6.Addr().Next()
		}
		if !n.Subnet6.Contains(n.Gateway6) {
			return fmt.Errorf("%s: %w: IPv6 gateway %v is outside subnet %v", where, ErrBadSpec, n.Gateway6, n.Subnet6)
		}
	}
	l3vni, ok := f.tenants[n.Tenant]
	if !ok {
		l3vni = f.opts.L3VNIBase + uint32(len(f.tenants)) + 1
	}
	if f.byVNI[l3vni] != nil {
		return fmt.Errorf("%s: %w: tenant %q's L3 VNI %d is network %q's VNI; choose another L3VNIBase", where, ErrExists, n.Tenant, l3vni, f.byVNI[l3vni].spec.Name)
	}
	if n.VNI > f.opts.L3VNIBase && n.VNI <= f.opts.L3VNIBase+uint32(len(f.tenants))+1 {
		return fmt.Errorf("%s: %w: VNI %d is in the tenants' L3 VNI range above %d", where, ErrExists, n.VNI, f.opts.L3VNIBase)
	}
	for _, o := range f.networks {
		if o.spec.Tenant == n.Tenant && o.spec.Subnet.Overlaps(n.Subnet) {
			return fmt.Errorf("%s: %w: subnet %v overlaps network %q (%v) of tenant %q", where, ErrExists, n.Subnet, o.spec.Name, o.spec.Subnet, n.Tenant)
		}
		if o.spec.Tenant == n.Tenant && n.Subnet6.IsValid() && o.spec.Subnet6.IsValid() && o.spec.Subnet6.Overlaps(n.Subnet6) {
			return fmt.Errorf("%s: %w: IPv6 subnet %v overlaps network %q (%v) of tenant %q", where, ErrExists, n.Subnet6, o.spec.Name, o.spec.Subnet6, n.Tenant)
		}
	}
	for _, name := range f.leafNames() {
		if err := f.leaves[name].AddNetwork(Network{VNI: n.VNI, L3VNI: l3vni, Subnet: n.Subnet, Gateway: n.Gateway,
			Subnet6: n.Subnet6, Gateway6: n.Gateway6}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	f.tenants[n.Tenant] = l3vni
	s := &netState{spec: n, l3vni: l3vni}
	f.networks[n.Name], f.byVNI[n.VNI], f.byVLAN[n.VLAN] = s, s, s
	return nil
}

func (f *Fabric) leafNames() []string {
	out := make([]string, 0, len(f.leaves))
	for n := range f.leaves {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// AddInstance implements datapath.Fabric, in the order of the seed's spawn
// flow: the host attaches the instance to br-int (underlay), the CNC
// configures the VLAN → VNI mapping on the host's leaf ports (overlay) and
// binds the instance's MAC on the leaf of the host's active NIC, which
// advertises type 3 for the VNI; then the controller adds the type-2 route
// (MAC, IP, L3 VNI) with that leaf as next hop.
func (f *Fabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	where := fmt.Sprintf("add instance %q", s.Name)
	n := f.networks[s.Network]
	switch {
	case s.Name == "":
		return nil, datapath.Wire{}, fmt.Errorf("add instance: %w: name is empty", ErrBadSpec)
	case f.instances[s.Name] != nil:
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w", where, ErrExists)
	case n == nil:
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: no network %q (add it first)", where, ErrBadSpec, s.Network)
	case len(s.MAC) != 6 || s.MAC[0]&1 == 1 || MACOf(s.MAC) == (MAC{}):
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: MAC %v must be a 6-byte unicast address", where, ErrBadSpec, s.MAC)
	case !n.spec.Subnet.Contains(s.IP.Addr()) || s.IP.Addr() == n.spec.Gateway:
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: IP %v is not a host address of %v", where, ErrBadSpec, s.IP, n.spec.Subnet)
	case s.IP6.IsValid() && !n.spec.Subnet6.IsValid():
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: IPv6 address %v on network %q, which has no IPv6 subnet", where, ErrBadSpec, s.IP6, s.Network)
	case s.IP6.IsValid() && (!n.spec.Subnet6.Contains(s.IP6.Addr()) || s.IP6.Addr() == n.spec.Gateway6):
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: IPv6 address %v is not a host address of %v", where, ErrBadSpec, s.IP6, n.spec.Subnet6)
	}
	host, ok := f.hosts[s.Host]
	if !ok {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: %q is not a host of %s", where, ErrBadSpec, s.Host, f.topo.Name)
	}
	ups := f.up[s.Host]
	if len(ups) == 0 {
		return nil, datapath.Wire{}, fmt.Errorf("%s: host %s: %w", where, s.Host, ErrNotLeaf)
	}
	mac := MACOf(s.MAC)
	if o := f.byMAC[vniMAC{n.spec.VNI, mac}]; o != nil {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: MAC %v is instance %q's in network %q", where, ErrExists, s.MAC, o.spec.Name, s.Network)
	}
	if o := f.byIP[l3Addr{n.l3vni, s.IP.Addr()}]; o != nil {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: IP %v is instance %q's in tenant %q", where, ErrExists, s.IP.Addr(), o.spec.Name, n.spec.Tenant)
	}
	if o := f.byIP[l3Addr{n.l3vni, s.IP6.Addr()}]; s.IP6.IsValid() && o != nil {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w: IPv6 address %v is instance %q's in tenant %q", where, ErrExists, s.IP6.Addr(), o.spec.Name, n.spec.Tenant)
	}
	gw := s.Gateway
	if !gw.IsValid() {
		gw = n.spec.Gateway
	}
	newNode := func() *stack.Instance {
		inst := stack.New(s.Name, s.MAC, s.IP, gw)
		if s.IP6.IsValid() {
			gw6 := s.Gateway6
			if !gw6.IsValid() {
				gw6 = n.spec.Gateway6
			}
			inst.SetIPv6(netip.PrefixFrom(s.IP6.Addr(), n.spec.Subnet6.Bits()), gw6)
		}
		return inst
	}
	vid := n.spec.VLAN
	// Underlay: tap on br-int, local VLAN, provider VLAN on the trunk.
	hostPort := host.AttachInstance(s.Name, vid)
	if hostPort < 0 {
		return nil, datapath.Wire{}, fmt.Errorf("%s: host %s refused VLAN %d", where, s.Host, vid)
	}
	if hostPort >= len(host.names) {
		host.DetachInstance(s.Name)
		return nil, datapath.Wire{}, fmt.Errorf("%s: host %s: %w (%d slots; raise Options.TapSlots)", where, s.Host, ErrHostFull, f.opts.TapSlots)
	}
	host.sync()
	if f.opts.ExternalOverlay {
		inst := newNode()
		// The routes' keys (no next hop yet): for uniqueness checks and
		// InstanceLeaf once the controller has advertised them.
		key := Route{Type: MACIP, VNI: n.spec.VNI, L3VNI: n.l3vni, MAC: mac, IP: s.IP.Addr()}
		var key6 Route
		if s.IP6.IsValid() {
			key6 = Route{Type: MACIP, VNI: n.spec.VNI, L3VNI: n.l3vni, MAC: mac, IP: s.IP6.Addr()}
		}
		f.instances[s.Name] = &instState{spec: s, net: n, host: s.Host, node: inst, external: true, route: key, route6: key6}
		f.index(f.instances[s.Name])
		w := datapath.Wire{A: datapath.PortRef{Node: s.Name, Port: 0}, B: datapath.PortRef{Node: s.Host, Port: hostPort}}
		return inst, w, nil
	}
	// Overlay: the fabric plays the CNC and configures every leaf port the
	// host is on.
	var done []portUse
	for _, u := range ups {
		pu := portUse{u.leaf, u.leafPort, vid}
		if f.portRefs[pu] == 0 {
			if err := u.leaf.ConfigurePort(u.leafPort, vid, n.spec.VNI); err != nil {
				for _, d := range done {
					f.releasePort(d)
				}
				host.DetachInstance(s.Name)
				host.sync()
				return nil, datapath.Wire{}, fmt.Errorf("%s: %w", where, err)
			}
		}
		f.portRefs[pu]++
		done = append(done, pu)
	}
	primary := ups[0]
	if err := primary.leaf.BindLocal(primary.leafPort, vid, mac); err != nil {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w", where, err)
	}
	rt := Route{Type: MACIP, VNI: n.spec.VNI, L3VNI: n.l3vni, MAC: mac, IP: s.IP.Addr(),
		VTEP: primary.leaf.VTEP(), RouterMAC: primary.leaf.RouterMAC()}
	if err := primary.leaf.Advertise(rt); err != nil {
		return nil, datapath.Wire{}, fmt.Errorf("%s: %w", where, err)
	}
	// A dual-stack instance has a second type-2 route, with its IPv6
	// address (one IP per MAC/IP route, as FRR advertises them).
	var rt6 Route
	if s.IP6.IsValid() {
		rt6 = rt
		rt6.IP = s.IP6.Addr()
		if err := primary.leaf.Advertise(rt6); err != nil {
			return nil, datapath.Wire{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	inst := newNode()
	f.instances[s.Name] = &instState{spec: s, net: n, host: s.Host, primary: primary.leaf,
		leafPort: primary.leafPort, route: rt, route6: rt6, node: inst}
	f.index(f.instances[s.Name])
	w := datapath.Wire{A: datapath.PortRef{Node: s.Name, Port: 0}, B: datapath.PortRef{Node: s.Host, Port: hostPort}}
	return inst, w, nil
}

func (f *Fabric) releasePort(pu portUse) {
	f.portRefs[pu]--
	if f.portRefs[pu] <= 0 {
		delete(f.portRefs, pu)
		_ = pu.leaf.UnconfigurePort(pu.port, pu.vlan)
	}
}

// RemoveInstance implements datapath.Fabric: the instance's routes are
// withdrawn, its local binding removed, the leaf ports unconfigured when
// no other instance of the network remains on the host, and its tap
// detached.
func (f *Fabric) RemoveInstance(name string) error {
	in, ok := f.instances[name]
	if !ok {
		return fmt.Errorf("remove instance %q: %w", name, ErrNotFound)
	}
	delete(f.instances, name)
	f.unindex(in)
	if in.external {
		f.hosts[in.host].DetachInstance(name)
		f.hosts[in.host].sync()
		return nil
	}
	// Withdraw the route from the leaf that originates it now: after a
	// bond failover another leaf of the host may have re-advertised it.
	withdrawn := false
	for _, u := range f.up[in.host] {
		for _, r := range []Route{in.route, in.route6} {
			if r.Type == 0 {
				continue
			}
			r.VTEP, r.RouterMAC = u.leaf.VTEP(), u.leaf.RouterMAC()
			if err := u.leaf.Withdraw(r); err == nil {
				withdrawn = withdrawn || r.IP == in.route.IP
			} else if !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("remove instance %q: %w", name, err)
			}
		}
	}
	if !withdrawn {
		return fmt.Errorf("remove instance %q: route %s: %w", name, in.route, ErrNotFound)
	}
	for _, u := range f.up[in.host] {
		_ = u.leaf.UnbindLocal(in.net.spec.VNI, in.route.MAC) // absent on leaves it never reached
	}
	for _, u := range f.up[in.host] {
		f.releasePort(portUse{u.leaf, u.leafPort, in.net.spec.VLAN})
	}
	f.hosts[in.host].DetachInstance(name)
	f.hosts[in.host].sync()
	return nil
}

// Instance returns the node of an attached instance.
func (f *Fabric) Instance(name string) (*stack.Instance, bool) {
	in, ok := f.instances[name]
	if !ok {
		return nil, false
	}
	return in.node, true
}

// FailureDetection implements datapath.ControlPlane (Options.FailureDetection;
// 0 with Options.LeafTables, where the speakers detect failures themselves).
func (f *Fabric) FailureDetection() time.Duration {
	if f.opts.LeafTables {
		return 0
	}
	return f.opts.FailureDetection
}

// NodeStateChanged implements datapath.ControlPlane: a failed leaf's BGP
// session drops, so every route it originated (type 2, 3 and 5) is
// withdrawn and the other leaves remove what pointed at its VTEP; a
// restored leaf advertises them again. Other nodes originate no EVPN
// routes (a host's instances stay advertised by their leaf until the
// controller removes them).
func (f *Fabric) NodeStateChanged(node string, up bool) int {
	if l, ok := f.leaves[node]; ok {
		return l.SetSession(up)
	}
	return 0
}

// Capacity is the fabric's table usage, for capacity reports ("what
// happens to leaf tables at 500 pods per node?").
type Capacity struct {
	Routes    Counts                // EVPN routes by type
	Leaves    map[string]LeafTables // per leaf (and border leaf)
	SpineFIB  map[string]int        // underlay routes per spine
	Instances int
}

// TableSizes implements datapath.TableReporter: the EVPN routes (as the
// route reflectors hold them; with Options.LeafTables, every route some
// leaf's table holds), every leaf's tables and every spine's
// underlay FIB.
func (f *Fabric) TableSizes(time.Duration) []datapath.TableSize {
	c := f.Capacity()
	out := []datapath.TableSize{
		{Node: "evpn", Table: "type-2 routes", Entries: c.Routes.MACIP},
		{Node: "evpn", Table: "type-3 routes", Entries: c.Routes.InclusiveMulticast},
		{Node: "evpn", Table: "type-5 routes", Entries: c.Routes.IPPrefix},
	}
	for n, t := range c.Leaves {
		for _, e := range []struct {
			name string
			v    int
		}{{"port vlans", t.PortVLANs}, {"l2 vnis", t.L2VNIs}, {"vrfs", t.VRFs}, {"macs", t.LocalMACs + t.RemoteMACs},
			{"arp suppression", t.ARP}, {"host routes", t.HostRoutes}, {"prefixes", t.Prefixes}, {"flood vteps", t.FloodVTEPs}, {"underlay routes", t.Underlay}} {
			out = append(out, datapath.TableSize{Node: n, Table: e.name, Entries: e.v})
		}
	}
	for n, v := range c.SpineFIB {
		out = append(out, datapath.TableSize{Node: n, Table: "underlay routes", Entries: v})
	}
	return out
}

// Capacity returns the current table sizes.
func (f *Fabric) Capacity() Capacity {
	c := Capacity{Leaves: map[string]LeafTables{}, SpineFIB: map[string]int{}, Instances: len(f.instances)}
	if f.table != nil {
		c.Routes = f.table.Counts()
	} else {
		seen := map[Route]bool{}
		for _, l := range f.leaves {
			for _, r := range l.table.Routes() {
				if !seen[r] {
					seen[r] = true
					c.Routes.add(r.Type, 1)
				}
			}
		}
	}
	for n, l := range f.leaves {
		c.Leaves[n] = l.Tables()
	}
	for n, s := range f.spines {
		c.SpineFIB[n] = s.FIBLen()
	}
	return c
}
