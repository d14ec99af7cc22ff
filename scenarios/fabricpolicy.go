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
// group per instance, its qbr's iptables chain; gen 1 without the stock
// host and gen 2 have no host policy and say so.
func (b *FabricBackend) SetPolicies(_ context.Context, s *policy.Set, c *policy.Cluster) error {
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
		return b.rt.Mutate(func() error { return f.SetCompiledRules(g.Rules, g.Enforced, g.EgressEnforced) })
	case *vlan.Fabric:
		if b.env.Generation != GenVLANStock {
			return fmt.Errorf("%s: %w: Ctrip's gen 1 host removed security groups for speed (the seed); use vlan-stock, stock OpenStack's host with its per-instance iptables chain", b.env.Generation, policycompile.ErrNoHostPolicy)
		}
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
	return fmt.Errorf("%s: %w: gen 2 filters at the hardware firewall beside the core, not per pod (the seed); restrict the step with generations", b.env.Generation, policycompile.ErrNoHostPolicy)
}
