package hybrid

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/topologies"
)

// Generation is the hybrid network's name in traces and reports.
const Generation = "hybrid"

// Site is one site's fabric.
type Site struct {
	Name   string
	Fabric datapath.Fabric
	// AddNetwork, if set, adds a network to the site in place of
	// Fabric.AddNetwork (a site whose networks go through a driver, as
	// gen 2's CNC driver).
	AddNetwork func(datapath.NetworkSpec) error
}

// line is a dedicated line between a border leaf of the private cloud
// and a VPC's router.
type line struct {
	link           *topologies.Link
	leaf           string
	leafPort       int
	vpcSite        string
	routerPort     int
	leafMAC, rtMAC net.HardwareAddr
}

// Fabric is the hybrid network: the sites' fabrics and the lines joining
// them. It implements datapath.Fabric, dispatching each network to its
// site (NetworkSpec.Site) and each instance to its host's.
type Fabric struct {
	t      *topologies.Topology
	sites  []*Site
	bySite map[string]*Site
	dc     *evpn.Fabric
	dcSite string
	vpcs   map[string]*vpc.Fabric
	lines  []line
	// pending are VPC prefixes whose tenant had no network in the private
	// cloud yet.
	pending []datapath.NetworkSpec
	members map[string]*Site
	wires   []datapath.Wire
}

var (
	_ datapath.Fabric        = (*Fabric)(nil)
	_ datapath.TableReporter = (*Fabric)(nil)
	_ datapath.ControlPlane  = (*Fabric)(nil)
)

// ErrLine is returned for a link between two sites that is not a
// dedicated line netbed can route: a border leaf of the private cloud to
// a VPC's router.
var ErrLine = errors.New("not a dedicated line between a border leaf and a VPC router")

// New joins sites, built on t, by t's lines. One site's fabric must be
// an *evpn.Fabric (the private cloud), the others *vpc.Fabric.
func New(t *topologies.Topology, sites []*Site) (*Fabric, error) {
	f := &Fabric{t: t, bySite: map[string]*Site{}, vpcs: map[string]*vpc.Fabric{}, members: map[string]*Site{}}
	for _, s := range sites {
		if f.bySite[s.Name] != nil {
			return nil, fmt.Errorf("hybrid network on %s: site %s twice", t.Name, s.Name)
		}
		f.sites, f.bySite[s.Name] = append(f.sites, s), s
		switch sf := s.Fabric.(type) {
		case *evpn.Fabric:
			if f.dc != nil {
				return nil, fmt.Errorf("hybrid network on %s: two private clouds (%s, %s); netbed joins one to VPCs", t.Name, f.dcSite, s.Name)
			}
			f.dc, f.dcSite = sf, s.Name
		case *vpc.Fabric:
			f.vpcs[s.Name] = sf
		default:
			return nil, fmt.Errorf("hybrid network on %s: site %s is a %s fabric; a hybrid network joins an evpn private cloud and vpc VPCs", t.Name, s.Name, s.Fabric.Generation())
		}
		f.wires = append(f.wires, s.Fabric.Wires()...)
	}
	if f.dc == nil || len(f.vpcs) == 0 {
		return nil, fmt.Errorf("hybrid network on %s: want a private cloud (evpn) and at least one VPC, have sites %v", t.Name, t.Sites())
	}
	for _, lk := range t.Lines() {
		ln, err := f.line(lk)
		if err != nil {
			return nil, fmt.Errorf("hybrid network on %s: line %s - %s: %w", t.Name, lk.A, lk.B, err)
		}
		f.lines = append(f.lines, ln)
		f.wires = append(f.wires, datapath.Wire{Rate: lk.Rate, Delay: lk.Delay, MTU: lk.MTU,
			A: datapath.PortRef{Node: ln.leaf, Port: ln.leafPort}, B: datapath.PortRef{Node: f.vpcs[ln.vpcSite].Router().Name(), Port: ln.routerPort}})
	}
	for _, s := range f.sites {
		if _, isVPC := f.vpcs[s.Name]; isVPC && !slices.ContainsFunc(f.lines, func(l line) bool { return l.vpcSite == s.Name }) {
			return nil, fmt.Errorf("hybrid network on %s: VPC %s has no dedicated line to the private cloud", t.Name, s.Name)
		}
	}
	return f, nil
}

func (f *Fabric) line(lk *topologies.Link) (line, error) {
	a, b := lk.A, lk.B
	if f.t.Node(a.Node).Role != topologies.RoleBorder {
		a, b = b, a
	}
	an, bn := f.t.Node(a.Node), f.t.Node(b.Node)
	if an.Role != topologies.RoleBorder || an.Site != f.dcSite || bn.Role != topologies.RoleVPCRouter || f.vpcs[bn.Site] == nil {
		return line{}, fmt.Errorf("%w (%s is a %s of site %q, %s a %s of site %q)", ErrLine, an.Name, an.Role, an.Site, bn.Name, bn.Role, bn.Site)
	}
	ln := line{link: lk, leaf: a.Node, leafPort: slices.Index(f.t.Interfaces(a.Node), a.Iface), vpcSite: bn.Site,
		routerPort: slices.Index(f.t.Interfaces(b.Node), b.Iface)}
	leaf, ok := f.dc.Leaf(ln.leaf)
	if !ok {
		return line{}, fmt.Errorf("%s is not a leaf of the private cloud", ln.leaf)
	}
	m := leaf.PortMAC(ln.leafPort)
	ln.leafMAC = net.HardwareAddr(m[:])
	ln.rtMAC = f.vpcs[bn.Site].Router().PortMAC(ln.routerPort)
	return ln, nil
}

