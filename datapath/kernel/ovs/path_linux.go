package ovs

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/topologies"
)

// The paths below are the devices a frame crosses, as the devices
// themselves report it now: Open vSwitch's ofproto/trace (against its
// current MAC tables and bond state) and dpif/show for the bridges and
// patch ports of a host, the kernel's bridge membership for stock
// OpenStack's qbr chain, and the Linux bridges' forwarding databases for
// the switches. They name real devices, one event per device crossing,
// so datapath.Path.Hops counts them by datapath.HopRule. Call them after
// traffic has taught the tables the MACs involved: an unknown MAC is
// flooded (a host path then takes the NIC, a switch walk fails).

func ev(node, dev string, kind datapath.DeviceKind) datapath.Event {
	return datapath.Event{Node: node, Device: dev, Kind: kind, Action: datapath.ActForward}
}

// hostPortDevices returns the devices between p's instance and br-int,
// instance side first: its veth end, and for stock OpenStack qbr, qvb
// and qvo, checked against the kernel's bridge membership.
func (f *Fabric) hostPortDevices(h *host, pl *plugged) ([]datapath.Event, error) {
	out := []datapath.Event{ev(h.name, pl.port.HostIf, datapath.KindVeth)}
	if pl.qbr == "" {
		return out, nil
	}
	nl, err := f.env.Lab.Handle(h.name)
	if err != nil {
		return nil, err
	}
	br, err := nl.LinkByName(pl.qbr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pl.qbr, err)
	}
	for _, d := range []string{pl.port.HostIf, pl.qvb} {
		l, err := nl.LinkByName(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		if l.Attrs().MasterIndex != br.Attrs().Index {
			return nil, fmt.Errorf("%s is not a port of %s", d, pl.qbr)
		}
	}
	return append(out, ev(h.name, pl.qbr, datapath.KindLinuxBridge), ev(h.name, pl.qvb, datapath.KindVeth),
		ev(h.name, pl.qvo, datapath.KindVeth)), nil
}

// ovsTrace runs ofproto/trace on bridge for flow and returns the bridges
// crossed with the patch ports between them, and the ports output to.
func ovsTrace(ctx context.Context, v *vswitch, bridge, flow string) (devs []datapath.Event, outs []DPPort, tr Trace, err error) {
	show, err := v.appctl(ctx, "dpif/show")
	if err != nil {
		return nil, nil, tr, err
	}
	ports, err := ParseDPIFShow(show)
	if err != nil {
		return nil, nil, tr, err
	}
	text, err := v.appctl(ctx, "ofproto/trace", bridge, flow)
	if err != nil {
		return nil, nil, tr, err
	}
	if tr, err = ParseTrace(text); err != nil {
		return nil, nil, tr, err
	}
	for i, b := range tr.Bridges {
		if i > 0 {
			prev := tr.Bridges[i-1]
			for _, p := range ports {
				if p.Bridge == prev && p.Type == "patch" {
					if j := slices.IndexFunc(ports, func(q DPPort) bool { return q.Name == p.Peer && q.Bridge == b }); j >= 0 {
						devs = append(devs, ev(v.node, p.Name, datapath.KindPatch), ev(v.node, p.Peer, datapath.KindPatch))
						break
					}
				}
			}
		}
		devs = append(devs, ev(v.node, b, datapath.KindBridge))
	}
	for _, o := range tr.Outputs {
		for _, p := range ports {
			// A bridge's own (tap) port is not a path: it is the
			// bridge's local interface.
			if p.ODP == o && p.Type != "tap" {
				outs = append(outs, p)
			}
		}
	}
	return devs, outs, tr, nil
}

