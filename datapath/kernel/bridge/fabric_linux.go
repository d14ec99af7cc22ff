package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/ovs"
	"github.com/netbed/netbed/topologies"
)

var (
	_ kernel.Fabric   = (*Fabric)(nil)
	_ kernel.Resyncer = (*Fabric)(nil)
)

// Route protocols marking what this package installs: the underlay's
// routes (main table) and the tenants' (their tables).
const (
	underlayProto = netlink.RouteProtocol(0x70)
	tenantProto   = netlink.RouteProtocol(0x71)
)

// Fabric is gen 2 on the Linux bridge and VXLAN. A Fabric is used once
// (Build ... Close).
type Fabric struct {
	opts    Options
	env     kernel.Env
	model   *evpn.Fabric
	built   bool
	routers []string // spines and leaves, topology order
	leaves  map[string]*leaf
	order   []string // leaves, topology order
	hosts   map[string]*host
	lo      map[string]netip.Addr
	took    time.Duration
	// underlay is, per spine and leaf, the model's underlay routes
	// (l3.Route.String) its main table was last made to hold: Sync
	// leaves a router whose routes have not changed alone.
	underlay map[string]string
}

type leaf struct {
	name   string
	h      *netlink.Handle
	v      *ovs.Vswitch
	trunks []string            // host-facing interfaces, on br-acc
	access map[string]string   // internal port → its trunk, built
	l2     map[uint32]bool     // L2 VNIs with their bridge and VXLAN device
	l3     map[uint32]bool     // L3 VNIs likewise
	l3v6   map[uint32]bool     // L3 VNIs whose bridge has IPv6 on
	rules  map[string]uint32   // ip rules: ingress bridge → table
	flows  string              // br-acc's OpenFlow rules last applied
	nets   map[uint32][]string // L2 VNI → its access ports, last synced
	w      written
}

// written is what Sync last wrote to a leaf's kernel tables, known to be
// there since: the next Sync writes only where the model differs from
// it, instead of reading every table back (on pod-spawn-storm's 300
// pods, two syncs per spawn that each listed and rewrote every leaf's
// FDB, neighbours and routes were most of a spawn's time). What is
// missing (nil) is read from the kernel: at the first Sync, after a
// write to that table failed, and after Resync.
type written struct {
	// links are the leaf's bridges and VXLAN devices, created and up,
	// and its access ports, each up in the bridge enslaved names.
	links    map[string]netlink.Link
	enslaved map[string]int
	fdb      map[string]map[fdbKey]bool         // VXLAN device → our entries (syncFDB)
	local    map[string]map[evpn.MAC]bool       // access port → its static entries
	neighs   map[string]map[netip.Addr]evpn.MAC // bridge → our neighbour entries
	routes   map[uint32]map[string]tenantRoute  // table → destination → route
}

func newWritten() written {
	return written{links: map[string]netlink.Link{}, enslaved: map[string]int{}, fdb: map[string]map[fdbKey]bool{},
		local: map[string]map[evpn.MAC]bool{}, neighs: map[string]map[netip.Addr]evpn.MAC{}, routes: map[uint32]map[string]tenantRoute{}}
}

// forget drops what w knows of the named devices (removed).
func (w *written) forget(names ...string) {
	for _, n := range names {
		delete(w.links, n)
		delete(w.enslaved, n)
		delete(w.fdb, n)
		delete(w.local, n)
		delete(w.neighs, n)
	}
}

type host struct {
	name  string
	nics  []string
	v     *ovs.Vswitch
	ports map[string]kernel.Port
}

// New returns an unbuilt fabric.
func New(o Options) *Fabric {
	if o.VXLANPort == 0 {
		o.VXLANPort = PortVXLAN
	}
	return &Fabric{opts: o}
}

// BuildTook is how long Build took.
func (f *Fabric) BuildTook() time.Duration { return f.took }

func (f *Fabric) progress(format string, a ...any) {
	if f.env.Progress != nil {
		f.env.Progress(fmt.Sprintf(format, a...))
	}
}

// Build realises the model on env.Lab: the spines' and leaves' underlay,
// a vswitch per host (gen 1's) and per leaf (its access ports), then
// Sync. On error it has undone what it did (as Close does).
func (f *Fabric) Build(ctx context.Context, env kernel.Env) error {
	if f.built {
		return errors.New("bridge: Build called twice")
	}
	m, ok := env.Model.(*evpn.Fabric)
	if !ok {
		return fmt.Errorf("bridge: build: %w (got %T)", ErrModel, env.Model)
	}
	if env.Lab == nil || env.Topology == nil || env.StateDir == "" {
		return errors.New("bridge: build: Env needs Lab, Topology and StateDir")
	}
	if err := ovs.Available(); err != nil {
		return fmt.Errorf("bridge: build: %w", err)
	}
	f.env, f.model, f.built = env, m, true
	f.leaves, f.hosts, f.lo, f.underlay = map[string]*leaf{}, map[string]*host{}, map[string]netip.Addr{}, map[string]string{}
	if err := f.build(ctx); err != nil {
		return errors.Join(err, f.Close())
	}
	return nil
}

