package vpc

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies"
)

// Options configure a vpc fabric. Zero fields take the defaults in
// parentheses.
type Options struct {
	// OutsideCIDR holds the addresses of clients outside the VPC
	// (192.0.2.0/24, TEST-NET-1; the cloud's floating IPs come from TEST-NET-2).
	OutsideCIDR netip.Prefix
	// Slots is how many pod (or client) ports a VM (or the outside
	// network) has (DefaultSlots).
	Slots int
	// Site, when set, builds the VPC on the nodes of that site of a
	// hybrid topology (topologies.Node.Site) only: a router link to a
	// node of another site is a dedicated line (RouteOverLine).
	Site string
}

// DefaultOutsideCIDR is Options.OutsideCIDR's default.
var DefaultOutsideCIDR = netip.MustParsePrefix("192.0.2.0/24")

type member struct {
	host string
	inst *stack.Instance
}

// Fabric is the vpc generation on a VPC topology (topologies.VPC): one
// vpc-router, VMs (role host) linked to it, and optionally an internet
// gateway and an outside network. It implements datapath.Fabric. ENIs,
// addresses and floating IPs come from the cloud's control plane through
// AttachENI, AssignAddress and AssociateFloatingIP; AddInstance wires a pod
// whose address is already on an ENI of its node.
type Fabric struct {
	t        *topologies.Topology
	opts     Options
	router   *Router
	edge     *Edge
	outside  *Outside
	hosts    map[string]*Host
	order    []string
	hostPort map[string]int // router port towards each VM
	enis     map[string]string
	subnets  []netip.Prefix
	members  map[string]member
	lines    map[int]string // router port → the node at the line's far end
	nodes    []datapath.Node
	wires    []datapath.Wire
}

var (
	_ datapath.Fabric        = (*Fabric)(nil)
	_ datapath.TableReporter = (*Fabric)(nil)
)