// PathOut returns the devices a frame from p to the MAC dst crosses on
// p's host, from p's veth end to the NIC it leaves on (or to the local
// instance's veth end it is delivered to), and the NIC ("" when the
// frame stays on the host). A frame OVS drops ends in a drop event.
func (f *Fabric) PathOut(ctx context.Context, p kernel.Port, dst net.HardwareAddr) (path datapath.Path, nic string, err error) {
	h, pl, err := f.plugged(p)
	if err != nil {
		return nil, "", fmt.Errorf("ovs: path out of %s: %w", p.Instance, err)
	}
	path, err = f.hostPortDevices(h, pl)
	if err != nil {
		return nil, "", fmt.Errorf("ovs: path out of %s: %w", p.Instance, err)
	}
	flow := fmt.Sprintf("in_port=%s,dl_src=%s,dl_dst=%s,dl_type=0x0800", pl.ovsPort, p.MAC, dst)
	devs, outs, tr, err := ovsTrace(ctx, h.v, DevBrInt, flow)
	if err != nil {
		return nil, "", fmt.Errorf("ovs: path out of %s: %w", p.Instance, err)
	}
	path = append(path, devs...)
	for _, o := range outs {
		if slices.Contains(h.nics, o.Name) {
			return append(path, ev(h.name, o.Name, datapath.KindNIC)), o.Name, nil
		}
	}
	for _, o := range outs {
		for _, other := range h.ports {
			if other.ovsPort == o.Name {
				local, err := f.hostPortDevices(h, other)
				if err != nil {
					return nil, "", fmt.Errorf("ovs: path out of %s: %w", p.Instance, err)
				}
				slices.Reverse(local)
				return append(path, local...), "", nil
			}
		}
	}
	return dropAt(path, h.name, tr), "", nil
}

// PathIn returns the devices a frame from the MAC src to p crosses on p's
// host after arriving on its NIC nic, tagged with p's network's VLAN: the
// NIC, br-bond, the patch pair, br-int, then p's devices to its veth end.
// A frame arriving on the bond's backup NIC is dropped there.
func (f *Fabric) PathIn(ctx context.Context, p kernel.Port, nic string, src net.HardwareAddr) (datapath.Path, error) {
	h, pl, err := f.plugged(p)
	if err != nil {
		return nil, fmt.Errorf("ovs: path into %s: %w", p.Instance, err)
	}
	path := datapath.Path{ev(h.name, nic, datapath.KindNIC)}
	flow := fmt.Sprintf("in_port=%s,dl_vlan=%d,dl_src=%s,dl_dst=%s,dl_type=0x0800", nic, pl.vid, src, p.MAC)
	devs, outs, tr, err := ovsTrace(ctx, h.v, DevBrBond, flow)
	if err != nil {
		return nil, fmt.Errorf("ovs: path into %s: %w", p.Instance, err)
	}
	path = append(path, devs...)
	for _, o := range outs {
		if o.Name == pl.ovsPort {
			local, err := f.hostPortDevices(h, pl)
			if err != nil {
				return nil, fmt.Errorf("ovs: path into %s: %w", p.Instance, err)
			}
			slices.Reverse(local)
			return append(path, local...), nil
		}
	}
	if len(tr.Bridges) == 1 && slices.Contains(h.nics, nic) {
		if a, err := f.ActiveMember(ctx, h.name); err == nil && a != nic {
			path[len(path)-1].Action, path[len(path)-1].Reason = datapath.ActDrop, datapath.ReasonBondBackup
			return path, nil
		}
	}
	return dropAt(path, h.name, tr), nil
}

func dropAt(path datapath.Path, node string, tr Trace) datapath.Path {
	if len(path) == 0 {
		return path
	}
	last := &path[len(path)-1]
	last.Action, last.Reason, last.Rule = datapath.ActDrop, datapath.ReasonNotForMe, "ovs:"+tr.Actions
	return path
}

func (f *Fabric) plugged(p kernel.Port) (*host, *plugged, error) {
	h, err := f.host(p.Host)
	if err != nil {
		return nil, nil, err
	}
	pl := h.ports[p.Instance]
	if pl == nil {
		return nil, nil, fmt.Errorf("%w: %s is not plugged on %s", ErrUnknownPort, p.Instance, p.Host)
	}
	return h, pl, nil
}

// FDBPort returns the port of node's switch bridge that its forwarding
// database sends mac to ("" when it has not learned mac).
func (f *Fabric) FDBPort(node string, mac net.HardwareAddr) (string, error) {
	if !f.opts.LinuxBridges {
		return f.ovsFDBPort(node, mac)
	}
	nl, err := f.env.Lab.Handle(node)
	if err != nil {
		return "", err
	}
	br, err := nl.LinkByName(DevSwitch)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", node, DevSwitch, err)
	}
	neighs, err := nl.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return "", fmt.Errorf("%s: bridge fdb: %w", node, err)
	}
	for _, n := range neighs {
		if n.MasterIndex != br.Attrs().Index || n.State&netlink.NUD_PERMANENT != 0 || n.HardwareAddr.String() != mac.String() {
			continue
		}
		l, err := nl.LinkByIndex(n.LinkIndex)
		if err != nil {
			return "", fmt.Errorf("%s: fdb port %d: %w", node, n.LinkIndex, err)
		}
		return l.Attrs().Name, nil
	}
	return "", nil
}

