package evpn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/l3"
)

// Errors returned by leaf configuration.
var (
	ErrUnknownVNI   = errors.New("unknown VNI")
	ErrNotAccess    = errors.New("not an access port")
	ErrPortConflict = errors.New("port and VLAN already mapped to another VNI")
)

// Trace rules a leaf reports (constant strings: no allocation per frame).
const (
	RuleFDBLocal    = "fdb:local"
	RuleFDBRemote   = "fdb:remote"
	RuleFlood       = "flood"
	RuleARPSuppress = "arp-suppress"
	RuleARPGateway  = "arp-gateway"
	RuleRouteLocal  = "irb:local"
	RuleRouteRemote = "irb:l3vni"
	RulePrefix      = "irb:type-5"
	RuleNoPort      = "access:port-vlan-unmapped"
	RuleNoVNI       = "vxlan:vni-not-imported"
	RuleGlean       = "irb:host-unknown"
	RuleUnderlay    = "underlay"
	RuleGatewayEcho = "gateway:echo"
)

// LeafConfig describes a leaf (VTEP).
type LeafConfig struct {
	Name     string
	Ports    []string
	PortMACs []MAC // one per port
	// Uplinks are the ports towards spines (the underlay); all other ports
	// are access ports towards hosts (VLAN trunks).
	Uplinks []int
	// VTEP is the leaf's loopback, the outer source of its VXLAN packets.
	VTEP netip.Addr
	// RouterMAC is the leaf's own MAC for symmetric IRB: the inner
	// destination MAC of routed packets sent to this leaf.
	RouterMAC MAC
	// GatewayMAC is the distributed anycast gateway's MAC, the same on
	// every leaf.
	GatewayMAC MAC
}

// Network is an L2 VNI as a leaf sees it: a tenant subnet with its anycast
// gateway, routed in the tenant's L3 VNI, and on a dual-stack network an
// IPv6 subnet with the gateway's IPv6 address beside them.
type Network struct {
	VNI     uint32
	L3VNI   uint32 // the tenant (VPC)
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Subnet6 and Gateway6: the IPv6 side (zero: IPv4 only).
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
}

type portVLAN struct {
	port int
	vlan uint16
}

type macKey struct {
	vni uint32
	mac MAC
}

// fdbKey packs a network's bridge-domain index on this leaf and a MAC into
// one word, as a switch ASIC keys its MAC table (cheaper to hash than a
// struct on the forwarding path).
type fdbKey uint64

func (n *network) key(mac MAC) fdbKey {
	return fdbKey(uint64(n.bd)<<48 | uint64(mac[0])<<40 | uint64(mac[1])<<32 |
		uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5]))
}

func (k fdbKey) bd() uint16 { return uint16(k >> 48) }

