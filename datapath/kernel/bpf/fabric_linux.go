package bpf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/ebpf/kmaps"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/topologies"
)

// VXLAN ports: the IANA one, and Cilium's own when another device of a
// host's namespace holds it.
const (
	PortVXLAN       = 4789
	PortCiliumVXLAN = 8472
)

// DefaultMaxFlows bounds the flow events Fabric keeps (Options.MaxFlows).
const DefaultMaxFlows = 100000

// Options tune a Fabric. The zero value is the default.
type Options struct {
	// VXLANPort is cilium_vxlan's UDP port; 0 means PortVXLAN, or
	// PortCiliumVXLAN when a socket in any host's namespace holds
	// PortVXLAN.
	VXLANPort int
	// EventsSize is each host's flow event ring buffer in bytes (a power
	// of two, page multiple; 0: kmaps.DefaultEventsSize).
	EventsSize int
	// MaxFlows bounds the events Flows returns (0: DefaultMaxFlows);
	// later ones are counted in LostFlows.
	MaxFlows int
	// MapEntries is the capacity of each host's policy and conntrack
	// maps (0: DefaultMapEntries). The model's are larger (1M, 512k),
	// but a kernel hash map's buckets are allocated when it is created;
	// a Sync that overflows a map fails naming it.
	MapEntries int
}

// DefaultMapEntries is Options.MapEntries' default.
const DefaultMapEntries = 65536

// Fabric is gen 3 (ebpf tunnel and ebpf-direct) on kernel devices; it
// implements kernel.Fabric for a model *ebpf.Fabric.
type Fabric struct {
	opts    Options
	env     kernel.Env
	model   *gen3.Fabric
	hosts   map[string]*host
	order   []string // hosts in topology order
	routers []string
	port    int // cilium_vxlan's UDP port (tunnel mode)
	podMTU  int // the pods' MTU in tunnel mode, else 0
	// tcxState says whether TCX links work here (found at the first
	// attach).
	tcxState int

	undo []func() error // Build's changes, undone in reverse by Close

	mu    sync.Mutex // guards the fields below, shared with the readers
	flows []FlowEvent
	// drops indexes flows: the latest drop verdict by its key.
	drops map[DropKey]int
	lost  uint64
	names map[netip.Addr]string
	wg    sync.WaitGroup
}

var (
	_ kernel.Fabric   = (*Fabric)(nil)
	_ kernel.PodMTUer = (*Fabric)(nil)
)

// VXLANOverhead is what VXLAN over IPv4 adds to a pod's packet.
const VXLANOverhead = 14 + 20 + 8 + 8 // datapath.VXLANOverhead

// PodMTU implements kernel.PodMTUer: in tunnel mode the smallest NIC MTU
// of the hosts less VXLANOverhead (1450 on a 1500-byte underlay, as
// Cilium sets its pods' MTU), so that an encapsulated full-size packet
// still fits the underlay; 0 (the kernel default) with direct routing.
func (f *Fabric) PodMTU() int { return f.podMTU }

// host is one Cilium node in its namespace.
type host struct {
	name   string
	model  *gen3.Node
	h      *netlink.Handle
	km     *kmaps.Maps
	events *ebpf.Map
	rd     *ringbuf.Reader
	// policy runs on every ingress hook, then lxc (from-container) or
	// toEP (bpf_overlay or bpf_host); on an lxc, egress runs first.
	egress, policy, lxc, toEP *ebpf.Program
	ports                     map[string]*plugged // by instance
	ifnames                   map[uint32]string   // guarded by Fabric.mu
	// flushed gets a value when the reader has read everything up to a
	// Flush of rd.
	flushed chan struct{}
}

// plugged is a pod's lxc device with its programs.
type plugged struct {
	port    kernel.Port
	ifindex int
	mac     net.HardwareAddr
	att     []closer
	route   *netlink.Route
}

type closer interface{ Close() error }

