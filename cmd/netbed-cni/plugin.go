package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/netbed/netbed/controller"
)

// plugin carries what the commands need, so that tests can swap the
// controller client and the link layer.
type plugin struct {
	hostname  func() (string, error)
	newClient func(c *NetConf) (portClient, error)
	link      linker
}

func newPlugin() *plugin {
	return &plugin{
		hostname:  os.Hostname,
		newClient: func(c *NetConf) (portClient, error) { return newAPIClient(c) },
		link:      netlinkLinker{},
	}
}

// call is one parsed invocation.
type call struct {
	conf   *NetConf
	id     Identity
	hostIf string
	holder string // local IPAM holder: container ID/ifname
	client portClient
	ctx    context.Context
}

func (p *plugin) prepare(args *skel.CmdArgs) (*call, context.CancelFunc, error) {
	hn, err := p.hostname()
	if err != nil {
		hn = ""
	}
	conf, terr := parseConf(args.StdinData, hn)
	if terr != nil {
		return nil, nil, terr
	}
	cniArgs, err := parseCNIArgs(args.Args)
	if err != nil {
		return nil, nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	if args.IfName == "" {
		return nil, nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_IFNAME is empty", "")
	}
	id, err := identityOf(conf, cniArgs, args.ContainerID, args.IfName)
	if err != nil {
		return nil, nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "set K8S_POD_NAMESPACE/K8S_POD_NAME or NETBED_IDENTITY in CNI_ARGS, or CNI_CONTAINERID")
	}
	c := &call{conf: conf, id: id, hostIf: hostIfName(conf.HostIfPrefix, args.ContainerID, args.IfName), holder: args.ContainerID + "/" + args.IfName}
	if conf.ControllerURL != "" {
		if c.client, err = p.newClient(conf); err != nil {
			return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*conf.timeout)
	c.ctx = ctx
	return c, cancel, nil
}

// registers reports whether the call keeps a port in the controller: always
// in evpn mode, in ebpf mode when a network or label is named.
func (c *call) registers() bool {
	return c.client != nil && (c.conf.Network != "" || c.conf.Label != "")
}

// controllerError turns a controller failure into a CNI error: unreachable
// is "try again later", the rest carry the controller's message.
func controllerError(op string, err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s: controller unreachable: %v", op, err), "check controllerURL and that the controller runs")
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("%s: %v", op, err), "")
}

func (p *plugin) cmdAdd(args *skel.CmdArgs) error {
	res, conf, err := p.add(args)
	if err != nil {
		return err
	}
	return types.PrintResult(res, conf.CNIVersion)
}

