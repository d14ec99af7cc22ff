package spec

import (
	"fmt"
	"net/netip"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/generation"
)

// GenHybrid is the hybrid network: the scenario's sites, each run by its
// own generation, joined by dedicated lines.
const GenHybrid Generation = "hybrid"

type rawSite struct {
	Name       string `yaml:"name"`
	Generation string `yaml:"generation"`
	CIDR       string `yaml:"cidr"`
}

// sites reads sites: and checks the address plan: every range of one
// site (a VPC's CIDR, a network's subnet) apart from every range of
// another, so that every address is routable across the lines.
func (p *parser) sites(r *rawScenario, root *yaml.Node, s *Scenario) {
	sitesNode := child(root, "sites")
	byName := map[string]*Site{}
	for i, rs := range r.Sites {
		line := lineOf(sitesNode, root.Line)
		var sn *yaml.Node
		if sitesNode != nil && i < len(sitesNode.Content) {
			sn = sitesNode.Content[i]
			line = sn.Line
		}
		field := fmt.Sprintf("sites[%d]", i)
		if rs.Name == "" || byName[rs.Name] != nil {
			p.fail(line, field+".name", "missing or duplicate site name %q", rs.Name)
			return
		}
		st := Site{Name: rs.Name, Generation: Generation(rs.Generation), Line: line}
		d, ok := generation.Lookup(st.Generation)
		switch {
		case !ok || d.Sites:
			p.fail(lineOf(child(sn, "generation"), line), field+".generation", "%q: a site runs one of %v", rs.Generation, siteGenerations())
			return
		case d.CloudIPAM() && rs.CIDR == "":
			p.fail(line, field+".cidr", "missing: a VPC (%s) has a CIDR its networks lie in, like 10.100.0.0/16", st.Generation)
			return
		case !d.CloudIPAM() && rs.CIDR != "":
			p.fail(lineOf(child(sn, "cidr"), line), field+".cidr", "only a VPC (a site of a cloud generation) has a CIDR; give the %s site's ranges as its networks", st.Generation)
			return
		}
		if rs.CIDR != "" {
			c, err := netip.ParsePrefix(rs.CIDR)
			if err != nil || !c.Addr().Is4() || c.Bits() < 16 || c.Bits() > 28 {
				p.fail(lineOf(child(sn, "cidr"), line), field+".cidr", "%q: a VPC's CIDR is an IPv4 prefix from /16 to /28 (as AWS), like 10.100.0.0/16", rs.CIDR)
				return
			}
			st.CIDR = c.Masked()
		}
		s.Sites = append(s.Sites, st)
		byName[st.Name] = &s.Sites[len(s.Sites)-1]
	}
	if len(s.Sites) == 0 {
		for i, n := range s.Networks {
			if n.Site != "" {
				p.fail(n.Line, fmt.Sprintf("networks[%d].site", i), "%q: the scenario has no sites; give sites: for a hybrid network, or drop site", n.Site)
				return
			}
		}
		if slices.Contains(s.Generations, GenHybrid) {
			p.fail(lineOf(child(root, "generations"), root.Line), "generations", "hybrid needs sites: (the private cloud and the VPCs, with their generations)")
		}
		return
	}
	if len(s.Generations) != 1 || s.Generations[0] != GenHybrid {
		if len(r.Generations) > 0 {
			p.fail(lineOf(child(root, "generations"), root.Line), "generations", "a scenario with sites runs the hybrid network: generations: [hybrid] (the sites name their own)")
			return
		}
		s.Generations = []Generation{GenHybrid}
	}
	// The address plan: each range with where it comes from.
	type rng struct {
		p     netip.Prefix
		site  string
		line  int
		field string
	}
	var ranges []rng
	for i, st := range s.Sites {
		if st.CIDR.IsValid() {
			ranges = append(ranges, rng{st.CIDR, st.Name, st.Line, fmt.Sprintf("sites[%d].cidr", i)})
		}
	}
	for i, n := range s.Networks {
		field := fmt.Sprintf("networks[%d].site", i)
		st := byName[n.Site]
		if n.Site == "" {
			p.fail(n.Line, field, "missing: in a hybrid network every network names its site (one of %v)", siteNames(s.Sites))
			return
		}
		if st == nil {
			p.fail(n.Line, field, "%q is not a site; sites: %v", n.Site, siteNames(s.Sites))
			return
		}
		if st.CIDR.IsValid() && !(st.CIDR.Contains(n.Subnet.Addr()) && n.Subnet.Bits() >= st.CIDR.Bits()) {
			p.fail(n.Line, fmt.Sprintf("networks[%d].subnet", i), "%v (%s) is not inside VPC %s's CIDR %v (%s:%d: sites[%d].cidr)", n.Subnet, n.Name, st.Name, st.CIDR,
				p.file, st.Line, slices.IndexFunc(s.Sites, func(x Site) bool { return x.Name == st.Name }))
			return
		}
		ranges = append(ranges, rng{n.Subnet, n.Site, n.Line, fmt.Sprintf("networks[%d].subnet", i)})
	}
	for i, a := range ranges {
		for _, b := range ranges[:i] {
			if a.site != b.site && a.p.Overlaps(b.p) {
				p.fail(a.line, a.field, "address plan: %v of site %s overlaps %v of site %s (%s:%d: %s); sites joined by a dedicated line need ranges apart, so that every address is routable",
					a.p, a.site, b.p, b.site, p.file, b.line, b.field)
				return
			}
		}
	}
}

