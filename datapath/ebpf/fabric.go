package ebpf

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies"
)

// Options configure a gen 3 fabric. Zero fields take the defaults in
// parentheses.
type Options struct {
	Mode         Mode         // Tunnel or Direct (Tunnel)
	ClusterCIDR  netip.Prefix // pod addresses of the whole cluster (DefaultClusterCIDR)
	NodeMaskBits int          // size of each node's pod CIDR (DefaultNodeMaskBits)
	// ClusterCIDR6 makes the cluster dual-stack: every node also gets an
	// IPv6 pod CIDR of NodeMaskBits6 (DefaultNodeMaskBits6) carved from
	// it in host order, and every pod an IPv6 address from its node's
	// (Cilium's cluster-pool-ipv6-cidr). Zero: IPv4 only. Tunnel mode
	// only: the underlay routes IPv4, so IPv6 pod packets cross it in
	// VXLAN between the nodes' IPv4 addresses, as Cilium's tunnel does.
	ClusterCIDR6  netip.Prefix
	NodeMaskBits6 int
	// UnderlayCIDR holds router loopbacks (first half) and node IPs
	// (second half) (172.16.0.0/16).
	UnderlayCIDR netip.Prefix
	// PodsPerNode is the number of lxc slots per node (0: see
	// NodeConfig.Slots).
	PodsPerNode int
	// PodCIDRsFromBGP, in Direct mode, leaves a leaf without a route to
	// an attached host's pod CIDR until the leaf's BGP speaker learns it
	// from the host's (PodCIDRLearnt), as with Cilium's BGP control
	// plane; otherwise every leaf routes its hosts' pod CIDRs from the
	// start.
	PodCIDRsFromBGP bool
}

// The defaults of Options: the cluster CIDR holds 4,096 node CIDRs of
// /24, the seed's four zones of 500+ nodes with room to spare (its first
// 256 are those of the /16 that Kubernetes defaults to).
var (
	DefaultClusterCIDR  = netip.MustParsePrefix("10.0.0.0/12")
	DefaultNodeMaskBits = 24
	// DefaultNodeMaskBits6 is Cilium's IPv6 cluster-pool mask size.
	DefaultNodeMaskBits6 = 120
)

func (o *Options) defaults() error {
	if o.Mode == 0 {
		o.Mode = Tunnel
	}
	if !o.ClusterCIDR.IsValid() {
		o.ClusterCIDR = DefaultClusterCIDR
	}
	if o.NodeMaskBits == 0 {
		o.NodeMaskBits = DefaultNodeMaskBits
	}
	if !o.UnderlayCIDR.IsValid() {
		o.UnderlayCIDR = netip.MustParsePrefix("172.16.0.0/16")
	}
	o.ClusterCIDR, o.UnderlayCIDR = o.ClusterCIDR.Masked(), o.UnderlayCIDR.Masked()
	if o.Mode != Tunnel && o.Mode != Direct {
		return fmt.Errorf("mode %v: want tunnel or direct", o.Mode)
	}
	if !o.ClusterCIDR.Addr().Is4() || !o.UnderlayCIDR.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %v and underlay CIDR %v must be IPv4", o.ClusterCIDR, o.UnderlayCIDR)
	}
	if o.NodeMaskBits < o.ClusterCIDR.Bits() || o.NodeMaskBits > 30 {
		return fmt.Errorf("node mask /%d: must lie between the cluster CIDR's /%d and /30", o.NodeMaskBits, o.ClusterCIDR.Bits())
	}
	if o.UnderlayCIDR.Bits() > 30 || o.UnderlayCIDR.Overlaps(o.ClusterCIDR) {
		return fmt.Errorf("underlay CIDR %v: must be /30 or larger and not overlap the cluster CIDR %v", o.UnderlayCIDR, o.ClusterCIDR)
	}
	if !o.ClusterCIDR6.IsValid() {
		return nil
	}
	if o.NodeMaskBits6 == 0 {
		o.NodeMaskBits6 = DefaultNodeMaskBits6
	}
	o.ClusterCIDR6 = o.ClusterCIDR6.Masked()
	switch {
	case !o.ClusterCIDR6.Addr().Is6() || o.ClusterCIDR6.Addr().Is4In6():
		return fmt.Errorf("IPv6 cluster CIDR %v: must be IPv6", o.ClusterCIDR6)
	case o.NodeMaskBits6 < o.ClusterCIDR6.Bits() || o.NodeMaskBits6 > 126:
		return fmt.Errorf("IPv6 node mask /%d: must lie between the IPv6 cluster CIDR's /%d and /126", o.NodeMaskBits6, o.ClusterCIDR6.Bits())
	case o.Mode == Direct:
		return fmt.Errorf("IPv6 cluster CIDR %v: %w with direct routing (the underlay routes IPv4 only); use tunnel mode (ebpf) for dual stack", o.ClusterCIDR6, datapath.ErrNoIPv6)
	}
	return nil
}

