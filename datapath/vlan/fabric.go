package vlan

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies"
)

// Generation names, as Fabric.Generation returns them (and as scenarios
// name the generations): Ctrip's host model, and stock OpenStack's.
const (
	Generation      = "vlan"
	GenerationStock = "vlan-stock"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound         = errors.New("not found")
	ErrExists           = errors.New("already exists")
	ErrBadVLAN          = errors.New("VLAN ID out of range 1-4094")
	ErrBadAddress       = errors.New("bad address")
	ErrUnsupported      = errors.New("not part of a three-tier fabric")
	ErrNoSecurityGroups = errors.New("security groups need the stock host model (Options.Stock)")
	ErrHostFull         = errors.New("host has no free instance slot (raise Options.TapSlots)")
)

// Options configure a gen-1 fabric.
type Options struct {
	// Stock gives every host stock OpenStack's model (Fig. 6) with the
	// security groups below; otherwise Ctrip's (Fig. 5), without them.
	Stock                         bool
	SecurityGroups                []SecurityGroup
	DefaultIngress, DefaultEgress Verdict
	// GatewayCore is the core router the gateways are configured on (the
	// seed: by hand, on the core); default the first core in the topology.
	GatewayCore string
	// MACAgeing applies to every switch and br-int (l2.DefaultAgeing if 0);
	// ARPTimeout to the cores (DefaultARPTimeout if 0).
	MACAgeing, ARPTimeout time.Duration
	// FirewallRules are every firewall's rules; what none matches passes.
	FirewallRules []FirewallRule
	// TapSlots is how many instances one host can hold (DefaultTapSlots
	// when 0); see HostOptions.TapSlots.
	TapSlots int
}

// DefaultTapSlots is the default number of instance slots per host (the
// seed runs 500+ instances and pods on one node).
const DefaultTapSlots = 512

type network struct {
	spec datapath.NetworkSpec
}

type instance struct {
	host string
	net  *network
	port int
}

type portRef struct {
	sw   *Switch
	port int
}

// Fabric is gen 1 realised on a three-tier topology: a Host per host node,
// a Switch per ToR, access and aggregation switch, a Core per core router
// (the gateway core holding every network's gateway) and a Firewall per
// firewall. It implements datapath.Fabric.
type Fabric struct {
	topo      *topologies.Topology
	opts      Options
	nodes     []datapath.Node
	wires     []datapath.Wire
	hosts     map[string]*Host
	switches  map[string]*Switch
	cores     map[string]*Core
	firewalls map[string]*Firewall
	gw        *Core
	tree      *tree
	nets      map[string]*network
	vlans     map[uint16]*network
	insts     map[string]*instance
	edges     map[string][]portRef // switch ports facing each host
	hostVLANs map[string]map[uint16]int
	trunks    []portRef
}

var (
	_ datapath.Fabric        = (*Fabric)(nil)
	_ datapath.TableReporter = (*Fabric)(nil)
)

// TableSizes implements datapath.TableReporter: the MAC tables of every
// host's vswitch and every switch (the cores' included), and the cores'
// ARP tables, which hold every instance that talks across subnets.
func (f *Fabric) TableSizes(now time.Duration) []datapath.TableSize {
	var out []datapath.TableSize
	for n, h := range f.hosts {
		out = append(out, datapath.TableSize{Node: n, Table: "macs", Entries: h.MACCount(now)})
	}
	for n, s := range f.switches {
		out = append(out, datapath.TableSize{Node: n, Table: "macs", Entries: s.MACCount(now)})
	}
	for n, c := range f.cores {
		out = append(out, datapath.TableSize{Node: n, Table: "macs", Entries: c.MACCount(now)},
			datapath.TableSize{Node: n, Table: "arp", Entries: c.ARPCount(now)})
	}
	return out
}

