package topologies

import (
	"errors"
	"fmt"
	"time"
)

// Defaults the builders use for parameters left at zero.
const (
	// DefaultKind and DefaultImage are written to containerlab files so that
	// containerlab itself can deploy a generated lab; netbed's own netns
	// realisation ignores them.
	DefaultKind  = "linux"
	DefaultImage = "ghcr.io/hellt/network-multitool"

	// Rates: the seed's servers moved from 10G to 10G/25G NICs with the
	// spine-leaf fabric; fabric links are 100G, three-tier uplinks 40G.
	Rate10G  int64 = 10_000_000_000
	Rate25G  int64 = 25_000_000_000
	Rate40G  int64 = 40_000_000_000
	Rate100G int64 = 100_000_000_000

	// HostMTU is the MTU of server-facing links, FabricMTU that of links
	// between network devices (jumbo frames leave room for VXLAN).
	HostMTU   = 1500
	FabricMTU = 9000

	// DefaultInterAZDelay is the one-way delay of a link between two
	// availability zones of one region.
	DefaultInterAZDelay = 500 * time.Microsecond
)

// ErrBadParams is returned by a builder given parameters it cannot build.
var ErrBadParams = errors.New("bad topology parameters")

// LabelPod is the label key the three-tier builder sets on a pod's
// aggregation switches, ToRs and hosts.
const LabelPod = "netbed.pod"

// ThreeTierParams describes the seed's gen-1 fabric (Fig. 4): access
// (ToR) - aggregation - core, servers dual-homed to the two ToRs of their
// rack, a firewall beside the core. Zero fields take the defaults in
// parentheses.
type ThreeTierParams struct {
	Name         string // lab name ("three-tier")
	Pods         int    // pods, each with its own aggregation pair (1)
	RacksPerPod  int    // racks per pod, each with a ToR pair (2)
	HostsPerRack int    // servers per rack, each linked to both ToRs (2)
	Firewalls    int    // firewalls, each linked to both core routers (1)

	HostRate   int64 // server - ToR (10G)
	UplinkRate int64 // ToR - aggregation (40G)
	CoreRate   int64 // aggregation - core, core - core, core - firewall (100G)

	Kind, Image string // carried to containerlab files (linux, DefaultImage)
}

func (p *ThreeTierParams) defaults() error {
	def(&p.Name, "three-tier")
	defInt(&p.Pods, 1)
	defInt(&p.RacksPerPod, 2)
	defInt(&p.HostsPerRack, 2)
	defInt(&p.Firewalls, 1)
	defRate(&p.HostRate, Rate10G)
	defRate(&p.UplinkRate, Rate40G)
	defRate(&p.CoreRate, Rate100G)
	def(&p.Kind, DefaultKind)
	def(&p.Image, DefaultImage)
	return positive(map[string]int{"pods": p.Pods, "racks per pod": p.RacksPerPod,
		"hosts per rack": p.HostsPerRack, "firewalls": p.Firewalls},
		map[string]int64{"host rate": p.HostRate, "uplink rate": p.UplinkRate, "core rate": p.CoreRate})
}