type pod struct {
	host string
	inst *stack.Instance
	ep   *Endpoint
}

// Fabric is gen 3 on a spine-leaf topology: spines, leaves and borders are
// l3 routers; every host is a Cilium Node with a pod CIDR carved from the
// cluster CIDR in host order. It implements datapath.Fabric.
type Fabric struct {
	t       *topologies.Topology
	opts    Options
	routers map[string]*l3.Router
	// loopbacks are the routers' loopback addresses.
	loopbacks map[string]netip.Prefix
	hosts     map[string]*Node
	order     []string // hosts in topology order
	// cluster holds what every node's ipcache has of the others' pods
	// and node IPs, and its tunnel map of their CIDRs, once (see
	// SharedIPCache).
	cluster  *clusterMaps
	nodes    []datapath.Node
	wires    []datapath.Wire
	ids      *Identities
	policies []Policy
	pods     map[string]*pod
	podOrder []string
	compiled CompiledPolicy
	// cidrs are the CIDR identities in the ipcache (SetCIDRIdentities).
	cidrs map[netip.Prefix]Identity
	// extra holds entries compiled elsewhere (SetCompiledRules).
	extra    CompiledPolicy
	hasExtra bool

	// Routing state, for reconvergence after link faults.
	atts []l3.Attachment
	// podAtts are, with Options.PodCIDRsFromBGP, the pod CIDR
	// attachments a leaf's port may learn, and learnt those it has.
	podAtts  map[datapath.PortRef]l3.Attachment
	learnt   map[datapath.PortRef]bool
	portLink map[datapath.PortRef]*topologies.Link
	down     map[*topologies.Link]bool
}

var (
	_ datapath.Fabric        = (*Fabric)(nil)
	_ datapath.TableReporter = (*Fabric)(nil)
	_ datapath.PodMTUer      = (*Fabric)(nil)
)

