package policycompile

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/scenarios/policy"
)

// Gen3 is a policy set compiled for gen 3: policy-map entries keyed by
// identities, and the identities enforced in each direction.
type Gen3 struct {
	Rules                    []ebpf.PolicyRule
	Enforced, EgressEnforced map[ebpf.Identity]bool
	// CIDRs are the CIDR identities of the ipBlocks' prefixes, for
	// every node's ipcache (ebpf.Fabric.SetCIDRIdentities).
	CIDRs map[netip.Prefix]ebpf.Identity
}

// CompileGen3 compiles s over c for gen 3, where ids gives every pod's
// identity (by policy.Pod.String()). Ingress entries are checked on the
// destination's node, egress entries on the source's node. Entries are
// per identity, so every pod of an identity must be alike for the
// policies: same namespace, same named ports where a policy names one,
// and on the same side of every ipBlock; otherwise the compile fails
// naming two pods that differ. Port ranges become one entry per port.
// An ipBlock admits the pods whose addresses it holds, and the addresses
// outside the cluster by CIDR identities, as Cilium compiles CIDR
// selectors: the block less its excepts is cut into prefixes, every
// prefix of every block gets an identity (Gen3.CIDRs, for the ipcache,
// IPv4 and IPv6 alike), and a block admits each identity whose prefix
// lies inside one of its own, so that the longest prefix holding an
// address decides for every block at once. A whole 0.0.0.0/0 or ::/0
// without except is the world identity, which holds addresses of both
// families: in a dual-stack cluster such a block admits the other
// family's outside addresses too.
func CompileGen3(s *policy.Set, c *policy.Cluster, ids map[string]ebpf.Identity) (*Gen3, error) {
	r, err := resolve(s, c)
	if err != nil {
		return nil, err
	}
	group := map[ebpf.Identity][]*policy.Pod{}
	idOf := map[*policy.Pod]ebpf.Identity{}
	for _, p := range c.Pods {
		id, ok := ids[p.String()]
		if !ok {
			return nil, fmt.Errorf("compile for gen 3: pod %s has no identity", p)
		}
		idOf[p] = id
		group[id] = append(group[id], p)
	}
	for id, pods := range group {
		a := pods[0]
		for _, b := range pods[1:] {
			if err := alike(r, a, b); err != nil {
				return nil, fmt.Errorf("compile for gen 3: pods %s and %s share identity %d but %w; gen 3 policy is per identity: give them different labels", a, b, id, err)
			}
		}
	}
	out := &Gen3{Enforced: map[ebpf.Identity]bool{}, EgressEnforced: map[ebpf.Identity]bool{}}
	var prefixes []netip.Prefix
	for _, bl := range r.blocks {
		for _, f := range subtract(bl.cidr, bl.except) {
			if f.Bits() > 0 {
				prefixes = append(prefixes, f)
			}
		}
	}
	out.CIDRs = ebpf.CIDRIdentities(prefixes)
	cidrOrder := slices.SortedFunc(maps.Keys(out.CIDRs), func(a, b netip.Prefix) int { return cmp.Compare(out.CIDRs[a], out.CIDRs[b]) })
	for p := range r.isolatedIn {
		out.Enforced[idOf[p]] = true
	}
	for p := range r.isolatedOut {
		out.EgressEnforced[idOf[p]] = true
	}
	seen := map[ebpf.PolicyKey]bool{}
	emit := func(k ebpf.PolicyKey, g *grant) {
		act := ebpf.PolicyAllow
		if g.deny {
			act = ebpf.PolicyDeny
		}
		if seen[k] && !g.deny {
			return
		}
		seen[k] = true
		out.Rules = append(out.Rules, ebpf.PolicyRule{Key: k, Action: act, Name: ebpf.RuleName(k), From: g.origin})
	}
	for gi := range r.grants {
		g := &r.grants[gi]
		subjects := uniqueIDs(g.subjects, idOf)
		// remote identities, each with a representative pod for named
		// ports (nil: no pod, any or world).
		type remote struct {
			id  ebpf.Identity
			pod *policy.Pod
		}
		var remotes []remote
		if g.peers.any {
			remotes = append(remotes, remote{ebpf.IdentityAny, nil})
		} else {
			var pods []*policy.Pod
			pods = append(pods, g.peers.pods...)
			for _, b := range g.peers.blocks {
				for _, p := range c.Pods {
					if b.holdsPod(p.IP) {
						pods = append(pods, p)
					}
				}
				if b.cidr.Bits() == 0 && len(b.except) == 0 {
					remotes = append(remotes, remote{ebpf.IdentityWorld, nil})
					continue
				}
				frags := subtract(b.cidr, b.except)
				for _, p := range cidrOrder {
					if slices.ContainsFunc(frags, func(f netip.Prefix) bool { return f.Bits() <= p.Bits() && f.Contains(p.Addr()) }) {
						remotes = append(remotes, remote{out.CIDRs[p], nil})
					}
				}
			}
			if g.peers.world {
				remotes = append(remotes, remote{ebpf.IdentityWorld, nil})
			}
			for _, id := range uniqueIDs(pods, idOf) {
				remotes = append(remotes, remote{id, group[id][0]})
			}
		}
		for _, sid := range subjects {
			for _, rm := range remotes {
				dstPod := group[sid][0]
				if g.egress {
					dstPod = rm.pod
				}
				if g.egress && rm.id == ebpf.IdentityAny && hasNames(g.ports) {
					// A named port is the destination's: per identity.
					for _, ps := range g.ports {
						if ps.name == "" {
							emitPorts(ps, func(proto uint8, port uint16) {
								emit(ebpf.NewEgressKey(sid, ebpf.IdentityAny, ebpf.Proto(proto), port), g)
							})
							continue
						}
						for id, pods := range group {
							for _, rp := range resolvePorts([]portSpec{ps}, pods[0]) {
								emitPorts(rp, func(proto uint8, port uint16) { emit(ebpf.NewEgressKey(sid, id, ebpf.Proto(proto), port), g) })
							}
						}
					}
					continue
				}
				key := func(proto uint8, port uint16) ebpf.PolicyKey {
					if g.egress {
						return ebpf.NewEgressKey(sid, rm.id, ebpf.Proto(proto), port)
					}
					return ebpf.NewPolicyKey(rm.id, sid, ebpf.Proto(proto), port)
				}
				if len(g.ports) == 0 {
					emit(key(0, 0), g)
					continue
				}
				for _, ps := range resolvePorts(g.ports, dstPod) {
					emitPorts(ps, func(proto uint8, port uint16) { emit(key(proto, port), g) })
				}
			}
		}
	}
	return out, nil
}