func (f *Fabric) build(ctx context.Context) error {
	start := time.Now()
	t := f.env.Topology
	for _, n := range t.Nodes {
		switch n.Role {
		case topologies.RoleSpine, topologies.RoleLeaf, topologies.RoleBorder:
			f.routers = append(f.routers, n.Name)
			if a, ok := f.model.Loopback(n.Name); ok {
				f.lo[n.Name] = a
			}
			if _, ok := f.model.Leaf(n.Name); ok && !slices.Contains(f.env.Foreign, n.Name) {
				h, err := f.env.Lab.Handle(n.Name)
				if err != nil {
					return fmt.Errorf("bridge: build leaf %s: %w", n.Name, err)
				}
				l := &leaf{name: n.Name, h: h, access: map[string]string{}, l2: map[uint32]bool{}, l3: map[uint32]bool{}, l3v6: map[uint32]bool{},
					rules: map[string]uint32{}, nets: map[uint32][]string{}, w: newWritten()}
				for _, ifc := range t.Interfaces(n.Name) {
					if peer, _, ok := t.Peer(topologies.Endpoint{Node: n.Name, Iface: ifc}); ok {
						if pn := t.Node(peer.Node); pn != nil && pn.Role == topologies.RoleHost {
							l.trunks = append(l.trunks, ifc)
						}
					}
				}
				// IPv6 forwarding for the tenants' dual-stack networks
				// (their devices get IPv6 on one by one: enableIPv6).
				if err := kernel.Sysctl(f.env.Lab, n.Name, "net/ipv6/conf/all/forwarding", "1"); err != nil {
					return fmt.Errorf("bridge: build leaf %s: %w", n.Name, err)
				}
				f.leaves[n.Name] = l
				f.order = append(f.order, n.Name)
			}
		case topologies.RoleHost:
			ifs := t.Interfaces(n.Name)
			if len(ifs) == 0 {
				return fmt.Errorf("bridge: build: host %s has no links", n.Name)
			}
			f.hosts[n.Name] = &host{name: n.Name, nics: ifs[:min(2, len(ifs))], ports: map[string]kernel.Port{}}
		}
	}
	if err := f.buildUnderlay(); err != nil {
		return fmt.Errorf("bridge: build underlay: %w", err)
	}
	// The vswitches start together: each takes a few hundred ms.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, name := range f.order {
		l := f.leaves[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := []string{"--", "add-br", DevAccess, "--", "set", "bridge", DevAccess, "datapath_type=netdev", "fail_mode=secure"}
			for _, tr := range l.trunks {
				cfg = append(cfg, "--", "add-port", DevAccess, tr)
			}
			v, err := ovs.StartVswitch(ctx, f.env.Lab, name, filepath.Join(f.env.StateDir, name), cfg...)
			if err != nil {
				fail(fmt.Errorf("bridge: build leaf %s: %w", name, err))
				return
			}
			mu.Lock()
			l.v = v
			mu.Unlock()
		}()
	}
	for _, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := ovs.StartVswitch(ctx, f.env.Lab, h.name, filepath.Join(f.env.StateDir, h.name), ovs.HostConfig(h.nics)...)
			if err != nil {
				fail(fmt.Errorf("bridge: build host %s: %w", h.name, err))
				return
			}
			mu.Lock()
			h.v = v
			mu.Unlock()
			if len(h.nics) == 2 {
				if err := v.SettleBond(ctx, h.nics[0]); err != nil {
					fail(fmt.Errorf("bridge: build host %s: %w", h.name, err))
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := f.Sync(ctx); err != nil {
		return err
	}
	f.took = time.Since(start)
	f.progress("bridge: %d leaves, %d spines and %d hosts built in %v", len(f.leaves), len(f.routers)-len(f.leaves), len(f.hosts),
		f.took.Round(time.Millisecond))
	return nil
}

// buildUnderlay turns on routing on every spine and leaf and puts its
// loopback on lo; syncUnderlay installs the routes.
func (f *Fabric) buildUnderlay() error {
	for _, name := range f.routers {
		if err := kernel.RouteNode(f.env.Lab, name); err != nil {
			return err
		}
		a, ok := f.lo[name]
		if !ok {
			return fmt.Errorf("%s has no loopback in the model", name)
		}
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			return err
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("%s: find lo: %w", name, err)
		}
		if err := h.AddrReplace(lo, &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(a, 32))}); err != nil {
			return fmt.Errorf("%s: loopback %v: %w", name, a, err)
		}
	}
	return nil
}

// syncUnderlay makes every spine's and leaf's underlay routes the
// model's now (links down in the model are routed around).
func (f *Fabric) syncUnderlay() error {
	t := f.env.Topology
	peer := func(node, iface string) (netip.Addr, bool) {
		p, _, ok := t.Peer(topologies.Endpoint{Node: node, Iface: iface})
		if !ok {
			return netip.Addr{}, false
		}
		a, ok := f.lo[p.Node]
		return a, ok
	}
	var errs []error
	for _, name := range f.routers {
		rs := f.model.UnderlayRoutes(name)
		var fp strings.Builder
		for _, r := range rs {
			fp.WriteString(r.String() + "\n")
		}
		if prev, ok := f.underlay[name]; ok && prev == fp.String() {
			continue
		}
		delete(f.underlay, name)
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want, err := kernel.ModelRoutes(h, t, name, rs, underlayProto, peer)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := kernel.SyncRoutes(h, name, underlayProto, want); err != nil {
			errs = append(errs, err)
			continue
		}
		f.underlay[name] = fp.String()
	}
	return errors.Join(errs...)
}