func (k fdbKey) mac() MAC {
	return MAC{byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
}

// pvKey packs an access port and VLAN into a map key.
func pvKey(port int, vlan uint16) uint32 { return uint32(port)<<12 | uint32(vlan&0x0fff) }

type ipKey struct {
	vni uint32 // L2 VNI for ARP and ND suppression
	ip  netip.Addr
}

type network struct {
	Network
	bd     uint16       // bridge-domain index on this leaf (fdbKey)
	ports  []portVLAN   // configured access (port, VLAN) pairs, sorted
	flood  []netip.Addr // type-3 VTEPs other than this leaf, sorted
	nLocal int          // local MACs
}

type hostRoute struct {
	local bool
	vni   uint32 // local: the L2 VNI the host is in
	mac   MAC    // local: the host's MAC
	vtep  netip.Addr
	rmac  MAC
}

type remoteVTEP struct {
	vtep netip.Addr
	rmac MAC
}

// prefixRoute is a VRF LPM entry: a connected subnet (an L2 VNI with its
// SVI on this leaf) or a type-5 prefix with ECMP over VTEPs.
type prefixRoute struct {
	connected uint32 // L2 VNI; 0 if not connected
	vteps     []remoteVTEP
	line      *line // a prefix behind a dedicated line of this leaf
}

type vrf struct {
	l3vni   uint32
	refs    int                      // imported L2 VNIs of this tenant
	hosts   map[uint32]hostRoute     // by IPv4 address (key4)
	hosts6  map[netip.Addr]hostRoute // by IPv6 address
	prefix  *l3.FIB[*prefixRoute]
	prefix6 *prefixes6
}

// Leaf is a VTEP: host-facing access ports carry VLAN trunks, each
// (port, VLAN) mapped to an L2 VNI by configuration; uplinks carry VXLAN
// to the other leaves' loopbacks over the spines. It bridges within a VNI
// (local ports or VXLAN to the MAC's VTEP), answers ARP for known bindings
// and for the anycast gateway, routes between subnets on the ingress leaf
// (symmetric IRB over the tenant's L3 VNI) and replicates BUM frames to
// every VTEP that announced the VNI (type 3).
//
// A leaf imports routes from its RouteTable for the VNIs it carries: an L2
// VNI while at least one access (port, VLAN) maps to it, a tenant's L3 VNI
// while at least one of the tenant's L2 VNIs is imported.
type Leaf struct {
	cfg      LeafConfig
	table    *RouteTable
	cancel   func()
	isUplink []bool
	u        underlay
	seed     uint32

	networks map[uint32]*network   // by L2 VNI
	vrfs     map[uint32]*vrf       // by L3 VNI
	bds      []*network            // by bridge-domain index
	portCfg  map[uint32]*network   // by pvKey(port, VLAN)
	local    map[fdbKey]portVLAN   // local FDB (bound by the controller, or learned)
	remote   map[fdbKey]netip.Addr // remote FDB (type 2)
	arp      map[ipKey]MAC         // ARP and ND suppression cache (type 2 with an IP)

	pbuf, obuf, ebuf []byte // scratch buffers; out.Send copies

	// rib is what the leaf originates (its BGP Adj-RIB-Out): in the table
	// while the session is up, withdrawn from it while it is down.
	rib       map[key]Route
	sessionUp bool
	// export, if set, hears of every change of what the leaf advertises
	// while its session is up (its BGP speaker; see SetExporter).
	export Exporter

	// portHook, if set, hears of every port state change (the fabric's
	// underlay control plane).
	portHook func(port int, up bool)

	// lines are the ports to dedicated lines (AttachLine), by port.
	lines map[int]*line
}

var _ datapath.Node = (*Leaf)(nil)

// NewLeaf returns a leaf that imports from table (which may be shared by
// every leaf of the fabric). Call Close to unsubscribe.
func NewLeaf(cfg LeafConfig, table *RouteTable) (*Leaf, error) {
	if len(cfg.PortMACs) != len(cfg.Ports) {
		return nil, fmt.Errorf("new leaf %q: %d port MACs for %d ports", cfg.Name, len(cfg.PortMACs), len(cfg.Ports))
	}
	if !cfg.VTEP.Is4() {
		return nil, fmt.Errorf("new leaf %q: VTEP address %v must be IPv4", cfg.Name, cfg.VTEP)
	}
	l := &Leaf{
		cfg: cfg, table: table, isUplink: make([]bool, len(cfg.Ports)),
		u:        newUnderlay(cfg.VTEP, len(cfg.Ports)),
		seed:     fnv(2166136261, []byte(cfg.Name)),
		networks: map[uint32]*network{}, vrfs: map[uint32]*vrf{},
		portCfg: map[uint32]*network{}, local: map[fdbKey]portVLAN{},
		remote: map[fdbKey]netip.Addr{}, arp: map[ipKey]MAC{},
		rib: map[key]Route{}, sessionUp: true,
		pbuf: make([]byte, 0, 2048), obuf: make([]byte, 0, 2048), ebuf: make([]byte, 0, 2048),
	}
	for _, p := range cfg.Uplinks {
		if p < 0 || p >= len(cfg.Ports) {
			return nil, fmt.Errorf("new leaf %q: uplink port %d out of range", cfg.Name, p)
		}
		l.isUplink[p] = true
	}
	if table != nil {
		l.cancel = table.Subscribe(l.apply)
	}
	return l, nil
}

// Exporter takes the routes a leaf originates to its BGP speaker.
// Export must not block: it is called while the leaf's fabric is being
// changed, and from the leaf's Receive (a MAC that moved to it).
type Exporter interface {
	Export(u Update)
}

// SetExporter hands every later change of what the leaf advertises,
// while its session is up, to e (nil: none). With an exporter the leaf's
// table should be its own: other leaves' routes reach it through its
// speaker, which Import feeds in (Options.LeafTables).
func (l *Leaf) SetExporter(e Exporter) { l.export = e }

func (l *Leaf) exportRoute(op Op, r Route) {
	if l.export != nil && l.sessionUp {
		l.export.Export(Update{Op: op, Route: r})
	}
}

// Import applies routes the leaf's speaker learnt (its best paths) to
// its own table: withdrawn first, then adds. Routes whose next hop is the
// leaf's own VTEP are skipped (the leaf originates those itself), and so
// are withdrawals of routes the table no longer holds from that VTEP (a
// MAC that moved on). It returns the first invalid route's error.
func (l *Leaf) Import(adds, withdrawn []Route) error {
	if l.table == nil {
		return nil
	}
	for _, r := range withdrawn {
		if r.VTEP != l.cfg.VTEP {
			_ = l.table.Withdraw(r) // ErrNotFound: gone already, or moved
		}
	}
	var errs []error
	for _, r := range adds {
		if r.VTEP == l.cfg.VTEP {
			continue
		}
		if err := l.table.Add(r); err != nil {
			errs = append(errs, fmt.Errorf("leaf %s: import: %w", l.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Forget removes every route the leaf learnt from others from its table,
// as a switch that lost power forgets them; its speaker gives them back
// when it is up again (Import).
func (l *Leaf) Forget() int {
	if l.table == nil {
		return 0
	}
	n := 0
	for _, r := range l.table.Routes() {
		if r.VTEP != l.cfg.VTEP && l.table.Withdraw(r) == nil {
			n++
		}
	}
	return n
}

// Table returns the route table the leaf imports from.
func (l *Leaf) Table() *RouteTable { return l.table }

// Close ends the leaf's subscription to its route table.
func (l *Leaf) Close() {
	if l.cancel != nil {
		l.cancel()
		l.cancel = nil
	}
}

// Name implements datapath.Node.
func (l *Leaf) Name() string { return l.cfg.Name }

// Ports implements datapath.Node.
func (l *Leaf) Ports() []string { return l.cfg.Ports }

// PortMAC returns the MAC of port i.
func (l *Leaf) PortMAC(i int) MAC { return l.cfg.PortMACs[i] }

// VTEP returns the leaf's loopback address.
func (l *Leaf) VTEP() netip.Addr { return l.cfg.VTEP }

// RouterMAC returns the leaf's router MAC.
func (l *Leaf) RouterMAC() MAC { return l.cfg.RouterMAC }

// IsUplink reports whether port faces the spines.
func (l *Leaf) IsUplink(port int) bool {
	return port >= 0 && port < len(l.isUplink) && l.isUplink[port]
}

// SetUnderlayRoute installs the ECMP next hops towards the loopback dst.
func (l *Leaf) SetUnderlayRoute(dst netip.Addr, nhs []NextHop) error {
	if err := l.u.setRoute(dst, nhs); err != nil {
		return fmt.Errorf("leaf %s: %w", l.cfg.Name, err)
	}
	return nil
}

// SetPortState implements datapath.Node: an uplink going down leaves the
// ECMP groups through it (flows rehash over the other spines).
func (l *Leaf) SetPortState(_ time.Duration, port int, up bool, _ datapath.Output) {
	if port >= 0 && port < len(l.u.portUp) {
		l.u.portUp[port] = up
		if l.portHook != nil {
			l.portHook(port, up)
		}
	}
}

// AddNetwork tells the leaf about an L2 VNI (its subnet, anycast gateway
// and tenant). It carries no traffic until a port is configured for it.
func (l *Leaf) AddNetwork(n Network) error {
	where := fmt.Sprintf("leaf %s: add network vni %d l3vni %d", l.cfg.Name, n.VNI, n.L3VNI)
	if n.VNI == 0 || n.L3VNI == 0 || n.VNI == n.L3VNI || n.VNI >= 1<<24 || n.L3VNI >= 1<<24 {
		return fmt.Errorf("%s: VNIs must be distinct and 1..16777215", where)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || !n.Subnet.Contains(n.Gateway) {
		return fmt.Errorf("%s: subnet %v must be IPv4 and hold gateway %v", where, n.Subnet, n.Gateway)
	}
	if n.Subnet6.IsValid() || n.Gateway6.IsValid() {
		if !n.Subnet6.Addr().Is6() || n.Subnet6.Addr().Is4In6() || !n.Subnet6.Contains(n.Gateway6) {
			return fmt.Errorf("%s: IPv6 subnet %v must be IPv6 and hold gateway %v", where, n.Subnet6, n.Gateway6)
		}
		n.Subnet6 = n.Subnet6.Masked()
	}
	n.Subnet = n.Subnet.Masked()
	if old, ok := l.networks[n.VNI]; ok {
		if old.Network != n {
			return fmt.Errorf("%s: already defined as %+v", where, old.Network)
		}
		return nil
	}
	for _, o := range l.networks {
		if o.L3VNI == n.VNI || o.VNI == n.L3VNI {
			return fmt.Errorf("%s: clashes with network vni %d l3vni %d (L2 and L3 VNIs share one space)", where, o.VNI, o.L3VNI)
		}
	}
	if len(l.bds) > 0xffff {
		return fmt.Errorf("%s: the leaf holds %d networks already", where, len(l.bds))
	}
	nw := &network{Network: n, bd: uint16(len(l.bds))}
	l.bds = append(l.bds, nw)
	l.networks[n.VNI] = nw
	return nil
}

// ConfigurePort maps VLAN vlan on access port to L2 VNI vni (the CNC's
// per-port configuration). The first mapping of a VNI imports its routes.
func (l *Leaf) ConfigurePort(port int, vlan uint16, vni uint32) error {
	where := fmt.Sprintf("leaf %s: configure port %d vlan %d vni %d", l.cfg.Name, port, vlan, vni)
	if port < 0 || port >= len(l.cfg.Ports) || l.isUplink[port] {
		return fmt.Errorf("%s: %w", where, ErrNotAccess)
	}
	if vlan == 0 || vlan > 4094 {
		return fmt.Errorf("%s: VLAN must be 1..4094", where)
	}
	n, ok := l.networks[vni]
	if !ok {
		return fmt.Errorf("%s: %w (add the network first)", where, ErrUnknownVNI)
	}
	pv := portVLAN{port, vlan}
	if cur, ok := l.portCfg[pvKey(port, vlan)]; ok {
		if cur == n {
			return nil
		}
		return fmt.Errorf("%s: %w (vni %d)", where, ErrPortConflict, cur.VNI)
	}
	l.portCfg[pvKey(port, vlan)] = n
	n.ports = append(n.ports, pv)
	slices.SortFunc(n.ports, comparePV)
	if len(n.ports) == 1 {
		l.importL2(n)
	}
	return nil
}

// UnconfigurePort removes the mapping of (port, vlan); the last mapping of
// a VNI flushes its routes and local bindings from the leaf.
func (l *Leaf) UnconfigurePort(port int, vlan uint16) error {
	pv := portVLAN{port, vlan}
	n, ok := l.portCfg[pvKey(port, vlan)]
	if !ok {
		return fmt.Errorf("leaf %s: unconfigure port %d vlan %d: %w", l.cfg.Name, port, vlan, ErrNotFound)
	}
	delete(l.portCfg, pvKey(port, vlan))
	n.ports = slices.DeleteFunc(n.ports, func(x portVLAN) bool { return x == pv })
	for k, at := range l.local {
		if at == pv {
			l.delLocal(k)
		}
	}
	if len(n.ports) == 0 {
		l.flushL2(n)
	}
	return nil
}

// BindLocal records that mac lives behind (port, vlan): the local FDB
// entry the leaf learns when an instance attaches (the controller knows
// the host's leaf port; the instance's first frame would teach it too).
func (l *Leaf) BindLocal(port int, vlan uint16, mac MAC) error {
	n, ok := l.portCfg[pvKey(port, vlan)]
	if !ok {
		return fmt.Errorf("leaf %s: bind %s on port %d vlan %d: %w (configure the port first)", l.cfg.Name, mac, port, vlan, ErrUnknownVNI)
	}
	l.setLocal(n.key(mac), portVLAN{port, vlan})
	return nil
}

// UnbindLocal removes a local FDB entry.
func (l *Leaf) UnbindLocal(vni uint32, mac MAC) error {
	n := l.networks[vni]
	if n == nil {
		return fmt.Errorf("leaf %s: unbind %s in vni %d: %w", l.cfg.Name, mac, vni, ErrNotFound)
	}
	k := n.key(mac)
	if _, ok := l.local[k]; !ok {
		return fmt.Errorf("leaf %s: unbind %s in vni %d: %w", l.cfg.Name, mac, vni, ErrNotFound)
	}
	l.delLocal(k)
	return nil
}

// setLocal records a local endpoint. The leaf advertises an inclusive
// multicast route (type 3) for a VNI while it has local endpoints in it.
func (l *Leaf) setLocal(k fdbKey, pv portVLAN) {
	if _, ok := l.local[k]; !ok {
		n := l.bds[k.bd()]
		n.nLocal++
		if n.nLocal == 1 {
			_ = l.Advertise(Route{Type: InclusiveMulticast, VNI: n.VNI, VTEP: l.cfg.VTEP})
		}
	}
	l.local[k] = pv
}

func (l *Leaf) delLocal(k fdbKey) {
	if _, ok := l.local[k]; !ok {
		return
	}
	delete(l.local, k)
	n := l.bds[k.bd()]
	n.nLocal--
	if n.nLocal == 0 {
		_ = l.Withdraw(Route{Type: InclusiveMulticast, VNI: n.VNI, VTEP: l.cfg.VTEP})
	}
}

// learn records a MAC seen on an access port. If the route table places
// the MAC behind another VTEP, it moved here (a host's bond failed over to
// this leaf, announcing its instances): the leaf re-advertises its type-2
// routes with itself as next hop (MAC mobility), so the fabric converges.
// A leaf does not originate routes for MACs the table does not know.
func (l *Leaf) learn(k fdbKey, pv portVLAN) {
	l.setLocal(k, pv)
	if l.table == nil {
		return
	}
	for _, r := range l.table.LookupMAC(l.bds[k.bd()].VNI, k.mac()) {
		if r.VTEP != l.cfg.VTEP {
			r.VTEP, r.RouterMAC = l.cfg.VTEP, l.cfg.RouterMAC
			_ = l.Advertise(r)
		}
	}
}

// Advertise originates r from this leaf, as its BGP speaker would: r
// joins the leaf's Adj-RIB-Out and, while the leaf's session is up, the
// route table. r's next hop must be the leaf's VTEP.
func (l *Leaf) Advertise(r Route) error {
	if r.VTEP != l.cfg.VTEP {
		return fmt.Errorf("leaf %s: advertise %s: %w: next hop is not this leaf's VTEP %s", l.cfg.Name, r, ErrInvalidRoute, l.cfg.VTEP)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("leaf %s: advertise: %w", l.cfg.Name, err)
	}
	if r.Type == IPPrefix {
		r.Prefix = r.Prefix.Masked()
	}
	l.rib[r.key()] = r
	if l.sessionUp && l.table != nil {
		if err := l.table.Add(r); err != nil {
			return fmt.Errorf("leaf %s: %w", l.cfg.Name, err)
		}
	}
	l.exportRoute(OpAdd, r)
	return nil
}

// Withdraw stops originating r (its next hop must be this leaf's VTEP):
// it leaves the Adj-RIB-Out and, while the session is up, the table. It
// returns ErrNotFound when the leaf does not originate r (any more: a
// type-2 route another leaf advertised since is not this leaf's).
func (l *Leaf) Withdraw(r Route) error {
	if r.Type == IPPrefix {
		r.Prefix = r.Prefix.Masked()
	}
	k := r.key()
	own, ok := l.rib[k]
	if !ok || r.VTEP != l.cfg.VTEP {
		return fmt.Errorf("leaf %s: withdraw %s: %w", l.cfg.Name, r, ErrNotFound)
	}
	delete(l.rib, k)
	if l.sessionUp && l.table != nil {
		if err := l.table.Withdraw(own); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("leaf %s: %w", l.cfg.Name, err)
		}
	}
	l.exportRoute(OpWithdraw, own)
	return nil
}

// Advertised returns the routes the leaf originates, in a stable order.
func (l *Leaf) Advertised() []Route {
	out := make([]Route, 0, len(l.rib))
	for _, r := range l.rib {
		out = append(out, r)
	}
	slices.SortFunc(out, compareRoutes)
	return out
}

// SetSession takes the leaf's BGP session down or up. Down, every route
// the leaf originates is withdrawn from the table, as the route
// reflectors withdraw a peer's routes when its session drops, and the
// other leaves remove the MACs, host routes, prefixes and flood entries
// that pointed at it; the routes stay in the leaf's Adj-RIB-Out. Up, they
// are advertised again. It returns how many routes changed in the table.
// With an exporter, the routes are exported again when the session comes
// back (to a speaker that restarted), and not withdrawn when it drops:
// a dropped session withdraws them at the peers.
func (l *Leaf) SetSession(up bool) int {
	if l.sessionUp == up {
		return 0
	}
	l.sessionUp = up
	if up {
		for _, r := range l.Advertised() {
			l.exportRoute(OpAdd, r)
		}
	}
	if l.table == nil {
		return 0
	}
	n := 0
	for _, r := range l.Advertised() {
		var err error
		if up {
			err = l.table.Add(r)
		} else {
			err = l.table.Withdraw(r)
		}
		if err == nil {
			n++
		}
	}
	return n
}

// SessionUp reports whether the leaf's BGP session is up.
func (l *Leaf) SessionUp() bool { return l.sessionUp }

func comparePV(a, b portVLAN) int {
	if a.port != b.port {
		return a.port - b.port
	}
	return int(a.vlan) - int(b.vlan)
}

// importL2 starts carrying n: its type-2/3 routes, its connected subnet
// and (for the first VNI of a tenant) the tenant's VRF.
func (l *Leaf) importL2(n *network) {
	if l.table != nil {
		for _, r := range l.table.Import(n.VNI) {
			if r.VNI == n.VNI {
				l.applyL2(r, true)
			}
		}
	}
	v := l.importVRF(n.L3VNI)
	for _, p := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if !p.IsValid() {
			continue
		}
		t := v.table(p)
		pr, _ := t.Get(p)
		if pr == nil {
			pr = &prefixRoute{}
			_ = t.Insert(p, pr) // of its table's family, checked by AddNetwork
		}
		pr.connected = n.VNI
	}
}

func (l *Leaf) flushL2(n *network) {
	for k := range l.remote {
		if k.bd() == n.bd {
			delete(l.remote, k)
		}
	}
	for k := range l.local {
		if k.bd() == n.bd {
			l.delLocal(k)
		}
	}
	for k := range l.arp {
		if k.vni == n.VNI {
			delete(l.arp, k)
		}
	}
	n.flood = nil
	v := l.vrfs[n.L3VNI]
	if v == nil {
		return
	}
	for _, p := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if !p.IsValid() {
			continue
		}
		t := v.table(p)
		if pr, ok := t.Get(p); ok && pr.connected == n.VNI {
			pr.connected = 0
			if len(pr.vteps) == 0 {
				t.Delete(p)
			}
		}
	}
	v.refs--
	if v.refs == 0 {
		delete(l.vrfs, n.L3VNI)
	}
}

// apply is the route table subscription.
func (l *Leaf) apply(u Update) {
	add := u.Op == OpAdd
	r := u.Route
	if add && r.Type == MACIP && r.VTEP != l.cfg.VTEP {
		// A newer advertisement of a MAC this leaf originated (MAC
		// mobility): the leaf no longer originates it, and does not
		// advertise it again when its session comes back.
		if own, ok := l.rib[r.key()]; ok && own.VTEP == l.cfg.VTEP {
			delete(l.rib, r.key())
			l.exportRoute(OpWithdraw, own)
		}
	}
	if r.Type != IPPrefix {
		if n := l.networks[r.VNI]; n != nil && len(n.ports) > 0 {
			l.applyL2(r, add)
		}
	}
	if r.Type == IPPrefix || (r.Type == MACIP && r.IP.IsValid()) {
		if v := l.vrfs[r.L3VNI]; v != nil {
			l.applyL3(r, add)
		}
	}
}

func (l *Leaf) applyL2(r Route, add bool) {
	n := l.networks[r.VNI]
	switch r.Type {
	case MACIP:
		k := n.key(r.MAC)
		if r.VTEP != l.cfg.VTEP {
			if add {
				// A newer advertisement from another VTEP: the MAC
				// moved away from here.
				l.delLocal(k)
				l.remote[k] = r.VTEP
			} else if l.remote[k] == r.VTEP {
				delete(l.remote, k)
			}
		}
		if r.IP.IsValid() {
			ak := ipKey{r.VNI, r.IP}
			if add {
				l.arp[ak] = r.MAC
			} else if l.arp[ak] == r.MAC {
				delete(l.arp, ak)
			}
		}
	case InclusiveMulticast:
		if r.VTEP == l.cfg.VTEP {
			return
		}
		i, found := slices.BinarySearchFunc(n.flood, r.VTEP, netip.Addr.Compare)
		if add && !found {
			n.flood = slices.Insert(n.flood, i, r.VTEP)
		} else if !add && found {
			n.flood = slices.Delete(n.flood, i, i+1)
		}
	}
}

func (l *Leaf) applyL3(r Route, add bool) {
	v := l.vrfs[r.L3VNI]
	switch r.Type {
	case MACIP:
		h := hostRoute{vtep: r.VTEP, rmac: r.RouterMAC}
		if r.VTEP == l.cfg.VTEP {
			h = hostRoute{local: true, vni: r.VNI, mac: r.MAC}
		}
		switch {
		case r.IP.Is4() && add:
			v.hosts[key4(r.IP)] = h
		case r.IP.Is4():
			if cur, ok := v.hosts[key4(r.IP)]; ok && cur == h {
				delete(v.hosts, key4(r.IP))
			}
		case add:
			v.hosts6[r.IP] = h
		default:
			if cur, ok := v.hosts6[r.IP]; ok && cur == h {
				delete(v.hosts6, r.IP)
			}
		}
	case IPPrefix:
		if r.VTEP == l.cfg.VTEP {
			return
		}
		t := v.table(r.Prefix)
		pr, _ := t.Get(r.Prefix)
		if pr == nil {
			if !add {
				return
			}
			pr = &prefixRoute{}
			if err := t.Insert(r.Prefix, pr); err != nil {
				return // an IPv4-mapped IPv6 prefix: no family routes it
			}
		}
		rv := remoteVTEP{r.VTEP, r.RouterMAC}
		i, found := slices.BinarySearchFunc(pr.vteps, r.VTEP, func(x remoteVTEP, a netip.Addr) int { return x.vtep.Compare(a) })
		switch {
		case add && found:
			pr.vteps[i] = rv
		case add:
			pr.vteps = slices.Insert(pr.vteps, i, rv)
		case found:
			pr.vteps = slices.Delete(pr.vteps, i, i+1)
		}
		if len(pr.vteps) == 0 && pr.connected == 0 {
			t.Delete(r.Prefix)
		}
	}
}

// FDBEntry is where a leaf sends frames for a MAC in an L2 VNI.
type FDBEntry struct {
	Local bool
	Port  int        // local: access port
	VLAN  uint16     // local: VLAN on that port
	VTEP  netip.Addr // remote: the MAC's VTEP
}

// LookupMAC returns the FDB entry for mac in vni; local bindings win.
func (l *Leaf) LookupMAC(vni uint32, mac MAC) (FDBEntry, bool) {
	n := l.networks[vni]
	if n == nil {
		return FDBEntry{}, false
	}
	k := n.key(mac)
	if pv, ok := l.local[k]; ok {
		return FDBEntry{Local: true, Port: pv.port, VLAN: pv.vlan}, true
	}
	if v, ok := l.remote[k]; ok {
		return FDBEntry{VTEP: v}, true
	}
	return FDBEntry{}, false
}

// FIBEntry is how a leaf routes an IP in a tenant's VRF.
type FIBEntry struct {
	// Prefix is the matching route: a /32 or /128 host route (type 2), a connected
	// subnet or a type-5 prefix.
	Prefix netip.Prefix
	// Local host routes: the host's L2 VNI and MAC.
	Local bool
	VNI   uint32
	MAC   MAC
	// Connected: the prefix is a local subnet but the host is unknown.
	Connected bool
	// Remote: the VTEPs (ECMP for type 5) and their router MACs.
	VTEPs      []netip.Addr
	RouterMACs []MAC
}

// LookupIP returns the VRF entry for ip in tenant l3vni: host routes
// first, then the longest matching prefix; a type-5 prefix wins over a
// connected one of the same length only when no SVI is present.
func (l *Leaf) LookupIP(l3vni uint32, ip netip.Addr) (FIBEntry, bool) {
	v := l.vrfs[l3vni]
	if v == nil || !ip.IsValid() {
		return FIBEntry{}, false
	}
	var h hostRoute
	var ok bool
	if ip.Is4() {
		h, ok = v.hosts[key4(ip)]
	} else {
		h, ok = v.hosts6[ip]
	}
	if ok {
		e := FIBEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Local: h.local, VNI: h.vni, MAC: h.mac}
		if !h.local {
			e.VTEPs, e.RouterMACs = []netip.Addr{h.vtep}, []MAC{h.rmac}
		}
		return e, true
	}
	var pr *prefixRoute
	var p netip.Prefix
	if ip.Is4() {
		pr, p, ok = v.prefix.LookupAddr(ip)
	} else {
		pr, p, ok = v.prefix6.LookupAddr(ip)
	}
	if !ok {
		return FIBEntry{}, false
	}
	e := FIBEntry{Prefix: p}
	if pr.connected != 0 {
		e.Connected, e.VNI = true, pr.connected
		return e, true
	}
	for _, rv := range pr.vteps {
		e.VTEPs = append(e.VTEPs, rv.vtep)
		e.RouterMACs = append(e.RouterMACs, rv.rmac)
	}
	return e, true
}

// LeafTables are a leaf's table sizes, for capacity reports.
type LeafTables struct {
	PortVLANs  int // access (port, VLAN) → VNI mappings
	L2VNIs     int // imported L2 VNIs
	VRFs       int // imported L3 VNIs
	LocalMACs  int
	RemoteMACs int
	ARP        int // ARP- and ND-suppression bindings
	HostRoutes int // /32 and /128 routes in all VRFs
	Prefixes   int // connected and type-5 prefixes in all VRFs
	FloodVTEPs int // type-3 ingress-replication entries over all VNIs
	Underlay   int // underlay routes
}

// Tables returns the leaf's table sizes.
func (l *Leaf) Tables() LeafTables {
	t := LeafTables{PortVLANs: len(l.portCfg), VRFs: len(l.vrfs), LocalMACs: len(l.local),
		RemoteMACs: len(l.remote), ARP: len(l.arp), Underlay: len(l.u.fib)}
	for _, n := range l.networks {
		if len(n.ports) > 0 {
			t.L2VNIs++
			t.FloodVTEPs += len(n.flood)
		}
	}
	for _, v := range l.vrfs {
		t.HostRoutes += len(v.hosts) + len(v.hosts6)
		t.Prefixes += v.prefix.Len() + v.prefix6.Len()
	}
	return t
}

// ---- forwarding ----

// Receive implements datapath.Node.
func (l *Leaf) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	ev := datapath.Event{Time: now, Node: l.cfg.Name, Device: l.cfg.Name, Kind: datapath.KindSwitch}
	if port < 0 || port >= len(l.cfg.Ports) {
		ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonMalformed
		out.Trace(ev)
		return
	}
	ev.InPort = l.cfg.Ports[port]
	if len(b) < ethLen {
		l.drop(ev, out, datapath.ReasonMalformed, "")
		return
	}
	if l.isUplink[port] {
		l.fromUnderlay(ev, port, b, out)
		return
	}
	if ln := l.lines[port]; ln != nil {
		l.fromLine(ev, ln, b, out)
		return
	}
	l.fromAccess(ev, port, b, out)
}

func (l *Leaf) drop(ev datapath.Event, out datapath.Output, r datapath.Reason, rule string) {
	ev.Action, ev.Reason, ev.Rule, ev.OutPort = datapath.ActDrop, r, rule, ""
	out.Trace(ev)
}

func (l *Leaf) fromAccess(ev datapath.Event, port int, b []byte, out datapath.Output) {
	// Pop the host trunk's VLAN tag, in place (datapath.Node's contract).
	f, vlan := frame.StripVLAN(b)
	pv := portVLAN{port, vlan}
	n, ok := l.portCfg[pvKey(port, vlan)]
	if !ok {
		l.drop(ev, out, datapath.ReasonVLANMismatch, RuleNoPort)
		return
	}
	if src := MAC(f[6:12]); src[0]&1 == 0 && src != (MAC{}) {
		if k := n.key(src); l.local[k] != pv {
			l.learn(k, pv)
		}
	}
	dst := MAC(f[0:6])
	switch {
	case f[0]&1 == 1:
		switch binary.BigEndian.Uint16(f[12:14]) {
		case etherARP:
			if l.suppressARP(ev, pv, n, f, out) {
				return
			}
		case etherIPv6:
			if l.suppressND(ev, pv, n, f, out) {
				return
			}
		}
		l.flood(ev, n, pv, f, true, out)
	case dst == l.cfg.GatewayMAC || dst == l.cfg.RouterMAC:
		l.route(ev, n, pv, f, out)
	default:
		l.bridge(ev, n, pv, f, out)
	}
}

// bridge forwards f (untagged) within n from an access port.
func (l *Leaf) bridge(ev datapath.Event, n *network, in portVLAN, f []byte, out datapath.Output) {
	k := n.key(MAC(f[0:6]))
	if pv, ok := l.local[k]; ok {
		if pv == in {
			l.drop(ev, out, datapath.ReasonSplitHorizon, RuleFDBLocal)
			return
		}
		l.sendAccess(ev, datapath.ActForward, RuleFDBLocal, pv, f, out)
		return
	}
	if vtep, ok := l.remote[k]; ok {
		ev.Kind = datapath.KindVTEP
		l.sendVXLAN(ev, RuleFDBRemote, vtep, n.VNI, f, out)
		return
	}
	l.flood(ev, n, in, f, true, out)
}

// sendAccess pushes pv's VLAN onto f and sends it to the host.
func (l *Leaf) sendAccess(ev datapath.Event, act datapath.Action, rule string, pv portVLAN, f []byte, out datapath.Output) {
	l.obuf = pushVLAN(l.obuf, f, pv.vlan)
	ev.Action, ev.Rule, ev.OutPort = act, rule, l.cfg.Ports[pv.port]
	out.Trace(ev)
	out.Send(pv.port, l.obuf)
}

func pushVLAN(dst, f []byte, vid uint16) []byte {
	dst = append(dst[:0], f[:12]...)
	dst = binary.BigEndian.AppendUint16(dst, etherVLAN)
	dst = binary.BigEndian.AppendUint16(dst, vid&0x0fff)
	return append(dst, f[12:]...)
}

// sendVXLAN encapsulates f in vni towards vtep, picking the uplink by ECMP
// over the outer flow (whose UDP source port hashes the inner flow).
func (l *Leaf) sendVXLAN(ev datapath.Event, rule string, vtep netip.Addr, vni uint32, f []byte, out datapath.Output) {
	p, ok := l.encapTo(vtep, vni, f)
	if !ok {
		ev.Kind = datapath.KindVTEP
		l.drop(ev, out, datapath.ReasonNoRoute, RuleUnderlay)
		return
	}
	ev.Kind, ev.Action, ev.Rule, ev.OutPort = datapath.KindVTEP, datapath.ActEncap, rule, l.cfg.Ports[p]
	out.Trace(ev)
	out.Send(p, l.ebuf)
}

// encapTo builds the VXLAN packet in ebuf and returns its uplink.
func (l *Leaf) encapTo(vtep netip.Addr, vni uint32, f []byte) (int, bool) {
	l.ebuf = encap(l.ebuf, MAC{}, MAC{}, l.cfg.VTEP, vtep, innerSourcePort(f), vni, f)
	nh, _, ok := l.u.lookup(vtep, l3.FlowHash(l.seed, l.ebuf))
	if !ok {
		return 0, false
	}
	copy(l.ebuf[0:6], nh.MAC[:])
	copy(l.ebuf[6:12], l.cfg.PortMACs[nh.Port][:])
	return nh.Port, true
}

// flood sends a BUM frame of n to every local (port, VLAN) but in and, when
// it came from an access port, to every type-3 VTEP (ingress replication).
// A frame from the overlay is flooded locally only (split horizon).
func (l *Leaf) flood(ev datapath.Event, n *network, in portVLAN, f []byte, replicate bool, out datapath.Output) {
	sent := 0
	ev.Action, ev.Rule = datapath.ActFlood, RuleFlood
	if replicate && len(n.flood) > 0 {
		ev.Kind = datapath.KindVTEP
	}
	traced := false
	trace := func() {
		if !traced {
			out.Trace(ev)
			traced = true
		}
	}
	for _, pv := range n.ports {
		if pv == in {
			continue
		}
		trace()
		l.obuf = pushVLAN(l.obuf, f, pv.vlan)
		out.Send(pv.port, l.obuf)
		sent++
	}
	if replicate {
		for _, vtep := range n.flood {
			if p, ok := l.encapTo(vtep, n.VNI, f); ok {
				trace()
				out.Send(p, l.ebuf)
				sent++
			}
		}
	}
	if sent == 0 {
		l.drop(ev, out, datapath.ReasonSplitHorizon, RuleFlood)
	}
}

// suppressARP answers an ARP request for the anycast gateway or for a
// known binding of n on the leaf itself. It reports false when the request
// must be flooded.
func (l *Leaf) suppressARP(ev datapath.Event, in portVLAN, n *network, f []byte, out datapath.Output) bool {
	if len(f) < ethLen+28 || binary.BigEndian.Uint16(f[20:22]) != 1 {
		return false
	}
	tpa := addr4(f[38:42])
	if tpa == addr4(f[28:32]) {
		return false // gratuitous ARP: flood it, neighbours update their caches
	}
	var mac MAC
	rule := RuleARPSuppress
	switch m, ok := l.arp[ipKey{n.VNI, tpa}]; {
	case tpa == n.Gateway:
		mac, rule = l.cfg.GatewayMAC, RuleARPGateway
	case ok:
		if pv, local := l.local[n.key(m)]; local && pv.port == in.port {
			// The target sits behind the requester's own port: the
			// request reached it there and it answers itself. A reply
			// from here would carry its MAC up from this port and teach
			// the host's bridges that it lives beyond the leaf.
			l.drop(ev, out, datapath.ReasonSplitHorizon, RuleARPSuppress+":local")
			return true
		}
		mac = m
	default:
		return false
	}
	// Build the reply in obuf: Ethernet+802.1Q, then ARP.
	r := l.obuf[:0]
	r = append(r, f[22:28]...) // to the requester
	r = append(r, mac[:]...)
	r = binary.BigEndian.AppendUint16(r, etherVLAN)
	r = binary.BigEndian.AppendUint16(r, in.vlan)
	r = binary.BigEndian.AppendUint16(r, etherARP)
	r = append(r, 0, 1, 0x08, 0, 6, 4, 0, 2)
	r = append(r, mac[:]...)
	r = append(r, f[38:42]...)
	r = append(r, f[22:32]...) // requester's MAC and IP
	for len(r) < 64 {
		r = append(r, 0) // pad to the Ethernet minimum (60 bytes + tag)
	}
	l.obuf = r
	ev.Action, ev.Rule, ev.OutPort = datapath.ActForward, rule, l.cfg.Ports[in.port]
	out.Trace(ev)
	out.Send(in.port, r)
	return true
}

// route routes f (untagged, addressed to the gateway) in n's tenant VRF:
// to a local host (KindRouter), or by symmetric IRB over the L3 VNI to the
// destination's VTEP (KindVTEP).
func (l *Leaf) route(ev datapath.Event, n *network, in portVLAN, f []byte, out datapath.Output) {
	if binary.BigEndian.Uint16(f[12:14]) == etherIPv6 {
		l.route6(ev, n, in, f, out)
		return
	}
	ip, payload, ok := ipv4Header(f)
	if !ok {
		l.drop(ev, out, datapath.ReasonNotForMe, "gateway:not-ipv4")
		return
	}
	ev.Kind = datapath.KindRouter
	v := l.vrfs[n.L3VNI]
	dst := addr4(ip[16:20])
	if dst == n.Gateway {
		l.gatewayEcho(ev, in, f, ip, payload, out)
		return
	}
	if !decTTL(ip) {
		l.drop(ev, out, datapath.ReasonTTL, "")
		return
	}
	if h, ok := v.hosts[be32(ip[16:20])]; ok {
		l.routeHost(ev, v, h, f, out)
		return
	}
	pr, _, ok := v.prefix.LookupAddr(dst)
	l.routePrefix(ev, v, pr, ok, f, out)
}

// routeHost sends a routed packet along a host route (type 2): to the
// host on this leaf, or over the L3 VNI to its VTEP.
func (l *Leaf) routeHost(ev datapath.Event, v *vrf, h hostRoute, f []byte, out datapath.Output) {
	if h.local {
		l.routeLocal(ev, h, f, out)
		return
	}
	copy(f[0:6], h.rmac[:])
	copy(f[6:12], l.cfg.RouterMAC[:])
	l.sendVXLAN(ev, RuleRouteRemote, h.vtep, v.l3vni, f, out)
}

// routePrefix sends a routed packet that matched no host route along
// its longest matching prefix pr (ok: one matched): a type-5 prefix over
// the L3 VNI (ECMP over its VTEPs), or a prefix behind a dedicated line
// of this leaf onto the line; a connected subnet whose host is unknown
// drops it.
func (l *Leaf) routePrefix(ev datapath.Event, v *vrf, pr *prefixRoute, ok bool, f []byte, out datapath.Output) {
	switch {
	case !ok:
		l.drop(ev, out, datapath.ReasonNoRoute, "")
	case pr.line != nil:
		l.toLine(ev, pr.line, f, out)
	case len(pr.vteps) > 0 && pr.connected == 0:
		rv := pr.vteps[0]
		if len(pr.vteps) > 1 {
			rv = pr.vteps[l3.FlowHash(l.seed, f)%uint32(len(pr.vteps))]
		}
		copy(f[0:6], rv.rmac[:])
		copy(f[6:12], l.cfg.RouterMAC[:])
		l.sendVXLAN(ev, RulePrefix, rv.vtep, v.l3vni, f, out)
	default:
		l.drop(ev, out, datapath.ReasonNoARP, RuleGlean)
	}
}

// gatewayEcho answers an ICMP echo request to the anycast gateway, as
// the leaf's SVI does; anything else to the gateway is consumed.
func (l *Leaf) gatewayEcho(ev datapath.Event, in portVLAN, f, ip []byte, payload int, out datapath.Output) {
	end := ethLen + int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[9] != 1 || end < payload+8 || f[payload] != 8 || f[payload+1] != 0 {
		l.drop(ev, out, datapath.ReasonNotForMe, "gateway:local")
		return
	}
	icmp := f[payload:end]
	reply := frame.ICMPEcho(frame.IPv4{SrcMAC: l.cfg.GatewayMAC[:], DstMAC: net.HardwareAddr(f[6:12]),
		Src: addr4(ip[16:20]), Dst: addr4(ip[12:16])}, true,
		binary.BigEndian.Uint16(icmp[4:6]), binary.BigEndian.Uint16(icmp[6:8]), icmp[8:])
	ev.Action, ev.Rule, ev.OutPort = datapath.ActDeliver, RuleGatewayEcho, l.cfg.Ports[in.port]
	out.Trace(ev)
	out.Send(in.port, pushVLAN(l.obuf, reply, in.vlan))
}

// localHost finds the access (port, VLAN) of a local host route.
func (l *Leaf) localHost(h hostRoute) (portVLAN, bool) {
	n := l.networks[h.vni]
	if n == nil {
		return portVLAN{}, false
	}
	pv, ok := l.local[n.key(h.mac)]
	return pv, ok
}

// routeLocal delivers a routed packet to a host on this leaf.
func (l *Leaf) routeLocal(ev datapath.Event, h hostRoute, f []byte, out datapath.Output) {
	pv, ok := l.localHost(h)
	if !ok {
		l.drop(ev, out, datapath.ReasonNoARP, RuleGlean)
		return
	}
	copy(f[0:6], h.mac[:])
	copy(f[6:12], l.cfg.GatewayMAC[:])
	l.sendAccess(ev, datapath.ActRoute, RuleRouteLocal, pv, f, out)
}

func (l *Leaf) fromUnderlay(ev datapath.Event, port int, b []byte, out datapath.Output) {
	ev.Kind = datapath.KindVTEP
	ip, payload, ok := ipv4Header(b)
	if !ok {
		l.drop(ev, out, datapath.ReasonMalformed, "underlay:not-ipv4")
		return
	}
	if MAC(b[0:6]) != l.cfg.PortMACs[port] {
		l.drop(ev, out, datapath.ReasonNotForMe, "underlay:dst-mac")
		return
	}
	if addr4(ip[16:20]) != l.cfg.VTEP {
		l.transit(ev, b, len(ip), out)
		return
	}
	if ip[9] != protoUDP || len(b) < payload+udpLen+vxlanLen+ethLen ||
		binary.BigEndian.Uint16(b[payload+2:payload+4]) != vxlanPort || b[payload+udpLen]&0x08 == 0 {
		l.drop(ev, out, datapath.ReasonNotForMe, "underlay:not-vxlan")
		return
	}
	vx := b[payload+udpLen : payload+udpLen+vxlanLen]
	vni := uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6])
	inner := b[payload+udpLen+vxlanLen:]
	ev.Action = datapath.ActDecap
	if n := l.networks[vni]; n != nil && len(n.ports) > 0 {
		f := inner // rewritten in place (datapath.Node's contract)
		if f[0]&1 == 0 {
			if pv, ok := l.local[n.key(MAC(f[0:6]))]; ok {
				l.sendAccess(ev, datapath.ActDecap, RuleFDBLocal, pv, f, out)
				return
			}
		}
		l.flood(ev, n, portVLAN{-1, 0}, f, false, out)
		return
	}
	if v := l.vrfs[vni]; v != nil {
		l.routeDecap(ev, v, inner, out)
		return
	}
	l.drop(ev, out, datapath.ReasonNoTunnel, RuleNoVNI)
}

