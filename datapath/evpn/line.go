package evpn

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/l3"
)

// RuleLine is the rule of a routing decision to or from a dedicated line
// (a border leaf's L3 hand-off to another site).
const RuleLine = "irb:line"

// line is a border leaf's port to a dedicated line: routed, untagged, in
// one tenant's VRF, its peer's MAC fixed (a point-to-point hand-off).
type line struct {
	port  int
	l3vni uint32
	peer  MAC
}

// AttachLine makes port a routed hand-off in tenant l3vni's VRF to a
// dedicated line whose far end has MAC peer, and routes prefixes to it:
// the leaf carries the VRF (importing its routes) and advertises each
// prefix as a type-5 route, so that every leaf of the tenant sends
// traffic for it over VXLAN to this one. Frames that arrive on the line
// are routed in the VRF to the instance's leaf. Calling it again adds
// prefixes; the port's VRF and peer must stay the same.
func (l *Leaf) AttachLine(port int, l3vni uint32, peer MAC, prefixes ...netip.Prefix) error {
	where := fmt.Sprintf("leaf %s: attach line on port %d", l.cfg.Name, port)
	if port < 0 || port >= len(l.cfg.Ports) || l.isUplink[port] {
		return fmt.Errorf("%s: not a port that faces away from the fabric", where)
	}
	if l3vni == 0 || l3vni >= 1<<24 {
		return fmt.Errorf("%s: L3 VNI %d out of range", where, l3vni)
	}
	if l.lines == nil {
		l.lines = map[int]*line{}
	}
	ln := l.lines[port]
	switch {
	case ln == nil:
		if len(l.portCfg) > 0 {
			for k := range l.portCfg {
				if int(k>>12) == port {
					return fmt.Errorf("%s: the port carries access VLANs", where)
				}
			}
		}
		ln = &line{port: port, l3vni: l3vni, peer: peer}
		l.lines[port] = ln
		l.importVRF(l3vni)
	case ln.l3vni != l3vni || ln.peer != peer:
		return fmt.Errorf("%s: already a line in L3 VNI %d to %s", where, ln.l3vni, ln.peer)
	}
	v := l.vrfs[l3vni]
	for _, p := range prefixes {
		p = p.Masked()
		if !p.Addr().Is4() {
			return fmt.Errorf("%s: prefix %v: this model routes IPv4 only", where, p)
		}
		pr, _ := v.prefix.Get(p)
		if pr == nil {
			pr = &prefixRoute{}
			if err := v.prefix.Insert(p, pr); err != nil {
				return fmt.Errorf("%s: prefix %v: %w", where, p, err)
			}
		}
		pr.line = ln
		if err := l.Advertise(Route{Type: IPPrefix, L3VNI: l3vni, Prefix: p, VTEP: l.cfg.VTEP, RouterMAC: l.cfg.RouterMAC}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// importVRF carries tenant l3vni's VRF on the leaf (one more reference),
// importing its routes with the first.
func (l *Leaf) importVRF(l3vni uint32) *vrf {
	v := l.vrfs[l3vni]
	if v == nil {
		v = &vrf{l3vni: l3vni, hosts: map[uint32]hostRoute{}, hosts6: map[netip.Addr]hostRoute{},
			prefix: l3.NewFIB[*prefixRoute](), prefix6: newPrefixes6()}
		l.vrfs[l3vni] = v
	}
	v.refs++
	if v.refs == 1 && l.table != nil {
		for _, r := range l.table.Import(l3vni) {
			if r.L3VNI == l3vni && (r.Type == IPPrefix || r.IP.IsValid()) {
				l.applyL3(r, true)
			}
		}
	}
	return v
}

// toLine sends a routed packet f (untagged, TTL already decremented) out
// of line ln.
func (l *Leaf) toLine(ev datapath.Event, ln *line, f []byte, out datapath.Output) {
	copy(f[0:6], ln.peer[:])
	copy(f[6:12], l.cfg.PortMACs[ln.port][:])
	ev.Kind, ev.Action, ev.Rule, ev.OutPort = datapath.KindRouter, datapath.ActRoute, RuleLine, l.cfg.Ports[ln.port]
	out.Trace(ev)
	out.Send(ln.port, f)
}

// fromLine routes a packet that arrived on line ln in its VRF: to a local
// instance, or over VXLAN to the instance's leaf.
func (l *Leaf) fromLine(ev datapath.Event, ln *line, b []byte, out datapath.Output) {
	ev.Kind = datapath.KindRouter
	f := append(l.pbuf[:0], b...)
	l.pbuf = f
	if MAC(f[0:6]) != l.cfg.PortMACs[ln.port] || binary.BigEndian.Uint16(f[12:14]) != etherIPv4 {
		l.drop(ev, out, datapath.ReasonNotForMe, "line:dst-mac")
		return
	}
	ip, _, ok := ipv4Header(f)
	if !ok {
		l.drop(ev, out, datapath.ReasonMalformed, "line:not-ipv4")
		return
	}
	v := l.vrfs[ln.l3vni]
	if v == nil {
		l.drop(ev, out, datapath.ReasonNoRoute, RuleNoVNI)
		return
	}
	if !decTTL(ip) {
		l.drop(ev, out, datapath.ReasonTTL, RuleLine)
		return
	}
	if h, ok := v.hosts[be32(ip[16:20])]; ok {
		l.routeHost(ev, v, h, f, out)
		return
	}
	pr, _, ok := v.prefix.LookupAddr(addr4(ip[16:20]))
	l.routePrefix(ev, v, pr, ok, f, out)
}