// Sync makes the underlay routes and every leaf's devices, FDB and
// neighbour entries, rules and tenant routes match the model. It writes
// only what changed in the model since the last Sync (see written).
func (f *Fabric) Sync(ctx context.Context) error {
	if !f.built {
		return fmt.Errorf("bridge: sync: %w", ErrNotBuilt)
	}
	errs := []error{f.syncUnderlay()}
	for _, name := range f.order {
		if err := f.syncLeaf(ctx, f.leaves[name]); err != nil {
			errs = append(errs, fmt.Errorf("leaf %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bridge: sync: %w", err)
	}
	return nil
}

// Resync implements kernel.Resyncer: Sync, reading every table of the
// fabric's from the kernel first.
func (f *Fabric) Resync(ctx context.Context) error {
	if !f.built {
		return fmt.Errorf("bridge: resync: %w", ErrNotBuilt)
	}
	clear(f.underlay)
	for _, l := range f.leaves {
		l.w = newWritten()
	}
	return f.Sync(ctx)
}

// syncLeaf programs a leaf from its tables.
func (f *Fabric) syncLeaf(ctx context.Context, l *leaf) error {
	ml, _ := f.model.Leaf(l.name)
	st := ml.State()
	ifaces := f.env.Topology.Interfaces(l.name)
	// Access ports: one internal port per (port, VLAN) mapped to a VNI.
	want := map[string]string{} // internal port → trunk
	nets := map[uint32][]string{}
	var flows strings.Builder
	for _, n := range st.Networks {
		for _, a := range n.Access {
			if a.Port < 0 || a.Port >= len(ifaces) {
				return fmt.Errorf("access port %d out of range", a.Port)
			}
			dev, trunk := AccessName(a.Port, a.VLAN), ifaces[a.Port]
			want[dev] = trunk
			nets[n.VNI] = append(nets[n.VNI], dev)
			fmt.Fprintf(&flows, "priority=100,in_port=%s,dl_vlan=%d,actions=strip_vlan,output:%s\n", trunk, a.VLAN, dev)
			fmt.Fprintf(&flows, "priority=100,in_port=%s,actions=mod_vlan_vid:%d,output:%s\n", dev, a.VLAN, trunk)
		}
	}
	if err := f.syncAccess(ctx, l, want, flows.String()); err != nil {
		return err
	}
	var errs []error
	for _, n := range st.Networks {
		if err := f.syncNetwork(l, st, n, nets[n.VNI]); err != nil {
			errs = append(errs, fmt.Errorf("vni %d: %w", n.VNI, err))
		}
	}
	for _, v := range st.VRFs {
		if err := f.syncVRF(l, st, v); err != nil {
			errs = append(errs, fmt.Errorf("l3 vni %d: %w", v.L3VNI, err))
		}
	}
	errs = append(errs, f.syncRules(l, st))
	// What the leaf no longer carries goes.
	keep := map[uint32]bool{}
	for _, n := range st.Networks {
		keep[n.VNI] = true
	}
	for vni := range l.l2 {
		if !keep[vni] {
			errs = append(errs, delLinks(l.h, VXLANName(vni), BridgeName(vni)))
			l.w.forget(VXLANName(vni), BridgeName(vni))
			delete(l.l2, vni)
		}
	}
	keep = map[uint32]bool{}
	for _, v := range st.VRFs {
		keep[v.L3VNI] = true
	}
	for vni := range l.l3 {
		if !keep[vni] {
			errs = append(errs, delLinks(l.h, VXLANName(vni), BridgeName(vni)), f.flushTable(l, vni))
			l.w.forget(VXLANName(vni), BridgeName(vni))
			delete(l.w.routes, vni)
			delete(l.l3, vni)
			delete(l.l3v6, vni)
		}
	}
	l.nets = nets
	return errors.Join(errs...)
}

// syncAccess makes br-acc's internal ports and flows want.
func (f *Fabric) syncAccess(ctx context.Context, l *leaf, want map[string]string, flows string) error {
	var args []string
	for dev := range want {
		if _, ok := l.access[dev]; !ok {
			args = append(args, "--", "add-port", DevAccess, dev, "--", "set", "interface", dev, "type=internal")
		}
	}
	for dev := range l.access {
		if _, ok := want[dev]; !ok {
			args = append(args, "--", "--if-exists", "del-port", DevAccess, dev)
			l.w.forget(dev)
		}
	}
	if len(args) > 0 {
		if _, err := l.v.Vsctl(ctx, args...); err != nil {
			return fmt.Errorf("access ports: %w", err)
		}
	}
	for dev := range want {
		if _, ok := l.access[dev]; ok {
			continue
		}
		if err := f.env.Lab.Do(l.name, func() error { return ovs.NoTxChecksum(dev) }); err != nil {
			return fmt.Errorf("access port %s: %w", dev, err)
		}
	}
	l.access = want
	if flows == l.flows {
		return nil
	}
	file := filepath.Join(f.env.StateDir, l.name, "access.flows")
	if err := os.WriteFile(file, []byte(flows), 0o644); err != nil {
		return err
	}
	if _, err := l.v.Ofctl(ctx, "replace-flows", DevAccess, file); err != nil {
		return fmt.Errorf("access flows: %w", err)
	}
	l.flows = flows
	return nil
}

// ensureBridge creates (once) the bridge and VXLAN device of vni, the
// bridge with MAC mac, and returns both.
func (f *Fabric) ensureBridge(l *leaf, st evpn.LeafState, vni uint32, mac evpn.MAC, suppress bool) (br, vx netlink.Link, err error) {
	h := l.h
	if br, vx = l.w.links[BridgeName(vni)], l.w.links[VXLANName(vni)]; br != nil && vx != nil {
		return br, vx, nil
	}
	if br, err = h.LinkByName(BridgeName(vni)); err != nil {
		// No multicast snooping: neighbour solicitations (to
		// solicited-node groups) are flooded as ARP requests are.
		snooping := false
		b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName(vni), HardwareAddr: mac.HardwareAddr()},
			MulticastSnooping: &snooping}
		if err := h.LinkAdd(b); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", BridgeName(vni), err)
		}
		if br, err = h.LinkByName(BridgeName(vni)); err != nil {
			return nil, nil, err
		}
	}
	if vx, err = h.LinkByName(VXLANName(vni)); err != nil {
		x := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: VXLANName(vni), MasterIndex: br.Attrs().Index},
			VxlanId: int(vni), SrcAddr: st.VTEP.AsSlice(), Port: f.opts.VXLANPort, Learning: false, TTL: 64}
		if err := h.LinkAdd(x); err != nil {
			return nil, nil, fmt.Errorf("create %s (vni %d, local %v, port %d): %w", VXLANName(vni), vni, st.VTEP, f.opts.VXLANPort, err)
		}
		if vx, err = h.LinkByName(VXLANName(vni)); err != nil {
			return nil, nil, err
		}
		if err := h.LinkSetLearning(vx, false); err != nil {
			return nil, nil, fmt.Errorf("%s: learning off: %w", VXLANName(vni), err)
		}
		if suppress {
			if err := h.LinkSetBrNeighSuppress(vx, true); err != nil {
				return nil, nil, fmt.Errorf("%s: neigh_suppress on: %w", VXLANName(vni), err)
			}
		}
	}
	for _, lk := range []netlink.Link{vx, br} {
		if lk.Attrs().Flags&net.FlagUp == 0 {
			if err := h.LinkSetUp(lk); err != nil {
				return nil, nil, fmt.Errorf("set %s up: %w", lk.Attrs().Name, err)
			}
		}
	}
	l.w.links[BridgeName(vni)], l.w.links[VXLANName(vni)] = br, vx
	return br, vx, nil
}