// New returns a fabric to Build.
func New(opts Options) *Fabric {
	if opts.MaxFlows == 0 {
		opts.MaxFlows = DefaultMaxFlows
	}
	if opts.MapEntries == 0 {
		opts.MapEntries = DefaultMapEntries
	}
	return &Fabric{opts: opts, hosts: map[string]*host{}, names: map[netip.Addr]string{}}
}

// Mode returns the cross-node mode, known after Build.
func (f *Fabric) Mode() gen3.Mode {
	if f.model == nil {
		return 0
	}
	return f.model.Options().Mode
}

// VXLANPort returns cilium_vxlan's UDP port (tunnel mode, after Build).
func (f *Fabric) VXLANPort() int { return f.port }

// TCX reports whether programs are attached as TCX links (else as
// clsact filters).
func (f *Fabric) TCX() bool { return f.tcxState == tcxPresent }

func (f *Fabric) progress(format string, a ...any) {
	if f.env.Progress != nil {
		f.env.Progress(fmt.Sprintf(format, a...))
	}
}

// Build realises the model on env.Lab: the leaves and spines route the
// underlay (loopbacks, the model's ECMP routes, ip_forward), every host
// gets its node IP on its NICs, a default route to its leaves, its maps,
// programs and devices, and the maps are reconciled with the model. On
// failure Build undoes what it did.
func (f *Fabric) Build(ctx context.Context, env kernel.Env) (err error) {
	m, ok := env.Model.(*gen3.Fabric)
	if !ok {
		return fmt.Errorf("build gen 3 on kernel devices: model is %T, want *ebpf.Fabric", env.Model)
	}
	if env.Lab == nil || env.Topology == nil {
		return errors.New("build gen 3 on kernel devices: no lab or topology")
	}
	f.env, f.model = env, m
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	t := env.Topology
	for _, n := range t.Nodes {
		if _, ok := m.Router(n.Name); ok {
			f.routers = append(f.routers, n.Name)
		} else if _, ok := m.Host(n.Name); ok {
			f.order = append(f.order, n.Name)
		}
	}
	if err := f.buildUnderlay(ctx); err != nil {
		return err
	}
	if m.Options().Mode == gen3.Tunnel {
		if f.port, err = f.vxlanPort(); err != nil {
			return err
		}
	}
	for _, name := range f.order {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.buildHost(name); err != nil {
			return fmt.Errorf("build gen 3 host %s: %w", name, err)
		}
	}
	return f.Sync(ctx)
}