func (p *plugin) add(args *skel.CmdArgs) (*types100.Result, *NetConf, error) {
	c, cancel, err := p.prepare(args)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	if args.Netns == "" {
		return nil, nil, types.NewError(types.ErrInvalidNetNS, "CNI_NETNS is empty", "")
	}
	w := wiring{Netns: args.Netns, IfName: args.IfName, HostIf: c.hostIf, MTU: c.conf.MTU,
		Routed: c.conf.Mode == ModeEBPF, Bridge: c.conf.Bridge, CreateBridge: c.conf.CreateBridge}

	var port controller.Port
	var created bool
	if c.conf.Mode == ModeEBPF {
		if !c.conf.nodeCIDR.IsValid() {
			// The block this node already has, else (Cilium's
			// cluster-pool IPAM) one from the operator, here the
			// controller; the rest stays local.
			c.conf.nodeCIDR, _ = newLocalIPAM(c.conf.DataDir, c.conf.Name, netip.Prefix{}).NodeCIDR()
		}
		if !c.conf.nodeCIDR.IsValid() {
			n, _, err := c.client.EnsureNode(c.ctx, c.conf.Host)
			if err != nil {
				return nil, nil, controllerError(fmt.Sprintf("get node %q's pod CIDR", c.conf.Host), err)
			}
			c.conf.nodeCIDR = n.PodCIDR
		}
		addr, gw, err := newLocalIPAM(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR).Allocate(c.holder)
		if err != nil {
			return nil, nil, types.NewError(types.ErrInternal, err.Error(), "")
		}
		w.Addrs = []netip.Prefix{netip.PrefixFrom(addr, 32)}
		w.Gateways = []netip.Addr{gw}
		if c.conf.nodeCIDR6.IsValid() {
			// Dual stack: an IPv6 /128 from the node's IPv6 block too,
			// with its first address as the IPv6 gateway.
			addr6, gw6, err := newLocalIPAM6(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR6).Allocate(c.holder)
			if err != nil {
				_ = newLocalIPAM(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR).Release(c.holder)
				return nil, nil, types.NewError(types.ErrInternal, err.Error(), "")
			}
			w.Addrs = append(w.Addrs, netip.PrefixFrom(addr6, 128))
			w.Gateways = append(w.Gateways, gw6)
		}
		if c.registers() {
			req := controller.PortRequest{Name: c.id.Port, Network: c.conf.Network, Label: c.conf.Label, DeviceOwner: controller.OwnerPod, Host: c.conf.Host, IP: addr,
				Underlay: c.building()}
			if port, created, err = c.client.EnsurePort(c.ctx, req); err != nil {
				return nil, nil, controllerError(fmt.Sprintf("register port %q", c.id.Port), err)
			}
			if !slices.Contains(port.Addrs(), addr) {
				// The identity held an address of another node's CIDR:
				// in generation 3 addresses never leave their node, so it
				// gets this node's.
				if _, err := c.client.DeletePort(c.ctx, port.Name); err != nil && !errors.Is(err, controller.ErrNotFound) {
					return nil, nil, controllerError(fmt.Sprintf("replace port %q", port.Name), err)
				}
				if port, created, err = c.client.EnsurePort(c.ctx, req); err != nil {
					return nil, nil, controllerError(fmt.Sprintf("register port %q", c.id.Port), err)
				}
			}
		}
	} else {
		// The seed's steps 2–4 and 7: get (or create) the port by the
		// pod's identity, bound to this host; a port found bound elsewhere
		// moves here and the CNC moves its leaf configuration.
		req := controller.PortRequest{Name: c.id.Port, Network: c.conf.Network, Label: c.conf.Label, DeviceOwner: controller.OwnerPod, Host: c.conf.Host,
			Underlay: c.building()}
		if port, created, err = c.client.EnsurePort(c.ctx, req); err != nil {
			return nil, nil, controllerError(fmt.Sprintf("get or create port %q", c.id.Port), err)
		}
		if len(port.IPs) == 0 {
			return nil, nil, types.NewError(types.ErrInternal, fmt.Sprintf("port %q has no address", port.Name), "")
		}
		if w.MAC, err = net.ParseMAC(port.MAC); err != nil {
			return nil, nil, types.NewError(types.ErrInternal, fmt.Sprintf("port %q: MAC %q: %v", port.Name, port.MAC, err), "")
		}
		seen := map[int]bool{}
		for _, ip := range port.IPs {
			w.Addrs = append(w.Addrs, netip.PrefixFrom(ip.Address, ip.Prefix.Bits()))
			if ip.Gateway.IsValid() && !seen[ip.Gateway.BitLen()] {
				seen[ip.Gateway.BitLen()] = true
				w.Gateways = append(w.Gateways, ip.Gateway)
			}
		}
	}

	// Step 5–6: the veth pair, configured, attached on the host.
	wireStart := time.Now()
	got, err := p.link.Setup(w)
	wireTook := time.Since(wireStart)
	if err != nil {
		if c.conf.Mode == ModeEBPF {
			_ = newLocalIPAM(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR).Release(c.holder)
			if c.conf.nodeCIDR6.IsValid() {
				_ = newLocalIPAM6(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR6).Release(c.holder)
			}
		}
		if c.registers() {
			c.underlay(port.Name, controller.StateError, err.Error())
			if created && !c.keep() {
				// Nothing else knows this port yet: do not leak it (or
				// its address) if the runtime never calls DEL.
				_, _ = c.client.DeletePort(c.ctx, port.Name)
			}
		}
		return nil, nil, types.NewError(types.ErrInternal, fmt.Sprintf("wire pod %s: %v", c.id.Port, err), "")
	}
	if c.registers() {
		if _, err := c.client.SetUnderlayState(c.ctx, port.Name, controller.StateUpdate{State: controller.StateActive, Host: c.conf.Host,
			Reason: fmt.Sprintf("wired %s <-> %s in %v", c.hostIf, args.IfName, wireTook.Round(time.Microsecond))}); err != nil {
			_ = p.link.Teardown(args.Netns, args.IfName, c.hostIf)
			return nil, nil, controllerError(fmt.Sprintf("report port %q underlay ACTIVE", port.Name), err)
		}
	}

	res := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: c.hostIf, Mac: got.HostMAC.String()},
			{Name: args.IfName, Mac: got.PodMAC.String(), Sandbox: args.Netns},
		},
	}
	gws := map[int]netip.Addr{}
	for _, gw := range w.Gateways {
		gws[gw.BitLen()] = gw
	}
	for _, a := range w.Addrs {
		ipc := &types100.IPConfig{Interface: types100.Int(1), Address: *ipNet(a)}
		if gw, ok := gws[a.Addr().BitLen()]; ok {
			ipc.Gateway = gw.AsSlice()
		}
		res.IPs = append(res.IPs, ipc)
	}
	for _, gw := range w.Gateways {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		res.Routes = append(res.Routes, &types.Route{Dst: *ipNet(def), GW: gw.AsSlice()})
	}
	return res, c.conf, nil
}