// New builds the fabric: routers with ECMP shortest-path routes to every
// loopback and node IP (and, in Direct mode, every node's pod CIDR), and a
// Cilium node per host with its tunnel map and ipcache filled for the
// other nodes.
func New(t *topologies.Topology, opts Options) (*Fabric, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("ebpf fabric on %s: %w", t.Name, err)
	}
	f := &Fabric{t: t, opts: opts, hosts: map[string]*Node{}, ids: NewIdentities(), pods: map[string]*pod{},
		cluster: newClusterMaps()}
	isRouter := func(n *topologies.Node) bool { return l3.IsRouterRole(n.Role) }
	for _, n := range t.Nodes {
		if n.Role != topologies.RoleHost && !isRouter(n) {
			return nil, fmt.Errorf("ebpf fabric on %s: node %q has role %s; gen 3 runs on spine-leaf fabrics (hosts, leaves, spines, borders)", t.Name, n.Name, n.Role)
		}
	}
	half := netip.PrefixFrom(opts.UnderlayCIDR.Addr(), opts.UnderlayCIDR.Bits()+1)
	loopbacks, err := l3.Loopbacks(t, isRouter, half)
	if err != nil {
		return nil, fmt.Errorf("ebpf fabric: %w", err)
	}
	routers, err := l3.RoutersFor(t, isRouter, nil, loopbacks)
	if err != nil {
		return nil, fmt.Errorf("ebpf fabric: %w", err)
	}
	f.routers, f.loopbacks = routers, loopbacks
	var atts []l3.Attachment
	for name, lo := range loopbacks {
		atts = append(atts, l3.Attachment{Router: name, Prefix: lo, Port: l3.LocalPort})
	}
	nodeIP := lastHalf(opts.UnderlayCIDR).Addr()
	cidr := netip.PrefixFrom(opts.ClusterCIDR.Addr(), opts.NodeMaskBits)
	var cidr6 netip.Prefix
	if opts.ClusterCIDR6.IsValid() {
		cidr6 = netip.PrefixFrom(opts.ClusterCIDR6.Addr(), opts.NodeMaskBits6)
	}
	hosts := t.NodesByRole(topologies.RoleHost)
	for i, h := range hosts {
		if i > 0 {
			cidr = nextPrefix(cidr)
			if opts.ClusterCIDR6.IsValid() {
				cidr6 = nextPrefix6(cidr6)
			}
		}
		if opts.ClusterCIDR6.IsValid() && (!cidr6.IsValid() || !opts.ClusterCIDR6.Contains(cidr6.Addr())) {
			return nil, fmt.Errorf("ebpf fabric on %s: IPv6 cluster CIDR %v has room for %d node CIDRs of /%d, not %d hosts; use a larger IPv6 cluster CIDR or a longer IPv6 node mask",
				t.Name, opts.ClusterCIDR6, i, opts.NodeMaskBits6, len(hosts))
		}
		nodeIP = nodeIP.Next()
		if !opts.ClusterCIDR.Contains(cidr.Addr()) {
			return nil, fmt.Errorf("ebpf fabric on %s: cluster CIDR %v has room for %d node CIDRs of /%d, not %d hosts; use a larger cluster CIDR or a longer node mask",
				t.Name, opts.ClusterCIDR, i, opts.NodeMaskBits, len(hosts))
		}
		if !opts.UnderlayCIDR.Contains(nodeIP) {
			return nil, fmt.Errorf("ebpf fabric on %s: underlay CIDR %v too small for %d hosts", t.Name, opts.UnderlayCIDR, len(hosts))
		}
		cfg := NodeConfig{Name: h.Name, Mode: opts.Mode, NodeIP: nodeIP, NodeCIDR: cidr, ClusterCIDR: opts.ClusterCIDR, Slots: opts.PodsPerNode,
			NodeCIDR6: cidr6, ClusterCIDR6: opts.ClusterCIDR6}
		for _, ifc := range t.Interfaces(h.Name) {
			peer, _, _ := t.Peer(topologies.Endpoint{Node: h.Name, Iface: ifc})
			r, ok := routers[peer.Node]
			if !ok {
				return nil, fmt.Errorf("ebpf fabric on %s: host %s interface %s goes to %q, not a leaf", t.Name, h.Name, ifc, peer.Node)
			}
			port := r.PortIndex(peer.Iface)
			if err := r.SetPortIP(port, loopbacks[peer.Node]); err != nil {
				return nil, fmt.Errorf("ebpf fabric: %w", err)
			}
			nicMAC := DeviceMAC(h.Name, ifc)
			cfg.NICs = append(cfg.NICs, NIC{Name: ifc, MAC: nicMAC, GatewayMAC: r.Port(port).MAC})
			atts = append(atts, l3.Attachment{Router: peer.Node, Prefix: netip.PrefixFrom(nodeIP, 32), Port: port, MAC: nicMAC})
			switch {
			case opts.Mode == Direct && opts.PodCIDRsFromBGP:
				if f.podAtts == nil {
					f.podAtts, f.learnt = map[datapath.PortRef]l3.Attachment{}, map[datapath.PortRef]bool{}
				}
				f.podAtts[datapath.PortRef{Node: peer.Node, Port: port}] = l3.Attachment{Router: peer.Node, Prefix: cidr, Port: port, MAC: nicMAC}
			case opts.Mode == Direct:
				atts = append(atts, l3.Attachment{Router: peer.Node, Prefix: cidr, Port: port, MAC: nicMAC})
			}
		}
		if len(cfg.NICs) == 0 {
			return nil, fmt.Errorf("ebpf fabric on %s: host %s has no link to a leaf", t.Name, h.Name)
		}
		node, err := newNode(cfg, f.cluster)
		if err != nil {
			return nil, fmt.Errorf("ebpf fabric: %w", err)
		}
		f.hosts[h.Name] = node
		f.order = append(f.order, h.Name)
	}
	f.atts = atts
	f.portLink = map[datapath.PortRef]*topologies.Link{}
	f.down = map[*topologies.Link]bool{}
	for _, l := range t.Links {
		f.portLink[f.portOf(l.A)] = l
		f.portLink[f.portOf(l.B)] = l
	}
	if err := f.route(); err != nil {
		return nil, fmt.Errorf("ebpf fabric: %w", err)
	}
	for name, r := range routers {
		r.OnPortState(func(_ time.Duration, port int, up bool) { f.linkState(name, port, up) })
	}
	for _, b := range f.order {
		// Every other node has b's IP as a remote node.
		nb := f.hosts[b]
		if err := f.cluster.ipcache.Set(IPCacheKey{32, nb.cfg.NodeIP.As4()}, IPCacheValue{Identity: uint32(IdentityRemoteNode)}, nb.maps.IPCache); err != nil {
			return nil, fmt.Errorf("ebpf fabric: %w", err)
		}
		if opts.Mode != Tunnel {
			continue
		}
		// And a tunnel map entry for b's CIDR.
		tk := TunnelKey{nb.cfg.NodeCIDR.Masked().Addr().As4()}
		if err := f.cluster.tunnel.Set(tk, TunnelValue{nb.cfg.NodeIP.As4()}, nb.maps.Tunnel); err != nil {
			return nil, fmt.Errorf("ebpf fabric: %w", err)
		}
		f.cluster.tunnelRules[tk] = tunnelRuleName(nb.cfg.NodeCIDR, nb.cfg.NodeIP)
		if !nb.cfg.NodeCIDR6.IsValid() {
			continue
		}
		for _, a := range f.order {
			if a == b {
				continue
			}
			// The IPv6 node CIDR through the tunnel, and the node's IPv6
			// gateway address as a remote node (the IPv6 ipcache and
			// tunnel map are each node's own).
			if err := f.hosts[a].SetTunnel(nb.cfg.NodeCIDR6, nb.cfg.NodeIP); err != nil {
				return nil, fmt.Errorf("ebpf fabric: %w", err)
			}
			if err := f.hosts[a].SetRemote(netip.PrefixFrom(nb.Gateway6(), 128), IdentityRemoteNode, nb.cfg.NodeIP); err != nil {
				return nil, fmt.Errorf("ebpf fabric: %w", err)
			}
		}
	}
	for _, n := range t.Nodes {
		if r, ok := routers[n.Name]; ok {
			f.nodes = append(f.nodes, r)
		} else {
			f.nodes = append(f.nodes, f.hosts[n.Name])
		}
	}
	for _, l := range t.Links {
		a, b := f.portOf(l.A), f.portOf(l.B)
		f.wires = append(f.wires, datapath.Wire{A: a, B: b, Rate: l.Rate, Delay: l.Delay, MTU: l.MTU})
	}
	return f, nil
}

