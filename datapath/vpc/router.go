package vpc

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
)

// Devices of the VPC router, as traces name them.
const (
	DevSGOut = "sg-out"   // security groups of the sending ENI
	DevRTB   = "rtb-main" // the route table
	DevSGIn  = "sg-in"    // security groups of the receiving ENI
)

// TargetLocal as a route's port sends to the ENI holding the address.
const TargetLocal = -1

type routerENI struct {
	id     string
	host   string
	port   int
	mac    [6]byte
	groups []string
}

type rtEntry struct {
	prefix netip.Prefix
	port   int
	rule   string
}

// Router is a VPC's implicit router as a datapath.Node: route table,
// address-to-ENI mapping, source/destination check and security groups.
// Its ports are its topology interfaces; the peer of each has a fixed
// MAC (no ARP on the VPC's wires: the provider knows every MAC).
type Router struct {
	name     string
	ports    []string
	macs     [][6]byte
	peerMAC  [][6]byte
	up       []bool
	enis     map[string]*routerENI
	byMAC    map[[6]byte]*routerENI
	addrs    map[[4]byte]*routerENI
	rt       *l3.FIB[*rtEntry]
	groups   map[string]*SecurityGroup
	tracked  map[flow]struct{}
	maxTrack int
}

var _ datapath.Node = (*Router)(nil)

// NewRouter returns a router with the given ports, whose peers have the
// given MACs, an empty route table and the default security group
// allowing everything.
func NewRouter(name string, ports []string, peerMACs []net.HardwareAddr) (*Router, error) {
	if len(ports) != len(peerMACs) {
		return nil, fmt.Errorf("router %s: %d ports, %d peer MACs", name, len(ports), len(peerMACs))
	}
	r := &Router{name: name, ports: slices.Clone(ports), enis: map[string]*routerENI{}, byMAC: map[[6]byte]*routerENI{},
		addrs: map[[4]byte]*routerENI{}, rt: l3.NewFIB[*rtEntry](), groups: map[string]*SecurityGroup{},
		tracked: map[flow]struct{}{}, maxTrack: 1 << 20}
	for i, p := range ports {
		r.macs = append(r.macs, [6]byte(DeviceMAC(name, p)))
		var m [6]byte
		if len(peerMACs[i]) == 6 {
			m = [6]byte(peerMACs[i])
		}
		r.peerMAC = append(r.peerMAC, m)
		r.up = append(r.up, true)
	}
	r.groups[DefaultGroup] = &SecurityGroup{ID: DefaultGroup, Ingress: slices.Clone(AllowAll)}
	return r, nil
}

// Name implements datapath.Node.
func (r *Router) Name() string { return r.name }

// Ports implements datapath.Node.
func (r *Router) Ports() []string { return r.ports }

// PortMAC returns the MAC of port i.
func (r *Router) PortMAC(i int) net.HardwareAddr { return net.HardwareAddr(r.macs[i][:]) }

// SetPeerMAC sets the MAC of the device at the other end of port.
func (r *Router) SetPeerMAC(port int, mac net.HardwareAddr) error {
	if port < 0 || port >= len(r.ports) || len(mac) != 6 {
		return fmt.Errorf("router %s: peer MAC %v of port %d", r.name, mac, port)
	}
	r.peerMAC[port] = [6]byte(mac)
	return nil
}

// AddRoute sends p out of port (TargetLocal: to the ENI holding the
// address, for the VPC's own subnets); target names where it leads in
// traces ("igw", a dedicated line).
func (r *Router) AddRoute(p netip.Prefix, port int, target string) error {
	if port != TargetLocal && (port < 0 || port >= len(r.ports)) {
		return fmt.Errorf("route %v on %s: port %d: %w", p, r.name, port, l3.ErrUnknownPort)
	}
	rule := "rtb:" + p.Masked().String() + " local"
	if port != TargetLocal {
		rule = "rtb:" + p.Masked().String() + " via " + target
	}
	if err := r.rt.Insert(p.Masked(), &rtEntry{prefix: p.Masked(), port: port, rule: rule}); err != nil {
		return fmt.Errorf("route %v on %s: %w", p, r.name, err)
	}
	return nil
}

