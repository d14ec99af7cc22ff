package l3

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
	"github.com/netbed/netbed/datapath/frame/inetsum"
)

// Errors callers test with errors.Is.
var (
	ErrNotIPv4     = errors.New("not an IPv4 prefix")
	ErrUnknownPort = errors.New("unknown port")
	ErrBadMAC      = errors.New("MAC address must be 6 bytes")
)

// LocalPort as a NextHop port means the prefix is the router's own
// (a loopback or port address): packets to it are delivered to the router.
const LocalPort = -1

// Port is one routed interface.
type Port struct {
	Name string
	MAC  net.HardwareAddr
	// IP is the port's address, answered by ARP on any port; optional
	// (fabric links are unnumbered: routes carry the neighbour's MAC).
	IP netip.Prefix
}

// NextHop is where a route sends packets: out of Port to the neighbour at
// MAC. Port LocalPort delivers to the router itself.
type NextHop struct {
	Port int
	MAC  net.HardwareAddr
}

// Route maps a prefix to one next hop or an ECMP group of them.
type Route struct {
	Prefix   netip.Prefix
	NextHops []NextHop
}

func (r Route) String() string {
	s := r.Prefix.String() + " via"
	for _, nh := range r.NextHops {
		if nh.Port == LocalPort {
			s += " local"
		} else {
			s += fmt.Sprintf(" %d/%s", nh.Port, nh.MAC)
		}
	}
	return s
}

type hop struct {
	port int
	mac  [6]byte
}

// group is an ECMP next-hop group; up holds the members whose port is up.
type group struct {
	route Route
	rule  string
	local bool
	all   []hop
	up    []hop
}

// Router is an IPv4 router node: it answers ARP for its own addresses,
// routes by longest prefix match with ECMP over a flow hash, decrements the
// TTL, rewrites MACs and drops with a reason (no-route, ttl-exceeded,
// not-for-me, malformed). Next hops through a port that goes down leave
// their groups until it comes back.
type Router struct {
	name      string
	ports     []Port
	portNames []string
	macs      [][6]byte
	up        []bool
	// own are the router's own IPv4 addresses, as big-endian words: a
	// handful (its ports' and loopbacks), scanned on every packet, which
	// is cheaper than hashing into a map.
	own    []uint32
	fib    *FIB[*group]
	groups []*group
	seed   uint32
	onPort func(now time.Duration, port int, up bool)
}

var _ datapath.Node = (*Router)(nil)

// NewRouter returns a router with the given ports, all up, and no routes.
// Every port IP becomes a local address.
func NewRouter(name string, ports []Port) (*Router, error) {
	r := &Router{name: name, fib: NewFIB[*group](), seed: fnv32(2166136261, []byte(name))}
	for i, p := range ports {
		if len(p.MAC) != 6 {
			return nil, fmt.Errorf("router %s port %d %q: %w", name, i, p.Name, ErrBadMAC)
		}
		r.ports = append(r.ports, p)
		r.portNames = append(r.portNames, p.Name)
		r.macs = append(r.macs, [6]byte(p.MAC))
		r.up = append(r.up, true)
		if p.IP.IsValid() {
			if !p.IP.Addr().Is4() {
				return nil, fmt.Errorf("router %s port %q address %v: %w", name, p.Name, p.IP, ErrNotIPv4)
			}
			r.addOwn(be32(p.IP.Addr().As4()))
		}
	}
	return r, nil
}

func (r *Router) isOwn(a uint32) bool { return slices.Contains(r.own, a) }

func (r *Router) addOwn(a uint32) {
	if !r.isOwn(a) {
		r.own = append(r.own, a)
	}
}

func (r *Router) delOwn(a uint32) {
	r.own = slices.DeleteFunc(r.own, func(x uint32) bool { return x == a })
}

// Name implements datapath.Node.
func (r *Router) Name() string { return r.name }

// Ports implements datapath.Node.
func (r *Router) Ports() []string { return r.portNames }

// Port returns port i's configuration.
func (r *Router) Port(i int) Port { return r.ports[i] }

