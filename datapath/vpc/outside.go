package vpc

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// Outside is a network outside the VPC (clients on the internet) as a
// datapath.Node: its instances hang off access ports and take addresses
// from its CIDR, whose first address is their gateway (answered by the
// node); everything else goes out of its uplink towards the VPC's
// internet gateway.
type Outside struct {
	name    string
	ports   []string
	uplink  int
	peerMAC [6]byte
	upMAC   [6]byte
	cidr    netip.Prefix
	first   int
	insts   []*outInst
	byIP    map[[4]byte]*outInst
	byName  map[string]*outInst
}

type outInst struct {
	name string
	port int
	ip   netip.Addr
	mac  [6]byte
	dev  [6]byte
}

var _ datapath.Node = (*Outside)(nil)

// NewOutside returns an outside network with the given topology
// interfaces (ifaces[uplink] leads to the internet gateway, whose port
// has peerMAC), slots instance ports and addresses from cidr.
func NewOutside(name string, ifaces []string, uplink int, peerMAC net.HardwareAddr, cidr netip.Prefix, slots int) (*Outside, error) {
	if uplink < 0 || uplink >= len(ifaces) || len(peerMAC) != 6 || !cidr.Addr().Is4() || cidr.Bits() > 30 {
		return nil, fmt.Errorf("outside network %s: uplink %d of %v, peer MAC %v, CIDR %v (IPv4, /30 or larger)", name, uplink, ifaces, peerMAC, cidr)
	}
	if slots <= 0 {
		slots = DefaultSlots
	}
	o := &Outside{name: name, ports: slices.Clone(ifaces), uplink: uplink, peerMAC: [6]byte(peerMAC), cidr: cidr.Masked(),
		first: len(ifaces), byIP: map[[4]byte]*outInst{}, byName: map[string]*outInst{}}
	o.upMAC = [6]byte(DeviceMAC(name, ifaces[uplink]))
	o.ports = append(o.ports, make([]string, slots)...)
	o.insts = make([]*outInst, len(o.ports))
	return o, nil
}

// Name implements datapath.Node.
func (o *Outside) Name() string { return o.name }

// Ports implements datapath.Node.
func (o *Outside) Ports() []string { return o.ports }

// UplinkMAC is the MAC of the uplink port.
func (o *Outside) UplinkMAC() net.HardwareAddr { return net.HardwareAddr(o.upMAC[:]) }

// Gateway is the instances' gateway, the CIDR's first address.
func (o *Outside) Gateway() netip.Addr { return o.cidr.Addr().Next() }

// CIDR returns the outside network's addresses.
func (o *Outside) CIDR() netip.Prefix { return o.cidr }

// FreeAddr returns the lowest unused address after the gateway.
func (o *Outside) FreeAddr() (netip.Addr, error) {
	last := netip.Addr{}
	for a := o.Gateway().Next(); o.cidr.Contains(a); a = a.Next() {
		last = a
	}
	for a := o.Gateway().Next(); o.cidr.Contains(a) && a != last; a = a.Next() {
		if _, used := o.byIP[a.As4()]; !used {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("outside network %s: %v is full", o.name, o.cidr)
}

// Add attaches an instance on a new port and returns the port.
func (o *Outside) Add(name string, ip netip.Addr, mac net.HardwareAddr) (int, error) {
	if _, ok := o.byName[name]; ok {
		return 0, fmt.Errorf("add %q on %s: %w", name, o.name, ErrExists)
	}
	if !o.cidr.Contains(ip) || ip == o.Gateway() || len(mac) != 6 {
		return 0, fmt.Errorf("add %q on %s: address %v must lie in %v and not be the gateway %v", name, o.name, ip, o.cidr, o.Gateway())
	}
	if _, ok := o.byIP[ip.As4()]; ok {
		return 0, fmt.Errorf("add %q on %s: %v: %w", name, o.name, ip, ErrInUse)
	}
	i := slices.Index(o.insts[o.first:], nil)
	if i < 0 {
		return 0, fmt.Errorf("add %q on %s: %w", name, o.name, ErrNodeFull)
	}
	port := o.first + i
	dev := "out" + fmt.Sprint(port-o.first)
	in := &outInst{name: name, port: port, ip: ip, mac: [6]byte(mac), dev: [6]byte(DeviceMAC(o.name, dev))}
	o.insts[port], o.ports[port] = in, dev
	o.byIP[ip.As4()], o.byName[name] = in, in
	return port, nil
}

// Remove detaches an instance.
func (o *Outside) Remove(name string) error {
	in, ok := o.byName[name]
	if !ok {
		return fmt.Errorf("remove %q from %s: %w", name, o.name, ErrNotFound)
	}
	o.insts[in.port], o.ports[in.port] = nil, ""
	delete(o.byIP, in.ip.As4())
	delete(o.byName, name)
	return nil
}

// Has reports whether name is an instance of the outside network.
func (o *Outside) Has(name string) bool { _, ok := o.byName[name]; return ok }

// SetPortState implements datapath.Node.
func (o *Outside) SetPortState(time.Duration, int, bool, datapath.Output) {}

// Receive implements datapath.Node.
func (o *Outside) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	ev := datapath.Event{Time: now, Node: o.name, Device: o.name, Kind: datapath.KindRouter}
	if port >= 0 && port < len(o.ports) {
		ev.InPort = o.ports[port]
	}
	drop := func(r datapath.Reason) {
		ev.Action, ev.Reason = datapath.ActDrop, r
		out.Trace(ev)
	}
	if len(b) < 14 || port < 0 || port >= len(o.ports) {
		drop(datapath.ReasonMalformed)
		return
	}
	from := o.insts[port]
	if port != o.uplink && from == nil {
		drop(datapath.ReasonNotForMe)
		return
	}
	if binary.BigEndian.Uint16(b[12:14]) == etherTypeARP && from != nil {
		tpa, sha, spa, ok := arpRequest(b)
		if !ok || tpa == spa {
			drop(datapath.ReasonNotForMe)
			return
		}
		ev.Action, ev.Rule = datapath.ActDeliver, "arp:proxy"
		out.Trace(ev)
		out.Send(port, frame.ARPReply(net.HardwareAddr(from.dev[:]), tpa, sha, spa))
		return
	}
	ihl, ok := ipv4(b)
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 || !ok {
		drop(datapath.ReasonNotForMe)
		return
	}
	if from != nil && [6]byte(b[0:6]) != from.dev || from == nil && [6]byte(b[0:6]) != o.upMAC {
		drop(datapath.ReasonNotForMe)
		return
	}
	buf := b // rewritten in place (datapath.Node's contract)
	if !decTTL(buf, ihl) {
		drop(datapath.ReasonTTL)
		return
	}
	if to, ok := o.byIP[dst4(b)]; ok {
		setMACs(buf, to.mac, to.dev)
		ev.OutPort, ev.Action, ev.Rule = o.ports[to.port], datapath.ActRoute, "route:"+to.ip.String()
		out.Trace(ev)
		out.Forward(to.port, buf)
		return
	}
	if from == nil {
		drop(datapath.ReasonNoRoute)
		return
	}
	setMACs(buf, o.peerMAC, o.upMAC)
	ev.OutPort, ev.Action, ev.Rule = o.ports[o.uplink], datapath.ActRoute, "route:default"
	out.Trace(ev)
	out.Forward(o.uplink, buf)
}
