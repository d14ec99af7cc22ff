package vlan

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/frame"
)

// Direction is the way a packet crosses an instance's port, seen from the
// instance.
type Direction uint8

// Directions.
const (
	Ingress Direction = iota // towards the instance
	Egress                   // from the instance
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Verdict is what a security-group rule does with a packet it matches.
type Verdict uint8

// Verdicts. The zero value accepts.
const (
	Accept Verdict = iota
	Drop
)

func (v Verdict) String() string {
	if v == Drop {
		return "drop"
	}
	return "accept"
}

// Protocol numbers for SGRule.Proto; 0 matches any.
const (
	ProtoAny  uint8 = 0
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
)

// SGRule is one iptables-style rule of a security group.
type SGRule struct {
	Direction Direction
	Proto     uint8        // ProtoAny, ProtoICMP, ProtoTCP, ProtoUDP
	Remote    netip.Prefix // the peer's address; zero Prefix matches any
	// PortMin..PortMax is the peer-facing service port range (destination
	// port on egress, destination port on ingress); both 0 match any.
	PortMin, PortMax uint16
	Action           Verdict
}

// SecurityGroup is a named, ordered list of rules.
type SecurityGroup struct {
	Name  string
	Rules []SGRule
}

// The chain: OpenStack's iptables layout in miniature. Every IPv4 packet on
// the instance's qbr is matched first against connection tracking (packets
// of a flow already accepted the other way pass, rule "sg:ct:established"),
// then against the rules of each group in order, rule by rule; the first
// match decides and names itself "sg:<group>:<n>" (n counts from 1). No
// match gives the chain's default for the direction, "sg:default:<dir>".
// Non-IP frames (ARP) are not filtered, as iptables does not see them.
// IPv6 goes through the same rules (Neutron writes a port's groups into
// ip6tables too): a rule's remote prefix holds addresses of one family,
// so it matches that family only; ProtoICMP matches ICMPv6 on IPv6; the
// neighbour discovery IPv6 needs always passes (RuleNDP).

type compiledRule struct {
	SGRule
	name string
}

type flowKey struct {
	proto    uint8
	src, dst [16]byte // IPv4 as IPv4-mapped
	sp, dp   uint16
}

func (k flowKey) reverse() flowKey {
	return flowKey{proto: k.proto, src: k.dst, dst: k.src, sp: k.dp, dp: k.sp}
}

type chain struct {
	rules    []compiledRule
	counters []uint64 // per rule, then established, default ingress, default egress
	defaults [2]Verdict
	ct       map[flowKey]time.Duration
}

// Chain rule names that are not group rules.
const (
	RuleEstablished    = "sg:ct:established"
	RuleDefaultIngress = "sg:default:ingress"
	RuleDefaultEgress  = "sg:default:egress"
	RuleNonIP          = "sg:non-ip"
	// RuleNDP: IPv6 neighbour discovery passes, as the rules Neutron
	// puts before every port's ip6tables chain let it.
	RuleNDP = "sg:ndp"
)

// ctTimeout is how long an idle tracked flow is remembered.
const ctTimeout = 600 * time.Second

func newChain(groups []SecurityGroup, defIn, defOut Verdict) *chain {
	c := &chain{defaults: [2]Verdict{defIn, defOut}, ct: map[flowKey]time.Duration{}}
	for _, g := range groups {
		for i, r := range g.Rules {
			c.rules = append(c.rules, compiledRule{SGRule: r, name: fmt.Sprintf("sg:%s:%d", g.Name, i+1)})
		}
	}
	c.counters = make([]uint64, len(c.rules)+3)
	return c
}

// evaluate returns the verdict and rule name for the packet p crossing in
// direction d, and how many iptables rules deciding it walked: the
// connection-tracking rule first (as OpenStack's per-port chain starts
// with its RELATED,ESTABLISHED rule), then the direction's group rules up
// to the one that matched, or all of them before the default (0 for
// non-IP frames, which iptables does not see). It counts the hit and tracks accepted
// flows.
func (c *chain) evaluate(now time.Duration, d Direction, p *frame.Parsed) (Verdict, string, int) {
	var k flowKey
	v6 := false
	switch {
	case p.Has(layers.LayerTypeIPv4) && len(p.IP4.SrcIP) == 4 && len(p.IP4.DstIP) == 4:
		ip := &p.IP4
		k = flowKey{proto: uint8(ip.Protocol), src: netip.AddrFrom4([4]byte(ip.SrcIP)).As16(), dst: netip.AddrFrom4([4]byte(ip.DstIP)).As16()}
	case p.Has(layers.LayerTypeIPv6) && len(p.IP6.SrcIP) == 16 && len(p.IP6.DstIP) == 16:
		if p.Has(layers.LayerTypeICMPv6) {
			if t := p.ICMP6.TypeCode.Type(); t >= layers.ICMPv6TypeRouterSolicitation && t <= layers.ICMPv6TypeRedirect {
				return Accept, RuleNDP, 0
			}
		}
		v6 = true
		k = flowKey{proto: uint8(p.IP6.NextHeader), src: [16]byte(p.IP6.SrcIP), dst: [16]byte(p.IP6.DstIP)}
	default:
		return Accept, RuleNonIP, 0
	}
	var port uint16
	switch {
	case p.Has(layers.LayerTypeTCP):
		k.sp, k.dp = uint16(p.TCP.SrcPort), uint16(p.TCP.DstPort)
		port = k.dp
	case p.Has(layers.LayerTypeUDP):
		k.sp, k.dp = uint16(p.UDP.SrcPort), uint16(p.UDP.DstPort)
		port = k.dp
	case p.Has(layers.LayerTypeICMPv4):
		k.sp, k.dp = p.ICMP4.Id, p.ICMP4.Id
	case p.Has(layers.LayerTypeICMPv6) && len(p.ICMP6.Payload) >= 2:
		id := uint16(p.ICMP6.Payload[0])<<8 | uint16(p.ICMP6.Payload[1])
		k.sp, k.dp = id, id
	}
	// An echo request is never the reply of a flow the other way, even
	// with the same echo ID: conntrack tells them apart by type.
	request := p.Has(layers.LayerTypeICMPv4) && p.ICMP4.TypeCode.Type() == layers.ICMPv4TypeEchoRequest ||
		p.Has(layers.LayerTypeICMPv6) && p.ICMP6.TypeCode.Type() == layers.ICMPv6TypeEchoRequest
	if seen, ok := c.ct[k.reverse()]; ok && now-seen < ctTimeout && !request {
		c.ct[k.reverse()] = now
		c.counters[len(c.rules)]++
		return Accept, RuleEstablished, 1
	}
	remote := netip.AddrFrom16(k.src)
	if d == Egress {
		remote = netip.AddrFrom16(k.dst)
	}
	proto := k.proto
	if v6 && proto == 58 {
		proto = ProtoICMP // an icmp rule is icmpv6 in ip6tables
	} else if !v6 {
		remote = remote.Unmap()
	}
	i, walked := c.match(d, proto, remote, port)
	walked++ // the connection-tracking rule
	if i >= 0 {
		r := &c.rules[i]
		c.counters[i]++
		if r.Action == Accept {
			c.ct[k] = now
		}
		return r.Action, r.name, walked
	}
	v := c.defaults[d]
	name := RuleDefaultIngress
	if d == Egress {
		name = RuleDefaultEgress
	}
	c.counters[len(c.rules)+1+int(d)]++
	if v == Accept {
		c.ct[k] = now
	}
	return v, name, walked
}

// snapshot returns the rule counters by rule name.
func (c *chain) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(c.counters))
	for i, r := range c.rules {
		m[r.name] = c.counters[i]
	}
	m[RuleEstablished] = c.counters[len(c.rules)]
	m[RuleDefaultIngress] = c.counters[len(c.rules)+1]
	m[RuleDefaultEgress] = c.counters[len(c.rules)+2]
	return m
}