// PortIndex returns the index of the port called name, or -1.
func (r *Router) PortIndex(name string) int { return slices.Index(r.portNames, name) }

// SetPortIP sets (or with a zero prefix clears) port i's address.
func (r *Router) SetPortIP(i int, ip netip.Prefix) error {
	if i < 0 || i >= len(r.ports) {
		return fmt.Errorf("set address of port %d on %s: %w", i, r.name, ErrUnknownPort)
	}
	if ip.IsValid() && !ip.Addr().Is4() {
		return fmt.Errorf("set address %v on %s: %w", ip, r.name, ErrNotIPv4)
	}
	if old := r.ports[i].IP; old.IsValid() {
		r.delOwn(be32(old.Addr().As4()))
	}
	r.ports[i].IP = ip
	if ip.IsValid() {
		r.addOwn(be32(ip.Addr().As4()))
	}
	return nil
}

// AddLocal makes addr one of the router's own addresses (a loopback): it
// answers ARP and ICMP echo for it. Routes to it should use LocalPort.
// Only IPv4 addresses can match (the router routes IPv4).
func (r *Router) AddLocal(addr netip.Addr) {
	if addr.Is4() {
		r.addOwn(be32(addr.As4()))
	}
}

// AddRoute installs or replaces the route for rt.Prefix.
func (r *Router) AddRoute(rt Route) error {
	g, err := r.newGroup(rt)
	if err != nil {
		return err
	}
	if old, ok := r.fib.Get(rt.Prefix); ok {
		r.groups = slices.DeleteFunc(r.groups, func(x *group) bool { return x == old })
	}
	if err := r.fib.Insert(rt.Prefix, g); err != nil {
		return fmt.Errorf("add route %v on %s: %w", rt.Prefix, r.name, err)
	}
	r.groups = append(r.groups, g)
	return nil
}

// DeleteRoute removes the route for p and reports whether it existed.
func (r *Router) DeleteRoute(p netip.Prefix) bool {
	old, ok := r.fib.Get(p)
	if !ok {
		return false
	}
	r.fib.Delete(p)
	r.groups = slices.DeleteFunc(r.groups, func(x *group) bool { return x == old })
	return true
}

// SetRoutes replaces the whole routing table.
func (r *Router) SetRoutes(routes []Route) error {
	r.fib = NewFIB[*group]()
	r.groups = nil
	for _, rt := range routes {
		if err := r.AddRoute(rt); err != nil {
			return err
		}
	}
	return nil
}

// Routes returns the installed routes, longest prefix first.
func (r *Router) Routes() []Route {
	var out []Route
	r.fib.Walk(func(_ netip.Prefix, g *group) bool {
		out = append(out, g.route)
		return true
	})
	return out
}

// Lookup returns the route that would forward packets to dst and the next
// hops currently usable (ports up).
func (r *Router) Lookup(dst netip.Addr) (rt Route, usable []NextHop, ok bool) {
	g, _, ok := r.fib.LookupAddr(dst)
	if !ok {
		return Route{}, nil, false
	}
	for _, h := range g.up {
		usable = append(usable, NextHop{Port: h.port, MAC: net.HardwareAddr(h.mac[:])})
	}
	return g.route, usable, true
}

// FIBLen returns the number of installed prefixes.
func (r *Router) FIBLen() int { return r.fib.Len() }

func (r *Router) newGroup(rt Route) (*group, error) {
	if !rt.Prefix.Addr().Is4() {
		return nil, fmt.Errorf("add route %v on %s: %w", rt.Prefix, r.name, ErrNotIPv4)
	}
	rt.Prefix = rt.Prefix.Masked()
	g := &group{route: rt, rule: "route:" + rt.Prefix.String()}
	for _, nh := range rt.NextHops {
		if nh.Port == LocalPort {
			g.local = true
			continue
		}
		if nh.Port < 0 || nh.Port >= len(r.ports) {
			return nil, fmt.Errorf("add route %v on %s: next hop port %d: %w", rt.Prefix, r.name, nh.Port, ErrUnknownPort)
		}
		if len(nh.MAC) != 6 {
			return nil, fmt.Errorf("add route %v on %s: next hop MAC %v: %w", rt.Prefix, r.name, nh.MAC, ErrBadMAC)
		}
		g.all = append(g.all, hop{port: nh.Port, mac: [6]byte(nh.MAC)})
	}
	r.refresh(g)
	return g, nil
}

