package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/datapath/vpc"
	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/datapath/vpc/ipamd"
	"github.com/netbed/netbed/datapath/vpc/vpcipam"
)

// FloatingIPs is a Backend whose generation gives instances floating IPs
// (vpc: Elastic IPs, one-to-one NAT at the VPC's internet gateway).
type FloatingIPs interface {
	AttachFloatingIP(ctx context.Context, name string) (netip.Addr, error)
	DetachFloatingIP(ctx context.Context, name string) error
}

var _ FloatingIPs = (*FabricBackend)(nil)

// SecurityGroups is a Backend whose generation filters with security
// groups (vpc: on the ENIs, at the VPC router).
type SecurityGroups interface {
	ChangeSecurityGroup(ctx context.Context, c SecurityGroupChange) error
}

var _ SecurityGroups = (*FabricBackend)(nil)

// ChangeSecurityGroup implements SecurityGroups: the rule is added to
// (or removed from) the group in every VPC of the run, while the
// runtime's nodes are paused.
func (b *FabricBackend) ChangeSecurityGroup(ctx context.Context, c SecurityGroupChange) error {
	if len(b.vpcs) == 0 {
		return fmt.Errorf("security_group: %s has no security groups (vpc has); restrict the step with generations: [vpc]", b.env.Generation)
	}
	proto, err := vpc.ParseProto(c.Proto)
	if err != nil {
		return fmt.Errorf("security_group: %w", err)
	}
	group := c.Group
	if group == "" {
		group = vpc.DefaultGroup
	}
	rule := vpc.Rule{Proto: proto, FromPort: c.Port, ToPort: c.Port, CIDR: c.From}
	for _, v := range b.vpcs {
		err := b.rt.Mutate(func() error {
			if c.Action == "remove" {
				return v.fab.RevokeIngress(group, rule)
			}
			return v.fab.AuthorizeIngress(group, rule)
		})
		if err != nil {
			return fmt.Errorf("security_group: %w", err)
		}
	}
	return nil
}

// vpcPlane is what the vpc generation's spawn flow adds to the backend:
// the cloud's model on the runtime's clock, and the IPAM that records
// every pod's address in the controller and puts it on an ENI through the
// cloud (datapath/vpc/vpcipam).
type vpcPlane struct {
	site  string // its site in a hybrid network; "" for the vpc generation's one VPC
	fab   *vpc.Fabric
	cloud *cloud.Model
	ipam  *vpcipam.IPAM
	// last is the floating IP each instance had last, for probes to it
	// after it was detached.
	last map[string]netip.Addr
}

// mutated is the vpc fabric as vpcipam's data plane: every change made
// while the runtime's nodes are paused.
type mutated struct {
	b *FabricBackend
	f *vpc.Fabric
}

func (m mutated) do(f func() error) error { return m.b.rt.Mutate(f) }

func (m mutated) AttachENI(host string, e vpc.ENI) error {
	return m.do(func() error { return m.f.AttachENI(host, e) })
}
func (m mutated) DetachENI(id string) error { return m.do(func() error { return m.f.DetachENI(id) }) }
func (m mutated) AssignAddress(eni string, a netip.Addr) error {
	return m.do(func() error { return m.f.AssignAddress(eni, a) })
}
func (m mutated) UnassignAddress(a netip.Addr) error {
	return m.do(func() error { return m.f.UnassignAddress(a) })
}
func (m mutated) AssociateFloatingIP(pub, priv netip.Addr) error {
	return m.do(func() error { return m.f.AssociateFloatingIP(pub, priv) })
}
func (m mutated) DisassociateFloatingIP(pub netip.Addr) error {
	return m.do(func() error { return m.f.DisassociateFloatingIP(pub) })
}