// syncNetwork programs one L2 VNI: its bridge with the anycast gateway,
// its VXLAN port, its access ports, and the remote MACs, flood list and
// ARP bindings of the leaf's tables.
func (f *Fabric) syncNetwork(l *leaf, st evpn.LeafState, n evpn.NetworkState, access []string) error {
	h := l.h
	br, vx, err := f.ensureBridge(l, st, n.VNI, st.GatewayMAC, true)
	if err != nil {
		return err
	}
	if !l.l2[n.VNI] {
		gw := &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))}
		if err := h.AddrReplace(br, gw); err != nil {
			return fmt.Errorf("gateway %v on %s: %w", gw.IPNet, BridgeName(n.VNI), err)
		}
		if n.Gateway6.IsValid() {
			if err := f.enableIPv6(l, BridgeName(n.VNI)); err != nil {
				return err
			}
			gw6 := &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits())), Flags: unix.IFA_F_NODAD}
			if err := h.AddrReplace(br, gw6); err != nil {
				return fmt.Errorf("gateway %v on %s: %w", gw6.IPNet, BridgeName(n.VNI), err)
			}
		}
		l.l2[n.VNI] = true
	}
	for _, dev := range access {
		if l.w.enslaved[dev] == br.Attrs().Index {
			continue
		}
		lk, err := h.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("access port %s: %w", dev, err)
		}
		if lk.Attrs().MasterIndex != br.Attrs().Index {
			if err := h.LinkSetMasterByIndex(lk, br.Attrs().Index); err != nil {
				return fmt.Errorf("access port %s into %s: %w", dev, BridgeName(n.VNI), err)
			}
		}
		if lk.Attrs().Flags&net.FlagUp == 0 {
			if err := h.LinkSetUp(lk); err != nil {
				return fmt.Errorf("set %s up: %w", dev, err)
			}
		}
		l.w.links[dev], l.w.enslaved[dev] = lk, br.Attrs().Index
	}
	remote := map[evpn.MAC]bool{}
	var fdb []fdbEntry
	for _, r := range n.Remote {
		remote[r.MAC] = true
		fdb = append(fdb, fdbEntry{mac: r.MAC, dst: r.VTEP})
	}
	for _, vtep := range n.Flood {
		fdb = append(fdb, fdbEntry{dst: vtep})
	}
	// The MACs bound on access ports (the controller's bindings), as
	// static entries: the bridge never floods a frame for them.
	local := map[string][]evpn.MAC{}
	for _, dev := range access {
		local[dev] = nil
	}
	for _, m := range n.Local {
		dev := AccessName(m.Port, m.VLAN)
		if _, ok := local[dev]; ok {
			local[dev] = append(local[dev], m.MAC)
		}
	}
	var errs []error
	for dev, macs := range local {
		lk := l.w.links[dev]
		if lk == nil {
			continue
		}
		var err error
		l.w.local[dev], err = syncLocalFDB(h, lk, macs, l.w.local[dev])
		errs = append(errs, err)
	}
	var neighs []neighEntry
	for _, a := range n.ARP {
		if remote[a.MAC] {
			neighs = append(neighs, neighEntry{ip: a.IP, mac: a.MAC})
		}
	}
	l.w.fdb[vx.Attrs().Name], err = syncFDB(h, vx, fdb, l.w.fdb[vx.Attrs().Name])
	errs = append(errs, err)
	l.w.neighs[br.Attrs().Name], err = f.syncNeighs(l, br, neighs, l.w.neighs[br.Attrs().Name])
	return errors.Join(append(errs, err)...)
}

// bridgeEntry reports whether n, from a dump of a bridge port's FDB, is
// the bridge's entry (bridge fdb's "master") rather than the port
// device's own ("self"): the kernel reports the bridge's with the
// master's index (NDA_MASTER) and without NTF_MASTER, the flag a request
// sets to address the bridge.
func bridgeEntry(n netlink.Neigh) bool {
	return n.MasterIndex != 0 || n.Flags&netlink.NTF_MASTER != 0
}

// SyncLocalFDB makes dev's static bridge entries exactly macs (a MAC
// bound on another port is moved there by the replace): a leaf's locally
// bound MACs on its access ports, as netbed's kernel leaves and an FRR
// leaf's access side hold them.
func SyncLocalFDB(h *netlink.Handle, dev netlink.Link, macs []evpn.MAC) error {
	_, err := syncLocalFDB(h, dev, macs, nil)
	return err
}