// route computes and installs every router's routes over the links that
// are up: BGP's converged state.
func (f *Fabric) route() error {
	var atts []l3.Attachment
	all := slices.Clip(f.atts)
	refs := slices.Collect(maps.Keys(f.learnt))
	slices.SortFunc(refs, func(a, b datapath.PortRef) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Port, b.Port))
	})
	for _, ref := range refs {
		all = append(all, f.podAtts[ref])
	}
	for _, a := range all {
		if a.Port != l3.LocalPort && f.down[f.portLink[datapath.PortRef{Node: a.Router, Port: a.Port}]] {
			continue
		}
		atts = append(atts, a)
	}
	routes, err := l3.ComputeRoutes(l3.Underlay{Topology: f.t, Attached: atts,
		IsRouter: func(n *topologies.Node) bool { return l3.IsRouterRole(n.Role) },
		LinkUp:   func(l *topologies.Link) bool { return !f.down[l] }})
	if err != nil {
		return err
	}
	for name, r := range f.routers {
		if err := r.SetRoutes(routes[name]); err != nil {
			return err
		}
	}
	return nil
}

// PodCIDRsFromBGP reports whether the leaves learn their hosts' pod
// CIDRs from BGP (Options.PodCIDRsFromBGP in Direct mode).
func (f *Fabric) PodCIDRsFromBGP() bool { return f.podAtts != nil }