// startVPC starts a VPC's cloud (its limits from the scenario's
// options, on the runtime's clock) and the IPAM over the controller; the
// networks and nodes come after (vpcNetwork, vpcNodes). f is the VPC's
// fabric: the run's, or a site's of a hybrid network.
func (b *FabricBackend) startVPC(f *vpc.Fabric, site string) error {
	o := b.env.Options.VPC
	if so, ok := b.env.SiteOptions[site]; ok {
		o = so.VPC
	}
	limits, err := cloud.LoadLimits(o.Limits)
	if err != nil {
		return fmt.Errorf("vpc: %w", err)
	}
	var cni *cloud.Limits
	if o.CNILimits != "" {
		if cni, err = cloud.LoadLimits(o.CNILimits); err != nil {
			return fmt.Errorf("vpc: the CNI's limits: %w", err)
		}
	}
	c := cloud.New(b.rt, limits)
	pool := ipamd.Config{WarmENITarget: o.WarmENITarget, WarmIPTarget: o.WarmIPTarget, MinimumIPTarget: o.MinimumIPTarget}
	ipam, err := vpcipam.New(c, limits, b.api, mutated{b: b, f: f}, b.rt, vpcipam.Options{InstanceType: o.InstanceType, Pool: pool, Mark: b.mark, CNILimits: cni})
	if err != nil {
		return err
	}
	b.vpcs = append(b.vpcs, &vpcPlane{site: site, fab: f, cloud: c, ipam: ipam, last: map[string]netip.Addr{}})
	return nil
}

// vpcOf returns the VPC whose VM (or outside network) host is, nil when
// host is in none.
func (b *FabricBackend) vpcOf(host string) *vpcPlane {
	for _, v := range b.vpcs {
		if _, ok := v.fab.Host(host); ok || v.fab.IsOutside(host) {
			return v
		}
	}
	return nil
}

// vpcOfNetwork returns the VPC a network is in: the only one, or its
// site's in a hybrid network; nil for a network of no VPC.
func (b *FabricBackend) vpcOfNetwork(n NetworkSegment) *vpcPlane {
	for _, v := range b.vpcs {
		if v.site == n.Site {
			return v
		}
	}
	return nil
}

// vpcNodes runs an instance for every VM of each VPC, in topology
// order, each with its primary ENI and its warm pool.
func (b *FabricBackend) vpcNodes(ctx context.Context) error {
	for _, v := range b.vpcs {
		for _, h := range v.fab.Hosts() {
			if err := v.ipam.AddNode(ctx, h); err != nil {
				return fmt.Errorf("vpc: %w", err)
			}
		}
	}
	return nil
}

// wireVPC attaches an instance the vpc way. On the network outside the
// VPC: a client, its address the outside network's. On a VM: the IPAM
// gives it its address on an ENI of the node (from the warm pool, from
// the cloud now, or, after a drift, the address it had, moved), the
// VPC CNI wires its veth, /32 route and policy rule, and the controller's
// port goes active.
func (b *FabricBackend) wireVPC(ctx context.Context, v *vpcPlane, in *instance, host string) error {
	name := in.spec.Name
	if v.fab.IsOutside(host) {
		in.spec.IP, in.spec.Gateway, in.spec.MAC = netip.Prefix{}, netip.Addr{}, nil
		if err := b.rt.AddInstance(ctx, b.fab, in.spec); err != nil {
			return fmt.Errorf("attach %s outside the VPC: %w", name, err)
		}
		if inst, ok := v.fab.Instance(name); ok {
			in.spec.IP, in.spec.Gateway, in.spec.MAC = inst.Addr(), inst.Gateway(), inst.MAC()
		}
		b.mark(name, "2-outside-address")
		return b.announce(ctx, in)
	}
	alloc, err := v.ipam.Allocate(ctx, name, host, in.network, in.label)
	if err != nil {
		return err
	}
	// The port is bound to the new node (after a drift: from the old one).
	if _, err := b.api.BindPort(ctx, name, host); err != nil {
		return fmt.Errorf("bind %s to %s: %w", name, host, err)
	}
	if err := b.cost(ctx); err != nil {
		return err
	}
	in.spec.IP, in.spec.Gateway, in.spec.MAC = netip.PrefixFrom(alloc.IP, 32), vpc.PodGateway, vpc.PodMAC(name)
	if err := b.rt.AddInstance(ctx, b.fab, in.spec); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, host, err)
	}
	b.mark(name, "4-cni-veth-route-rule")
	if err := b.announce(ctx, in); err != nil {
		return err
	}
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := b.api.SetUnderlayState(ctx, name, controller.StateUpdate{State: s, Host: host, Reason: "vpc cni"}); err != nil {
			return fmt.Errorf("port of %s: %w", name, err)
		}
		if _, err := b.api.SetOverlayState(ctx, name, controller.StateUpdate{State: s, Host: host, Reason: "cloud: address on an ENI of " + host}); err != nil {
			return fmt.Errorf("port of %s: %w", name, err)
		}
	}
	b.mark(name, "5-port-active")
	return nil
}

