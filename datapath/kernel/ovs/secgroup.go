package ovs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/netbed/netbed/datapath/vlan"
)

// SGPort is one stock instance's port as the security-group rules see it:
// Tap is its device on the qbr bridge (the instance's veth end).
type SGPort struct {
	Instance string
	Tap      string
	Groups   []vlan.SecurityGroup
	// DefIngress and DefEgress decide packets no rule matches.
	DefIngress, DefEgress vlan.Verdict
}

// Chain names: nb-i-<tap> holds the rules for packets towards the
// instance, nb-o-<tap> those from it (OpenStack's neutron-openvswi-i/o).
func chainIn(tap string) string  { return "nb-i-" + tap }
func chainOut(tap string) string { return "nb-o-" + tap }

// RenderSecurityGroups returns the iptables-restore input for the filter
// table of a stock host holding ports: OpenStack's layout in miniature.
// FORWARD sends each frame bridged on a qbr to the chain of the port it
// leaves by (ingress, --physdev-out) or enters by (egress, --physdev-in);
// each chain accepts tracked connections first, then the groups' rules
// in order, then the direction's default. Every rule carries the model's
// rule name as its comment ("sg:web:1", "sg:default:ingress"), so a
// counter or a drop names the same rule as the model does. Ports are
// rendered in Tap order; the output is deterministic. A rule whose remote
// prefix is IPv6 is left out here (RenderSecurityGroups6 has it).
func RenderSecurityGroups(ports []SGPort) string { return render(ports, false) }

// RenderSecurityGroups6 returns the ip6tables-restore input for the same
// ports, as Neutron writes a port's groups into ip6tables too (the model,
// vlan's chain, filters IPv6 with the same rules): each chain lets
// neighbour discovery pass first ("sg:ndp"), an icmp rule matches ICMPv6,
// and a rule whose remote prefix is IPv4 is left out.
func RenderSecurityGroups6(ports []SGPort) string { return render(ports, true) }

// ndpTypes are the ICMPv6 types of neighbour discovery (router
// solicitation to redirect), which every IPv6 chain lets pass.
var ndpTypes = []int{133, 134, 135, 136, 137}

func render(ports []SGPort, v6 bool) string {
	ps := append([]SGPort(nil), ports...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Tap < ps[j].Tap })
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, p := range ps {
		fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", chainIn(p.Tap), chainOut(p.Tap))
	}
	for _, p := range ps {
		fmt.Fprintf(&b, "-A FORWARD -m physdev --physdev-out %s --physdev-is-bridged -m comment --comment %q -j %s\n",
			p.Tap, "sg:"+p.Instance+":ingress", chainIn(p.Tap))
		fmt.Fprintf(&b, "-A FORWARD -m physdev --physdev-in %s --physdev-is-bridged -m comment --comment %q -j %s\n",
			p.Tap, "sg:"+p.Instance+":egress", chainOut(p.Tap))
	}
	for _, p := range ps {
		for _, d := range []vlan.Direction{vlan.Ingress, vlan.Egress} {
			ch, def, defName := chainIn(p.Tap), p.DefIngress, vlan.RuleDefaultIngress
			if d == vlan.Egress {
				ch, def, defName = chainOut(p.Tap), p.DefEgress, vlan.RuleDefaultEgress
			}
			if v6 {
				for _, t := range ndpTypes {
					fmt.Fprintf(&b, "-A %s -p ipv6-icmp -m icmp6 --icmpv6-type %d -m comment --comment %q -j ACCEPT\n", ch, t, vlan.RuleNDP)
				}
			}
			fmt.Fprintf(&b, "-A %s -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment %q -j ACCEPT\n", ch, vlan.RuleEstablished)
			for _, g := range p.Groups {
				for i, r := range g.Rules {
					if r.Direction != d || r.Remote.IsValid() && r.Remote.Addr().Is6() != v6 {
						continue
					}
					name := fmt.Sprintf("sg:%s:%d", g.Name, i+1)
					for _, m := range ruleMatches(r, v6) {
						fmt.Fprintf(&b, "-A %s%s -m comment --comment %q -j %s\n", ch, m, name, target(r.Action))
					}
				}
			}
			fmt.Fprintf(&b, "-A %s -m comment --comment %q -j %s\n", ch, defName, target(def))
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func target(v vlan.Verdict) string {
	if v == vlan.Drop {
		return "DROP"
	}
	return "ACCEPT"
}

// ruleMatches returns the iptables (ip6tables when v6) matches of r (each
// with a leading space; "" matches everything). A port range on any
// protocol needs a protocol in iptables: it becomes one rule for TCP and
// one for UDP, the protocols the model takes ports from.
func ruleMatches(r vlan.SGRule, v6 bool) []string {
	remote := ""
	if r.Remote.IsValid() {
		flag := " -s "
		if r.Direction == vlan.Egress {
			flag = " -d "
		}
		remote = flag + r.Remote.Masked().String()
	}
	ports := ""
	if r.PortMin != 0 || r.PortMax != 0 {
		hi := r.PortMax
		if hi < r.PortMin {
			hi = r.PortMin
		}
		ports = fmt.Sprintf(" --dport %d:%d", r.PortMin, hi)
	}
	switch r.Proto {
	case vlan.ProtoAny:
		if ports != "" {
			return []string{" -p tcp" + remote + ports, " -p udp" + remote + ports}
		}
		return []string{remote}
	case vlan.ProtoICMP:
		if v6 {
			return []string{" -p ipv6-icmp" + remote}
		}
		return []string{" -p icmp" + remote}
	case vlan.ProtoTCP:
		return []string{" -p tcp" + remote + ports}
	case vlan.ProtoUDP:
		return []string{" -p udp" + remote + ports}
	}
	return []string{fmt.Sprintf(" -p %d%s", r.Proto, remote)}
}