// Generation implements datapath.Fabric.
func (f *Fabric) Generation() string { return Generation }

// Nodes implements datapath.Fabric: every site's nodes, site by site.
func (f *Fabric) Nodes() []datapath.Node {
	var out []datapath.Node
	for _, s := range f.sites {
		out = append(out, s.Fabric.Nodes()...)
	}
	return out
}

// Wires implements datapath.Fabric: every site's wires and the lines.
func (f *Fabric) Wires() []datapath.Wire { return slices.Clone(f.wires) }

// Site returns a site's fabric.
func (f *Fabric) Site(name string) (*Site, bool) {
	s, ok := f.bySite[name]
	return s, ok
}

// Sites returns the sites in the order New was given them.
func (f *Fabric) Sites() []*Site { return slices.Clone(f.sites) }

// SiteOf returns the site of a topology node.
func (f *Fabric) SiteOf(node string) (*Site, bool) {
	n := f.t.Node(node)
	if n == nil {
		return nil, false
	}
	return f.Site(n.Site)
}

// AddNetwork implements datapath.Fabric: the network is added to its
// site, then its prefix is routed over the lines: a VPC's prefix from
// the private cloud (its border leaf's type-5 route in the network's
// tenant) and from the other VPCs (through the private cloud), the
// private cloud's from every VPC.
func (f *Fabric) AddNetwork(n datapath.NetworkSpec) error {
	s, ok := f.bySite[n.Site]
	if !ok {
		return fmt.Errorf("network %s: site %q is not one of %s's (%v)", n.Name, n.Site, f.t.Name, f.t.Sites())
	}
	add := s.Fabric.AddNetwork
	if s.AddNetwork != nil {
		add = s.AddNetwork
	}
	if err := add(n); err != nil {
		return err
	}
	if err := f.route(n); err != nil {
		return fmt.Errorf("network %s of site %s: %w", n.Name, n.Site, err)
	}
	// A private cloud network may bring the tenant VPC prefixes wait for.
	pend := f.pending
	f.pending = nil
	for _, p := range pend {
		if err := f.route(p); err != nil {
			return fmt.Errorf("network %s of site %s: %w", p.Name, p.Site, err)
		}
	}
	return nil
}

// route routes network n's subnet over the lines.
func (f *Fabric) route(n datapath.NetworkSpec) error {
	for _, ln := range f.lines {
		if n.Site == f.dcSite || n.Site != ln.vpcSite {
			// The far side of this line reaches n through it.
			if err := f.vpcs[ln.vpcSite].RouteOverLine(ln.routerPort, ln.leafMAC, n.Subnet); err != nil {
				return err
			}
			continue
		}
		tenant := n.Tenant
		if tenant == "" {
			tenant = "default"
		}
		if _, ok := f.dc.L3VNI(tenant); !ok {
			f.pending = append(f.pending, n)
			continue
		}
		if err := f.dc.AttachLine(ln.leaf, ln.leafPort, tenant, evpn.MACOf(ln.rtMAC), n.Subnet); err != nil {
			return err
		}
	}
	return nil
}

// AddInstance implements datapath.Fabric on the host's site.
func (f *Fabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	site, ok := f.SiteOf(s.Host)
	if !ok {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: host %q is in no site of %s", s.Name, s.Host, f.t.Name)
	}
	if o, ok := f.members[s.Name]; ok {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: an instance of site %s already", s.Name, o.Name)
	}
	n, w, err := site.Fabric.AddInstance(s)
	if err != nil {
		return nil, datapath.Wire{}, err
	}
	f.members[s.Name] = site
	return n, w, nil
}

// RemoveInstance implements datapath.Fabric.
func (f *Fabric) RemoveInstance(name string) error {
	site, ok := f.members[name]
	if !ok {
		return fmt.Errorf("remove %q: no such instance in %s", name, f.t.Name)
	}
	if err := site.Fabric.RemoveInstance(name); err != nil {
		return err
	}
	delete(f.members, name)
	return nil
}

// TableSizes implements datapath.TableReporter: every site's.
func (f *Fabric) TableSizes(now time.Duration) []datapath.TableSize {
	var out []datapath.TableSize
	for _, s := range f.sites {
		if tr, ok := s.Fabric.(datapath.TableReporter); ok {
			out = append(out, tr.TableSizes(now)...)
		}
	}
	return out
}

// FailureDetection implements datapath.ControlPlane: the private cloud's.
func (f *Fabric) FailureDetection() time.Duration { return f.dc.FailureDetection() }

// NodeStateChanged implements datapath.ControlPlane for the private
// cloud's nodes (a VPC's routes do not move when a node fails).
func (f *Fabric) NodeStateChanged(node string, up bool) int {
	if s, ok := f.SiteOf(node); ok && s.Name == f.dcSite {
		return f.dc.NodeStateChanged(node, up)
	}
	return 0
}

// PodMTU implements datapath.PodMTUer: the smallest any site asks for.
func (f *Fabric) PodMTU() int {
	mtu := 0
	for _, s := range f.sites {
		if m, ok := s.Fabric.(datapath.PodMTUer); ok {
			if v := m.PodMTU(); v > 0 && (mtu == 0 || v < mtu) {
				mtu = v
			}
		}
	}
	return mtu
}