func siteNames(ss []Site) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func siteGenerations() []Generation {
	var out []Generation
	for _, d := range generation.All() {
		if !d.Sites {
			out = append(out, d.Name)
		}
	}
	return out
}

// securityGroup reads a security_group step.
func (p *parser) securityGroup(r *rawSecurityGroup, n *yaml.Node, field string) *SecurityGroupChange {
	c := &SecurityGroupChange{Group: r.Group}
	rule, key := r.Add, "add"
	switch {
	case r.Add != nil && r.Remove == nil:
		c.Action = "add"
	case r.Remove != nil && r.Add == nil:
		c.Action, rule, key = "remove", r.Remove, "remove"
	default:
		p.fail(lineOf(n, 0), field, "give one rule to add or to remove: {add: {proto: tcp, port: 80, from: 10.0.0.0/16}}")
		return c
	}
	rn := child(n, key)
	at := func(k string) int { return lineOf(child(rn, k), lineOf(rn, lineOf(n, 0))) }
	switch rule.Proto {
	case "", "all":
		c.Proto = "all"
		if rule.Port != 0 {
			p.fail(at("port"), field+"."+key+".port", "a port needs a protocol: give proto: tcp or udp")
		}
	case "icmp":
		c.Proto = "icmp"
		if rule.Port != 0 {
			p.fail(at("port"), field+"."+key+".port", "ICMP has no ports")
		}
	case "tcp", "udp":
		c.Proto = rule.Proto
	default:
		p.fail(at("proto"), field+"."+key+".proto", "%q: use all, icmp, tcp or udp", rule.Proto)
	}
	c.Port = rule.Port
	from, err := netip.ParsePrefix(rule.From)
	switch {
	case rule.From == "":
		p.fail(at("from"), field+"."+key+".from", "missing: the sources the rule admits, a CIDR like 10.0.0.0/16 (0.0.0.0/0: anywhere)")
	case err != nil || !from.Addr().Is4():
		p.fail(at("from"), field+"."+key+".from", "%q is not an IPv4 CIDR like 10.0.0.0/16", rule.From)
	case from.Masked() != from:
		p.fail(at("from"), field+"."+key+".from", "%v has host bits set; did you mean %v?", from, from.Masked())
	}
	c.From = from
	return c
}
