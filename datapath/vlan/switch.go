package vlan

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/l2"
)

// PortMode is how a switch port carries VLANs.
type PortMode uint8

// Port modes.
const (
	// Trunk carries the allowed VLANs tagged, and its native VLAN (if any)
	// untagged.
	Trunk PortMode = iota
	// Access carries one VLAN untagged.
	Access
	// Routed is a core's L3 port (towards the firewall): no bridging.
	Routed
)

type vlanSet [64]uint64

func (s *vlanSet) has(v uint16) bool { return s[v>>6&63]&(1<<(v&63)) != 0 }
func (s *vlanSet) set(v uint16)      { s[v>>6&63] |= 1 << (v & 63) }
func (s *vlanSet) unset(v uint16)    { s[v>>6&63] &^= 1 << (v & 63) }

type swPort struct {
	name    string
	mode    PortMode
	pvid    uint16 // access VLAN, or a trunk's native VLAN (0: none)
	allowed vlanSet
	up      bool
	link    *treeLink // nil for edge ports
}

func (p *swPort) member(v uint16) bool {
	switch p.mode {
	case Access:
		return p.pvid == v
	case Trunk:
		return p.pvid == v || p.allowed.has(v)
	}
	return false
}

// Switch is an L2 fabric switch (ToR/access or aggregation): MAC learning
// per VLAN with ageing, trunk and access ports, unknown unicast and
// broadcast flooded within the VLAN only and never back out of the ingress
// port, MAC flush when a port goes down, and the ports the fabric's
// spanning tree blocks left out of forwarding. Ports start as trunks
// allowing no VLAN.
type Switch struct {
	name  string
	kind  datapath.DeviceKind
	ports []swPort
	names []string
	fdb   *l2.Table
	tree  *tree
	gen   uint64

	tagBuf, untagBuf []byte
	flood            []int
}

var _ datapath.Node = (*Switch)(nil)

// NewSwitch returns a switch with the given ports, all up, trunks allowing
// no VLAN yet; MAC entries age out after ageing (l2.DefaultAgeing when 0).
func NewSwitch(name string, ports []string, ageing time.Duration) *Switch {
	if ageing == 0 {
		ageing = l2.DefaultAgeing
	}
	s := &Switch{name: name, kind: datapath.KindSwitch, names: append([]string(nil), ports...),
		fdb: l2.New(ageing, 0), tagBuf: make([]byte, 0, 2048), untagBuf: make([]byte, 0, 2048)}
	for _, p := range ports {
		s.ports = append(s.ports, swPort{name: p, up: true})
	}
	return s
}

// Name returns the switch name.
func (s *Switch) Name() string { return s.name }

// Ports returns the port names.
func (s *Switch) Ports() []string { return s.names }

// SetTrunk makes port a trunk allowing vlans (added to those it allows).
func (s *Switch) SetTrunk(port int, vlans ...uint16) {
	p := &s.ports[port]
	p.mode = Trunk
	for _, v := range vlans {
		p.allowed.set(v)
	}
}

// SetNative sets a trunk's native (untagged) VLAN; 0 removes it.
func (s *Switch) SetNative(port int, vlan uint16) { s.ports[port].pvid = vlan }

// SetAccess makes port an access port of vlan.
func (s *Switch) SetAccess(port int, vlan uint16) {
	s.ports[port] = swPort{name: s.ports[port].name, mode: Access, pvid: vlan, up: s.ports[port].up, link: s.ports[port].link}
}

// Allow adds or removes vlan from a trunk's allowed VLANs; removing it
// flushes the MACs learned there in that VLAN.
func (s *Switch) Allow(port int, vlan uint16, on bool) {
	if on {
		s.ports[port].allowed.set(vlan)
		return
	}
	s.ports[port].allowed.unset(vlan)
	s.fdb.FlushPortVLAN(port, vlan)
}

// Allowed reports whether port carries vlan.
func (s *Switch) Allowed(port int, vlan uint16) bool { return s.ports[port].member(vlan) }

// Lookup returns the port the switch has learned mac on in vlan.
func (s *Switch) Lookup(now time.Duration, vlan uint16, mac [6]byte) (int, bool) {
	return s.fdb.Lookup(now, vlan, mac)
}

// MACCount returns the number of live MAC entries, for capacity reports.
func (s *Switch) MACCount(now time.Duration) int { return s.fdb.Count(now) }

// Blocked reports whether the spanning tree blocks port.
func (s *Switch) Blocked(port int) bool {
	l := s.ports[port].link
	return l != nil && l.blocked.Load()
}

func (s *Switch) trace(now time.Duration, out datapath.Output, in, outp string, act datapath.Action, r datapath.Reason, rule string) {
	out.Trace(datapath.Event{Time: now, Node: s.name, Device: s.name, Kind: s.kind,
		InPort: in, OutPort: outp, Action: act, Reason: r, Rule: rule})
}

func (s *Switch) dropAt(now time.Duration, out datapath.Output, port int, r datapath.Reason, rule string) {
	in := ""
	if port >= 0 && port < len(s.names) {
		in = s.names[port]
	}
	s.trace(now, out, in, "", datapath.ActDrop, r, rule)
}

// Receive bridges one frame within its VLAN.
func (s *Switch) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	vlan, ok := s.ingress(now, port, b, out)
	if !ok {
		return
	}
	s.bridge(now, port, s.names[port], vlan, b, datapath.ActForward, "", true, out)
}