// ThreeTier builds the seed's three-tier fabric. Nodes are named core1-2,
// fwN, aggN (agg1-2 serve pod1, agg3-4 pod2...), torN (tor1-2 serve rack1,
// tor3-4 rack2...) and hostN, numbered across the whole fabric. Every ToR
// links to both aggregation switches of its pod (L2), every aggregation
// switch to both cores (L3); the cores are linked to each other and to every
// firewall. Racks are numbered across pods; the pod is in the "netbed.pod"
// label.
func ThreeTier(p ThreeTierParams) (*Topology, error) {
	if err := p.defaults(); err != nil {
		return nil, fmt.Errorf("three-tier: %w", err)
	}
	b := newBuilder(p.Name, p.Kind, p.Image)
	cores := []*Node{b.node("core1", RoleCore), b.node("core2", RoleCore)}
	var fws []*Node
	for f := 1; f <= p.Firewalls; f++ {
		fws = append(fws, b.node(fmt.Sprintf("fw%d", f), RoleFirewall))
	}
	type rack struct {
		tors  [2]*Node
		hosts []*Node
	}
	var aggs [][2]*Node
	var racks [][]rack
	host, rackNo := 0, 0
	for pod := 1; pod <= p.Pods; pod++ {
		podName := fmt.Sprintf("pod%d", pod)
		pair := [2]*Node{
			b.node(fmt.Sprintf("agg%d", 2*pod-1), RoleAggregation),
			b.node(fmt.Sprintf("agg%d", 2*pod), RoleAggregation),
		}
		aggs = append(aggs, pair)
		var podRacks []rack
		for r := 1; r <= p.RacksPerPod; r++ {
			rackNo++
			rk := rack{tors: [2]*Node{
				b.node(fmt.Sprintf("tor%d", 2*rackNo-1), RoleToR),
				b.node(fmt.Sprintf("tor%d", 2*rackNo), RoleToR),
			}}
			for h := 1; h <= p.HostsPerRack; h++ {
				host++
				rk.hosts = append(rk.hosts, b.node(fmt.Sprintf("host%d", host), RoleHost))
			}
			for _, n := range append(rk.hosts, rk.tors[:]...) {
				n.Rack = fmt.Sprintf("rack%d", rackNo)
			}
			podRacks = append(podRacks, rk)
		}
		racks = append(racks, podRacks)
		for _, n := range b.t.Nodes {
			if (n.Role == RoleAggregation || n.Role == RoleToR || n.Role == RoleHost) && n.Labels == nil {
				n.Labels = map[string]string{LabelPod: podName}
			}
		}
	}
	// Links, lowest layer first so that a switch's downlinks come before
	// its uplinks in interface order.
	for _, podRacks := range racks {
		for _, rk := range podRacks {
			for _, h := range rk.hosts {
				b.link(h, rk.tors[0], p.HostRate, HostMTU)
				b.link(h, rk.tors[1], p.HostRate, HostMTU)
			}
		}
	}
	for i, podRacks := range racks {
		for _, rk := range podRacks {
			for _, tor := range rk.tors {
				b.link(tor, aggs[i][0], p.UplinkRate, FabricMTU)
				b.link(tor, aggs[i][1], p.UplinkRate, FabricMTU)
			}
		}
	}
	for _, pair := range aggs {
		for _, agg := range pair {
			b.link(agg, cores[0], p.CoreRate, FabricMTU)
			b.link(agg, cores[1], p.CoreRate, FabricMTU)
		}
	}
	b.link(cores[0], cores[1], p.CoreRate, FabricMTU)
	for _, fw := range fws {
		b.link(cores[0], fw, p.CoreRate, FabricMTU)
		b.link(cores[1], fw, p.CoreRate, FabricMTU)
	}
	return b.t, nil
}

// SpineLeafParams describes a two-tier Clos fabric (the seed's Fig. 7).
// Zero fields take the defaults in parentheses.
type SpineLeafParams struct {
	Name         string // lab name ("spine-leaf")
	Spines       int    // (2)
	Leaves       int    // (4); even when DualHomed
	HostsPerLeaf int    // (2); negative means none
	// DualHomed links every host to both leaves of a pair (leaf1-leaf2,
	// leaf3-leaf4, ...); the pair then serves 2*HostsPerLeaf hosts, so the
	// host count stays Leaves*HostsPerLeaf.
	DualHomed bool

	HostRate   int64 // host - leaf (25G)
	FabricRate int64 // leaf - spine (100G)

	Kind, Image string // carried to containerlab files (linux, DefaultImage)
}

func (p *SpineLeafParams) defaults() error {
	def(&p.Name, "spine-leaf")
	defInt(&p.Spines, 2)
	defInt(&p.Leaves, 4)
	defInt(&p.HostsPerLeaf, 2)
	if p.HostsPerLeaf < 0 {
		p.HostsPerLeaf = 0
	}
	defRate(&p.HostRate, Rate25G)
	defRate(&p.FabricRate, Rate100G)
	def(&p.Kind, DefaultKind)
	def(&p.Image, DefaultImage)
	if err := positive(map[string]int{"spines": p.Spines, "leaves": p.Leaves},
		map[string]int64{"host rate": p.HostRate, "fabric rate": p.FabricRate}); err != nil {
		return err
	}
	if p.DualHomed && p.Leaves%2 != 0 {
		return fmt.Errorf("%w: dual-homing pairs leaves, so leaves must be even (got %d)", ErrBadParams, p.Leaves)
	}
	return nil
}

// SpineLeaf builds a spine-leaf fabric: spineN, leafN and hostN, every leaf
// linked to every spine. Hosts sit in racks: one rack per leaf, or one per
// leaf pair when dual-homed.
func SpineLeaf(p SpineLeafParams) (*Topology, error) {
	if err := p.defaults(); err != nil {
		return nil, fmt.Errorf("spine-leaf: %w", err)
	}
	b := newBuilder(p.Name, p.Kind, p.Image)
	f := b.fabric("", "", p)
	b.wireFabric(f, p)
	return b.t, nil
}