// ErrNotAttached marks a pod CIDR learnt on a port that has no host with
// that pod CIDR behind it.
var ErrNotAttached = errors.New("no host with that pod CIDR on the port")

// PodCIDRLearnt tells the fabric that leaf's speaker learnt (or lost)
// cidr from the host on its interface iface: the leaf routes cidr to
// that port while learnt, and the rest of the underlay's routes follow
// at once (the leaf–spine underlay's routing is computed, not run).
func (f *Fabric) PodCIDRLearnt(leaf, iface string, cidr netip.Prefix, learnt bool) error {
	r, ok := f.routers[leaf]
	if !ok {
		return fmt.Errorf("pod CIDR %s on %s: %q is not a router", cidr, leaf, leaf)
	}
	ref := datapath.PortRef{Node: leaf, Port: r.PortIndex(iface)}
	a, ok := f.podAtts[ref]
	if !ok || a.Prefix != cidr.Masked() {
		return fmt.Errorf("pod CIDR %s on %s:%s: %w", cidr, leaf, iface, ErrNotAttached)
	}
	if f.learnt[ref] == learnt {
		return nil
	}
	if learnt {
		f.learnt[ref] = true
	} else {
		delete(f.learnt, ref)
	}
	return f.route()
}

// Loopback returns a spine's, leaf's or border's loopback address.
func (f *Fabric) Loopback(router string) (netip.Addr, bool) {
	p, ok := f.loopbacks[router]
	return p.Addr(), ok
}

// PodCIDRs6 returns every host's IPv6 pod CIDR, by host; nil when the
// cluster is IPv4 only.
func (f *Fabric) PodCIDRs6() map[string]netip.Prefix {
	if !f.opts.ClusterCIDR6.IsValid() {
		return nil
	}
	out := make(map[string]netip.Prefix, len(f.hosts))
	for n, h := range f.hosts {
		out[n] = h.cfg.NodeCIDR6
	}
	return out
}

// PodCIDRs returns every host's pod CIDR, by host.
func (f *Fabric) PodCIDRs() map[string]netip.Prefix {
	out := make(map[string]netip.Prefix, len(f.hosts))
	for n, h := range f.hosts {
		out[n] = h.cfg.NodeCIDR
	}
	return out
}

// linkState reconverges the underlay when a router sees a port change:
// routing converges at once (no BGP timers are modelled); until then the
// router's own ECMP rehash has already moved flows off the port.
func (f *Fabric) linkState(router string, port int, up bool) {
	l := f.portLink[datapath.PortRef{Node: router, Port: port}]
	if l == nil || f.down[l] == !up {
		return
	}
	if up {
		delete(f.down, l)
	} else {
		f.down[l] = true
	}
	// Routes were valid before; recomputing over a subset of links with
	// the same attachments cannot fail.
	_ = f.route()
}

func (f *Fabric) portOf(e topologies.Endpoint) datapath.PortRef {
	return datapath.PortRef{Node: e.Node, Port: slices.Index(f.t.Interfaces(e.Node), e.Iface)}
}

func lastHalf(p netip.Prefix) netip.Prefix {
	first := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	return nextPrefix(first)
}

// nextPrefix6 returns the IPv6 prefix of the same length right after p,
// or an invalid prefix past the end of the address space.
func nextPrefix6(p netip.Prefix) netip.Prefix {
	a := p.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	host := 128 - p.Bits()
	var carry uint64
	if host >= 64 {
		hi, carry = bits.Add64(hi, 1<<(host-64), 0)
	} else {
		lo, carry = bits.Add64(lo, 1<<host, 0)
		hi, carry = bits.Add64(hi, carry, 0)
	}
	if carry != 0 {
		return netip.Prefix{}
	}
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), p.Bits())
}