// syncLocalFDB is SyncLocalFDB with dev's static entries as the last
// call left them (cur; nil: read from the kernel). It returns the
// entries dev now holds, nil when a write failed.
func syncLocalFDB(h *netlink.Handle, dev netlink.Link, macs []evpn.MAC, cur map[evpn.MAC]bool) (map[evpn.MAC]bool, error) {
	idx := dev.Attrs().Index
	if cur == nil {
		have, err := h.NeighList(idx, unix.AF_BRIDGE)
		if err != nil {
			return nil, fmt.Errorf("list fdb of %s: %w", dev.Attrs().Name, err)
		}
		cur = map[evpn.MAC]bool{}
		for _, n := range have {
			if bridgeEntry(n) && n.State&netlink.NUD_NOARP != 0 && len(n.HardwareAddr) == 6 {
				cur[evpn.MACOf(n.HardwareAddr)] = true
			}
		}
	}
	want := map[evpn.MAC]bool{}
	for _, m := range macs {
		want[m] = true
	}
	now := maps.Clone(want)
	var errs []error
	for m := range cur {
		if want[m] {
			delete(want, m)
			continue
		}
		// A MAC bound on another port since is not found here: the
		// kernel removes an entry only from the port it is on.
		if err := h.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
			HardwareAddr: m.HardwareAddr()}); err != nil && !kernel.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove fdb %s dev %s: %w", m, dev.Attrs().Name, err))
		}
	}
	for m := range want {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_NOARP,
			Flags: netlink.NTF_MASTER, HardwareAddr: m.HardwareAddr()}); err != nil {
			errs = append(errs, fmt.Errorf("fdb %s dev %s master static: %w", m, dev.Attrs().Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return now, nil
}

// syncVRF programs one tenant: its L3 VNI bridge (router MAC) and VXLAN
// device, the remote VTEPs' router MACs, and its table.
func (f *Fabric) syncVRF(l *leaf, st evpn.LeafState, v evpn.VRFState) error {
	h := l.h
	br, vx, err := f.ensureBridge(l, st, v.L3VNI, st.RouterMAC, false)
	if err != nil {
		return err
	}
	v6 := ipv6Of(v)
	if v6 && !l.l3v6[v.L3VNI] {
		if err := f.enableIPv6(l, BridgeName(v.L3VNI)); err != nil {
			return err
		}
		l.l3v6[v.L3VNI] = true
	}
	l.l3[v.L3VNI] = true
	var fdb []fdbEntry
	var neighs []neighEntry
	for _, r := range v.RouterMACs {
		fdb = append(fdb, fdbEntry{mac: r.MAC, dst: r.VTEP})
		neighs = append(neighs, neighEntry{ip: r.VTEP, mac: r.MAC})
		if v6 {
			// IPv6 routes' next hop: the VTEP's mapped address.
			neighs = append(neighs, neighEntry{ip: mapped(r.VTEP), mac: r.MAC})
		}
	}
	var errs []error
	var err1, err2 error
	l.w.fdb[vx.Attrs().Name], err1 = syncFDB(h, vx, fdb, l.w.fdb[vx.Attrs().Name])
	l.w.neighs[br.Attrs().Name], err2 = f.syncNeighs(l, br, neighs, l.w.neighs[br.Attrs().Name])
	errs = append(errs, err1, err2)
	table := int(v.L3VNI)
	var want []*netlink.Route
	var want6 []route6
	for _, c := range v.Connected {
		lk, err := h.LinkByName(BridgeName(c.VNI))
		if err != nil {
			continue // not carried here (yet)
		}
		scope := netlink.SCOPE_LINK
		if c.Prefix.Addr().Is6() {
			scope = netlink.SCOPE_UNIVERSE // IPv6 routes have no scope
		}
		want = append(want, &netlink.Route{Dst: kernel.IPNet(c.Prefix), LinkIndex: lk.Attrs().Index, Scope: scope,
			Table: table, Protocol: tenantProto})
	}
	via := func(dst netip.Prefix, vteps []netip.Addr) *netlink.Route {
		rt := &netlink.Route{Dst: kernel.IPNet(dst), Table: table, Protocol: tenantProto}
		for _, vt := range vteps {
			rt.MultiPath = append(rt.MultiPath, &netlink.NexthopInfo{LinkIndex: br.Attrs().Index, Gw: vt.AsSlice(), Flags: int(netlink.FLAG_ONLINK)})
		}
		if len(rt.MultiPath) == 1 {
			nh := rt.MultiPath[0]
			rt.MultiPath, rt.LinkIndex, rt.Gw, rt.Flags = nil, nh.LinkIndex, nh.Gw, nh.Flags
		}
		return rt
	}
	for _, hr := range v.Hosts {
		if hr.IP.Is6() {
			want6 = append(want6, route6{dst: netip.PrefixFrom(hr.IP, 128), table: table, dev: br.Attrs().Index, vteps: []netip.Addr{hr.VTEP}})
			continue
		}
		want = append(want, via(netip.PrefixFrom(hr.IP, 32), []netip.Addr{hr.VTEP}))
	}
	for _, p := range v.Prefixes {
		if p.Prefix.Addr().Is6() {
			want6 = append(want6, route6{dst: p.Prefix, table: table, dev: br.Attrs().Index, vteps: p.VTEPs})
			continue
		}
		want = append(want, via(p.Prefix, p.VTEPs))
	}
	// Nothing falls through to the main (underlay) table.
	want = append(want, defaultRoute(netlink.FAMILY_V4, table))
	if v6 {
		want = append(want, defaultRoute(netlink.FAMILY_V6, table))
	}
	// Written are the routes that differ from what the last sync
	// wrote; one over a link that is down is left for the next sync.
	prev := l.w.routes[v.L3VNI]
	delete(l.w.routes, v.L3VNI)
	now := map[string]tenantRoute{}
	keep := map[string]bool{}
	for _, rt := range want {
		key := rt.Dst.String()
		keep[key] = true
		tr := tenantRoute{spec: routeSpec(rt), del: netlink.Route{Dst: rt.Dst, Table: table, Protocol: tenantProto, Type: rt.Type}}
		if p, ok := prev[key]; ok && p.spec == tr.spec {
			now[key] = tr
			continue
		}
		switch err := h.RouteReplace(rt); {
		case err == nil:
			now[key] = tr
		case !errors.Is(err, unix.ENETDOWN):
			errs = append(errs, fmt.Errorf("route %v in table %d: %w", rt.Dst, table, err))
		}
	}
	if len(want6) > 0 {
		err := f.env.Lab.Do(l.name, func() error {
			var errs []error
			for _, r := range want6 {
				key := r.dst.String()
				keep[key] = true
				tr := tenantRoute{spec: fmt.Sprintf("%v dev %d via %v", r.dst, r.dev, r.vteps),
					del: netlink.Route{Dst: kernel.IPNet(r.dst), Table: table, Protocol: tenantProto, Family: netlink.FAMILY_V6}}
				if p, ok := prev[key]; ok && p.spec == tr.spec {
					now[key] = tr
					continue
				}
				switch err := replaceRoute6(r); {
				case err == nil:
					now[key] = tr
				case !errors.Is(err, unix.ENETDOWN):
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		})
		errs = append(errs, err)
	}
	if prev != nil {
		for key, p := range prev {
			if !keep[key] {
				if err := delRoute(h, p.del); err != nil {
					errs = append(errs, fmt.Errorf("remove route %v from table %d: %w", key, table, err))
				}
			}
		}
	} else {
		have, err := tableRoutes(h, table)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, rt := range have {
			if !keep[dst(rt).String()] {
				if err := delRoute(h, rt); err != nil {
					errs = append(errs, fmt.Errorf("remove route %v from table %d: %w", dst(rt), table, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.w.routes[v.L3VNI] = now
	return nil
}

// tenantRoute is a route Sync wrote to a tenant's table: spec says what
// it was (routeSpec), del is what removes it.
type tenantRoute struct {
	spec string
	del  netlink.Route
}

// routeSpec is what of rt Sync writes: two routes of one destination
// with the same spec are the same route.
func routeSpec(rt *netlink.Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v type %d scope %d dev %d via %v flags %d", rt.Dst, rt.Type, rt.Scope, rt.LinkIndex, rt.Gw, rt.Flags)
	for _, nh := range rt.MultiPath {
		fmt.Fprintf(&b, " nexthop dev %d via %v flags %d", nh.LinkIndex, nh.Gw, nh.Flags)
	}
	return b.String()
}

// dst is rt's destination (a default route's may be nil).
func dst(rt netlink.Route) *net.IPNet {
	if rt.Dst != nil {
		return rt.Dst
	}
	if rt.Family == netlink.FAMILY_V6 {
		return kernel.IPNet(netip.MustParsePrefix("::/0"))
	}
	return kernel.IPNet(netip.MustParsePrefix("0.0.0.0/0"))
}

// delRoute removes a tenant route by its destination, table and
// protocol: an IPv6 route's IPv4-mapped next hops are nothing
// vishvananda/netlink can encode.
func delRoute(h *netlink.Handle, rt netlink.Route) error {
	del := &netlink.Route{Dst: dst(rt), Table: rt.Table, Protocol: rt.Protocol, Type: rt.Type}
	if err := h.RouteDel(del); err != nil && !kernel.IsNotFound(err) {
		return err
	}
	return nil
}

// tableRoutes lists the tenant routes of table, both families.
func tableRoutes(h *netlink.Handle, table int) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(family, &netlink.Route{Table: table, Protocol: tenantProto},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("list table %d: %w", table, err)
		}
		for _, rt := range rs {
			rt.Family = family
			out = append(out, rt)
		}
	}
	return out, nil
}

func (f *Fabric) flushTable(l *leaf, table uint32) error {
	rs, err := tableRoutes(l.h, int(table))
	if err != nil {
		return err
	}
	var errs []error
	for _, rt := range rs {
		errs = append(errs, delRoute(l.h, rt))
	}
	return errors.Join(errs...)
}

// syncRules makes the leaf's ip rules send what enters a tenant's
// bridges (its subnets' and its L3 VNI's) to the tenant's table.
func (f *Fabric) syncRules(l *leaf, st evpn.LeafState) error {
	want := map[string]uint32{}
	for _, v := range st.VRFs {
		want[BridgeName(v.L3VNI)] = v.L3VNI
		for _, c := range v.Connected {
			if l.l2[c.VNI] {
				want[BridgeName(c.VNI)] = v.L3VNI
			}
		}
	}
	var errs []error
	for dev, table := range l.rules {
		if want[dev] != table {
			errs = append(errs, delRules(l.h, dev, table))
			delete(l.rules, dev)
		}
	}
	for dev, table := range want {
		if l.rules[dev] == table {
			continue
		}
		added := true
		for _, r := range rules(dev, table) {
			if err := l.h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("rule iif %s table %d: %w", dev, table, err))
				added = false
			}
		}
		if added {
			l.rules[dev] = table
		}
	}
	return errors.Join(errs...)
}

// rules are the ip rules (IPv4 and IPv6) sending what enters dev to
// table.
func rules(dev string, table uint32) []*netlink.Rule {
	var out []*netlink.Rule
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		r := netlink.NewRule()
		r.IifName, r.Table, r.Priority, r.Family = dev, int(table), RulePriority, family
		out = append(out, r)
	}
	return out
}

func delRules(h *netlink.Handle, dev string, table uint32) error {
	var errs []error
	for _, r := range rules(dev, table) {
		if err := h.RuleDel(r); err != nil && !kernel.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove rule iif %s table %d: %w", dev, table, err))
		}
	}
	return errors.Join(errs...)
}

// fdbEntry is a remote MAC behind dst, or with a zero MAC a flood entry
// (head-end replication to dst).
type fdbEntry struct {
	mac evpn.MAC
	dst netip.Addr
}

// fdbKey is one entry of ours on a VXLAN device: the bridge's for mac
// (master), or the device's own to dst.
type fdbKey struct {
	mac    evpn.MAC
	dst    netip.Addr
	master bool
}

// syncFDB makes vx's FDB entries of ours exactly want: per MAC the
// bridge's entry (master, extern_learn) and the VXLAN device's (self,
// dst); per flood VTEP an all-zero entry (self, dst, appended).
//
// cur is what the last call left (nil: read from the kernel); it
// returns what vx now holds, nil when a write failed.
func syncFDB(h *netlink.Handle, vx netlink.Link, want []fdbEntry, cur map[fdbKey]bool) (map[fdbKey]bool, error) {
	idx := vx.Attrs().Index
	if cur == nil {
		have, err := h.NeighList(idx, unix.AF_BRIDGE)
		if err != nil {
			return nil, fmt.Errorf("list fdb of %s: %w", vx.Attrs().Name, err)
		}
		cur = map[fdbKey]bool{}
		for _, n := range have {
			if len(n.HardwareAddr) != 6 {
				continue
			}
			key := fdbKey{mac: evpn.MACOf(n.HardwareAddr)}
			switch {
			case bridgeEntry(n) && n.Flags&netlink.NTF_EXT_LEARNED != 0:
				key.master = true
			case n.Flags&netlink.NTF_SELF != 0 && n.IP != nil:
				a, _ := netip.AddrFromSlice(n.IP)
				key.dst = a.Unmap()
			default:
				continue // the port's own entries, learnt ones
			}
			cur[key] = true
		}
	} else {
		cur = maps.Clone(cur)
	}
	var errs []error
	wanted := map[fdbKey]bool{}
	for _, e := range want {
		self := fdbKey{mac: e.mac, dst: e.dst}
		wanted[self] = true
		if e.mac != (evpn.MAC{}) {
			master := fdbKey{mac: e.mac, master: true}
			wanted[master] = true
			if !cur[master] {
				err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_REACHABLE,
					Flags: netlink.NTF_MASTER | netlink.NTF_EXT_LEARNED, HardwareAddr: e.mac.HardwareAddr()})
				if err != nil {
					errs = append(errs, fmt.Errorf("fdb %s dev %s master extern_learn: %w", e.mac, vx.Attrs().Name, err))
				}
			}
		}
		if cur[self] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			HardwareAddr: e.mac.HardwareAddr(), IP: e.dst.AsSlice()}
		var err error
		if e.mac == (evpn.MAC{}) {
			err = h.NeighAppend(n)
		} else {
			// A MAC that moved: its entry to the old VTEP goes first.
			for c := range cur {
				if c.mac == e.mac && !c.master && c.dst != e.dst {
					delFDB(h, idx, c.mac, c.dst, false)
					delete(cur, c)
				}
			}
			err = h.NeighSet(n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("fdb %s dev %s dst %v: %w", e.mac, vx.Attrs().Name, e.dst, err))
		}
	}
	for c := range cur {
		if !wanted[c] {
			if err := delFDB(h, idx, c.mac, c.dst, c.master); err != nil {
				errs = append(errs, fmt.Errorf("remove fdb %s dev %s: %w", c.mac, vx.Attrs().Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return wanted, nil
}

func delFDB(h *netlink.Handle, idx int, mac evpn.MAC, dst netip.Addr, master bool) error {
	n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, HardwareAddr: mac.HardwareAddr()}
	if master {
		n.Flags = netlink.NTF_MASTER
	} else {
		n.Flags, n.IP = netlink.NTF_SELF, dst.AsSlice()
	}
	if err := h.NeighDel(n); err != nil && !kernel.IsNotFound(err) {
		return err
	}
	return nil
}

type neighEntry struct {
	ip  netip.Addr
	mac evpn.MAC
}

// syncNeighs makes dev's neighbour entries of ours (extern_learn)
// exactly want, each noarp, IPv4 and IPv6 alike: what the bridge answers
// ARP requests and neighbour solicitations from (neigh_suppress), and
// what the kernel resolves next hops with. An IPv4-mapped address (an
// IPv6 route's next hop over an IPv4 VTEP) is an IPv6 neighbour.
//
// cur is what the last call left (nil: read from the kernel); it
// returns what dev now holds, nil when a write failed.
func (f *Fabric) syncNeighs(l *leaf, dev netlink.Link, want []neighEntry, cur map[netip.Addr]evpn.MAC) (map[netip.Addr]evpn.MAC, error) {
	h := l.h
	idx := dev.Attrs().Index
	if cur == nil {
		cur = map[netip.Addr]evpn.MAC{}
		for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
			have, err := h.NeighList(idx, family)
			if err != nil {
				return nil, fmt.Errorf("list neighbours of %s: %w", dev.Attrs().Name, err)
			}
			for _, n := range have {
				if n.Flags&netlink.NTF_EXT_LEARNED == 0 || len(n.HardwareAddr) != 6 {
					continue
				}
				a, _ := netip.AddrFromSlice(n.IP)
				if family == unix.AF_INET {
					a = a.Unmap()
				}
				cur[a] = evpn.MACOf(n.HardwareAddr)
			}
		}
	}
	var errs []error
	var mset, mdel []neighEntry // IPv4-mapped: written in dev's namespace
	wanted := map[netip.Addr]bool{}
	now := map[netip.Addr]evpn.MAC{}
	for _, e := range want {
		wanted[e.ip] = true
		now[e.ip] = e.mac
		if m, ok := cur[e.ip]; ok && m == e.mac {
			continue
		}
		if e.ip.Is4In6() {
			mset = append(mset, e)
			continue
		}
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: family(e.ip), State: netlink.NUD_NOARP,
			Flags: netlink.NTF_EXT_LEARNED, IP: e.ip.AsSlice(), HardwareAddr: e.mac.HardwareAddr()}); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %v lladdr %s dev %s extern_learn: %w", e.ip, e.mac, dev.Attrs().Name, err))
		}
	}
	for ip, mac := range cur {
		if wanted[ip] {
			continue
		}
		if ip.Is4In6() {
			mdel = append(mdel, neighEntry{ip: ip, mac: mac})
			continue
		}
		if err := h.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: family(ip), IP: ip.AsSlice()}); err != nil && !kernel.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove neighbour %v dev %s: %w", ip, dev.Attrs().Name, err))
		}
	}
	if len(mset)+len(mdel) > 0 {
		errs = append(errs, f.env.Lab.Do(l.name, func() error {
			var errs []error
			for _, e := range mset {
				if err := mappedNeigh(true, idx, e.ip.Unmap(), e.mac); err != nil {
					errs = append(errs, fmt.Errorf("dev %s: %w", dev.Attrs().Name, err))
				}
			}
			for _, e := range mdel {
				if err := mappedNeigh(false, idx, e.ip.Unmap(), e.mac); err != nil && !kernel.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("remove from dev %s: %w", dev.Attrs().Name, err))
				}
			}
			return errors.Join(errs...)
		}))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return now, nil
}