// vxlanPort picks cilium_vxlan's port: Options.VXLANPort, or 4789 unless
// a UDP socket of a host's namespace holds it.
func (f *Fabric) vxlanPort() (int, error) {
	if f.opts.VXLANPort != 0 {
		return f.opts.VXLANPort, nil
	}
	want := fmt.Sprintf(":%04X ", PortVXLAN)
	for _, name := range f.order {
		var taken bool
		err := f.env.Lab.Do(name, func() error {
			b, err := os.ReadFile("/proc/thread-self/net/udp")
			if err != nil {
				return err
			}
			for _, l := range strings.Split(string(b), "\n")[1:] {
				if fs := strings.Fields(l); len(fs) > 1 && strings.HasSuffix(fs[1]+" ", want) {
					taken = true
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("read UDP sockets of %s: %w", name, err)
		}
		if taken {
			f.progress("gen 3: UDP %d is taken on %s; cilium_vxlan uses %d", PortVXLAN, name, PortCiliumVXLAN)
			return PortCiliumVXLAN, nil
		}
	}
	return PortVXLAN, nil
}

// sysctl writes /proc/sys/<path> in node's namespace.
func (f *Fabric) sysctl(node, path, value string) error {
	return f.env.Lab.Do(node, func() error {
		if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s on %s: %w", path, value, node, err)
		}
		return nil
	})
}

func (f *Fabric) buildHost(name string) error {
	n, _ := f.model.Host(name)
	h, err := f.env.Lab.Handle(name)
	if err != nil {
		return err
	}
	hs := &host{name: name, model: n, h: h, ports: map[string]*plugged{}, ifnames: map[uint32]string{}, flushed: make(chan struct{}, 1)}
	f.hosts[name] = hs
	f.undo = append(f.undo, hs.closeBPF)
	if hs.km, err = kmaps.NewSized(kmaps.Capacity{Policy: f.opts.MapEntries, CT: f.opts.MapEntries}); err != nil {
		return err
	}
	if hs.events, err = kmaps.NewEvents(f.opts.EventsSize); err != nil {
		return err
	}
	if hs.policy, err = kmaps.NewPolicyProgramWith(hs.km, kmaps.PolicyConfig{Pass: kmaps.TCActUnspec, Events: hs.events}); err != nil {
		return err
	}
	if hs.egress, err = kmaps.NewEgressProgram(hs.km, kmaps.PolicyConfig{Pass: kmaps.TCActUnspec, Events: hs.events}); err != nil {
		return err
	}
	if hs.rd, err = ringbuf.NewReader(hs.events); err != nil {
		return fmt.Errorf("read flow events: %w", err)
	}
	f.wg.Add(1)
	go f.readFlows(hs)

	var hostDev, netDev gen3.Device
	for _, d := range n.Devices() {
		switch d.Name {
		case gen3.DevCiliumHost:
			hostDev = d
		case gen3.DevCiliumNet:
			netDev = d
		}
	}
	// cilium_host/cilium_net, the gateway on cilium_host.
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: gen3.DevCiliumHost, HardwareAddr: hostDev.MAC},
		PeerName: gen3.DevCiliumNet, PeerHardwareAddr: netDev.MAC}); err != nil {
		return fmt.Errorf("create %s/%s: %w", gen3.DevCiliumHost, gen3.DevCiliumNet, err)
	}
	f.undo = append(f.undo, func() error { return delLink(h, gen3.DevCiliumHost) })
	ch, err := h.LinkByName(gen3.DevCiliumHost)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(ch, &netlink.Addr{IPNet: ipNet(hostDev.Addr)}); err != nil {
		return fmt.Errorf("address %v on %s: %w", hostDev.Addr, gen3.DevCiliumHost, err)
	}
	for _, dev := range []string{gen3.DevCiliumHost, gen3.DevCiliumNet} {
		if err := setUp(h, dev); err != nil {
			return err
		}
	}
	cfg := kmaps.LxcConfig{HostMAC: n.HostMAC(), NodeMaskBits: f.model.Options().NodeMaskBits}
	if c6 := n.Config().NodeCIDR6; c6.IsValid() {
		// Dual-stack: IPv6 pods' packets are the programs' alone (the
		// host's namespace keeps IPv6 off; bpf_lxc answers the pods'
		// neighbour solicitations), so the pods need no route here.
		cfg.NodeMaskBits6 = c6.Bits()
	}
	var hooks []string // devices that get policy + toEP
	if f.model.Options().Mode == gen3.Tunnel {
		if err := h.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: gen3.DevCiliumVXLAN}, FlowBased: true, Port: f.port}); err != nil {
			return fmt.Errorf("create %s (flow-based, UDP %d): %w", gen3.DevCiliumVXLAN, f.port, err)
		}
		f.undo = append(f.undo, func() error { return delLink(h, gen3.DevCiliumVXLAN) })
		if err := setUp(h, gen3.DevCiliumVXLAN); err != nil {
			return err
		}
		vx, err := h.LinkByName(gen3.DevCiliumVXLAN)
		if err != nil {
			return err
		}
		cfg.VXLANIfIndex = vx.Attrs().Index
		for _, c := range n.Config().NICs {
			lk, err := h.LinkByName(c.Name)
			if err != nil {
				return fmt.Errorf("find %s: %w", c.Name, err)
			}
			if m := lk.Attrs().MTU - VXLANOverhead; f.podMTU == 0 || m < f.podMTU {
				f.podMTU = m
			}
		}
		if hs.toEP, err = kmaps.NewOverlayProgram(hs.km); err != nil {
			return err
		}
		hooks = []string{gen3.DevCiliumVXLAN}
	} else {
		if hs.toEP, err = kmaps.NewHostProgram(hs.km); err != nil {
			return err
		}
		for _, c := range n.Config().NICs {
			hooks = append(hooks, c.Name)
		}
	}
	if hs.lxc, err = kmaps.NewFromContainerProgram(hs.km, cfg); err != nil {
		return err
	}
	for _, dev := range hooks {
		lk, err := h.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("find %s: %w", dev, err)
		}
		att, err := f.attach(name, h, lk, hs.policy, hs.toEP)
		if err != nil {
			return err
		}
		f.setIfName(hs, lk.Attrs().Index, dev)
		f.undo = append(f.undo, func() error { return closeAll(att) })
	}
	f.progress("gen 3: %s: cilium_host %v, programs on %s", name, hostDev.Addr, strings.Join(hooks, ", "))
	return nil
}

