package vlan

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath"
)

// FirewallRule matches packets by destination prefix.
type FirewallRule struct {
	Dst    netip.Prefix
	Action Verdict
}

// Firewall is the hardware firewall beside the core (seed Fig. 4): traffic
// the core routes to addresses outside every network passes it on the way
// out of the data centre. It is the edge of the model: an accepted packet
// is delivered (to "outside"), a denied one dropped with the rule named
// ("fw:<n>", n from 1; "fw:default" when no rule matched).
type Firewall struct {
	name     string
	ports    []string
	mac      net.HardwareAddr
	rules    []FirewallRule
	names    []string
	def      Verdict
	Counters []uint64 // per rule, then the default
}

var _ datapath.Node = (*Firewall)(nil)

// NewFirewall returns a firewall with the given ports and MAC, accepting
// what no rule matches unless def is Drop.
func NewFirewall(name string, ports []string, mac net.HardwareAddr, rules []FirewallRule, def Verdict) *Firewall {
	f := &Firewall{name: name, ports: append([]string(nil), ports...), mac: mac, rules: rules, def: def,
		Counters: make([]uint64, len(rules)+1)}
	for i := range rules {
		f.names = append(f.names, fmt.Sprintf("fw:%d", i+1))
	}
	return f
}

// Name returns the firewall name.
func (f *Firewall) Name() string { return f.name }

// Ports returns the port names.
func (f *Firewall) Ports() []string { return f.ports }

// MAC returns the firewall's MAC, the cores' next hop for the default route.
func (f *Firewall) MAC() net.HardwareAddr { return f.mac }

// Receive filters one routed packet leaving the data centre.
func (f *Firewall) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	ev := datapath.Event{Time: now, Node: f.name, Device: f.name, Kind: datapath.KindFirewall}
	if port >= 0 && port < len(f.ports) {
		ev.InPort = f.ports[port]
	}
	if len(b) < 34 || b[12] != 0x08 || b[13] != 0x00 {
		ev.Action, ev.Reason, ev.Rule = datapath.ActDrop, datapath.ReasonMalformed, "fw:not-ipv4"
		out.Trace(ev)
		return
	}
	dst := netip.AddrFrom4([4]byte(b[30:34]))
	v, rule := f.def, "fw:default"
	hit := len(f.rules)
	for i, r := range f.rules {
		if r.Dst.Contains(dst) {
			v, rule, hit = r.Action, f.names[i], i
			break
		}
	}
	f.Counters[hit]++
	ev.Rule = rule
	if v == Drop {
		ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonPolicy
	} else {
		ev.Action, ev.OutPort = datapath.ActDeliver, "outside"
	}
	out.Trace(ev)
}

// SetPortState does nothing: the firewall keeps no per-port state.
func (f *Firewall) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {}