// MultiAZParams describes several spine-leaf fabrics, one per availability
// zone, joined by border leaves. Zero fields take the defaults in
// parentheses.
type MultiAZParams struct {
	Name string // lab name ("multi-az")
	AZs  int    // availability zones (2)
	// Fabric is each AZ's spine-leaf fabric; its Name, Kind and Image are
	// ignored. Its zero fields take SpineLeafParams' defaults.
	Fabric SpineLeafParams
	// BorderLeaves per AZ (2), each linked to all spines of its AZ. Border
	// leaf k of every AZ is linked to border leaf k of every other AZ, so
	// there are BorderLeaves parallel inter-AZ planes.
	BorderLeaves int

	InterAZRate  int64         // border - border (100G)
	InterAZDelay time.Duration // one way, border - border (500µs)

	Kind, Image string // carried to containerlab files (linux, DefaultImage)
}

func (p *MultiAZParams) defaults() error {
	def(&p.Name, "multi-az")
	defInt(&p.AZs, 2)
	defInt(&p.BorderLeaves, 2)
	defRate(&p.InterAZRate, Rate100G)
	if p.InterAZDelay == 0 {
		p.InterAZDelay = DefaultInterAZDelay
	}
	def(&p.Kind, DefaultKind)
	def(&p.Image, DefaultImage)
	if err := p.Fabric.defaults(); err != nil {
		return err
	}
	if p.InterAZDelay < 0 {
		return fmt.Errorf("%w: inter-AZ delay must not be negative (got %v)", ErrBadParams, p.InterAZDelay)
	}
	return positive(map[string]int{"availability zones": p.AZs, "border leaves": p.BorderLeaves},
		map[string]int64{"inter-AZ rate": p.InterAZRate})
}

// MultiAZ builds one spine-leaf fabric per availability zone (az1, az2, ...),
// node names prefixed with the zone ("az1-leaf1"), every node's AZ set, and
// border leaves ("az1-border1", role border) joining the zones.
func MultiAZ(p MultiAZParams) (*Topology, error) {
	if err := p.defaults(); err != nil {
		return nil, fmt.Errorf("multi-az: %w", err)
	}
	b := newBuilder(p.Name, p.Kind, p.Image)
	borders := make([][]*Node, p.AZs)
	fabrics := make([]fabricNodes, p.AZs)
	for a := range p.AZs {
		az := fmt.Sprintf("az%d", a+1)
		fabrics[a] = b.fabric(az+"-", az, p.Fabric)
		for k := 1; k <= p.BorderLeaves; k++ {
			n := b.node(fmt.Sprintf("%s-border%d", az, k), RoleBorder)
			n.AZ = az
			borders[a] = append(borders[a], n)
		}
	}
	for a := range p.AZs {
		b.wireFabric(fabrics[a], p.Fabric)
		for _, bl := range borders[a] {
			for _, s := range fabrics[a].spines {
				b.link(bl, s, p.Fabric.FabricRate, FabricMTU)
			}
		}
	}
	for k := range p.BorderLeaves {
		for a := range p.AZs {
			for c := a + 1; c < p.AZs; c++ {
				l := b.link(borders[a][k], borders[c][k], p.InterAZRate, FabricMTU)
				l.Delay = p.InterAZDelay
			}
		}
	}
	return b.t, nil
}

// builder names interfaces eth1, eth2, ... on every node in link order, as
// containerlab's linux kind does.
type builder struct {
	t           *Topology
	kind, image string
	next        map[string]int
}

func newBuilder(name, kind, image string) *builder {
	return &builder{t: &Topology{Name: name}, kind: kind, image: image, next: map[string]int{}}
}

func (b *builder) node(name string, role Role) *Node {
	n := b.t.AddNode(name, role)
	n.Kind, n.Image = b.kind, b.image
	return n
}

func (b *builder) iface(n *Node) string {
	b.next[n.Name]++
	return fmt.Sprintf("eth%d", b.next[n.Name])
}

func (b *builder) link(x, y *Node, rate int64, mtu int) *Link {
	l := b.t.Connect(x.Name, b.iface(x), y.Name, b.iface(y))
	l.Rate, l.MTU = rate, mtu
	return l
}