func (r *Router) refresh(g *group) {
	g.up = g.up[:0]
	for _, h := range g.all {
		if r.up[h.port] {
			g.up = append(g.up, h)
		}
	}
}

// SetPortState implements datapath.Node: next hops through a down port
// leave their ECMP groups (flows rehash over the rest) and return when the
// port comes back up.
func (r *Router) SetPortState(now time.Duration, port int, up bool, _ datapath.Output) {
	if port < 0 || port >= len(r.up) || r.up[port] == up {
		return
	}
	r.up[port] = up
	for _, g := range r.groups {
		r.refresh(g)
	}
	if r.onPort != nil {
		r.onPort(now, port, up)
	}
}

// OnPortState sets a function called after the router has reacted to a
// port going down or up; a fabric uses it to model the routing protocol
// reconverging (recomputing every router's routes without the link).
func (r *Router) OnPortState(fn func(now time.Duration, port int, up bool)) { r.onPort = fn }

// PortUp reports whether port i is up.
func (r *Router) PortUp(i int) bool { return r.up[i] }

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
)

func (r *Router) drop(now time.Duration, port int, out datapath.Output, reason datapath.Reason, rule string) {
	out.Trace(datapath.Event{Time: now, Node: r.name, Device: r.name, Kind: datapath.KindRouter,
		InPort: r.portNames[port], Action: datapath.ActDrop, Reason: reason, Rule: rule})
}

// Receive implements datapath.Node.
func (r *Router) Receive(now time.Duration, port int, f []byte, out datapath.Output) {
	if len(f) < 14 {
		r.drop(now, port, out, datapath.ReasonMalformed, "")
		return
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case etherTypeARP:
		r.receiveARP(now, port, f, out)
	case etherTypeIPv4:
		if [6]byte(f[0:6]) != r.macs[port] {
			r.drop(now, port, out, datapath.ReasonNotForMe, "")
			return
		}
		r.receiveIPv4(now, port, f, out)
	default:
		r.drop(now, port, out, datapath.ReasonNotForMe, "")
	}
}

func (r *Router) receiveARP(now time.Duration, port int, f []byte, out datapath.Output) {
	// Ethernet(14) + ARP(28) for IPv4 over Ethernet.
	if len(f) < 42 {
		r.drop(now, port, out, datapath.ReasonMalformed, "")
		return
	}
	op := binary.BigEndian.Uint16(f[20:22])
	tpa := netip.AddrFrom4([4]byte(f[38:42]))
	if op != 1 || !r.isOwn(binary.BigEndian.Uint32(f[38:42])) {
		r.drop(now, port, out, datapath.ReasonNotForMe, "")
		return
	}
	sha := net.HardwareAddr(f[22:28])
	spa := netip.AddrFrom4([4]byte(f[28:32]))
	reply := frame.ARPReply(net.HardwareAddr(r.macs[port][:]), tpa, sha, spa)
	out.Trace(datapath.Event{Time: now, Node: r.name, Device: r.name, Kind: datapath.KindRouter,
		InPort: r.portNames[port], Action: datapath.ActDeliver, Rule: "arp:reply"})
	out.Send(port, reply)
}

