package vpc

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath"
)

// DevIGW names the edge's device in traces.
const DevIGW = "igw"

// Edge is the VPC's internet gateway as a datapath.Node: floating IPs
// (elastic IPs) are one-to-one NAT here. A packet from outside to a
// floating IP has its destination rewritten to the private address it is
// associated with; a packet from inside whose source has a floating IP
// leaves with that as its source. Anything else is dropped: an address
// without a floating IP is not reachable from outside, and cannot reach
// out.
type Edge struct {
	name    string
	ports   []string
	inside  int
	macs    [2][6]byte
	peer    [2][6]byte
	up      [2]bool
	pub     map[[4]byte][4]byte // floating -> private
	priv    map[[4]byte][4]byte // private -> floating
	buf     []byte
	natRule map[[4]byte]string
}

var _ datapath.Node = (*Edge)(nil)

// NewEdge returns an internet gateway with two ports: inside (towards the
// VPC router) and outside; peers have the given MACs.
func NewEdge(name string, ports []string, inside int, peerMACs []net.HardwareAddr) (*Edge, error) {
	if len(ports) != 2 || inside < 0 || inside > 1 || len(peerMACs) != 2 || len(peerMACs[0]) != 6 || len(peerMACs[1]) != 6 {
		return nil, fmt.Errorf("internet gateway %s: want two ports (inside and outside) with peer MACs, have %v", name, ports)
	}
	g := &Edge{name: name, ports: ports, inside: inside, up: [2]bool{true, true},
		pub: map[[4]byte][4]byte{}, priv: map[[4]byte][4]byte{}, natRule: map[[4]byte]string{}}
	for i := range 2 {
		g.macs[i] = [6]byte(DeviceMAC(name, ports[i]))
		g.peer[i] = [6]byte(peerMACs[i])
	}
	return g, nil
}

// Name implements datapath.Node.
func (g *Edge) Name() string { return g.name }

// Ports implements datapath.Node.
func (g *Edge) Ports() []string { return g.ports }

// PortMAC returns the MAC of port i.
func (g *Edge) PortMAC(i int) net.HardwareAddr { return net.HardwareAddr(g.macs[i][:]) }

// Associate maps floating address pub to private address priv.
func (g *Edge) Associate(pub, priv netip.Addr) error {
	if !pub.Is4() || !priv.Is4() {
		return fmt.Errorf("associate %v with %v: IPv4 only", pub, priv)
	}
	if p, ok := g.pub[pub.As4()]; ok {
		return fmt.Errorf("associate %v with %v: it is associated with %v: %w", pub, priv, addr(p), ErrInUse)
	}
	if p, ok := g.priv[priv.As4()]; ok {
		return fmt.Errorf("associate %v with %v: %v has floating IP %v: %w", pub, priv, priv, addr(p), ErrInUse)
	}
	g.pub[pub.As4()], g.priv[priv.As4()] = priv.As4(), pub.As4()
	g.natRule[pub.As4()] = "nat:" + pub.String() + "<->" + priv.String()
	return nil
}

// Disassociate removes floating address pub's mapping.
func (g *Edge) Disassociate(pub netip.Addr) error {
	p, ok := g.pub[pub.As4()]
	if !pub.Is4() || !ok {
		return fmt.Errorf("disassociate %v: %w", pub, ErrNotFound)
	}
	delete(g.pub, pub.As4())
	delete(g.priv, p)
	delete(g.natRule, pub.As4())
	return nil
}

// Floating returns the floating address associated with priv.
func (g *Edge) Floating(priv netip.Addr) (netip.Addr, bool) {
	if !priv.Is4() {
		return netip.Addr{}, false
	}
	p, ok := g.priv[priv.As4()]
	return addr(p), ok
}

// Mappings returns how many floating addresses are associated.
func (g *Edge) Mappings() int { return len(g.pub) }

// SetPortState implements datapath.Node.
func (g *Edge) SetPortState(_ time.Duration, port int, up bool, _ datapath.Output) {
	if port == 0 || port == 1 {
		g.up[port] = up
	}
}

// Receive implements datapath.Node.
func (g *Edge) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if port != 0 && port != 1 {
		return
	}
	ev := datapath.Event{Time: now, Node: g.name, Device: DevIGW, Kind: datapath.KindRouter, InPort: g.ports[port]}
	drop := func(r datapath.Reason, rule string) {
		ev.Action, ev.Reason, ev.Rule = datapath.ActDrop, r, rule
		out.Trace(ev)
	}
	if len(b) < 14 || [6]byte(b[0:6]) != g.macs[port] || binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 {
		drop(datapath.ReasonNotForMe, "")
		return
	}
	ihl, ok := ipv4(b)
	if !ok {
		drop(datapath.ReasonMalformed, "")
		return
	}
	other := 1 - port
	g.buf = append(g.buf[:0], b...)
	if port == g.inside {
		pub, ok := g.priv[src4(b)]
		if !ok {
			drop(datapath.ReasonNoRoute, "igw:no-floating-ip:"+addr(src4(b)).String())
			return
		}
		rewrite(g.buf, ihl, false, pub)
		ev.Rule = g.natRule[pub]
	} else {
		priv, ok := g.pub[dst4(b)]
		if !ok {
			drop(datapath.ReasonNoRoute, "igw:no-floating-ip:"+addr(dst4(b)).String())
			return
		}
		rewrite(g.buf, ihl, true, priv)
		ev.Rule = g.natRule[dst4(b)]
	}
	if !g.up[other] {
		drop(datapath.ReasonPortDown, ev.Rule)
		return
	}
	setMACs(g.buf, g.peer[other], g.macs[other])
	ev.OutPort, ev.Action = g.ports[other], datapath.ActRoute
	out.Trace(ev)
	out.Send(other, g.buf)
}