// nextPrefix returns the prefix of the same length right after p.
func nextPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 1 << (32 - p.Bits())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits())
}

// PodMTU implements datapath.PodMTUer: in tunnel mode the smallest MTU
// of a link at a host less datapath.VXLANOverhead (1450 on the builders'
// 1500-byte host links, as Cilium sets its pods' MTU), so that a
// full-size pod packet still fits the host's link once encapsulated; 0
// with direct routing, which does not encapsulate.
func (f *Fabric) PodMTU() int {
	if f.opts.Mode == Direct {
		return 0
	}
	least := 0
	for _, l := range f.t.Links {
		if f.hosts[l.A.Node] == nil && f.hosts[l.B.Node] == nil {
			continue
		}
		mtu := l.MTU
		if mtu == 0 {
			mtu = 1500
		}
		if least == 0 || mtu < least {
			least = mtu
		}
	}
	if least == 0 {
		return 0
	}
	return least - datapath.VXLANOverhead
}

// Generation implements datapath.Fabric.
func (f *Fabric) Generation() string {
	if f.opts.Mode == Direct {
		return "ebpf-direct"
	}
	return "ebpf"
}

// Nodes implements datapath.Fabric: routers and Cilium nodes in topology
// order (instances come from AddInstance).
func (f *Fabric) Nodes() []datapath.Node { return f.nodes }

// Wires implements datapath.Fabric.
func (f *Fabric) Wires() []datapath.Wire { return f.wires }

// AddNetwork implements datapath.Fabric. Gen 3 has no tenant networks:
// pods take addresses from their node's CIDR, so this accepts and ignores
// the network.
func (f *Fabric) AddNetwork(datapath.NetworkSpec) error { return nil }

// Options returns the options with defaults filled in.
func (f *Fabric) Options() Options { return f.opts }

// Router returns the l3 router of a spine, leaf or border.
func (f *Fabric) Router(name string) (*l3.Router, bool) {
	r, ok := f.routers[name]
	return r, ok
}

// Host returns the Cilium node of a host.
func (f *Fabric) Host(name string) (*Node, bool) {
	n, ok := f.hosts[name]
	return n, ok
}

// Identities returns the identity allocator.
func (f *Fabric) Identities() *Identities { return f.ids }

// Instance returns the IP stack of a pod.
func (f *Fabric) Instance(name string) (*stack.Instance, bool) {
	p, ok := f.pods[name]
	if !ok {
		return nil, false
	}
	return p.inst, true
}

// Endpoint returns a pod's endpoint and the host it runs on.
func (f *Fabric) Endpoint(name string) (*Endpoint, string, bool) {
	p, ok := f.pods[name]
	if !ok {
		return nil, "", false
	}
	return p.ep, p.host, true
}

// AddInstance implements datapath.Fabric: it attaches a pod to s.Host with
// an lxc device. s.IP must lie in the host's node CIDR (zero: the next
// free address); the pod gets it as a /32 with the node's gateway as
// default route, as Cilium configures pods. s.Labels give the identity.
// TableSizes implements datapath.TableReporter: every node's BPF maps
// (endpoints, ipcache, tunnel, policy, conntrack) and every router's
// routes (with Direct routing, the node CIDRs of the hosts it reaches).
func (f *Fabric) TableSizes(time.Duration) []datapath.TableSize {
	var out []datapath.TableSize
	for n, r := range f.routers {
		out = append(out, datapath.TableSize{Node: n, Table: "routes", Entries: r.FIBLen()})
	}
	for n, h := range f.hosts {
		m := h.Maps()
		for _, e := range []struct {
			name string
			v    int
		}{{"endpoints", m.Endpoints.Len()}, {"ipcache", m.IPCache.Len()}, {"tunnel", m.Tunnel.Len()}, {"policy", m.Policy.Len()}, {"conntrack", m.CT.Len()}} {
			out = append(out, datapath.TableSize{Node: n, Table: e.name, Entries: e.v})
		}
		if h.cfg.NodeCIDR6.IsValid() {
			for _, e := range []struct {
				name string
				v    int
			}{{"endpoints6", m.Endpoints6.Len()}, {"ipcache6", m.IPCache6.Len()}, {"tunnel6", m.Tunnel6.Len()}, {"conntrack6", m.CT6.Len()}} {
				out = append(out, datapath.TableSize{Node: n, Table: e.name, Entries: e.v})
			}
		}
	}
	return out
}