// ovsFDBPort is FDBPort for a switch that is an OVS bridge: its MAC
// table (per VLAN; a MAC is unique, so any VLAN's entry will do).
func (f *Fabric) ovsFDBPort(node string, mac net.HardwareAddr) (string, error) {
	v := f.swv[node]
	if v == nil {
		return "", fmt.Errorf("%s: not a switch of the fabric", node)
	}
	ctx := context.Background()
	fdb, err := v.appctl(ctx, "fdb/show", DevSwitch)
	if err != nil {
		return "", err
	}
	of := ""
	for _, line := range strings.Split(fdb, "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 3 && strings.EqualFold(fs[2], mac.String()) {
			of = fs[0]
			break
		}
	}
	if of == "" {
		return "", nil
	}
	show, err := v.appctl(ctx, "dpif/show")
	if err != nil {
		return "", err
	}
	ports, err := ParseDPIFShow(show)
	if err != nil {
		return "", err
	}
	for _, p := range ports {
		if p.Bridge == DevSwitch && p.OFPort == of {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("%s: MAC table port %s of %s not in dpif/show", node, of, mac)
}

// walk follows mac through the switches' forwarding databases, starting
// with a frame arriving at at (a switch's port) or, with at.Iface empty,
// sent by the switch at.Node itself (not listed again). It stops at a
// host (returned with the port the frame arrives on) or at the gateway
// core's routing side (host ""), and lists one event per switch.
func (f *Fabric) walk(at topologies.Endpoint, mac net.HardwareAddr) (datapath.Path, topologies.Endpoint, error) {
	t := f.env.Topology
	var path datapath.Path
	first := at.Iface == ""
	for range len(t.Nodes) + 1 {
		n := t.Node(at.Node)
		if n == nil {
			return nil, at, fmt.Errorf("%s: not a topology node", at.Node)
		}
		if n.Role == topologies.RoleHost {
			return path, at, nil
		}
		if !isSwitch(n.Role) {
			return nil, at, fmt.Errorf("%s: role %s is not part of gen 1's L2 fabric", n.Name, n.Role)
		}
		if !first {
			kind := datapath.KindSwitch
			if n.Role == topologies.RoleCore {
				kind = datapath.KindRouter
			}
			e := ev(n.Name, n.Name, kind)
			e.InPort = at.Iface
			path = append(path, e)
		}
		first = false
		port, err := f.FDBPort(n.Name, mac)
		if err != nil {
			return nil, at, err
		}
		switch {
		case port == "":
			return nil, at, fmt.Errorf("%s has not learned %s", n.Name, mac)
		case n.Name == f.gwNode && (port == DevGWTrunk || strings.HasPrefix(port, PrefixSVI)):
			path[len(path)-1].OutPort = port
			return path, topologies.Endpoint{Node: n.Name}, nil
		}
		if len(path) > 0 {
			path[len(path)-1].OutPort = port
		}
		peer, _, ok := t.Peer(topologies.Endpoint{Node: n.Name, Iface: port})
		if !ok {
			return nil, at, fmt.Errorf("%s:%s has no link in the topology", n.Name, port)
		}
		at = peer
	}
	return nil, at, fmt.Errorf("forwarding loop following %s", mac)
}

// ProbePath returns the devices an IPv4 packet from src to dst crosses,
// from src's vNIC to dst's: src's host (PathOut), the switches to dst's
// host, or to the gateway core and on from it when dst is on another
// network, dst's host (PathIn), each device once per crossing. It reads
// the tables as they are: send traffic between the two first.
func (f *Fabric) ProbePath(ctx context.Context, src, dst kernel.Port) (datapath.Path, error) {
	sn, ok1 := f.model.Network(src.Network)
	dn, ok2 := f.model.Network(dst.Network)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("ovs: probe path %s -> %s: networks %q, %q not both in the model", src.Instance, dst.Instance, src.Network, dst.Network)
	}
	routed := sn.Name != dn.Name
	first := dst.MAC
	if routed {
		first = f.model.GatewayCore().MAC()
	}
	path := datapath.Path{ev(src.Instance, "eth0", datapath.KindNIC)}
	out, nic, err := f.PathOut(ctx, src, first)
	if err != nil {
		return nil, err
	}
	path = append(path, out...)
	if nic == "" {
		return append(path, ev(dst.Instance, "eth0", datapath.KindNIC)), nil
	}
	peer, _, ok := f.env.Topology.Peer(topologies.Endpoint{Node: src.Host, Iface: nic})
	if !ok {
		return nil, fmt.Errorf("ovs: probe path: %s:%s has no link", src.Host, nic)
	}
	sw, end, err := f.walk(peer, first)
	if err != nil {
		return nil, fmt.Errorf("ovs: probe path %s -> %s: %w", src.Instance, dst.Instance, err)
	}
	path = append(path, sw...)
	if routed {
		if end.Node != f.gwNode {
			return nil, fmt.Errorf("ovs: probe path %s -> %s: reached %s, not the gateway core %s", src.Instance, dst.Instance, end.Node, f.gwNode)
		}
		path[len(path)-1].Action = datapath.ActRoute
		if sw, end, err = f.walk(topologies.Endpoint{Node: f.gwNode}, dst.MAC); err != nil {
			return nil, fmt.Errorf("ovs: probe path %s -> %s: from %s: %w", src.Instance, dst.Instance, f.gwNode, err)
		}
		path = append(path, sw...)
	}
	if end.Node != dst.Host {
		return nil, fmt.Errorf("ovs: probe path %s -> %s: reached %s, not %s", src.Instance, dst.Instance, end.Node, dst.Host)
	}
	from := src.MAC
	if routed {
		from = f.model.GatewayCore().MAC()
	}
	in, err := f.PathIn(ctx, dst, end.Iface, from)
	if err != nil {
		return nil, err
	}
	path = append(path, in...)
	return append(path, ev(dst.Instance, "eth0", datapath.KindNIC)), nil
}