type fabricNodes struct {
	spines, leaves []*Node
	// hosts[i] are the hosts of rack i and racks[i] its leaves (one, or a
	// pair when dual-homed).
	hosts [][]*Node
	racks [][]*Node
}

// fabric adds the nodes of one spine-leaf fabric, names prefixed with
// prefix and AZ set to az.
func (b *builder) fabric(prefix, az string, p SpineLeafParams) fabricNodes {
	var f fabricNodes
	add := func(name string, role Role) *Node {
		n := b.node(prefix+name, role)
		n.AZ = az
		return n
	}
	for s := 1; s <= p.Spines; s++ {
		f.spines = append(f.spines, add(fmt.Sprintf("spine%d", s), RoleSpine))
	}
	for l := 1; l <= p.Leaves; l++ {
		f.leaves = append(f.leaves, add(fmt.Sprintf("leaf%d", l), RoleLeaf))
	}
	perRack := 1
	if p.DualHomed {
		perRack = 2
	}
	host := 0
	for r := 0; r*perRack < len(f.leaves); r++ {
		rackLeaves := f.leaves[r*perRack : (r+1)*perRack]
		rackName := fmt.Sprintf("%srack%d", prefix, r+1)
		var hosts []*Node
		for range p.HostsPerLeaf * perRack {
			host++
			hosts = append(hosts, add(fmt.Sprintf("host%d", host), RoleHost))
		}
		for _, n := range append(hosts, rackLeaves...) {
			n.Rack = rackName
		}
		f.hosts = append(f.hosts, hosts)
		f.racks = append(f.racks, rackLeaves)
	}
	return f
}