func (f *Fabric) setIfName(hs *host, idx int, name string) {
	f.mu.Lock()
	hs.ifnames[uint32(idx)] = name
	f.mu.Unlock()
}

// closeBPF stops the host's reader and closes its programs and maps
// (links are closed before: Close runs undo in reverse).
func (hs *host) closeBPF() error {
	var errs []error
	if hs.rd != nil {
		errs = append(errs, hs.rd.Close())
	}
	for _, c := range []closer{hs.egress, hs.policy, hs.lxc, hs.toEP, hs.events} {
		if c != nil && !isNilCloser(c) {
			errs = append(errs, c.Close())
		}
	}
	if hs.km != nil {
		errs = append(errs, hs.km.Close())
	}
	return errors.Join(errs...)
}

func isNilCloser(c closer) bool {
	switch x := c.(type) {
	case *ebpf.Program:
		return x == nil
	case *ebpf.Map:
		return x == nil
	}
	return false
}

func (f *Fabric) readFlows(hs *host) {
	defer f.wg.Done()
	for {
		rec, err := hs.rd.Read()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrClosed):
				return
			case errors.Is(err, ringbuf.ErrFlushed):
				select {
				case hs.flushed <- struct{}{}:
				default:
				}
			}
			continue
		}
		r, src, dst, err := kmaps.ParseFlow(rec.RawSample)
		if err != nil {
			continue
		}
		f.mu.Lock()
		f.record(flowEvent(hs.name, r, src, dst,
			func(i uint32) string { return hs.ifnames[i] },
			func(a netip.Addr) string { return f.names[a] }))
		f.mu.Unlock()
	}
}

// record keeps e, up to Options.MaxFlows (then counts it lost), and
// indexes it when it is a drop. f.mu is held.
func (f *Fabric) record(e FlowEvent) {
	if len(f.flows) >= f.opts.MaxFlows {
		f.lost++
		return
	}
	if e.Verdict == VerdictDropped {
		if f.drops == nil {
			f.drops = map[DropKey]int{}
		}
		f.drops[e.DropKey()] = len(f.flows)
	}
	f.flows = append(f.flows, e)
}

// LastDrop returns the latest drop verdict kept for k: the policy entry
// that decided a drop the kernel reported on k.Node. Call FlushFlows
// first for a drop just seen.
func (f *Fabric) LastDrop(k DropKey) (FlowEvent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.drops[k]
	if !ok {
		return FlowEvent{}, false
	}
	return f.flows[i], true
}

// Flows returns the flow events read so far, in the order each host's
// ring buffer gave them (hosts interleaved as their readers ran).
func (f *Fabric) Flows() []FlowEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flows)
}