func (f *Fabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	node, ok := f.hosts[s.Host]
	if !ok {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %q is not a host of %s (hosts: %v)", s.Name, s.Host, f.t.Name, f.order)
	}
	if _, ok := f.pods[s.Name]; ok {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, ErrExists)
	}
	if f.t.Node(s.Name) != nil {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: a topology node has that name", s.Name)
	}
	if s.IP6.IsValid() && !node.gw6.IsValid() {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: IPv6 address %v: the cluster has no IPv6 CIDR (Options.ClusterCIDR6; a scenario's options.ebpf.cluster_cidr6): %w", s.Name, s.IP6, datapath.ErrNoIPv6)
	}
	if s.Gateway6.IsValid() && s.Gateway6 != node.gw6 {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: IPv6 gateway %v: pods on %s use %v (cilium_host); leave Gateway6 empty", s.Name, s.Gateway6, s.Host, node.gw6)
	}
	// A dual-stack node gives every pod an IPv6 address: the spec's, or
	// the next free one of its IPv6 CIDR.
	ip6 := s.IP6.Addr()
	if node.gw6.IsValid() && !ip6.IsValid() {
		var err error
		if ip6, err = f.freeIP6(node); err != nil {
			return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, err)
		}
	}
	ip := s.IP.Addr()
	if !s.IP.IsValid() {
		var err error
		if ip, err = f.freeIP(node); err != nil {
			return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, err)
		}
	}
	if s.Gateway.IsValid() && s.Gateway != node.Gateway() {
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: gateway %v: pods on %s use %v (cilium_host); leave Gateway empty", s.Name, s.Gateway, s.Host, node.Gateway())
	}
	mac := s.MAC
	if mac == nil {
		mac = DeviceMAC(s.Name, "eth0")
	}
	_, known := f.ids.Lookup(s.Labels)
	id := f.ids.Allocate(s.Labels)
	ep, err := node.AddEndpoint(s.Name, ip, mac, id, s.Labels)
	if err != nil {
		return nil, datapath.Wire{}, fmt.Errorf("add pod: %w", err)
	}
	if ip6.IsValid() {
		if err := node.AddEndpointIPv6(s.Name, ip6); err != nil {
			_ = node.RemoveEndpoint(s.Name)
			return nil, datapath.Wire{}, fmt.Errorf("add pod: %w", err)
		}
	}
	// Every other node learns the pod as remote, behind its node's IP.
	if err := f.cluster.ipcache.Set(IPCacheKey{32, ip.As4()}, IPCacheValue{Identity: uint32(id), TunnelEndpoint: node.cfg.NodeIP.As4()}, node.maps.IPCache); err != nil {
		_ = node.RemoveEndpoint(s.Name)
		return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, err)
	}
	// Its IPv6 address goes into every other node's IPv6 ipcache.
	for _, h := range f.order {
		if h == s.Host || !ip6.IsValid() {
			continue
		}
		if err := f.hosts[h].SetRemote(netip.PrefixFrom(ip6, 128), id, node.cfg.NodeIP); err != nil {
			return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, err)
		}
	}
	if !known && len(f.policies) > 0 {
		if err := f.recompile(); err != nil {
			return nil, datapath.Wire{}, fmt.Errorf("add pod %q: %w", s.Name, err)
		}
	}
	inst := stack.New(s.Name, mac, netip.PrefixFrom(ip, 32), node.Gateway())
	if ip6.IsValid() {
		inst.SetIPv6(netip.PrefixFrom(ip6, 128), node.gw6)
	}
	f.pods[s.Name] = &pod{host: s.Host, inst: inst, ep: ep}
	f.podOrder = append(f.podOrder, s.Name)
	w := datapath.Wire{A: datapath.PortRef{Node: s.Name, Port: 0}, B: datapath.PortRef{Node: s.Host, Port: ep.Port}}
	return inst, w, nil
}