// emitPorts calls f for every (protocol, port) of ps: one call with port
// 0 for a whole protocol, one per port of a range.
func emitPorts(ps portSpec, f func(proto uint8, port uint16)) {
	if ps.lo == 0 {
		f(ps.proto, 0)
		return
	}
	for p := uint32(ps.lo); p <= uint32(ps.hi); p++ {
		f(ps.proto, uint16(p))
	}
}

func hasNames(ps []portSpec) bool {
	return slices.ContainsFunc(ps, func(p portSpec) bool { return p.name != "" })
}

func uniqueIDs(pods []*policy.Pod, idOf map[*policy.Pod]ebpf.Identity) []ebpf.Identity {
	var out []ebpf.Identity
	seen := map[ebpf.Identity]bool{}
	for _, p := range pods {
		if id := idOf[p]; !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// alike checks that a and b, two pods of one identity, are the same to
// the policies.
func alike(r *resolved, a, b *policy.Pod) error {
	if a.Namespace != b.Namespace {
		return fmt.Errorf("are in namespaces %s and %s", a.Namespace, b.Namespace)
	}
	if r.usesNames && !slices.Equal(a.Ports, b.Ports) {
		return fmt.Errorf("have different named ports (%v, %v)", a.Ports, b.Ports)
	}
	for _, bl := range r.blocks {
		if bl.contains(a.IP) != bl.contains(b.IP) {
			return fmt.Errorf("ipBlock %s holds one of %s and %s only", bl, a.IP, b.IP)
		}
	}
	return nil
}