// ingress checks the port and the frame's VLAN and learns its source. It
// traces the drop and returns false when the frame goes no further.
func (s *Switch) ingress(now time.Duration, port int, b []byte, out datapath.Output) (uint16, bool) {
	if port < 0 || port >= len(s.ports) {
		s.dropAt(now, out, port, datapath.ReasonMalformed, "port:unknown")
		return 0, false
	}
	if len(b) < 14 {
		s.dropAt(now, out, port, datapath.ReasonMalformed, "frame:short")
		return 0, false
	}
	p := &s.ports[port]
	if !p.up {
		s.dropAt(now, out, port, datapath.ReasonPortDown, "port:down")
		return 0, false
	}
	if p.link != nil && p.link.blocked.Load() {
		s.dropAt(now, out, port, ReasonSTPBlocked, "stp:blocked")
		return 0, false
	}
	var vlan uint16
	if binary.BigEndian.Uint16(b[12:14]) == 0x8100 {
		if p.mode == Access || len(b) < 18 {
			s.dropAt(now, out, port, datapath.ReasonVLANMismatch, "access:tagged")
			return 0, false
		}
		vlan = frame.VLANOf(b)
		if vlan == 0 {
			vlan = p.pvid // priority tag
		}
	} else {
		vlan = p.pvid
	}
	if vlan == 0 || !p.member(vlan) {
		s.dropAt(now, out, port, datapath.ReasonVLANMismatch, "vlan:not-allowed")
		return 0, false
	}
	if s.tree != nil {
		if g := s.tree.gen.Load(); g != s.gen {
			s.gen = g
			s.fdb.Flush()
		}
	}
	if src := frame.SrcMAC(b); src[0]&1 == 0 {
		s.fdb.Learn(now, vlan, src, port)
	}
	return vlan, true
}

func (s *Switch) forwarding(q int, vlan uint16) bool {
	p := &s.ports[q]
	return p.up && p.mode != Routed && (p.link == nil || !p.link.blocked.Load()) && p.member(vlan)
}

// bridge sends b (tagged or not) in vlan to the port its destination was
// learned on, or floods it to every other forwarding member port of the
// VLAN. inPort -1 means the frame comes from the switch itself (a routed
// packet). act is the action traced (forward, or route for a core); a
// flood traces as flood unless act is route. traced=false skips the
// switch's trace event (the caller traced already).
func (s *Switch) bridge(now time.Duration, inPort int, inName string, vlan uint16, b []byte, act datapath.Action, rule string, traced bool, out datapath.Output) {
	if !frame.IsBroadcastOrMulticast(b) {
		if q, ok := s.fdb.Lookup(now, vlan, frame.DstMAC(b)); ok {
			if q == inPort {
				if traced {
					s.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "fdb:same-port")
				}
				return
			}
			if s.forwarding(q, vlan) {
				if traced {
					s.trace(now, out, inName, s.names[q], act, datapath.ReasonNone, rule)
				}
				s.egress(q, vlan, b, out, nil)
				return
			}
		}
	}
	s.flood = s.flood[:0]
	for q := range s.ports {
		if q != inPort && s.forwarding(q, vlan) {
			s.flood = append(s.flood, q)
		}
	}
	if len(s.flood) == 0 {
		if traced {
			s.trace(now, out, inName, "", datapath.ActDrop, datapath.ReasonNotForMe, "flood:no-ports")
		}
		return
	}
	if traced {
		if act == datapath.ActForward {
			act = datapath.ActFlood
		}
		s.trace(now, out, inName, "", act, datapath.ReasonNone, rule)
	}
	var cache [2]bool
	for _, q := range s.flood {
		s.egress(q, vlan, b, out, &cache)
	}
}

// egress sends b on port q in vlan, tagged or untagged as the port wants.
// cache, when not nil, remembers across one flood which variants of b are
// already built in tagBuf and untagBuf.
func (s *Switch) egress(q int, vlan uint16, b []byte, out datapath.Output, cache *[2]bool) {
	p := &s.ports[q]
	wantTag := p.mode == Trunk && vlan != p.pvid
	tagged := binary.BigEndian.Uint16(b[12:14]) == 0x8100
	switch {
	case wantTag == tagged && (!tagged || frame.VLANOf(b) == vlan):
		if cache == nil {
			out.Forward(q, b) // one port: the switch is done with b
		} else {
			out.Send(q, b)
		}
	case wantTag:
		if cache == nil || !cache[0] {
			if tagged {
				s.untagBuf, _ = frame.PopVLAN(s.untagBuf, b)
				s.tagBuf = frame.PushVLAN(s.tagBuf, s.untagBuf, vlan)
			} else {
				s.tagBuf = frame.PushVLAN(s.tagBuf, b, vlan)
			}
			if cache != nil {
				cache[0] = true
			}
		}
		out.Send(q, s.tagBuf)
	default:
		if cache == nil || !cache[1] {
			s.untagBuf, _ = frame.PopVLAN(s.untagBuf, b)
			if cache != nil {
				cache[1] = true
			}
		}
		out.Send(q, s.untagBuf)
	}
}

// SetPortState marks port up or down. A port going down loses its MAC
// entries; an inter-switch port tells the spanning tree, which recomputes.
func (s *Switch) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {
	if port < 0 || port >= len(s.ports) {
		return
	}
	s.ports[port].up = up
	if !up {
		s.fdb.FlushPort(port)
	}
	if l := s.ports[port].link; l != nil && s.tree != nil {
		s.tree.setEnd(l, s.name, up)
	}
}

func (s *Switch) String() string { return fmt.Sprintf("switch %s (%d ports)", s.name, len(s.ports)) }