// building is the underlay report the port is got or created with: BUILD,
// the plugin starting to wire it (recorded with the binding, one
// controller write fewer than a report of its own).
func (c *call) building() controller.StateUpdate {
	return controller.StateUpdate{State: controller.StateBuild, Host: c.conf.Host, Reason: "wiring " + c.hostIf}
}

// underlay reports the port's underlay state; a failure is not fatal (the
// wiring stands, the host agent reports again on the next event).
func (c *call) underlay(name string, s controller.State, reason string) {
	_, _ = c.client.SetUnderlayState(c.ctx, name, controller.StateUpdate{State: s, Host: c.conf.Host, Reason: reason})
}

// keep reports whether DEL keeps the port.
func (c *call) keep() bool {
	switch c.conf.KeepPort {
	case KeepAlways:
		return true
	case KeepNever:
		return false
	}
	return c.id.Stateful
}

func (p *plugin) cmdDel(args *skel.CmdArgs) error {
	c, cancel, err := p.prepare(args)
	if err != nil {
		return err
	}
	defer cancel()
	if err := p.link.Teardown(args.Netns, args.IfName, c.hostIf); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("unwire pod %s: %v", c.id.Port, err), "")
	}
	if c.conf.Mode == ModeEBPF {
		if err := newLocalIPAM(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR).Release(c.holder); err != nil {
			return types.NewError(types.ErrInternal, err.Error(), "")
		}
		if l6 := newLocalIPAM6(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR6); l6.inUse() {
			if err := l6.Release(c.holder); err != nil {
				return types.NewError(types.ErrInternal, err.Error(), "")
			}
		}
	}
	if !c.registers() {
		return nil
	}
	port, err := c.client.GetPort(c.ctx, c.id.Port)
	if errors.Is(err, controller.ErrNotFound) {
		return nil // never created, or already deleted
	}
	if err != nil {
		return controllerError(fmt.Sprintf("get port %q", c.id.Port), err)
	}
	if port.Host != c.conf.Host {
		// The identity came up on another host since: the port is theirs.
		return nil
	}
	if c.keep() {
		// Keep the port, its address and its binding: when the identity
		// comes back (here or elsewhere) it finds them again, and the CNC
		// moves the leaf configuration then.
		_, err = c.client.SetUnderlayState(c.ctx, port.Name, controller.StateUpdate{State: controller.StateDown, Host: c.conf.Host, Reason: "pod deleted, port kept for " + c.id.Source + " identity"})
		if err != nil && !errors.Is(err, controller.ErrNotFound) && !errors.Is(err, controller.ErrStale) {
			return controllerError(fmt.Sprintf("report port %q underlay DOWN", port.Name), err)
		}
		return nil
	}
	if _, err := c.client.DeletePort(c.ctx, port.Name); err != nil && !errors.Is(err, controller.ErrNotFound) {
		return controllerError(fmt.Sprintf("delete port %q", port.Name), err)
	}
	return nil
}