// New builds the fabric on t.
func New(t *topologies.Topology, opts Options) (*Fabric, error) {
	if !opts.OutsideCIDR.IsValid() {
		opts.OutsideCIDR = DefaultOutsideCIDR
	}
	if opts.Slots <= 0 {
		opts.Slots = DefaultSlots
	}
	f := &Fabric{t: t, opts: opts, hosts: map[string]*Host{}, hostPort: map[string]int{}, enis: map[string]string{}, members: map[string]member{},
		lines: map[int]string{}}
	fail := func(format string, a ...any) (*Fabric, error) {
		return nil, fmt.Errorf("vpc fabric on %s: "+format, append([]any{t.Name}, a...)...)
	}
	var routers []*topologies.Node
	for _, n := range t.NodesByRole(topologies.RoleVPCRouter) {
		if !f.foreign(n.Name) {
			routers = append(routers, n)
		}
	}
	if len(routers) != 1 {
		return fail("want one node with role %s (the VPC's router), have %d; build the topology with the vpc builder", topologies.RoleVPCRouter, len(routers))
	}
	rname := routers[0].Name
	rifs := t.Interfaces(rname)
	peerMACs := make([]net.HardwareAddr, len(rifs))
	for _, n := range t.Nodes {
		if f.foreign(n.Name) {
			continue
		}
		switch n.Role {
		case topologies.RoleVPCRouter, topologies.RoleHost, topologies.RoleInternetGateway, topologies.RoleExternal:
		default:
			return fail("node %q has role %s; a VPC has hosts, a vpc-router, an internet-gateway and an external network", n.Name, n.Role)
		}
	}
	var igwName string
	for i, ifc := range rifs {
		peer, _, _ := t.Peer(topologies.Endpoint{Node: rname, Iface: ifc})
		pn := t.Node(peer.Node)
		if f.foreign(pn.Name) {
			f.lines[i] = pn.Name
			continue
		}
		switch pn.Role {
		case topologies.RoleHost:
			if _, dup := f.hostPort[pn.Name]; dup {
				return fail("host %s has two links to %s; a VM has one", pn.Name, rname)
			}
			f.hostPort[pn.Name] = i
		case topologies.RoleInternetGateway:
			if igwName != "" {
				return fail("%s links to two internet gateways", rname)
			}
			igwName = pn.Name
			peerMACs[i] = DeviceMAC(pn.Name, peer.Iface)
		default:
			return fail("%s:%s goes to %s (role %s); the VPC router links to hosts and an internet gateway", rname, ifc, pn.Name, pn.Role)
		}
	}
	r, err := NewRouter(rname, rifs, peerMACs)
	if err != nil {
		return nil, fmt.Errorf("vpc fabric: %w", err)
	}
	f.router = r
	for _, h := range t.NodesByRole(topologies.RoleHost) {
		if f.foreign(h.Name) {
			continue
		}
		port, ok := f.hostPort[h.Name]
		if !ok {
			return fail("host %s has no link to %s", h.Name, rname)
		}
		ifs := t.Interfaces(h.Name)
		up := -1
		for i, ifc := range ifs {
			if p, _, _ := t.Peer(topologies.Endpoint{Node: h.Name, Iface: ifc}); p.Node == rname {
				up = i
			}
		}
		node, err := NewHost(h.Name, ifs, up, r.PortMAC(port), opts.Slots)
		if err != nil {
			return nil, fmt.Errorf("vpc fabric: %w", err)
		}
		f.hosts[h.Name] = node
		f.order = append(f.order, h.Name)
	}
	if igwName != "" {
		if err := f.buildEdge(igwName); err != nil {
			return nil, fmt.Errorf("vpc fabric on %s: %w", t.Name, err)
		}
		if err := r.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), slices.IndexFunc(rifs, func(ifc string) bool {
			p, _, _ := t.Peer(topologies.Endpoint{Node: rname, Iface: ifc})
			return p.Node == igwName
		}), igwName); err != nil {
			return nil, fmt.Errorf("vpc fabric: %w", err)
		}
	}
	for _, n := range t.Nodes {
		switch {
		case f.foreign(n.Name):
		case n.Name == rname:
			f.nodes = append(f.nodes, r)
		case f.hosts[n.Name] != nil:
			f.nodes = append(f.nodes, f.hosts[n.Name])
		case f.edge != nil && n.Name == f.edge.Name():
			f.nodes = append(f.nodes, f.edge)
		case f.outside != nil && n.Name == f.outside.Name():
			f.nodes = append(f.nodes, f.outside)
		default:
			return fail("node %q (role %s) is not joined to the VPC", n.Name, n.Role)
		}
	}
	for _, l := range t.Links {
		if f.foreign(l.A.Node) || f.foreign(l.B.Node) {
			continue // a dedicated line: the hybrid network's wire
		}
		f.wires = append(f.wires, datapath.Wire{A: f.portOf(l.A), B: f.portOf(l.B), Rate: l.Rate, Delay: l.Delay, MTU: l.MTU})
	}
	return f, nil
}

// buildEdge builds the internet gateway and the outside network behind it.
func (f *Fabric) buildEdge(igw string) error {
	t := f.t
	ifs := t.Interfaces(igw)
	if len(ifs) != 2 {
		return fmt.Errorf("internet gateway %s has %d links; it has two, to the VPC router and to an external network", igw, len(ifs))
	}
	inside, outIdx := -1, -1
	var outName, outIf string
	for i, ifc := range ifs {
		p, _, _ := t.Peer(topologies.Endpoint{Node: igw, Iface: ifc})
		switch t.Node(p.Node).Role {
		case topologies.RoleVPCRouter:
			inside = i
		case topologies.RoleExternal:
			outIdx, outName, outIf = i, p.Node, p.Iface
		}
	}
	if inside < 0 || outIdx < 0 {
		return fmt.Errorf("internet gateway %s must link to the VPC router and to an external network", igw)
	}
	peers := make([]net.HardwareAddr, 2)
	rif := f.t.Interfaces(f.router.Name())
	for i, ifc := range rif {
		if p, _, _ := t.Peer(topologies.Endpoint{Node: f.router.Name(), Iface: ifc}); p.Node == igw {
			peers[inside] = f.router.PortMAC(i)
		}
	}
	peers[outIdx] = DeviceMAC(outName, outIf)
	e, err := NewEdge(igw, ifs, inside, peers)
	if err != nil {
		return err
	}
	oifs := t.Interfaces(outName)
	o, err := NewOutside(outName, oifs, slices.Index(oifs, outIf), e.PortMAC(outIdx), f.opts.OutsideCIDR, f.opts.Slots)
	if err != nil {
		return err
	}
	if len(oifs) != 1 {
		return fmt.Errorf("external network %s has %d links; it has one, to the internet gateway", outName, len(oifs))
	}
	f.edge, f.outside = e, o
	return nil
}

