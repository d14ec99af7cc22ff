package spec

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// rawBGPRoute is one bgp_route expectation as written.
type rawBGPRoute struct {
	PresentOn  []string `yaml:"present_on"`
	AbsentFrom []string `yaml:"absent_from"`
	Type       int      `yaml:"type"`
	MAC        string   `yaml:"mac"`
	IP         string   `yaml:"ip"`
	Prefix     string   `yaml:"prefix"`
	VNI        string   `yaml:"vni"`
	Origin     string   `yaml:"origin"`
}

// controlPlaneExpect parses an expect step's bgp_sessions, bgp_route and
// fabric_consistent (en is the expect mapping, f its field path).
func (p *parser) controlPlaneExpect(en *yaml.Node, f string, e *rawExpect, x *Expect, networks map[string]bool) {
	x.FabricConsistent = e.FabricConsistent
	if n := child(en, "bgp_sessions"); n != nil && !isNull(n) {
		field := f + ".bgp_sessions"
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Value != "established" {
				p.fail(n.Line, field, "%q: use established (every session of every speaker) or a list of the nodes whose sessions must all be established", n.Value)
			}
			x.BGPSessions = &BGPSessionsExpect{}
		case yaml.SequenceNode:
			var nodes []string
			for i, c := range n.Content {
				if c.Kind != yaml.ScalarNode || c.Value == "" {
					p.fail(c.Line, fmt.Sprintf("%s[%d]", field, i), "want a node name, got %s", describe(c))
				}
				nodes = append(nodes, c.Value)
			}
			if len(nodes) == 0 {
				p.fail(n.Line, field, "an empty list checks nothing; write established for every speaker, or name nodes")
			}
			x.BGPSessions = &BGPSessionsExpect{Nodes: nodes}
		default:
			p.fail(n.Line, field, "want established or a list of node names, got %s", describe(n))
		}
	}
	if n := child(en, "bgp_route"); n != nil && !isNull(n) {
		field := f + ".bgp_route"
		items, paths := []*yaml.Node{n}, []string{field}
		if n.Kind == yaml.SequenceNode {
			items, paths = n.Content, nil
			for i := range items {
				paths = append(paths, fmt.Sprintf("%s[%d]", field, i))
			}
		}
		for i, c := range items {
			var rr rawBGPRoute
			p.decode(c, paths[i], &rr)
			if p.err != nil {
				return
			}
			x.BGPRoutes = append(x.BGPRoutes, p.bgpRoute(c, paths[i], rr, networks))
		}
	}
}

func (p *parser) bgpRoute(n *yaml.Node, field string, rr rawBGPRoute, networks map[string]bool) BGPRouteExpect {
	line := func(key string) int { return lineOf(child(n, key), n.Line) }
	re := BGPRouteExpect{PresentOn: rr.PresentOn, AbsentFrom: rr.AbsentFrom, MAC: rr.MAC, IP: rr.IP, Origin: rr.Origin, Line: n.Line}
	if len(rr.PresentOn)+len(rr.AbsentFrom) == 0 {
		p.fail(n.Line, field, "name the speakers to ask: present_on, absent_from, or both")
	}
	for _, a := range rr.PresentOn {
		for _, b := range rr.AbsentFrom {
			if a == b {
				p.fail(line("absent_from"), field+".absent_from", "%s is also in present_on", a)
			}
		}
	}
	switch rr.Type {
	case 0, 2, 3, 5:
		re.Type = RouteType(rr.Type)
	default:
		p.fail(line("type"), field+".type", "%d: use 2 (MAC/IP), 3 (inclusive multicast) or 5 (IP prefix)", rr.Type)
	}
	if rr.MAC != "" && strings.Contains(rr.MAC, ":") {
		if err := checkMAC(rr.MAC); err != nil {
			p.fail(line("mac"), field+".mac", "%v (or name an instance)", err)
		}
	}
	if rr.IP != "" && strings.ContainsAny(rr.IP, ".:") {
		if _, err := netip.ParseAddr(rr.IP); err != nil {
			p.fail(line("ip"), field+".ip", "%q is not an address like 10.0.1.5 (or name an instance)", rr.IP)
		}
	}
	if rr.Prefix != "" {
		pfx, err := netip.ParsePrefix(rr.Prefix)
		if err != nil {
			p.fail(line("prefix"), field+".prefix", "%q is not a CIDR like 10.0.1.0/24", rr.Prefix)
		}
		re.Prefix = pfx.Masked()
	}
	if rr.VNI != "" {
		v, err := strconv.ParseUint(rr.VNI, 10, 32)
		switch {
		case err == nil && v >= 1 && v < 1<<24:
			re.VNI = uint32(v)
		case err == nil:
			p.fail(line("vni"), field+".vni", "%d: a VNI is 1..16777215", v)
		case networks[rr.VNI]:
			re.Network = rr.VNI
		default:
			p.fail(line("vni"), field+".vni", "%q is neither a VNI nor a network of the scenario", rr.VNI)
		}
	}
	switch {
	case re.Type == InclusiveMulticast && (rr.MAC != "" || rr.IP != "" || rr.Prefix != ""):
		p.fail(line("type"), field+".type", "a type-3 route has no MAC, IP or prefix; select it by vni and origin")
	case re.Type == IPPrefix && (rr.MAC != "" || rr.IP != ""):
		p.fail(line("type"), field+".type", "a type-5 route has no MAC or IP; select it by prefix")
	case re.Type == MACIP && rr.Prefix != "":
		p.fail(line("type"), field+".type", "a type-2 route has no prefix; select it by mac or ip")
	}
	if re.Type == 0 && rr.MAC == "" && rr.IP == "" && rr.Prefix == "" && rr.VNI == "" && rr.Origin == "" {
		p.fail(n.Line, field, "say which route: type, mac, ip, prefix, vni or origin")
	}
	return re
}

// checkMAC says whether s is a 6-byte MAC address.
func checkMAC(s string) error {
	if hw, err := net.ParseMAC(s); err != nil || len(hw) != 6 {
		return fmt.Errorf("%q is not a MAC address like 52:54:00:12:34:56", s)
	}
	return nil
}