// deleteVPC gives a deleted instance's address back (and its floating
// IP) and deletes its port; a client outside the VPC has neither.
func (b *FabricBackend) deleteVPC(ctx context.Context, v *vpcPlane, in *instance) error {
	if v.fab.IsOutside(in.spec.Host) {
		return nil
	}
	return v.ipam.Release(ctx, in.spec.Name)
}

// AttachFloatingIP implements FloatingIPs.
func (b *FabricBackend) AttachFloatingIP(ctx context.Context, name string) (netip.Addr, error) {
	in, ok := b.insts[name]
	if !ok {
		return netip.Addr{}, fmt.Errorf("floating IP for %s: no such instance", name)
	}
	v := b.vpcOf(in.spec.Host)
	if v == nil {
		return netip.Addr{}, fmt.Errorf("floating IP for %s: %w", name, errNoFloatingIPs(b.env.Generation))
	}
	a, err := v.ipam.AttachFloating(ctx, name)
	if err == nil {
		v.last[name] = a
	}
	return a, err
}

// DetachFloatingIP implements FloatingIPs.
func (b *FabricBackend) DetachFloatingIP(ctx context.Context, name string) error {
	in, ok := b.insts[name]
	if !ok {
		return fmt.Errorf("detach floating IP of %s: no such instance", name)
	}
	v := b.vpcOf(in.spec.Host)
	if v == nil {
		return fmt.Errorf("detach floating IP of %s: %w", name, errNoFloatingIPs(b.env.Generation))
	}
	return v.ipam.DetachFloating(ctx, name)
}

func errNoFloatingIPs(g Generation) error {
	return fmt.Errorf("%s has no floating IPs (vpc has); restrict the step with generations: [vpc]", g)
}

// floatingDst is the floating IP a probe to name goes to: the one it
// has, or the one it had (detached: the probe shows it no longer leads
// to the instance).
func (b *FabricBackend) floatingDst(name string) (netip.Addr, error) {
	var v *vpcPlane
	if in, ok := b.insts[name]; ok {
		v = b.vpcOf(in.spec.Host)
	}
	if v == nil {
		return netip.Addr{}, errNoFloatingIPs(b.env.Generation)
	}
	if a, ok := v.ipam.Floating(name); ok {
		return a, nil
	}
	if a, ok := v.last[name]; ok {
		return a, nil
	}
	return netip.Addr{}, errors.New(name + " has never had a floating IP; attach one first (a floating_ip step)")
}

// counters adds the cloud's call counts to a run's: every call, the
// throttled ones, and each provider error code.
func (v *vpcPlane) counters(c map[string]int) {
	st := v.cloud.Stats()
	for _, n := range st.Calls {
		c["cloud_calls"] += n
	}
	for _, n := range st.Throttled {
		c["cloud_throttled"] += n
	}
	for code, n := range st.Errors {
		c["cloud_error:"+string(code)] += n
	}
}