// Routes returns the route table as "prefix target" lines, longest first.
func (r *Router) Routes() []string {
	var out []string
	r.rt.Walk(func(_ netip.Prefix, e *rtEntry) bool {
		out = append(out, e.rule)
		return true
	})
	return out
}

// SetGroup adds or replaces a security group.
func (r *Router) SetGroup(g SecurityGroup) error {
	if err := g.Validate(); err != nil {
		return err
	}
	g.Ingress = slices.Clone(g.Ingress)
	r.groups[g.ID] = &g
	return nil
}

// AttachENI records that the ENI is reachable out of port (its VM's link).
func (r *Router) AttachENI(e ENI, host string, port int) error {
	if _, ok := r.enis[e.ID]; ok {
		return fmt.Errorf("attach %s on %s: %w", e.ID, r.name, ErrExists)
	}
	if port < 0 || port >= len(r.ports) || len(e.MAC) != 6 {
		return fmt.Errorf("attach %s on %s: port %d, MAC %v", e.ID, r.name, port, e.MAC)
	}
	groups := e.Groups
	if len(groups) == 0 {
		groups = []string{DefaultGroup}
	}
	for _, g := range groups {
		if _, ok := r.groups[g]; !ok {
			return fmt.Errorf("attach %s on %s: security group %s: %w", e.ID, r.name, g, ErrNotFound)
		}
	}
	re := &routerENI{id: e.ID, host: host, port: port, mac: [6]byte(e.MAC), groups: slices.Clone(groups)}
	r.enis[e.ID], r.byMAC[re.mac] = re, re
	if e.Primary.IsValid() {
		if err := r.Assign(e.ID, e.Primary); err != nil {
			delete(r.enis, e.ID)
			delete(r.byMAC, re.mac)
			return err
		}
	}
	return nil
}

// DetachENI forgets the ENI and every address on it.
func (r *Router) DetachENI(id string) error {
	e, ok := r.enis[id]
	if !ok {
		return fmt.Errorf("detach %s on %s: %w", id, r.name, ErrNotFound)
	}
	for a, o := range r.addrs {
		if o == e {
			delete(r.addrs, a)
		}
	}
	delete(r.enis, id)
	delete(r.byMAC, e.mac)
	return nil
}

// Assign maps a private address to an ENI, moving it from the ENI that
// had it (the provider's reassignment).
func (r *Router) Assign(eni string, a netip.Addr) error {
	e, ok := r.enis[eni]
	if !ok {
		return fmt.Errorf("assign %v to %s on %s: ENI %w", a, eni, r.name, ErrNotFound)
	}
	if !a.Is4() {
		return fmt.Errorf("assign %v to %s: %w", a, eni, l3.ErrNotIPv4)
	}
	r.addrs[a.As4()] = e
	return nil
}

// Unassign removes an address's mapping.
func (r *Router) Unassign(a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("unassign %v on %s: %w", a, r.name, ErrNotFound)
	}
	if _, ok := r.addrs[a.As4()]; !ok {
		return fmt.Errorf("unassign %v on %s: %w", a, r.name, ErrNotFound)
	}
	delete(r.addrs, a.As4())
	return nil
}

// Holder returns the ENI an address is assigned to.
func (r *Router) Holder(a netip.Addr) (string, bool) {
	if !a.Is4() {
		return "", false
	}
	e, ok := r.addrs[a.As4()]
	if !ok {
		return "", false
	}
	return e.id, true
}

// Addresses returns how many addresses are mapped.
func (r *Router) Addresses() int { return len(r.addrs) }

// SetPortState implements datapath.Node.
func (r *Router) SetPortState(_ time.Duration, port int, up bool, _ datapath.Output) {
	if port >= 0 && port < len(r.up) {
		r.up[port] = up
	}
}