// wireFabric links hosts to their leaves, then every leaf to every spine.
func (b *builder) wireFabric(f fabricNodes, p SpineLeafParams) {
	for r, hosts := range f.hosts {
		for _, h := range hosts {
			for _, leaf := range f.racks[r] {
				b.link(h, leaf, p.HostRate, HostMTU)
			}
		}
	}
	for _, leaf := range f.leaves {
		for _, s := range f.spines {
			b.link(leaf, s, p.FabricRate, FabricMTU)
		}
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defInt(n *int, v int) {
	if *n == 0 {
		*n = v
	}
}

func defRate(r *int64, v int64) {
	if *r == 0 {
		*r = v
	}
}

// positive reports the first count or rate below one, in a stable order.
func positive(counts map[string]int, rates map[string]int64) error {
	var errs []error
	for _, k := range sortedKeys(counts) {
		if counts[k] < 1 {
			errs = append(errs, fmt.Errorf("%w: %s must be at least 1 (got %d)", ErrBadParams, k, counts[k]))
		}
	}
	for _, k := range sortedKeys(rates) {
		if rates[k] < 1 {
			errs = append(errs, fmt.Errorf("%w: %s must be positive (got %d)", ErrBadParams, k, rates[k]))
		}
	}
	return errors.Join(errs...)
}

// VPCParams describes a public cloud VPC (generation vpc). Zero fields
// take the defaults in parentheses.
type VPCParams struct {
	Name string // lab name ("vpc")
	// Prefix is put before every node name ("" ; "use1-" for a region).
	Prefix string
	Hosts  int // VM instances, the Kubernetes nodes (4)
	// HostRate is a VM's link to the VPC router (25G, an ENA NIC);
	// EdgeRate the internet gateway's links (10G).
	HostRate, EdgeRate int64
	// NoInternet leaves out the internet gateway and the outside network.
	NoInternet bool

	Kind, Image string // carried to containerlab files (linux, DefaultImage)
}

// VPC builds a VPC: its implicit router (vpc-router, role vpc-router)
// with one link to each VM (host1..hostN, role host) and one to the
// internet gateway (igw, role internet-gateway), which links to a network
// outside the VPC (internet, role external) where clients run.
func VPC(p VPCParams) (*Topology, error) {
	def(&p.Name, "vpc")
	defInt(&p.Hosts, 4)
	defRate(&p.HostRate, Rate25G)
	defRate(&p.EdgeRate, Rate10G)
	def(&p.Kind, DefaultKind)
	def(&p.Image, DefaultImage)
	if err := positive(map[string]int{"hosts": p.Hosts}, map[string]int64{"host rate": p.HostRate, "edge rate": p.EdgeRate}); err != nil {
		return nil, fmt.Errorf("vpc: %w", err)
	}
	b := newBuilder(p.Name, p.Kind, p.Image)
	b.addVPC(p)
	return b.t, nil
}

func (b *builder) addVPC(p VPCParams) *Node {
	r := b.node(p.Prefix+"vpc-router", RoleVPCRouter)
	for i := 1; i <= p.Hosts; i++ {
		h := b.node(fmt.Sprintf("%shost%d", p.Prefix, i), RoleHost)
		b.link(h, r, p.HostRate, 0)
	}
	if !p.NoInternet {
		igw := b.node(p.Prefix+"igw", RoleInternetGateway)
		b.link(r, igw, p.EdgeRate, 0)
		out := b.node(p.Prefix+"internet", RoleExternal)
		b.link(igw, out, p.EdgeRate, 0)
	}
	return r
}

// Hybrid network defaults: a dedicated line of 1 Gbit/s with a WAN's
// one-way delay between a private data centre and a cloud region.
const (
	DefaultLineRate  int64 = 1_000_000_000
	DefaultLineDelay       = 10 * time.Millisecond
)

// HybridParams describes a hybrid network: a private cloud (a spine-leaf
// fabric, site "dc", node names prefixed "dc-") and VPCs in other regions
// (sites "vpc1", "vpc2", ..., names prefixed "vpc1-"), each VPC's router
// joined by a dedicated line to a border leaf of the private cloud of its
// own. Zero fields take the defaults in parentheses.
type HybridParams struct {
	Name string // lab name ("hybrid")
	// Fabric is the private cloud's spine-leaf fabric (2 spines, 2
	// leaves, 2 hosts per leaf); its Name, Kind and Image are ignored.
	Fabric SpineLeafParams
	// VPCs is how many VPCs (1), each with VPCHosts VMs (2) and no
	// internet gateway.
	VPCs, VPCHosts int
	// LineRate and LineDelay are each dedicated line's rate (1 Gbit/s)
	// and one-way delay (10 ms).
	LineRate  int64
	LineDelay time.Duration

	Kind, Image string // carried to containerlab files (linux, DefaultImage)
}

// SiteDC is the private cloud's site in a Hybrid topology; VPC i's is
// fmt.Sprintf("vpc%d", i).
const SiteDC = "dc"

// Hybrid builds a hybrid network: the private cloud's spine-leaf fabric
// (site dc), one border leaf per VPC linked to every spine, and the VPCs
// (sites vpc1...), vpcN-vpc-router linked to dc-borderN by a line with
// LineRate and LineDelay.
func Hybrid(p HybridParams) (*Topology, error) {
	def(&p.Name, "hybrid")
	defInt(&p.VPCs, 1)
	defInt(&p.VPCHosts, 2)
	defInt(&p.Fabric.Leaves, 2)
	defRate(&p.LineRate, DefaultLineRate)
	if p.LineDelay == 0 {
		p.LineDelay = DefaultLineDelay
	}
	def(&p.Kind, DefaultKind)
	def(&p.Image, DefaultImage)
	if err := p.Fabric.defaults(); err != nil {
		return nil, fmt.Errorf("hybrid: %w", err)
	}
	if err := positive(map[string]int{"vpcs": p.VPCs, "vpc hosts": p.VPCHosts}, map[string]int64{"line rate": p.LineRate}); err != nil {
		return nil, fmt.Errorf("hybrid: %w", err)
	}
	if p.LineDelay < 0 {
		return nil, fmt.Errorf("hybrid: %w: line delay must not be negative (got %v)", ErrBadParams, p.LineDelay)
	}
	b := newBuilder(p.Name, p.Kind, p.Image)
	dc := b.fabric(SiteDC+"-", "", p.Fabric)
	var borders []*Node
	for i := 1; i <= p.VPCs; i++ {
		borders = append(borders, b.node(fmt.Sprintf("%s-border%d", SiteDC, i), RoleBorder))
	}
	for _, n := range b.t.Nodes {
		n.Site = SiteDC
	}
	b.wireFabric(dc, p.Fabric)
	for _, bl := range borders {
		for _, s := range dc.spines {
			b.link(bl, s, p.Fabric.FabricRate, FabricMTU)
		}
	}
	for i := 1; i <= p.VPCs; i++ {
		site := fmt.Sprintf("vpc%d", i)
		first := len(b.t.Nodes)
		r := b.addVPC(VPCParams{Prefix: site + "-", Hosts: p.VPCHosts, HostRate: Rate25G, NoInternet: true})
		for _, n := range b.t.Nodes[first:] {
			n.Site = site
		}
		l := b.link(borders[i-1], r, p.LineRate, 0)
		l.Delay = p.LineDelay
	}
	return b.t, nil
}