// family is a's address family for a neighbour entry.
func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func delLinks(h *netlink.Handle, names ...string) error {
	var errs []error
	for _, n := range names {
		lk, err := h.LinkByName(n)
		if err != nil {
			continue
		}
		if err := h.LinkDel(lk); err != nil && !kernel.IsNotFound(err) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("remove %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func (f *Fabric) host(name string) (*host, error) {
	if !f.built {
		return nil, ErrNotBuilt
	}
	h := f.hosts[name]
	if h == nil || h.v == nil {
		return nil, fmt.Errorf("%q is not a built host of the topology", name)
	}
	return h, nil
}

// Plug puts p's veth end on its host's br-int, an access port of its
// network's VLAN.
func (f *Fabric) Plug(ctx context.Context, p kernel.Port) error {
	h, err := f.host(p.Host)
	if err != nil {
		return fmt.Errorf("bridge: plug %s: %w", p.Instance, err)
	}
	if _, dup := h.ports[p.Instance]; dup {
		return fmt.Errorf("bridge: plug %s: already plugged on %s", p.Instance, p.Host)
	}
	n, ok := f.model.Network(p.Network)
	if p.Network == "" {
		// A pod the CNI plugin attached: the model knows its network.
		n, ok = f.model.InstanceNetwork(p.Instance)
	}
	if !ok {
		return fmt.Errorf("bridge: plug %s: network %q: not in the model", p.Instance, p.Network)
	}
	if err := h.v.PlugAccess(ctx, f.env.Lab, p.HostIf, n.VLAN, p.Instance, p.MAC); err != nil {
		return fmt.Errorf("bridge: plug %s: %w", p.Instance, err)
	}
	h.ports[p.Instance] = p
	return nil
}

// Unplug takes p off br-int. Unplugging an unknown port succeeds.
func (f *Fabric) Unplug(ctx context.Context, p kernel.Port) error {
	h, err := f.host(p.Host)
	if err != nil {
		return fmt.Errorf("bridge: unplug %s: %w", p.Instance, err)
	}
	old, ok := h.ports[p.Instance]
	if !ok {
		return nil
	}
	if err := h.v.UnplugAccess(ctx, old.HostIf); err != nil {
		return fmt.Errorf("bridge: unplug %s: %w", p.Instance, err)
	}
	delete(h.ports, p.Instance)
	return nil
}

// Close stops every vswitch and removes the devices, rules, routes and
// addresses the fabric added, where their namespaces still exist.
func (f *Fabric) Close() error {
	if !f.built {
		return nil
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	stop := func(v *ovs.Vswitch) {
		defer wg.Done()
		if err := v.Stop(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("bridge: stop vswitch on %s: %w", v.Node(), err))
			mu.Unlock()
		}
	}
	for _, l := range f.leaves {
		if l.v != nil {
			wg.Add(1)
			go stop(l.v)
		}
	}
	for _, h := range f.hosts {
		if h.v != nil {
			wg.Add(1)
			go stop(h.v)
		}
	}
	wg.Wait()
	os.RemoveAll(filepath.Join(f.env.StateDir, ovs.TemplateDir))
	// Devices: best effort, a failed node's namespace may be gone.
	for _, l := range f.leaves {
		for dev, table := range l.rules {
			delRules(l.h, dev, table)
		}
		for vni := range l.l3 {
			f.flushTable(l, vni)
		}
		var names []string
		for vni := range l.l2 {
			names = append(names, VXLANName(vni), BridgeName(vni))
		}
		for vni := range l.l3 {
			names = append(names, VXLANName(vni), BridgeName(vni))
		}
		names = append(names, DevAccess)
		for dev := range l.access {
			names = append(names, dev)
		}
		slices.Sort(names)
		delLinks(l.h, names...)
	}
	for _, h := range f.hosts {
		if nl, err := f.env.Lab.Handle(h.name); err == nil {
			delLinks(nl, ovs.DevBrInt, ovs.DevBrBond)
		}
	}
	for _, name := range f.routers {
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			continue
		}
		kernel.DelRoutes(h, name, underlayProto, nil)
		if a, ok := f.lo[name]; ok {
			if lo, err := h.LinkByName("lo"); err == nil {
				h.AddrDel(lo, &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(a, 32))})
			}
		}
	}
	f.leaves, f.hosts, f.built = nil, nil, false
	return errors.Join(errs...)
}
