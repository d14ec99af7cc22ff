package bridge

import (
	"context"
	"fmt"
	"net"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/stack"
)

var _ kernel.PathReporter = (*Fabric)(nil)

// ProbePath implements kernel.PathReporter for the hosts, whose Open
// vSwitch forwards where the kernel cannot see (br-int, the patch pair,
// br-bond are no kernel devices): the devices a packet from src to dst
// crosses on src's host, from its veth end to the NIC it leaves on (or to
// dst's veth end on the same host), and on dst's host, from the bond's
// active NIC to dst's veth end, each from the host's own ofproto/trace.
// The leaves and spines are kernel devices the tracepoints see; the
// path has none of them. A packet between two networks is routed by the
// leaves (symmetric IRB): it leaves src's host for the anycast gateway's
// MAC and reaches dst's host from it. Read the tables after traffic
// between the two taught them the MACs.
func (f *Fabric) ProbePath(ctx context.Context, src, dst kernel.Port) (datapath.Path, error) {
	fail := func(err error) (datapath.Path, error) {
		return nil, fmt.Errorf("bridge: probe path %s -> %s: %w", src.Instance, dst.Instance, err)
	}
	sh, err := f.host(src.Host)
	if err != nil {
		return fail(err)
	}
	dh, err := f.host(dst.Host)
	if err != nil {
		return fail(err)
	}
	sn, ok1 := f.network(src)
	dn, ok2 := f.network(dst)
	if !ok1 || !ok2 {
		return fail(fmt.Errorf("networks of %s, %s not both in the model", src.Instance, dst.Instance))
	}
	first, from := dst.MAC, src.MAC
	if sn.Name != dn.Name {
		gw, err := f.gatewayMAC()
		if err != nil {
			return fail(err)
		}
		first, from = gw, gw
	}
	path := datapath.Path{{Node: src.Instance, Device: stack.Port, Kind: datapath.KindNIC, Action: datapath.ActForward}}
	out, _, local, err := sh.v.PathOut(ctx, src.HostIf, src.MAC, first)
	if err != nil {
		return fail(err)
	}
	path = append(path, out...)
	last := datapath.Event{Node: dst.Instance, Device: stack.Port, Kind: datapath.KindNIC, Action: datapath.ActForward}
	switch {
	case len(out) > 0 && out[len(out)-1].Action == datapath.ActDrop:
		return path, nil
	case local != "":
		if local != dst.HostIf {
			return fail(fmt.Errorf("%s delivers to %s, not %s's %s", src.Host, local, dst.Instance, dst.HostIf))
		}
		return append(path, last), nil
	}
	in := dh.nics[0]
	if len(dh.nics) > 1 {
		if in, err = dh.v.ActiveMember(ctx); err != nil || in == "" {
			return fail(fmt.Errorf("%s's active bond member: %q, %v", dst.Host, in, err))
		}
	}
	into, err := dh.v.PathIn(ctx, in, dn.VLAN, from, dst.MAC, dst.HostIf)
	if err != nil {
		return fail(err)
	}
	return append(append(path, into...), last), nil
}

// network is p's network in the model (a pod the CNI plugin attached
// names none: the model knows it).
func (f *Fabric) network(p kernel.Port) (datapath.NetworkSpec, bool) {
	if p.Network == "" {
		return f.model.InstanceNetwork(p.Instance)
	}
	return f.model.Network(p.Network)
}

// gatewayMAC is the anycast gateway's MAC, the same on every leaf.
func (f *Fabric) gatewayMAC() (net.HardwareAddr, error) {
	for _, name := range f.model.Leaves() {
		if l, ok := f.model.Leaf(name); ok {
			return l.State().GatewayMAC.HardwareAddr(), nil
		}
	}
	return nil, fmt.Errorf("the model has no leaf")
}