// transit routes an underlay packet for another loopback, as a border
// leaf between availability zones does (KindRouter).
func (l *Leaf) transit(ev datapath.Event, b []byte, ihl int, out datapath.Output) {
	ev.Kind = datapath.KindRouter
	f := append(l.ebuf[:0], b...)
	l.ebuf = f
	nh, g, ok := l.u.lookup(addr4(f[30:34]), l3.FlowHash(l.seed, f))
	if !ok {
		l.drop(ev, out, datapath.ReasonNoRoute, "underlay:no-route")
		return
	}
	if !decTTL(f[ethLen : ethLen+ihl]) {
		l.drop(ev, out, datapath.ReasonTTL, g.rule)
		return
	}
	copy(f[0:6], nh.MAC[:])
	copy(f[6:12], l.cfg.PortMACs[nh.Port][:])
	ev.Action, ev.Rule, ev.OutPort = datapath.ActRoute, g.rule, l.cfg.Ports[nh.Port]
	out.Trace(ev)
	out.Send(nh.Port, f)
}

// routeDecap is the egress half of symmetric IRB: route the inner packet
// in the tenant's VRF to a local host.
func (l *Leaf) routeDecap(ev datapath.Event, v *vrf, inner []byte, out datapath.Output) {
	f := inner // rewritten in place (datapath.Node's contract)
	if MAC(f[0:6]) != l.cfg.RouterMAC {
		l.drop(ev, out, datapath.ReasonNotForMe, "irb:inner-dst-mac")
		return
	}
	if binary.BigEndian.Uint16(f[12:14]) == etherIPv6 {
		l.routeDecap6(ev, v, f, out)
		return
	}
	ip, _, ok := ipv4Header(f)
	if !ok {
		l.drop(ev, out, datapath.ReasonMalformed, "irb:not-ipv4")
		return
	}
	h, ok := v.hosts[be32(ip[16:20])]
	if !ok && len(l.lines) > 0 {
		if pr, _, found := v.prefix.LookupAddr(addr4(ip[16:20])); found && pr.line != nil {
			if !decTTL(ip) {
				l.drop(ev, out, datapath.ReasonTTL, RuleLine)
				return
			}
			l.toLine(ev, pr.line, f, out)
			return
		}
	}
	if !ok || !h.local {
		l.drop(ev, out, datapath.ReasonNoRoute, RuleGlean)
		return
	}
	if !decTTL(ip) {
		l.drop(ev, out, datapath.ReasonTTL, "")
		return
	}
	l.deliverDecap(ev, h, f, out)
}

// deliverDecap sends a decapsulated routed packet to the local host h.
func (l *Leaf) deliverDecap(ev datapath.Event, h hostRoute, f []byte, out datapath.Output) {
	pv, ok := l.localHost(h)
	if !ok {
		l.drop(ev, out, datapath.ReasonNoARP, RuleGlean)
		return
	}
	copy(f[0:6], h.mac[:])
	copy(f[6:12], l.cfg.GatewayMAC[:])
	l.sendAccess(ev, datapath.ActDecap, RuleRouteRemote, pv, f, out)
}

func fnv(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}
