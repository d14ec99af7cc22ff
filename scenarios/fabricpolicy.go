package scenarios

import (
	"context"
	"fmt"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/scenarios/policy"
	"github.com/netbed/netbed/scenarios/policycompile"
)

var _ PolicySetter = (*FabricBackend)(nil)

// SetPolicies implements PolicySetter: gen 3 compiles the policies into
// identity-keyed policy-map entries on every node (egress checked on the
// source's node); gen 1's stock host (vlan-stock) into one security
// group per instance, its qbr's iptables chain; a generation without host
// policy (generation.Desc.Policy: gen 1 without the stock host, gen 2)
// says why (Desc.NoPolicy).
func (b *FabricBackend) SetPolicies(_ context.Context, s *policy.Set, c *policy.Cluster) error {
	if !b.desc.Policy {
		return fmt.Errorf("%s: %w: %s", b.env.Generation, policycompile.ErrNoHostPolicy, b.desc.NoPolicy)
	}
	switch f := b.fab.(type) {
	case *ebpf.Fabric:
		ids := map[string]ebpf.Identity{}
		for _, p := range c.Pods {
			ep, _, ok := f.Endpoint(p.Name)
			if !ok {
				return fmt.Errorf("compile for gen 3: pod %s has no endpoint", p.Name)
			}
			ids[p.String()] = ep.Identity
		}
		g, err := policycompile.CompileGen3(s, c, ids)
		if err != nil {
			return err
		}
		return b.rt.Mutate(func() error {
			if err := f.SetCIDRIdentities(g.CIDRs); err != nil {
				return err
			}
			return f.SetCompiledRules(g.Rules, g.Enforced, g.EgressEnforced)
		})
	case *vlan.Fabric:
		g, err := policycompile.CompileGen1(s, c)
		if err != nil {
			return err
		}
		return b.rt.Mutate(func() error {
			for _, p := range c.Pods {
				in, ok := b.insts[p.Name]
				if !ok {
					return fmt.Errorf("security groups of %s: no such instance", p.Name)
				}
				if err := f.Host(in.spec.Host).SetSecurityGroups(p.Name, g.Groups[p.String()]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return fmt.Errorf("%s: the generation has host policy (generation.Desc.Policy) but its fabric %T has no policy compiler here", b.env.Generation, b.fab)
}