// MACFor returns the locally administered MAC netbed gives name (routers,
// firewalls, and instances created without one).
func MACFor(name string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte(name))
	s := h.Sum64()
	return net.HardwareAddr{0x02, byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

func tier(r topologies.Role) int {
	switch r {
	case topologies.RoleCore:
		return 1
	case topologies.RoleAggregation:
		return 2
	case topologies.RoleToR, topologies.RoleAccess:
		return 3
	}
	return 4
}

// New builds the gen-1 fabric of t: roles host, tor or access, aggregation,
// core and firewall. It computes the spanning tree (see the package doc).
func New(t *topologies.Topology, opts Options) (*Fabric, error) {
	if t == nil {
		return nil, fmt.Errorf("build vlan fabric: %w: nil topology", ErrUnsupported)
	}
	if opts.TapSlots == 0 {
		opts.TapSlots = DefaultTapSlots
	}
	f := &Fabric{topo: t, opts: opts, hosts: map[string]*Host{}, switches: map[string]*Switch{},
		cores: map[string]*Core{}, firewalls: map[string]*Firewall{}, nets: map[string]*network{},
		vlans: map[uint16]*network{}, insts: map[string]*instance{}, edges: map[string][]portRef{},
		hostVLANs: map[string]map[uint16]int{}}
	ports := map[topologies.Endpoint]int{}
	rank := map[string]int{}
	for i, n := range t.Nodes {
		ifaces := t.Interfaces(n.Name)
		for j, ifc := range ifaces {
			ports[topologies.Endpoint{Node: n.Name, Iface: ifc}] = j
		}
		var node datapath.Node
		switch n.Role {
		case topologies.RoleHost:
			h := NewHost(n.Name, ifaces, HostOptions{Stock: opts.Stock, SecurityGroups: opts.SecurityGroups,
				DefaultIngress: opts.DefaultIngress, DefaultEgress: opts.DefaultEgress, MACAgeing: opts.MACAgeing,
				TapSlots: opts.TapSlots})
			f.hosts[n.Name], node = h, h
		case topologies.RoleToR, topologies.RoleAccess, topologies.RoleAggregation:
			s := NewSwitch(n.Name, ifaces, opts.MACAgeing)
			f.switches[n.Name], node = s, s
		case topologies.RoleCore:
			c := NewCore(n.Name, ifaces, MACFor(n.Name), opts.MACAgeing, opts.ARPTimeout)
			f.cores[n.Name], f.switches[n.Name], node = c, c.Switch, c
			if f.gw == nil && (opts.GatewayCore == "" || opts.GatewayCore == n.Name) {
				f.gw = c
			}
		case topologies.RoleFirewall:
			fw := NewFirewall(n.Name, ifaces, MACFor(n.Name), opts.FirewallRules, Accept)
			f.firewalls[n.Name], node = fw, fw
		default:
			return nil, fmt.Errorf("build vlan fabric: node %q has role %q: %w (use roles host, tor/access, aggregation, core, firewall)",
				n.Name, n.Role, ErrUnsupported)
		}
		rank[n.Name] = tier(n.Role)*1_000_000 + i
		f.nodes = append(f.nodes, node)
	}
	if f.gw == nil {
		if opts.GatewayCore != "" {
			return nil, fmt.Errorf("build vlan fabric: gateway core %q: %w", opts.GatewayCore, ErrNotFound)
		}
		return nil, fmt.Errorf("build vlan fabric: %w: no node with role core to hold the gateways", ErrUnsupported)
	}
	rank[f.gw.name] = 0
	f.tree = newTree(rank)
	for _, l := range t.Links {
		a, b := t.Node(l.A.Node), t.Node(l.B.Node)
		if a == nil || b == nil {
			return nil, fmt.Errorf("build vlan fabric: link %s - %s: %w: unknown node", l.A, l.B, ErrNotFound)
		}
		pa, pb := ports[l.A], ports[l.B]
		if err := f.wire(a, pa, b, pb); err != nil {
			return nil, fmt.Errorf("build vlan fabric: link %s - %s: %w", l.A, l.B, err)
		}
		f.wires = append(f.wires, datapath.Wire{A: datapath.PortRef{Node: a.Name, Port: pa},
			B: datapath.PortRef{Node: b.Name, Port: pb}, Rate: l.Rate, Delay: l.Delay, MTU: l.MTU})
	}
	f.tree.compute()
	for _, s := range f.switches {
		s.tree = f.tree
		s.gen = f.tree.gen.Load()
	}
	return f, nil
}

func isL2(r topologies.Role) bool {
	switch r {
	case topologies.RoleToR, topologies.RoleAccess, topologies.RoleAggregation, topologies.RoleCore:
		return true
	}
	return false
}

// wire configures the two ports of one link by the roles at its ends.
func (f *Fabric) wire(a *topologies.Node, pa int, b *topologies.Node, pb int) error {
	if b.Role == topologies.RoleHost || b.Role == topologies.RoleFirewall {
		a, b, pa, pb = b, a, pb, pa
	}
	switch {
	case isL2(a.Role) && isL2(b.Role):
		sa, sb := f.switches[a.Name], f.switches[b.Name]
		l := f.tree.add(a.Name, b.Name)
		sa.ports[pa].link, sb.ports[pb].link = l, l
		f.trunks = append(f.trunks, portRef{sa, pa}, portRef{sb, pb})
	case a.Role == topologies.RoleHost && isL2(b.Role):
		f.edges[a.Name] = append(f.edges[a.Name], portRef{f.switches[b.Name], pb})
	case a.Role == topologies.RoleFirewall && b.Role == topologies.RoleCore:
		c := f.cores[b.Name]
		if c.fwPort < 0 {
			c.SetFirewall(pb, f.firewalls[a.Name].MAC())
		} else {
			c.ports[pb].mode = Routed
		}
	default:
		return fmt.Errorf("%w: %s %s linked to %s %s", ErrUnsupported, a.Role, a.Name, b.Role, b.Name)
	}
	return nil
}

// Generation returns "vlan", or "vlan-stock" with Options.Stock.
func (f *Fabric) Generation() string {
	if f.opts.Stock {
		return GenerationStock
	}
	return Generation
}

// Nodes returns the fabric's nodes in topology order.
func (f *Fabric) Nodes() []datapath.Node { return f.nodes }

// Wires returns one wire per topology link.
func (f *Fabric) Wires() []datapath.Wire { return f.wires }

// AddNetwork defines a provider network: its VLAN on every inter-switch
// trunk and its gateway (SVI) on the gateway core. A zero Gateway takes the
// subnet's first address. Subnets may not overlap: gen 1 has one routing
// table, no tenants.
func (f *Fabric) AddNetwork(n datapath.NetworkSpec) error {
	if n.Name == "" {
		return fmt.Errorf("add network: %w: empty name", ErrBadAddress)
	}
	if _, dup := f.nets[n.Name]; dup {
		return fmt.Errorf("add network %q: %w", n.Name, ErrExists)
	}
	if n.VLAN == 0 || n.VLAN > 4094 {
		return fmt.Errorf("add network %q: vlan %d: %w", n.Name, n.VLAN, ErrBadVLAN)
	}
	if o := f.vlans[n.VLAN]; o != nil {
		return fmt.Errorf("add network %q: vlan %d used by %q: %w", n.Name, n.VLAN, o.spec.Name, ErrExists)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
		return fmt.Errorf("add network %q: subnet %v: %w: want an IPv4 prefix such as 10.0.1.0/24", n.Name, n.Subnet, ErrBadAddress)
	}
	n.Subnet = n.Subnet.Masked()
	if !n.Gateway.IsValid() {
		n.Gateway = n.Subnet.Addr().Next()
	}
	if !n.Subnet.Contains(n.Gateway) {
		return fmt.Errorf("add network %q: gateway %v outside %v: %w", n.Name, n.Gateway, n.Subnet, ErrBadAddress)
	}
	for _, o := range f.nets {
		if o.spec.Subnet.Overlaps(n.Subnet) {
			return fmt.Errorf("add network %q: subnet %v overlaps %q (%v): %w", n.Name, n.Subnet, o.spec.Name, o.spec.Subnet, ErrExists)
		}
	}
	if n.Subnet6.IsValid() {
		if !n.Subnet6.Addr().Is6() || n.Subnet6.Bits() > 126 {
			return fmt.Errorf("add network %q: IPv6 subnet %v: %w: want an IPv6 prefix such as fd00:1::/64", n.Name, n.Subnet6, ErrBadAddress)
		}
		n.Subnet6 = n.Subnet6.Masked()
		if !n.Gateway6.IsValid() {
			n.Gateway6 = n.Subnet6.Addr().Next()
		}
		if !n.Subnet6.Contains(n.Gateway6) {
			return fmt.Errorf("add network %q: IPv6 gateway %v outside %v: %w", n.Name, n.Gateway6, n.Subnet6, ErrBadAddress)
		}
		for _, o := range f.nets {
			if o.spec.Subnet6.IsValid() && o.spec.Subnet6.Overlaps(n.Subnet6) {
				return fmt.Errorf("add network %q: IPv6 subnet %v overlaps %q (%v): %w", n.Name, n.Subnet6, o.spec.Name, o.spec.Subnet6, ErrExists)
			}
		}
	}
	if err := f.gw.AddSVI(n.Name, n.VLAN, n.Subnet, n.Gateway); err != nil {
		return fmt.Errorf("add network %q: %w", n.Name, err)
	}
	if n.Subnet6.IsValid() {
		if err := f.gw.AddSVI6(n.VLAN, n.Subnet6, n.Gateway6); err != nil {
			f.gw.RemoveSVI(n.VLAN)
			return fmt.Errorf("add network %q: %w", n.Name, err)
		}
	}
	for _, r := range f.trunks {
		r.sw.Allow(r.port, n.VLAN, true)
	}
	nw := &network{spec: n}
	f.nets[n.Name], f.vlans[n.VLAN] = nw, nw
	return nil
}

// AddInstance attaches an instance (a datapath/stack node) to its host's
// br-int on its network's VLAN, and allows the VLAN on the ToR ports
// facing the host (pruning: a host port carries the VLANs of its
// instances only).
func (f *Fabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	fail := func(err error) (datapath.Node, datapath.Wire, error) {
		return nil, datapath.Wire{}, fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if s.Name == "" {
		return fail(fmt.Errorf("%w: empty name", ErrBadAddress))
	}
	if _, dup := f.insts[s.Name]; dup {
		return fail(ErrExists)
	}
	if f.topo.Node(s.Name) != nil {
		return fail(fmt.Errorf("%w: a topology node has that name", ErrExists))
	}
	h := f.hosts[s.Host]
	if h == nil {
		return fail(fmt.Errorf("host %q: %w (want a node with role host)", s.Host, ErrNotFound))
	}
	nw := f.nets[s.Network]
	if nw == nil {
		return fail(fmt.Errorf("network %q: %w (call AddNetwork first)", s.Network, ErrNotFound))
	}
	if !s.IP.IsValid() || !nw.spec.Subnet.Contains(s.IP.Addr()) {
		return fail(fmt.Errorf("address %v not in %v: %w", s.IP, nw.spec.Subnet, ErrBadAddress))
	}
	ip := netip.PrefixFrom(s.IP.Addr(), nw.spec.Subnet.Bits())
	if s.IP6.IsValid() && (!nw.spec.Subnet6.IsValid() || !nw.spec.Subnet6.Contains(s.IP6.Addr())) {
		return fail(fmt.Errorf("IPv6 address %v not in network %q's IPv6 subnet %v: %w", s.IP6, s.Network, nw.spec.Subnet6, ErrBadAddress))
	}
	gw := s.Gateway
	if !gw.IsValid() {
		gw = nw.spec.Gateway
	}
	mac := s.MAC
	if len(mac) == 0 {
		mac = MACFor("instance:" + s.Name)
	}
	if len(mac) != 6 {
		return fail(fmt.Errorf("mac %v: %w", mac, ErrBadAddress))
	}
	port := h.AttachInstance(s.Name, nw.spec.VLAN)
	if port < 0 {
		return fail(fmt.Errorf("host %q: %w", s.Host, ErrHostFull))
	}
	vs := f.hostVLANs[s.Host]
	if vs == nil {
		vs = map[uint16]int{}
		f.hostVLANs[s.Host] = vs
	}
	vs[nw.spec.VLAN]++
	if vs[nw.spec.VLAN] == 1 {
		for _, r := range f.edges[s.Host] {
			r.sw.Allow(r.port, nw.spec.VLAN, true)
		}
	}
	f.insts[s.Name] = &instance{host: s.Host, net: nw, port: port}
	node := stack.New(s.Name, mac, ip, gw)
	if s.IP6.IsValid() {
		gw6 := s.Gateway6
		if !gw6.IsValid() {
			gw6 = nw.spec.Gateway6
		}
		node.SetIPv6(netip.PrefixFrom(s.IP6.Addr(), nw.spec.Subnet6.Bits()), gw6)
	}
	return node, datapath.Wire{A: datapath.PortRef{Node: s.Name, Port: 0}, B: datapath.PortRef{Node: s.Host, Port: port}}, nil
}

// RemoveInstance detaches an instance; the host's ToR ports stop carrying
// its VLAN with the host's last instance on it.
func (f *Fabric) RemoveInstance(name string) error {
	in := f.insts[name]
	if in == nil {
		return fmt.Errorf("remove instance %q: %w", name, ErrNotFound)
	}
	delete(f.insts, name)
	f.hosts[in.host].DetachInstance(name)
	vs := f.hostVLANs[in.host]
	v := in.net.spec.VLAN
	vs[v]--
	if vs[v] == 0 {
		delete(vs, v)
		for _, r := range f.edges[in.host] {
			r.sw.Allow(r.port, v, false)
		}
	}
	return nil
}

// Networks returns the networks defined, by VLAN.
func (f *Fabric) Networks() []datapath.NetworkSpec {
	out := make([]datapath.NetworkSpec, 0, len(f.nets))
	for _, n := range f.nets {
		out = append(out, n.spec)
	}
	slices.SortFunc(out, func(a, b datapath.NetworkSpec) int { return int(a.VLAN) - int(b.VLAN) })
	return out
}

// Network returns the network called name (its gateway filled in).
func (f *Fabric) Network(name string) (datapath.NetworkSpec, bool) {
	n := f.nets[name]
	if n == nil {
		return datapath.NetworkSpec{}, false
	}
	return n.spec, true
}

// Host returns the host model called name, or nil.
func (f *Fabric) Host(name string) *Host { return f.hosts[name] }

// Switch returns the switch called name (a core's switching part too), or nil.
func (f *Fabric) Switch(name string) *Switch { return f.switches[name] }

// Core returns the core router called name, or nil.
func (f *Fabric) Core(name string) *Core { return f.cores[name] }

// GatewayCore returns the core holding the gateways.
func (f *Fabric) GatewayCore() *Core { return f.gw }

// Firewall returns the firewall called name, or nil.
func (f *Fabric) Firewall(name string) *Firewall { return f.firewalls[name] }

// BlockedLinks returns the inter-switch links the spanning tree blocks, as
// "a-b" in link order.
func (f *Fabric) BlockedLinks() []string { return f.tree.blockedLinks() }

// MACCounts returns the live MAC entries of every switch and br-int at now,
// by node name, for capacity reports.
func (f *Fabric) MACCounts(now time.Duration) map[string]int {
	m := map[string]int{}
	for n, s := range f.switches {
		m[n] = s.MACCount(now)
	}
	for n, h := range f.hosts {
		m[n] = h.MACCount(now)
	}
	return m
}

// Capacity is the fabric's table usage, for capacity reports.
type Capacity struct {
	VLANs     int            // networks defined, of the 4094 VLAN IDs
	Instances int            //
	MAC       map[string]int // live MAC entries per switch and core
	HostMAC   map[string]int // live br-int MAC entries per host
	ARP       map[string]int // live ARP entries per core
	Blocked   int            // inter-switch links the spanning tree blocks
}

// Capacity returns the table sizes at now.
func (f *Fabric) Capacity(now time.Duration) Capacity {
	c := Capacity{VLANs: len(f.vlans), Instances: len(f.insts), MAC: map[string]int{}, HostMAC: map[string]int{},
		ARP: map[string]int{}, Blocked: len(f.BlockedLinks())}
	for n, s := range f.switches {
		c.MAC[n] = s.MACCount(now)
	}
	for n, h := range f.hosts {
		c.HostMAC[n] = h.MACCount(now)
	}
	for n, co := range f.cores {
		c.ARP[n] = co.ARPCount(now)
	}
	return c
}