func (f *Fabric) freeIP(n *Node) (netip.Addr, error) {
	for a := n.Gateway().Next(); n.cfg.NodeCIDR.Contains(a); a = a.Next() {
		if _, used := n.maps.Endpoints.Lookup(EndpointKey{a.As4()}); !used && a != lastAddr(n.cfg.NodeCIDR) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("node CIDR %v of %s is full", n.cfg.NodeCIDR, n.cfg.Name)
}

func (f *Fabric) freeIP6(n *Node) (netip.Addr, error) {
	for a := n.gw6.Next(); a.IsValid() && n.cfg.NodeCIDR6.Contains(a); a = a.Next() {
		if _, used := n.maps.Endpoints6.Lookup(EndpointKey6{a.As16()}); !used {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("IPv6 node CIDR %v of %s is full", n.cfg.NodeCIDR6, n.cfg.Name)
}

func lastAddr(p netip.Prefix) netip.Addr {
	return nextPrefix(p).Addr().Prev()
}

// RemoveInstance implements datapath.Fabric.
func (f *Fabric) RemoveInstance(name string) error {
	p, ok := f.pods[name]
	if !ok {
		return fmt.Errorf("remove pod %q: %w", name, ErrNotFound)
	}
	if err := f.hosts[p.host].RemoveEndpoint(name); err != nil {
		return err
	}
	_ = f.cluster.ipcache.Delete(IPCacheKey{32, p.ep.IP.As4()})
	for _, h := range f.order {
		if h != p.host && p.ep.IP6.IsValid() {
			_ = f.hosts[h].DeleteRemote(netip.PrefixFrom(p.ep.IP6, 128))
		}
	}
	delete(f.pods, name)
	f.podOrder = slices.DeleteFunc(f.podOrder, func(s string) bool { return s == name })
	return nil
}

// ApplyPolicy adds a policy, or replaces the one with the same name, and
// recompiles every node's policy map.
func (f *Fabric) ApplyPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if i := slices.IndexFunc(f.policies, func(q Policy) bool { return q.Name == p.Name }); i >= 0 {
		f.policies[i] = p
	} else {
		f.policies = append(f.policies, p)
	}
	return f.recompile()
}

// RemovePolicy removes the policy called name.
func (f *Fabric) RemovePolicy(name string) error {
	i := slices.IndexFunc(f.policies, func(q Policy) bool { return q.Name == name })
	if i < 0 {
		return fmt.Errorf("remove policy %q: %w", name, ErrNotFound)
	}
	f.policies = slices.Delete(f.policies, i, i+1)
	return f.recompile()
}

// Policies returns the applied policies in order.
func (f *Fabric) Policies() []Policy { return slices.Clone(f.policies) }

// Compiled returns the policy map entries every node holds.
func (f *Fabric) Compiled() CompiledPolicy { return f.compiled }

// SetCompiledRules installs entries another compiler resolved
// (Kubernetes and Cilium policies, see scenarios/policycompile) beside
// those of the fabric's own policies, replacing the previous such set,
// and recompiles every node's policy map. The caller recompiles them
// when pods come and go.
func (f *Fabric) SetCompiledRules(rules []PolicyRule, enforced, egressEnforced map[Identity]bool) error {
	f.extra = CompileRules(rules, enforced, egressEnforced)
	f.hasExtra = len(rules) > 0 || len(enforced) > 0 || len(egressEnforced) > 0
	return f.recompile()
}

func (f *Fabric) recompile() error {
	cp, err := Compile(f.policies, f.ids)
	if err != nil {
		return err
	}
	if f.hasExtra {
		rules := append(slices.Clone(cp.Rules), f.extra.Rules...)
		enf := maps.Clone(f.extra.Enforced)
		maps.Copy(enf, cp.Enforced)
		cp = CompileRules(rules, enf, maps.Clone(f.extra.EgressEnforced))
	}
	f.compiled = cp
	for _, h := range f.order {
		if err := f.hosts[h].SetPolicy(cp); err != nil {
			return err
		}
	}
	return nil
}

// PodMAC is the MAC a pod gets when the spec has none.
func PodMAC(name string) net.HardwareAddr { return DeviceMAC(name, "eth0") }