// PathOut returns the devices a frame from the MAC src on access port
// dev of a host vswitch (HostConfig) to the MAC dst crosses on the host:
// dev, br-int, the patch pair, br-bond and the NIC it leaves on, that NIC
// (or, when the frame stays on the host, the access port it is delivered
// to, "" otherwise); a frame OVS drops ends in a drop event. Gen 2's
// hosts are gen 1's; Fabric.PathOut is the same for gen 1's own hosts.
func (v *Vswitch) PathOut(ctx context.Context, dev string, src, dst net.HardwareAddr) (path datapath.Path, nic, local string, err error) {
	path = datapath.Path{ev(v.v.node, dev, datapath.KindVeth)}
	flow := fmt.Sprintf("in_port=%s,dl_src=%s,dl_dst=%s,dl_type=0x0800", dev, src, dst)
	devs, outs, tr, err := ovsTrace(ctx, v.v, DevBrInt, flow)
	if err != nil {
		return nil, "", "", fmt.Errorf("ovs: path out of %s: %w", dev, err)
	}
	path = append(path, devs...)
	for _, o := range outs {
		switch o.Bridge {
		case DevBrBond:
			return append(path, ev(v.v.node, o.Name, datapath.KindNIC)), o.Name, "", nil
		case DevBrInt:
			return append(path, ev(v.v.node, o.Name, datapath.KindVeth)), "", o.Name, nil
		}
	}
	return dropAt(path, v.v.node, tr), "", "", nil
}

// PathIn returns the devices a frame tagged vid from the MAC src to the
// MAC dst crosses on a host vswitch after arriving on its NIC nic: the
// NIC, br-bond, the patch pair, br-int, and the access port dev it is
// delivered to; a frame OVS drops ends in a drop event.
func (v *Vswitch) PathIn(ctx context.Context, nic string, vid uint16, src, dst net.HardwareAddr, dev string) (datapath.Path, error) {
	path := datapath.Path{ev(v.v.node, nic, datapath.KindNIC)}
	flow := fmt.Sprintf("in_port=%s,dl_vlan=%d,dl_src=%s,dl_dst=%s,dl_type=0x0800", nic, vid, src, dst)
	devs, outs, tr, err := ovsTrace(ctx, v.v, DevBrBond, flow)
	if err != nil {
		return nil, fmt.Errorf("ovs: path into %s: %w", dev, err)
	}
	path = append(path, devs...)
	for _, o := range outs {
		if o.Name == dev {
			return append(path, ev(v.v.node, dev, datapath.KindVeth)), nil
		}
	}
	return dropAt(path, v.v.node, tr), nil
}

// ActiveMember returns a host vswitch's bond's active NIC ("" when none
// is).
func (v *Vswitch) ActiveMember(ctx context.Context) (string, error) {
	out, err := v.v.appctl(ctx, "bond/show", DevBond)
	if err != nil {
		return "", err
	}
	return activeMember(out), nil
}