func (p *plugin) cmdCheck(args *skel.CmdArgs) error {
	c, cancel, err := p.prepare(args)
	if err != nil {
		return err
	}
	defer cancel()
	w := wiring{Netns: args.Netns, IfName: args.IfName, HostIf: c.hostIf, MTU: c.conf.MTU,
		Routed: c.conf.Mode == ModeEBPF, Bridge: c.conf.Bridge}
	var prev *types100.Result
	if c.conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.conf.PluginConf); err != nil {
			return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("prevResult: %v", err), "")
		}
		if prev, err = types100.NewResultFromResult(c.conf.PrevResult); err != nil {
			return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("prevResult: %v", err), "")
		}
		for _, ipc := range prev.IPs {
			if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
				ones, _ := ipc.Address.Mask.Size()
				w.Addrs = append(w.Addrs, netip.PrefixFrom(a.Unmap(), ones))
			}
		}
		for _, ifc := range prev.Interfaces {
			if ifc.Name == args.IfName && ifc.Sandbox != "" && ifc.Mac != "" {
				w.MAC, _ = net.ParseMAC(ifc.Mac)
			}
		}
	}
	if c.registers() {
		port, err := c.client.GetPort(c.ctx, c.id.Port)
		if err != nil {
			return controllerError(fmt.Sprintf("get port %q", c.id.Port), err)
		}
		if port.Host != c.conf.Host {
			return types.NewError(types.ErrInternal, fmt.Sprintf("port %q is bound to host %q, not %q", port.Name, port.Host, c.conf.Host), "")
		}
		if port.UnderlayState != controller.StateActive {
			return types.NewError(types.ErrInternal, fmt.Sprintf("port %q underlay is %s, not ACTIVE", port.Name, port.UnderlayState), "")
		}
		for _, ip := range port.IPs {
			a := netip.PrefixFrom(ip.Address, ip.Prefix.Bits())
			if c.conf.Mode == ModeEBPF {
				a = netip.PrefixFrom(ip.Address, 32)
			}
			if prev != nil && !slices.Contains(w.Addrs, a) {
				return types.NewError(types.ErrInternal, fmt.Sprintf("port %q has address %v, which the runtime's result lacks", port.Name, a), "")
			}
			if prev == nil {
				w.Addrs = append(w.Addrs, a)
			}
		}
		if w.MAC == nil {
			w.MAC, _ = net.ParseMAC(port.MAC)
		}
	} else if prev == nil && c.conf.Mode == ModeEBPF {
		addr, _, ok, err := newLocalIPAM(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR).Lookup(c.holder)
		if err != nil {
			return types.NewError(types.ErrInternal, err.Error(), "")
		}
		if !ok {
			return types.NewError(types.ErrInternal, fmt.Sprintf("container %s holds no address of node CIDR %v", c.holder, c.conf.nodeCIDR), "")
		}
		w.Addrs = append(w.Addrs, netip.PrefixFrom(addr, 32))
		if l6 := newLocalIPAM6(c.conf.DataDir, c.conf.Name, c.conf.nodeCIDR6); l6.inUse() {
			addr6, _, ok, err := l6.Lookup(c.holder)
			if err != nil {
				return types.NewError(types.ErrInternal, err.Error(), "")
			}
			if !ok && c.conf.nodeCIDR6.IsValid() {
				return types.NewError(types.ErrInternal, fmt.Sprintf("container %s holds no address of IPv6 node CIDR %v", c.holder, c.conf.nodeCIDR6), "")
			}
			if ok {
				w.Addrs = append(w.Addrs, netip.PrefixFrom(addr6, 128))
			}
		}
	}
	if err := p.link.Check(w); err != nil {
		return types.NewError(types.ErrInternal, "check: "+err.Error(), "")
	}
	return nil
}

func (p *plugin) cmdStatus(args *skel.CmdArgs) error {
	hn, _ := p.hostname()
	conf, terr := parseConf(args.StdinData, hn)
	if terr != nil {
		return terr
	}
	if conf.ControllerURL != "" {
		cl, err := p.newClient(conf)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
		}
		ctx, cancel := context.WithTimeout(context.Background(), conf.timeout)
		defer cancel()
		if err := cl.Ping(ctx); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("controller %s unreachable: %v", conf.ControllerURL, err), "")
		}
	}
	if conf.Mode == ModeEBPF {
		if err := os.MkdirAll(conf.DataDir, 0o755); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("local IPAM dataDir: %v", err), "")
		}
		probe, err := os.CreateTemp(conf.DataDir, ".status-*")
		if err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("local IPAM dataDir not writable: %v", err), "")
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	return nil
}

// cmdGC (spec 1.1) releases the node-local addresses (ebpf mode) of every
// attachment of this network that the runtime no longer lists as valid.
// Veths are left alone: their names do not say which network they belong
// to, and the runtime DELs attachments it knows of. Controller ports are
// not collected either: kept ports belong to identities, not containers.
func (p *plugin) cmdGC(args *skel.CmdArgs) error {
	hn, _ := p.hostname()
	conf, terr := parseConf(args.StdinData, hn)
	if terr != nil {
		return terr
	}
	if conf.Mode != ModeEBPF {
		return nil
	}
	valid := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[a.ContainerID+"/"+a.IfName] = true
	}
	if err := newLocalIPAM(conf.DataDir, conf.Name, conf.nodeCIDR).GC(valid); err != nil {
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	if l6 := newLocalIPAM6(conf.DataDir, conf.Name, conf.nodeCIDR6); l6.inUse() {
		if err := l6.GC(valid); err != nil {
			return types.NewError(types.ErrInternal, err.Error(), "")
		}
	}
	return nil
}

// supported are the CNI spec versions the plugin speaks.
var supported = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

func main() {
	p := newPlugin()
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.cmdAdd, Del: p.cmdDel, Check: p.cmdCheck, Status: p.cmdStatus, GC: p.cmdGC},
		supported, "netbed-cni: netbed's CNI plugin (evpn: controller IPAM + bridge; ebpf: local IPAM + lxc veth)")
}