// foreign reports whether node belongs to another site (Options.Site).
func (f *Fabric) foreign(node string) bool {
	if f.opts.Site == "" {
		return false
	}
	n := f.t.Node(node)
	return n == nil || n.Site != f.opts.Site
}

// Lines returns the router's ports to dedicated lines and the node at
// each one's far end.
func (f *Fabric) Lines() map[int]string { return maps.Clone(f.lines) }

// RouteOverLine routes p out of the router's port to a dedicated line,
// whose far end has MAC peer: a route in the VPC's route table, as a
// virtual private gateway's propagated route.
func (f *Fabric) RouteOverLine(port int, peer net.HardwareAddr, p netip.Prefix) error {
	far, ok := f.lines[port]
	if !ok {
		return fmt.Errorf("route %v over a line: port %d of %s is not a dedicated line", p, port, f.router.Name())
	}
	for _, s := range f.subnets {
		if s.Overlaps(p) {
			return fmt.Errorf("route %v over the line to %s: overlaps subnet %v of the VPC", p, far, s)
		}
	}
	if err := f.router.SetPeerMAC(port, peer); err != nil {
		return err
	}
	return f.router.AddRoute(p, port, "line:"+far)
}

func (f *Fabric) portOf(e topologies.Endpoint) datapath.PortRef {
	return datapath.PortRef{Node: e.Node, Port: slices.Index(f.t.Interfaces(e.Node), e.Iface)}
}

// Generation implements datapath.Fabric.
func (f *Fabric) Generation() string { return "vpc" }

// Nodes implements datapath.Fabric.
func (f *Fabric) Nodes() []datapath.Node { return f.nodes }

// Wires implements datapath.Fabric.
func (f *Fabric) Wires() []datapath.Wire { return f.wires }

// Router returns the VPC router.
func (f *Fabric) Router() *Router { return f.router }

// Edge returns the internet gateway (nil without one).
func (f *Fabric) Edge() *Edge { return f.edge }

// Outside returns the outside network (nil without one).
func (f *Fabric) Outside() *Outside { return f.outside }

// Host returns a VM.
func (f *Fabric) Host(name string) (*Host, bool) {
	h, ok := f.hosts[name]
	return h, ok
}

// Hosts returns the VMs' names in topology order.
func (f *Fabric) Hosts() []string { return slices.Clone(f.order) }

// IsOutside reports whether node is the outside network.
func (f *Fabric) IsOutside(node string) bool { return f.outside != nil && node == f.outside.Name() }