// FlushFlows waits until every flow record the hosts' programs wrote
// before the call is in Flows: a caller that saw a packet dropped (the
// program writes its record before it returns the verdict) finds the
// verdict's event without polling. Calls must not overlap.
func (f *Fabric) FlushFlows(ctx context.Context) error {
	for _, name := range f.order {
		hs := f.hosts[name]
		if hs == nil || hs.rd == nil {
			continue
		}
		select {
		case <-hs.flushed: // a stale signal
		default:
		}
		if err := hs.rd.Flush(); err != nil {
			return fmt.Errorf("flush flow events of %s: %w", name, err)
		}
		select {
		case <-hs.flushed:
		case <-ctx.Done():
			return fmt.Errorf("flush flow events of %s: %w", name, ctx.Err())
		}
	}
	return nil
}

// LostFlows is how many events came after Options.MaxFlows were kept.
func (f *Fabric) LostFlows() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

// Plug attaches p's host end (HostIf, kept under its name) as the pod's
// lxc device: the egress and ingress policy checks and bpf_lxc on its
// ingress (what the pod sends), a /32 route to
// the pod, and the pod's endpoint in the host's maps. The model must
// already hold the instance on p.Host.
func (f *Fabric) Plug(ctx context.Context, p kernel.Port) error {
	hs, ok := f.hosts[p.Host]
	if !ok {
		return fmt.Errorf("plug %q: %q is not a gen 3 host of this fabric (hosts: %v)", p.Instance, p.Host, f.order)
	}
	if _, ok := hs.ports[p.Instance]; ok {
		return fmt.Errorf("plug %q on %s: already plugged", p.Instance, p.Host)
	}
	ep, on, ok := f.model.Endpoint(p.Instance)
	if !ok || on != p.Host {
		return fmt.Errorf("plug %q on %s: the model has no such pod there (AddInstance first)", p.Instance, p.Host)
	}
	lk, err := hs.h.LinkByName(p.HostIf)
	if err != nil {
		return fmt.Errorf("plug %q: find %s on %s: %w", p.Instance, p.HostIf, p.Host, err)
	}
	pl := &plugged{port: p, ifindex: lk.Attrs().Index, mac: lk.Attrs().HardwareAddr}
	if pl.att, err = f.attach(p.Host, hs.h, lk, hs.egress, hs.policy, hs.lxc); err != nil {
		return fmt.Errorf("plug %q: %w", p.Instance, err)
	}
	pl.route = &netlink.Route{LinkIndex: pl.ifindex, Dst: ipNet(netip.PrefixFrom(ep.IP, 32)), Scope: netlink.SCOPE_LINK, Protocol: podRouteProto}
	if err := hs.h.RouteReplace(pl.route); err != nil {
		_ = closeAll(pl.att)
		return fmt.Errorf("plug %q: route to %v on %s: %w", p.Instance, ep.IP, p.Host, err)
	}
	hs.ports[p.Instance] = pl
	f.setIfName(hs, pl.ifindex, p.HostIf)
	if err := f.syncHost(hs); err != nil {
		return fmt.Errorf("plug %q: %w", p.Instance, err)
	}
	f.refreshNames()
	return nil
}

// Unplug detaches the pod's programs, removes its route and its endpoint
// from the host's maps. Unplugging an unknown instance succeeds.
func (f *Fabric) Unplug(ctx context.Context, p kernel.Port) error {
	hs, ok := f.hosts[p.Host]
	if !ok {
		return nil
	}
	pl, ok := hs.ports[p.Instance]
	if !ok {
		return nil
	}
	delete(hs.ports, p.Instance)
	err := closeAll(pl.att)
	if e := hs.h.RouteDel(pl.route); e != nil && !isNotFound(e) {
		err = errors.Join(err, fmt.Errorf("remove route to %v: %w", pl.route.Dst, e))
	}
	err = errors.Join(err, f.syncHost(hs))
	if err != nil {
		return fmt.Errorf("unplug %q from %s: %w", p.Instance, p.Host, err)
	}
	return nil
}