// match returns the index of the first rule of direction d matching a
// packet of proto to or from remote with destination port port (-1 if
// none), and how many of the direction's rules it walked.
func (c *chain) match(d Direction, proto uint8, remote netip.Addr, port uint16) (int, int) {
	walked := 0
	for i := range c.rules {
		r := &c.rules[i]
		if r.Direction != d {
			continue // the other direction's chain
		}
		walked++
		if r.Proto != ProtoAny && r.Proto != proto {
			continue
		}
		if r.Remote.IsValid() && !r.Remote.Contains(remote) {
			continue
		}
		if (r.PortMin != 0 || r.PortMax != 0) && (port < r.PortMin || port > r.PortMax) {
			continue
		}
		return i, walked
	}
	return -1, walked
}

// SGChain is a security-group chain outside any host, to ask it for
// verdicts (compilers' tests, benchmarks).
type SGChain struct{ c *chain }

// NewSGChain builds the chain of groups with the directions' defaults.
func NewSGChain(groups []SecurityGroup, defIn, defOut Verdict) *SGChain {
	return &SGChain{newChain(groups, defIn, defOut)}
}

// Len is how many rules the chain holds.
func (s *SGChain) Len() int { return len(s.c.rules) }

// Match is the verdict the chain gives a new flow's first packet (no
// connection tracking) crossing the instance's port in direction d,
// with the rule that decided ("sg:<group>:<n>", or the direction's
// default) and how many rules it walked: O(n) in the rules.
func (s *SGChain) Match(d Direction, proto uint8, remote netip.Addr, port uint16) (Verdict, string, int) {
	c := s.c
	i, walked := c.match(d, proto, remote, port)
	if i >= 0 {
		return c.rules[i].Action, c.rules[i].name, walked
	}
	if d == Egress {
		return c.defaults[d], RuleDefaultEgress, walked
	}
	return c.defaults[d], RuleDefaultIngress, walked
}
