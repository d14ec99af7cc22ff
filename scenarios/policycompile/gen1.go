package policycompile

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/scenarios/policy"
)

// Gen1 is a policy set compiled for gen 1's stock OpenStack host: one
// security group per instance (by policy.Pod.String()), applied as the
// iptables chain on its qbr bridge.
type Gen1 struct {
	Groups map[string][]vlan.SecurityGroup
	// Rules counts every group's rules: the iptables rules the chains
	// hold between them.
	Rules int
}

// CompileGen1 compiles s over c into security groups, one per pod, named
// "k8s-<namespace>-<pod>". A direction in which a pod is isolated gets
// the deny rules first (Cilium's ingressDeny/egressDeny: beyond
// OpenStack's allow-only API, written as iptables DROP rules), then one
// accept rule per remote address block and port range (a pod peer is its
// /32, as the remote group's ipset would hold it; an ipBlock is its cidr
// minus its excepts, split into prefixes; named ports resolved on the
// destination pod), then a drop of everything else; a direction in which
// it is not isolated gets one accept-all rule. Replies pass the chain's
// connection-tracking rule. Cilium's world entity is not compiled (a
// security group cannot say "not a pod") and fails the compile, as does
// a Cilium CIDR rule whose block holds a pod's address.
func CompileGen1(s *policy.Set, c *policy.Cluster) (*Gen1, error) {
	r, err := resolve(s, c)
	if err != nil {
		return nil, err
	}
	out := &Gen1{Groups: map[string][]vlan.SecurityGroup{}}
	for _, g := range r.grants {
		if g.peers.world {
			return nil, fmt.Errorf("compile %s for gen 1: entity world has no security-group form (remote prefixes cannot exclude the pods): %w", g.origin, ErrNoHostPolicy)
		}
		for _, b := range g.peers.blocks {
			for _, p := range c.Pods {
				if b.outside && b.contains(p.IP) {
					return nil, fmt.Errorf("compile %s for gen 1: CIDR %s holds pod %s (%s), which a Cilium CIDR rule does not select and a remote prefix would: %w", g.origin, b, p, p.IP, ErrNoHostPolicy)
				}
			}
		}
	}
	for _, p := range c.Pods {
		sg := vlan.SecurityGroup{Name: "k8s-" + p.Namespace + "-" + p.Name}
		for _, dir := range []vlan.Direction{vlan.Ingress, vlan.Egress} {
			isolated := r.isolatedIn[p]
			if dir == vlan.Egress {
				isolated = r.isolatedOut[p]
			}
			if !isolated {
				sg.Rules = append(sg.Rules, vlan.SGRule{Direction: dir, Action: vlan.Accept})
				continue
			}
			for _, deny := range []bool{true, false} {
				for gi := range r.grants {
					g := &r.grants[gi]
					if g.deny != deny || g.egress != (dir == vlan.Egress) || !slices.Contains(g.subjects, p) {
						continue
					}
					sg.Rules = append(sg.Rules, sgRules(g, p, c, dir)...)
				}
			}
			sg.Rules = append(sg.Rules, vlan.SGRule{Direction: dir, Action: vlan.Drop})
		}
		out.Rules += len(sg.Rules)
		out.Groups[p.String()] = []vlan.SecurityGroup{sg}
	}
	return out, nil
}

// sgRules are the rules of grant g for pod p in direction dir.
func sgRules(g *grant, p *policy.Pod, c *policy.Cluster, dir vlan.Direction) []vlan.SGRule {
	act := vlan.Accept
	if g.deny {
		act = vlan.Drop
	}
	var prefixes []netip.Prefix // the zero Prefix: any address
	if g.peers.any {
		prefixes = append(prefixes, netip.Prefix{})
	}
	for _, q := range g.peers.pods {
		prefixes = append(prefixes, host(q))
	}
	for _, b := range g.peers.blocks {
		prefixes = append(prefixes, subtract(b.cidr, b.except)...)
	}
	var out []vlan.SGRule
	seen := map[vlan.SGRule]bool{}
	add := func(pf netip.Prefix, ps portSpec) {
		r := vlan.SGRule{Direction: dir, Proto: ps.proto, Remote: pf, PortMin: ps.lo, PortMax: ps.hi, Action: act}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	if len(g.ports) == 0 {
		for _, pf := range prefixes {
			add(pf, portSpec{})
		}
		return out
	}
	for _, ps := range g.ports {
		switch {
		case ps.name == "":
			for _, pf := range prefixes {
				add(pf, ps)
			}
		case dir == vlan.Ingress:
			// The name is p's own port.
			for _, rp := range resolvePorts([]portSpec{ps}, p) {
				for _, pf := range prefixes {
					add(pf, rp)
				}
			}
		default:
			// The name is each destination pod's: a rule per pod.
			for _, q := range c.Pods {
				if !g.peers.any && !slices.Contains(g.peers.pods, q) && !inBlocks(g, q) {
					continue
				}
				for _, rp := range resolvePorts([]portSpec{ps}, q) {
					add(host(q), rp)
				}
			}
		}
	}
	return out
}

func host(q *policy.Pod) netip.Prefix { return netip.PrefixFrom(q.IP, q.IP.BitLen()) }

func inBlocks(g *grant, q *policy.Pod) bool {
	for _, b := range g.peers.blocks {
		if b.holdsPod(q.IP) {
			return true
		}
	}
	return false
}

// subtract returns the prefixes covering p minus every prefix of except.
func subtract(p netip.Prefix, except []netip.Prefix) []netip.Prefix {
	for _, e := range except {
		if e.Overlaps(p) && e.Bits() <= p.Bits() {
			return nil // p lies wholly inside e
		}
	}
	var hit bool
	for _, e := range except {
		if p.Overlaps(e) {
			hit = true
			break
		}
	}
	if !hit {
		return []netip.Prefix{p}
	}
	lo, hi := halves(p)
	return append(subtract(lo, except), subtract(hi, except)...)
}

// halves splits p into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	idx := (bits - 1) / 8
	b[idx] |= 0x80 >> ((bits - 1) % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}