// AddNetwork implements datapath.Fabric: the network's subnet becomes a
// subnet of the VPC (a local route in its route table).
func (f *Fabric) AddNetwork(n datapath.NetworkSpec) error {
	if n.Subnet6.IsValid() {
		return fmt.Errorf("network %s: IPv6 subnet %v: vpc: %w (its ENIs carry IPv4 addresses only)", n.Name, n.Subnet6, datapath.ErrNoIPv6)
	}
	if err := f.AddSubnet(n.Subnet); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// AddSubnet adds a subnet to the VPC. Subnets must not overlap each
// other or the outside network.
func (f *Fabric) AddSubnet(p netip.Prefix) error {
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 28 {
		return fmt.Errorf("subnet %v: want an IPv4 prefix of /28 or larger (as AWS)", p)
	}
	for _, s := range f.subnets {
		if s == p {
			return nil
		}
		if s.Overlaps(p) {
			return fmt.Errorf("subnet %v overlaps subnet %v of the VPC", p, s)
		}
	}
	if f.outside != nil && f.outside.CIDR().Overlaps(p) {
		return fmt.Errorf("subnet %v overlaps the outside network %v", p, f.outside.CIDR())
	}
	if err := f.router.AddRoute(p, TargetLocal, "local"); err != nil {
		return err
	}
	f.subnets = append(f.subnets, p)
	return nil
}

// Subnets returns the VPC's subnets in the order they were added.
func (f *Fabric) Subnets() []netip.Prefix { return slices.Clone(f.subnets) }

func (f *Fabric) inSubnet(a netip.Addr) bool {
	return slices.ContainsFunc(f.subnets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// AttachENI attaches an ENI to a VM: the VM gets its device, the router
// its MAC, its security groups and its primary address.
func (f *Fabric) AttachENI(host string, e ENI) error {
	h, ok := f.hosts[host]
	if !ok {
		return fmt.Errorf("attach %s: %q is not a VM of %s (VMs: %v)", e.ID, host, f.t.Name, f.order)
	}
	if !f.inSubnet(e.Subnet.Addr()) || e.Primary.IsValid() && !e.Subnet.Contains(e.Primary) {
		return fmt.Errorf("attach %s to %s: subnet %v is not one of the VPC's %v, or its primary address %v is outside it", e.ID, host, e.Subnet, f.subnets, e.Primary)
	}
	if err := h.AttachENI(e); err != nil {
		return err
	}
	if err := f.router.AttachENI(e, host, f.hostPort[host]); err != nil {
		_ = h.DetachENI(e.ID)
		return err
	}
	f.enis[e.ID] = host
	return nil
}

// DetachENI detaches an ENI from its VM; no pod may hold an address on it.
func (f *Fabric) DetachENI(id string) error {
	host, ok := f.enis[id]
	if !ok {
		return fmt.Errorf("detach %s: %w", id, ErrNotFound)
	}
	if err := f.hosts[host].DetachENI(id); err != nil {
		return err
	}
	delete(f.enis, id)
	return f.router.DetachENI(id)
}

// AssignAddress puts a secondary private address on an ENI, moving it
// from the ENI that had it.
func (f *Fabric) AssignAddress(eni string, a netip.Addr) error {
	if !f.inSubnet(a) {
		return fmt.Errorf("assign %v to %s: not in a subnet of the VPC %v", a, eni, f.subnets)
	}
	return f.router.Assign(eni, a)
}

// UnassignAddress removes a secondary address from its ENI.
func (f *Fabric) UnassignAddress(a netip.Addr) error { return f.router.Unassign(a) }

// AssociateFloatingIP maps floating address pub to private address priv
// at the internet gateway.
func (f *Fabric) AssociateFloatingIP(pub, priv netip.Addr) error {
	if f.edge == nil {
		return fmt.Errorf("associate %v with %v: %s has no internet gateway", pub, priv, f.t.Name)
	}
	if f.outside.CIDR().Contains(pub) || f.inSubnet(pub) {
		return fmt.Errorf("associate %v: a floating IP must lie outside the VPC's subnets and the outside network %v", pub, f.outside.CIDR())
	}
	return f.edge.Associate(pub, priv)
}

// DisassociateFloatingIP removes floating address pub's mapping.
func (f *Fabric) DisassociateFloatingIP(pub netip.Addr) error {
	if f.edge == nil {
		return fmt.Errorf("disassociate %v: %s has no internet gateway", pub, f.t.Name)
	}
	return f.edge.Disassociate(pub)
}

// SetSecurityGroup adds or replaces a security group.
func (f *Fabric) SetSecurityGroup(g SecurityGroup) error { return f.router.SetGroup(g) }

// AuthorizeIngress adds an ingress rule to a security group
// (Router.AuthorizeIngress).
func (f *Fabric) AuthorizeIngress(group string, r Rule) error {
	return f.router.AuthorizeIngress(group, r)
}

// RevokeIngress removes an ingress rule from a security group
// (Router.RevokeIngress).
func (f *Fabric) RevokeIngress(group string, r Rule) error { return f.router.RevokeIngress(group, r) }

// PodMAC is the MAC a pod gets when its spec has none.
func PodMAC(name string) net.HardwareAddr { return DeviceMAC(name, "eth0") }

// AddInstance implements datapath.Fabric. On a VM (a pod, or a VM-kind
// instance run as one): s.IP must be a secondary address the cloud put on
// an ENI of s.Host; the pod gets it as a /32 with PodGateway. On the
// outside network: a client with s.IP or the next free address.
func (f *Fabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	if s.IP6.IsValid() {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: IPv6 address %v: vpc: %w", s.Name, s.IP6, datapath.ErrNoIPv6)
	}
	if _, ok := f.members[s.Name]; ok || f.t.Node(s.Name) != nil {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: %w (an instance or a topology node)", s.Name, ErrExists)
	}
	mac := s.MAC
	if mac == nil {
		mac = PodMAC(s.Name)
	}
	if f.IsOutside(s.Host) {
		ip := s.IP.Addr()
		if !s.IP.IsValid() {
			var err error
			if ip, err = f.outside.FreeAddr(); err != nil {
				return nil, datapath.Wire{}, fmt.Errorf("add %q: %w", s.Name, err)
			}
		}
		port, err := f.outside.Add(s.Name, ip, mac)
		if err != nil {
			return nil, datapath.Wire{}, err
		}
		inst := stack.New(s.Name, mac, netip.PrefixFrom(ip, f.outside.CIDR().Bits()), f.outside.Gateway())
		f.members[s.Name] = member{host: s.Host, inst: inst}
		return inst, datapath.Wire{A: datapath.PortRef{Node: s.Name}, B: datapath.PortRef{Node: s.Host, Port: port}}, nil
	}
	h, ok := f.hosts[s.Host]
	if !ok {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: %q is not a VM of %s (VMs: %v)", s.Name, s.Host, f.t.Name, f.order)
	}
	if !s.IP.IsValid() {
		return nil, datapath.Wire{}, fmt.Errorf("add %q on %s: no address; a pod takes a secondary address the cloud assigned to an ENI of its node", s.Name, s.Host)
	}
	if s.Gateway.IsValid() && s.Gateway != PodGateway {
		return nil, datapath.Wire{}, fmt.Errorf("add %q: gateway %v: pods on vpc use %v; leave it empty", s.Name, s.Gateway, PodGateway)
	}
	ip := s.IP.Addr()
	eni, ok := f.router.Holder(ip)
	if !ok || f.enis[eni] != s.Host {
		where := "no ENI"
		if ok {
			where = eni + " on " + f.enis[eni]
		}
		return nil, datapath.Wire{}, fmt.Errorf("add %q on %s: %v is on %s: %w", s.Name, s.Host, ip, where, ErrNotAssigned)
	}
	p, err := h.AddPod(s.Name, ip, mac, eni)
	if err != nil {
		return nil, datapath.Wire{}, err
	}
	inst := stack.New(s.Name, mac, netip.PrefixFrom(ip, 32), PodGateway)
	f.members[s.Name] = member{host: s.Host, inst: inst}
	return inst, datapath.Wire{A: datapath.PortRef{Node: s.Name}, B: datapath.PortRef{Node: s.Host, Port: p.Port}}, nil
}

// RemoveInstance implements datapath.Fabric. The pod's address stays on
// its ENI: releasing it is the cloud's call (UnassignAddress).
func (f *Fabric) RemoveInstance(name string) error {
	m, ok := f.members[name]
	if !ok {
		return fmt.Errorf("remove %q: %w", name, ErrNotFound)
	}
	var err error
	if f.IsOutside(m.host) {
		err = f.outside.Remove(name)
	} else {
		err = f.hosts[m.host].RemovePod(name)
	}
	if err != nil {
		return err
	}
	delete(f.members, name)
	return nil
}

// Instance returns an instance's IP stack.
func (f *Fabric) Instance(name string) (*stack.Instance, bool) {
	m, ok := f.members[name]
	return m.inst, ok
}

// TableSizes implements datapath.TableReporter: the router's routes and
// address mappings, the gateway's NAT entries, and every VM's ENIs and
// policy rules (two per pod, as the VPC CNI writes them).
func (f *Fabric) TableSizes(time.Duration) []datapath.TableSize {
	out := []datapath.TableSize{
		{Node: f.router.Name(), Table: "routes", Entries: f.router.rt.Len()},
		{Node: f.router.Name(), Table: "addresses", Entries: f.router.Addresses()},
	}
	if f.edge != nil {
		out = append(out, datapath.TableSize{Node: f.edge.Name(), Table: "nat", Entries: f.edge.Mappings()})
	}
	for _, n := range f.order {
		h := f.hosts[n]
		out = append(out, datapath.TableSize{Node: n, Table: "enis", Entries: len(h.enis)},
			datapath.TableSize{Node: n, Table: "rules", Entries: 2 * h.Pods()})
	}
	return out
}