// Sync reconciles every host's maps (endpoints of plugged pods, ipcache,
// tunnel, policy) and every router's routes with the model, and expires
// the conntrack entries idle for ebpf.CTTimeout (the agent's GC).
func (f *Fabric) Sync(ctx context.Context) error {
	var errs []error
	for _, name := range f.order {
		hs := f.hosts[name]
		errs = append(errs, f.syncHost(hs))
		if _, err := hs.km.ExpireCT(gen3.CTTimeout); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", name, err))
		}
	}
	errs = append(errs, f.syncRoutes())
	f.refreshNames()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync gen 3 kernel fabric: %w", err)
	}
	return nil
}

// syncHost reconciles a host's maps with the model, and puts back the
// pods' routes (a device set down, as a failed node's are, lost them).
func (f *Fabric) syncHost(hs *host) error {
	byIP := map[[4]byte]*plugged{}
	var errs []error
	for name, pl := range hs.ports {
		if ep, _, ok := f.model.Endpoint(name); ok {
			byIP[ep.IP.As4()] = pl
		}
		if err := hs.h.RouteReplace(pl.route); err != nil && !errors.Is(err, unix.ENETDOWN) {
			errs = append(errs, fmt.Errorf("route to %v: %w", pl.route.Dst, err))
		}
	}
	err := hs.km.Reconcile(hs.model.Maps(), func(k gen3.EndpointKey, v gen3.EndpointInfo) (gen3.EndpointInfo, bool) {
		pl, ok := byIP[k.IP]
		if !ok {
			return v, false
		}
		v.IfIndex = uint32(pl.ifindex)
		v.NodeMAC = [6]byte(pl.mac)
		if len(pl.port.MAC) == 6 {
			v.MAC = [6]byte(pl.port.MAC)
		}
		return v, true
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("host %s: %w", hs.name, err)
	}
	return nil
}

// refreshNames records which pod has which address, for flow events.
func (f *Fabric) refreshNames() {
	names := map[netip.Addr]string{}
	for _, name := range f.order {
		for _, ep := range f.hosts[name].model.Endpoints() {
			names[ep.IP] = ep.Name
			if ep.IP6.IsValid() {
				names[ep.IP6] = ep.Name
			}
		}
	}
	f.mu.Lock()
	f.names = names
	f.mu.Unlock()
}

// Close detaches every program, closes every map, stops the flow
// readers, and removes the devices, addresses and routes Build and Plug
// created. It may be called more than once.
func (f *Fabric) Close() error {
	var errs []error
	for _, name := range f.order {
		hs := f.hosts[name]
		if hs == nil {
			continue
		}
		for inst, pl := range hs.ports {
			errs = append(errs, closeAll(pl.att))
			if err := hs.h.RouteDel(pl.route); err != nil && !isNotFound(err) {
				errs = append(errs, err)
			}
			delete(hs.ports, inst)
		}
	}
	for i := len(f.undo) - 1; i >= 0; i-- {
		errs = append(errs, f.undo[i]())
	}
	f.undo = nil
	f.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close gen 3 kernel fabric: %w", err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func setUp(h *netlink.Handle, name string) error {
	lk, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetUp(lk); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func delLink(h *netlink.Handle, name string) error {
	lk, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := h.LinkDel(lk); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

func closeAll(cs []closer) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		errs = append(errs, cs[i].Close())
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, errNoSuchProcess)
}

// peerAddr is the address a router or host answers ARP for on the link
// behind its interface: a router's loopback, a host's node IP.
func (f *Fabric) peerAddr(node, iface string, loopbacks map[string]netip.Addr) (netip.Addr, string, bool) {
	peer, _, ok := f.env.Topology.Peer(topologies.Endpoint{Node: node, Iface: iface})
	if !ok {
		return netip.Addr{}, "", false
	}
	if a, ok := loopbacks[peer.Node]; ok {
		return a, peer.Node, true
	}
	if h, ok := f.model.Host(peer.Node); ok {
		return h.Config().NodeIP, peer.Node, true
	}
	return netip.Addr{}, "", false
}