func (r *Router) ev(now time.Duration, dev string, kind datapath.DeviceKind, in, out int, act datapath.Action, rs datapath.Reason, rule string) datapath.Event {
	e := datapath.Event{Time: now, Node: r.name, Device: dev, Kind: kind, Action: act, Reason: rs, Rule: rule}
	if in >= 0 {
		e.InPort = r.ports[in]
	}
	if out >= 0 {
		e.OutPort = r.ports[out]
	}
	return e
}

// Receive implements datapath.Node.
func (r *Router) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if port < 0 || port >= len(r.ports) {
		return
	}
	if len(b) < 14 || [6]byte(b[0:6]) != r.macs[port] || binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 {
		out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, -1, datapath.ActDrop, datapath.ReasonNotForMe, ""))
		return
	}
	ihl, ok := ipv4(b)
	if !ok {
		out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, -1, datapath.ActDrop, datapath.ReasonMalformed, ""))
		return
	}
	f := flowOf(b, ihl)
	if from, ok := r.byMAC[[6]byte(b[6:12])]; ok && from.port == port {
		// From an ENI: the source/destination check, then its groups
		// let it out and track the connection.
		if r.addrs[f.src] != from {
			out.Trace(r.ev(now, DevSGOut, datapath.KindFirewall, port, -1, datapath.ActDrop, datapath.ReasonPolicy, "src-dst-check:"+from.id))
			return
		}
		if len(r.tracked) >= r.maxTrack {
			clear(r.tracked)
		}
		r.tracked[f] = struct{}{}
		out.Trace(r.ev(now, DevSGOut, datapath.KindFirewall, port, -1, datapath.ActForward, "", "sg-egress:"+from.id))
	}
	e, _, ok := r.rt.LookupAddr(addr(f.dst))
	if !ok {
		out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, -1, datapath.ActDrop, datapath.ReasonNoRoute, ""))
		return
	}
	if e.port != TargetLocal {
		if !r.up[e.port] {
			out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, e.port, datapath.ActDrop, datapath.ReasonPortDown, e.rule))
			return
		}
		// b is rewritten in place (datapath.Node's contract).
		setMACs(b, r.peerMAC[e.port], r.macs[e.port])
		out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, e.port, datapath.ActRoute, "", e.rule))
		out.Forward(e.port, b)
		return
	}
	to, ok := r.addrs[f.dst]
	if !ok {
		out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, -1, datapath.ActDrop, datapath.ReasonNoRoute, "unassigned:"+addr(f.dst).String()))
		return
	}
	out.Trace(r.ev(now, DevRTB, datapath.KindRouter, port, to.port, datapath.ActRoute, "", e.rule+" "+to.id))
	rule, ok := r.admit(to, f)
	if !ok {
		out.Trace(r.ev(now, DevSGIn, datapath.KindFirewall, -1, to.port, datapath.ActDrop, datapath.ReasonPolicy, rule))
		return
	}
	if !r.up[to.port] {
		out.Trace(r.ev(now, DevSGIn, datapath.KindFirewall, -1, to.port, datapath.ActDrop, datapath.ReasonPortDown, rule))
		return
	}
	out.Trace(r.ev(now, DevSGIn, datapath.KindFirewall, -1, to.port, datapath.ActForward, "", rule))
	// b is rewritten in place (datapath.Node's contract).
	setMACs(b, to.mac, r.macs[to.port])
	out.Forward(to.port, b)
}

// admit decides whether the groups of e let f in, and names the rule.
func (r *Router) admit(e *routerENI, f flow) (string, bool) {
	if _, ok := r.tracked[f.reverse()]; ok {
		return "sg:established", true
	}
	for _, id := range e.groups {
		g := r.groups[id]
		if g == nil {
			continue
		}
		for _, rl := range g.Ingress {
			if rl.matches(f) {
				return "sg:" + g.ID + ":" + rl.String(), true
			}
		}
	}
	return "sg:" + e.id + ":no-ingress-rule", false
}