func (r *Router) receiveIPv4(now time.Duration, port int, f []byte, out datapath.Output) {
	if len(f) < 34 || f[14]>>4 != 4 || int(f[14]&0xf)*4 < 20 || len(f) < 14+int(f[14]&0xf)*4 ||
		int(binary.BigEndian.Uint16(f[16:18])) < int(f[14]&0xf)*4 || int(binary.BigEndian.Uint16(f[16:18])) > len(f)-14 {
		r.drop(now, port, out, datapath.ReasonMalformed, "")
		return
	}
	dst := binary.BigEndian.Uint32(f[30:34])
	g, _, ok := r.fib.Lookup(dst)
	if ok && g.local || r.isOwn(dst) {
		r.deliverLocal(now, port, f, out)
		return
	}
	if f[22] <= 1 {
		r.drop(now, port, out, datapath.ReasonTTL, "")
		return
	}
	if !ok {
		r.drop(now, port, out, datapath.ReasonNoRoute, "")
		return
	}
	if len(g.up) == 0 {
		r.drop(now, port, out, datapath.ReasonNoRoute, g.rule)
		return
	}
	h := g.up[0]
	if len(g.up) > 1 {
		h = g.up[FlowHash(r.seed, f)%uint32(len(g.up))]
	}
	b := f // rewritten in place (datapath.Node's contract)
	copy(b[0:6], h.mac[:])
	copy(b[6:12], r.macs[h.port][:])
	b[22]--
	ihl := int(b[14]&0xf) * 4
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:26], inetsum.IPv4Header(b[14:14+ihl]))
	out.Trace(datapath.Event{Time: now, Node: r.name, Device: r.name, Kind: datapath.KindRouter,
		InPort: r.portNames[port], OutPort: r.portNames[h.port], Action: datapath.ActRoute, Rule: g.rule})
	out.Forward(h.port, b)
}

// deliverLocal consumes a packet addressed to the router; ICMP echo
// requests are answered (routed back like any other packet).
func (r *Router) deliverLocal(now time.Duration, port int, f []byte, out datapath.Output) {
	out.Trace(datapath.Event{Time: now, Node: r.name, Device: r.name, Kind: datapath.KindRouter,
		InPort: r.portNames[port], Action: datapath.ActDeliver, Rule: "local"})
	ihl := int(f[14]&0xf) * 4
	if f[23] != 1 || len(f) < 14+ihl+8 || f[14+ihl] != 8 {
		return
	}
	icmp := f[14+ihl:]
	src := netip.AddrFrom4([4]byte(f[26:30]))
	me := netip.AddrFrom4([4]byte(f[30:34]))
	reply := frame.ICMPEcho(frame.IPv4{SrcMAC: net.HardwareAddr(r.macs[port][:]), DstMAC: net.HardwareAddr(f[6:12]),
		Src: me, Dst: src}, true, binary.BigEndian.Uint16(icmp[4:6]), binary.BigEndian.Uint16(icmp[6:8]), icmp[8:])
	g, _, ok := r.fib.Lookup(binary.BigEndian.Uint32(f[26:30]))
	if !ok || len(g.up) == 0 || g.local {
		// No route back: answer on the arrival port, as to a neighbour.
		out.Send(port, reply)
		return
	}
	h := g.up[FlowHash(r.seed, reply)%uint32(len(g.up))]
	copy(reply[0:6], h.mac[:])
	copy(reply[6:12], r.macs[h.port][:])
	out.Send(h.port, reply)
}

func fnv32(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// FlowHash hashes the flow key of an untagged IPv4 or IPv6 Ethernet
// frame: source and destination address, protocol (IPv6's next header)
// and, for TCP and UDP, the ports. seed varies the hash per device so that
// tiers do not polarise. Other frames hash their MAC addresses.
func FlowHash(seed uint32, f []byte) uint32 {
	h := seed
	if len(f) >= 54 && binary.BigEndian.Uint16(f[12:14]) == 0x86dd {
		h = fnv32(h, f[22:54])
		next := f[20]
		h = fnv32(h, []byte{next})
		if (next == 6 || next == 17) && len(f) >= 58 {
			h = fnv32(h, f[54:58])
		}
		return h ^ h>>15
	}
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:14]) != etherTypeIPv4 {
		return fnv32(h, f[:min(len(f), 12)])
	}
	h = fnv32(h, f[26:34])
	proto := f[23]
	h = fnv32(h, []byte{proto})
	ihl := int(f[14]&0xf) * 4
	if (proto == 6 || proto == 17) && len(f) >= 14+ihl+4 {
		h = fnv32(h, f[14+ihl:14+ihl+4])
	}
	return h ^ h>>15
}
