package ovs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/topologies"
)

var _ kernel.Fabric = (*Fabric)(nil)

// SettleTimeout bounds Build's wait for the switches' spanning tree to
// settle (Settle: every port that is up forwarding or blocking, and no
// topology change running).
const SettleTimeout = 20 * time.Second

// Options tune a Fabric. The zero value is the default.
type Options struct {
	// LinuxBridges makes the switches Linux bridges with the kernel's
	// 802.1D spanning tree instead of Open vSwitch bridges with RSTP: no
	// daemon per switch, but a port forwards only 4 s after it comes up,
	// and a failure is routed around in 4 s (a link on the tree) to
	// 10 s (the root bridge: max age, then listening and learning),
	// where RSTP takes well under a second.
	LinuxBridges bool
}

// Fabric is gen 1 on kernel devices and Open vSwitch. The zero value is
// ready for Build; a Fabric is used once (Build ... Close).
type Fabric struct {
	opts     Options
	env      kernel.Env
	model    *vlan.Fabric
	stock    bool
	built    bool
	hosts    map[string]*host
	switches []string // nodes with a DevSwitch bridge
	gwNode   string
	gw       *vswitch // the vswitch holding the gateways
	mu       sync.Mutex
	swv      map[string]*vswitch // switches' vswitches (RSTP)
	bpdus    *bpduWatch          // the BPDUs the switches receive (RSTP)
	svis     map[uint16]bool     // gateways configured on the core
	// how long Build took to build the devices, and until the spanning
	// tree converged (from Build's start)
	builtIn, convergedIn time.Duration
}

// BuildTook returns how long Build took to start every vswitch and build
// every device, and until the switches' spanning tree had converged
// (both from Build's start; the second is Build's whole time).
func (f *Fabric) BuildTook() (devices, converged time.Duration) { return f.builtIn, f.convergedIn }

// New returns an unbuilt fabric with the default options.
func New() *Fabric { return &Fabric{} }

// NewWith returns an unbuilt fabric with options o.
func NewWith(o Options) *Fabric { return &Fabric{opts: o} }

// gwBridge is the OVS bridge holding the gateways' internal ports. It
// is not the switch's own bridge even when that is OVS: a bridge running
// RSTP forwards to no internal port (OVS leaves them out of RSTP, and
// counts a port outside RSTP as discarding).
func (f *Fabric) gwBridge() string { return DevBrGW }

type host struct {
	name  string
	v     *vswitch
	nics  []string // the bond's members (the host's first two uplinks)
	ports map[string]*plugged
	rules string // iptables-restore input last applied (stock)
}

type plugged struct {
	port          kernel.Port
	vid           uint16
	ovsPort       string // the port on br-int: HostIf, or qvo
	qbr, qvb, qvo string // stock only
}

func (f *Fabric) progress(format string, a ...any) {
	if f.env.Progress != nil {
		f.env.Progress(fmt.Sprintf(format, a...))
	}
}

// Build realises the model on env.Lab: a Linux bridge with the kernel's
// spanning tree on every switch, a private Open vSwitch on every host
// (br-int, the patch pair, br-bond with an active-backup bond of the
// host's first two NICs) and on the gateway core (br-gw with an internal
// port per network holding its gateway; the core routes between them).
// It returns once the spanning tree has converged. On error it has
// undone what it did (as Close does).
func (f *Fabric) Build(ctx context.Context, env kernel.Env) error {
	if f.built {
		return errors.New("ovs: Build called twice")
	}
	if err := f.build(ctx, env); err != nil {
		f.Close()
		return err
	}
	return nil
}

func (f *Fabric) build(ctx context.Context, env kernel.Env) error {
	if f.built {
		return errors.New("ovs: Build called twice")
	}
	m, ok := env.Model.(*vlan.Fabric)
	if !ok {
		return fmt.Errorf("ovs: build: %w (got %T)", ErrModel, env.Model)
	}
	if err := Available(); err != nil {
		return fmt.Errorf("ovs: build: %w", err)
	}
	if env.StateDir == "" || env.Lab == nil || env.Topology == nil {
		return errors.New("ovs: build: Env needs Lab, Topology and StateDir")
	}
	f.env, f.model = env, m
	f.stock = m.Generation() == vlan.GenerationStock
	f.hosts = map[string]*host{}
	f.svis = map[uint16]bool{}
	f.swv = map[string]*vswitch{}
	f.gwNode = m.GatewayCore().Name()
	f.built = true
	t := env.Topology
	start := time.Now()

	if !f.opts.LinuxBridges {
		// Watched from before the first BPDU, for Settle.
		var sws []string
		for _, n := range t.Nodes {
			if isSwitch(n.Role) {
				sws = append(sws, n.Name)
			}
		}
		w, err := watchBPDUs(env.Lab, sws)
		if err != nil {
			return fmt.Errorf("ovs: build: %w", err)
		}
		f.bpdus = w
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(t.Nodes)+1)
	for i, n := range t.Nodes {
		switch {
		case n.Role == topologies.RoleHost:
			h := &host{name: n.Name, ports: map[string]*plugged{}}
			ifs := t.Interfaces(n.Name)
			if len(ifs) == 0 {
				return fmt.Errorf("ovs: build: host %s has no links", n.Name)
			}
			h.nics = ifs[:min(2, len(ifs))]
			f.hosts[n.Name] = h
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.buildHost(ctx, h); err != nil {
					errs <- fmt.Errorf("ovs: build host %s: %w", h.name, err)
				}
			}()
		case isSwitch(n.Role) && f.opts.LinuxBridges:
			f.switches = append(f.switches, n.Name)
			prio := Priority(n.Role, i, n.Name == f.gwNode)
			if err := f.buildSwitch(n.Name, prio); err != nil {
				wg.Wait()
				return fmt.Errorf("ovs: build switch %s: %w", n.Name, err)
			}
		case isSwitch(n.Role):
			f.switches = append(f.switches, n.Name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.buildOVSSwitch(ctx, n, i); err != nil {
					errs <- fmt.Errorf("ovs: build switch %s: %w", n.Name, err)
				}
			}()
		}
	}
	if f.opts.LinuxBridges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.buildGateways(ctx); err != nil {
				errs <- fmt.Errorf("ovs: build gateways on %s: %w", f.gwNode, err)
			}
		}()
	}
	wg.Wait()
	if !f.opts.LinuxBridges && len(errs) == 0 {
		f.gw = f.swv[f.gwNode]
		if err := f.routeGateways(ctx); err != nil {
			errs <- fmt.Errorf("ovs: build gateways on %s: %w", f.gwNode, err)
		}
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return errors.Join(all...)
	}
	f.builtIn = time.Since(start)
	f.progress("ovs: %d hosts, %d switches and the gateways on %s built in %v", len(f.hosts), len(f.switches), f.gwNode, f.builtIn.Round(time.Millisecond))
	if err := f.Settle(ctx, SettleTimeout); err != nil {
		return fmt.Errorf("ovs: build: %w", err)
	}
	f.convergedIn = time.Since(start)
	f.progress("ovs: spanning tree converged, its topology change over, after %v", f.convergedIn.Round(time.Millisecond))
	return nil
}

// fabricPorts returns node's interfaces linked to a host or a switch (not
// to a firewall, which this package leaves alone).
func (f *Fabric) fabricPorts(node string) []string {
	t := f.env.Topology
	var out []string
	for _, ifc := range t.Interfaces(node) {
		peer, _, ok := t.Peer(topologies.Endpoint{Node: node, Iface: ifc})
		if !ok {
			continue
		}
		if pn := t.Node(peer.Node); pn != nil && (pn.Role == topologies.RoleHost || isSwitch(pn.Role)) {
			out = append(out, ifc)
		}
	}
	return out
}

// ipBatch runs `ip -batch -` with script inside node's namespace.
func (f *Fabric) ipBatch(node, script string) error {
	return f.env.Lab.Do(node, func() error {
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ip -batch: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
}

// buildSwitch makes node a Linux bridge over its fabric ports with the
// kernel's 802.1D spanning tree. A bridge without VLAN filtering forwards
// tagged frames by destination MAC, tag untouched.
func (f *Fabric) buildSwitch(node string, prio int) error {
	// What an earlier build left (a run killed before its Close) goes.
	if nl, err := f.env.Lab.Handle(node); err == nil {
		for _, d := range []string{DevSwitch, DevGWTrunk} {
			if l, err := nl.LinkByName(d); err == nil {
				nl.LinkDel(l)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "link add %s type bridge stp_state 1 forward_delay %d hello_time %d max_age %d priority %d\n",
		DevSwitch, ForwardDelayCS, HelloTimeCS, MaxAgeCS, prio)
	for _, ifc := range f.fabricPorts(node) {
		fmt.Fprintf(&b, "link set %s master %s\n", ifc, DevSwitch)
	}
	if node == f.gwNode {
		// The trunk to br-gw joins the bridge with the fabric's ports, so
		// that its listening and learning overlap theirs.
		fmt.Fprintf(&b, "link add %s type veth peer name %s\nlink set %s master %s\nlink set %s up\nlink set %s up\n",
			DevGWTrunk, DevGWOVS, DevGWTrunk, DevSwitch, DevGWTrunk, DevGWOVS)
	}
	fmt.Fprintf(&b, "link set %s up\n", DevSwitch)
	return f.ipBatch(node, b.String())
}

// buildHost starts the host's vswitch and builds Fig. 5's bridges. The
// bond's first NIC is made active (the model's), then left without a
// primary so that it does not take over again when it comes back.
func (f *Fabric) buildHost(ctx context.Context, h *host) error {
	v, err := startVswitch(ctx, f.env.Lab, h.name, filepath.Join(f.env.StateDir, h.name), HostConfig(h.nics)...)
	if err != nil {
		return err
	}
	h.v = v
	if len(h.nics) == 2 {
		if err := (&Vswitch{v}).SettleBond(ctx, h.nics[0]); err != nil {
			return err
		}
	}
	if f.stock {
		// Frames bridged on a qbr go through iptables' FORWARD chain.
		if err := f.env.Lab.Do(h.name, func() error {
			return os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("bridge-nf-call-iptables: %w", err)
		}
	}
	return nil
}

// waitActive waits until the bond's active member is nic.
func waitActive(ctx context.Context, v *vswitch, nic string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := v.appctl(ctx, "bond/show", DevBond)
		if err != nil {
			return err
		}
		if activeMember(out) == nic {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bond %s: active member %q, want %s after 5s:\n%s", DevBond, activeMember(out), nic, out)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ActiveMember returns host's bond's active NIC ("" when none is).
func (f *Fabric) ActiveMember(ctx context.Context, host string) (string, error) {
	h, err := f.host(host)
	if err != nil {
		return "", err
	}
	out, err := h.v.appctl(ctx, "bond/show", DevBond)
	if err != nil {
		return "", err
	}
	return activeMember(out), nil
}

// routeGateways turns on forwarding in the gateway core (whose switch
// vswitch holds the gateways) and adds the model's gateways.
func (f *Fabric) routeGateways(ctx context.Context) error {
	if err := f.env.Lab.Do(f.gwNode, forwarding); err != nil {
		return err
	}
	return f.syncGateways(ctx)
}

// forwarding turns on routing, IPv4 and IPv6, in the calling thread's
// namespace (the gateway core's).
func forwarding() error {
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("forwarding on: %w", err)
		}
	}
	return nil
}

// enableIPv6 turns IPv6 on for dev in the calling thread's namespace (the
// lab's start with it off), quietly: no duplicate address detection, no
// router advertisements taken.
func enableIPv6(dev string) error {
	for _, kv := range [][2]string{{"accept_dad", "0"}, {"accept_ra", "0"}, {"disable_ipv6", "0"}} {
		p := "/proc/sys/net/ipv6/conf/" + dev + "/" + kv[0]
		if err := os.WriteFile(p, []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("IPv6 on %s: %w", dev, err)
		}
	}
	return nil
}

// buildOVSSwitch makes n an Open vSwitch bridge over its fabric ports
// with RSTP: priorities by the model's ranks (RSTP's priority steps of
// 4096 by tier, the bridge address by topology order), host-facing ports
// edge ports.
func (f *Fabric) buildOVSSwitch(ctx context.Context, n *topologies.Node, index int) error {
	prio := Priority(n.Role, 0, n.Name == f.gwNode)
	args := []string{"--", "add-br", DevSwitch, "--", "set", "bridge", DevSwitch, "datapath_type=netdev", "rstp_enable=true",
		fmt.Sprintf("other_config:rstp-priority=%d", prio),
		// When the root fails, its last BPDUs go round the meshed tiers
		// (RSTP's count to infinity) until their message age reaches max
		// age: about 8 s with the default 20 in a three-tier lab, during
		// which same-subnet pairs are cut. The smallest max age the
		// standard allows with a 2 s hello (6 s) and the largest
		// transmit hold count (10 BPDUs a second) end it in about a
		// second; a three-tier fabric is 3 hops from root to edge.
		"other_config:rstp-max-age=6", "other_config:rstp-transmit-hold-count=10",
		fmt.Sprintf("other_config:rstp-address=\"02:00:00:00:%02x:%02x\"", (index+1)>>8&0xff, (index+1)&0xff)}
	t := f.env.Topology
	for _, ifc := range f.fabricPorts(n.Name) {
		args = append(args, "--", "add-port", DevSwitch, ifc)
		peer, _, _ := t.Peer(topologies.Endpoint{Node: n.Name, Iface: ifc})
		if pn := t.Node(peer.Node); pn != nil && pn.Role == topologies.RoleHost {
			args = append(args, "--", "set", "port", ifc, "other_config:rstp-port-admin-edge=true")
		}
	}
	if n.Name == f.gwNode {
		// The gateways' bridge, patched to the switch's as a trunk (an
		// edge port of its RSTP).
		args = append(args, "--", "add-br", DevBrGW, "--", "set", "bridge", DevBrGW, "datapath_type=netdev",
			"--", "add-port", DevSwitch, DevGWTrunk, "--", "set", "interface", DevGWTrunk, "type=patch", "options:peer="+DevGWOVS,
			"--", "set", "port", DevGWTrunk, "other_config:rstp-port-admin-edge=true",
			"--", "add-port", DevBrGW, DevGWOVS, "--", "set", "interface", DevGWOVS, "type=patch", "options:peer="+DevGWTrunk)
	}
	v, err := startVswitch(ctx, f.env.Lab, n.Name, filepath.Join(f.env.StateDir, n.Name), args...)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.swv[n.Name] = v
	f.mu.Unlock()
	return nil
}

// buildGateways starts the gateway core's vswitch with br-gw on the veth
// pair buildSwitch hung off the core's bridge (a trunk), turns on
// forwarding, and adds the model's gateways.
func (f *Fabric) buildGateways(ctx context.Context) error {
	v, err := startVswitch(ctx, f.env.Lab, f.gwNode, filepath.Join(f.env.StateDir, f.gwNode),
		"--", "add-br", DevBrGW, "--", "set", "bridge", DevBrGW, "datapath_type=netdev",
		"--", "add-port", DevBrGW, DevGWOVS)
	if err != nil {
		return err
	}
	f.gw = v
	if err := f.env.Lab.Do(f.gwNode, func() error {
		for _, d := range []string{DevGWTrunk, DevGWOVS} {
			if err := noTxChecksum(d); err != nil {
				return err
			}
		}
		return forwarding()
	}); err != nil {
		return err
	}
	return f.syncGateways(ctx)
}

// syncGateways makes br-gw's internal ports match the model's networks:
// one vlan<VID> per network, tagged, with the core's router MAC and the
// gateway address.
func (f *Fabric) syncGateways(ctx context.Context) error {
	want := map[uint16]bool{}
	var add []string
	nets := f.model.Networks()
	mac := f.model.GatewayCore().MAC().String()
	for _, n := range nets {
		want[n.VLAN] = true
		if f.svis[n.VLAN] {
			continue
		}
		dev := fmt.Sprintf("%s%d", PrefixSVI, n.VLAN)
		add = append(add, "--", "add-port", f.gwBridge(), dev, fmt.Sprintf("tag=%d", n.VLAN),
			"--", "set", "interface", dev, "type=internal", fmt.Sprintf("mac=%q", mac),
			"external_ids:network="+n.Name)
	}
	var del []string
	for vid := range f.svis {
		if !want[vid] {
			del = append(del, "--", "--if-exists", "del-port", f.gwBridge(), fmt.Sprintf("%s%d", PrefixSVI, vid))
		}
	}
	if len(add)+len(del) == 0 {
		return nil
	}
	if _, err := f.gw.vsctl(ctx, append(del, add...)...); err != nil {
		return err
	}
	for vid := range f.svis {
		if !want[vid] {
			delete(f.svis, vid)
		}
	}
	h, err := f.env.Lab.Handle(f.gwNode)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if f.svis[n.VLAN] {
			continue
		}
		dev := fmt.Sprintf("%s%d", PrefixSVI, n.VLAN)
		l, err := h.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", dev, err)
		}
		addr := &netlink.Addr{IPNet: prefixIPNet(n.Gateway, n.Subnet.Bits())}
		if err := h.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("gateway %s: address %v/%d: %w", dev, n.Gateway, n.Subnet.Bits(), err)
		}
		if n.Gateway6.IsValid() {
			// A dual-stack network: the core routes its IPv6 too.
			if err := f.env.Lab.Do(f.gwNode, func() error { return enableIPv6(dev) }); err != nil {
				return fmt.Errorf("gateway %s: %w", dev, err)
			}
			addr6 := &netlink.Addr{IPNet: prefixIPNet(n.Gateway6, n.Subnet6.Bits()), Flags: unix.IFA_F_NODAD}
			if err := h.AddrReplace(l, addr6); err != nil {
				return fmt.Errorf("gateway %s: address %v/%d: %w", dev, n.Gateway6, n.Subnet6.Bits(), err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("gateway %s: up: %w", dev, err)
		}
		f.svis[n.VLAN] = true
	}
	return nil
}

func (f *Fabric) host(name string) (*host, error) {
	if !f.built {
		return nil, ErrNotBuilt
	}
	h := f.hosts[name]
	if h == nil || h.v == nil {
		return nil, fmt.Errorf("host %q: %w (not a built host of the topology)", name, ErrUnknownPort)
	}
	return h, nil
}

// Plug puts p on its network's VLAN on br-int: the instance's veth end
// itself (Ctrip, Fig. 5), or for stock OpenStack (Fig. 6) a Linux bridge
// qbr holding it and a veth pair qvb-qvo whose qvo end is the access
// port, with the instance's security groups as iptables rules on the qbr.
func (f *Fabric) Plug(ctx context.Context, p kernel.Port) error {
	h, err := f.host(p.Host)
	if err != nil {
		return fmt.Errorf("ovs: plug %s: %w", p.Instance, err)
	}
	if _, dup := h.ports[p.Instance]; dup {
		return fmt.Errorf("ovs: plug %s: already plugged on %s", p.Instance, p.Host)
	}
	n, ok := f.model.Network(p.Network)
	if !ok {
		return fmt.Errorf("ovs: plug %s: network %q: not in the model", p.Instance, p.Network)
	}
	pl := &plugged{port: p, vid: n.VLAN, ovsPort: p.HostIf}
	if f.stock {
		pl.qbr, pl.qvb, pl.qvo = DevName(PrefixQbr, p.Instance), DevName(PrefixQvb, p.Instance), DevName(PrefixQvo, p.Instance)
		pl.ovsPort = pl.qvo
		script := fmt.Sprintf("link add %s type bridge\nlink add %s type veth peer name %s\nlink set %s master %s\nlink set %s master %s\nlink set %s up\nlink set %s up\nlink set %s up\n",
			pl.qbr, pl.qvb, pl.qvo, p.HostIf, pl.qbr, pl.qvb, pl.qbr, pl.qbr, pl.qvb, pl.qvo)
		if err := f.ipBatch(p.Host, script); err != nil {
			return fmt.Errorf("ovs: plug %s: %w", p.Instance, err)
		}
	}
	if err := f.env.Lab.Do(p.Host, func() error {
		for _, d := range []string{p.HostIf, pl.qvb, pl.qvo} {
			if d == "" {
				continue
			}
			if err := noTxChecksum(d); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("ovs: plug %s: %w", p.Instance, err)
	}
	if _, err := h.v.addPort(ctx, DevBrInt, pl.ovsPort, n.VLAN, accessIDs(p.Instance, p.MAC)); err != nil {
		return fmt.Errorf("ovs: plug %s: %w", p.Instance, err)
	}
	h.ports[p.Instance] = pl
	if f.stock {
		if err := f.syncRules(h); err != nil {
			return fmt.Errorf("ovs: plug %s: %w", p.Instance, err)
		}
	}
	return nil
}

// Unplug takes p off br-int, and on a stock host removes its qbr, its
// veth pair and its rules. Unplugging an unknown port succeeds.
func (f *Fabric) Unplug(ctx context.Context, p kernel.Port) error {
	h, err := f.host(p.Host)
	if err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", p.Instance, err)
	}
	pl := h.ports[p.Instance]
	if pl == nil {
		return nil
	}
	if err := h.v.delPort(ctx, DevBrInt, pl.ovsPort); err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", p.Instance, err)
	}
	delete(h.ports, p.Instance)
	if pl.qbr != "" {
		if err := f.ipBatch(p.Host, fmt.Sprintf("link del %s\nlink del %s\n", pl.qvb, pl.qbr)); err != nil {
			return fmt.Errorf("ovs: unplug %s: %w", p.Instance, err)
		}
		if err := f.syncRules(h); err != nil {
			return fmt.Errorf("ovs: unplug %s: %w", p.Instance, err)
		}
	}
	return nil
}

// Sync makes the gateways match the model's networks and every stock
// host's iptables rules match its instances' security groups.
func (f *Fabric) Sync(ctx context.Context) error {
	if !f.built {
		return fmt.Errorf("ovs: sync: %w", ErrNotBuilt)
	}
	var errs []error
	if err := f.syncGateways(ctx); err != nil {
		errs = append(errs, fmt.Errorf("ovs: sync gateways on %s: %w", f.gwNode, err))
	}
	if f.stock {
		for _, name := range sortedHosts(f.hosts) {
			if err := f.syncRules(f.hosts[name]); err != nil {
				errs = append(errs, fmt.Errorf("ovs: sync rules on %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func sortedHosts(m map[string]*host) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// syncRules renders h's security groups from the model and loads them
// with iptables-restore and ip6tables-restore when they changed.
func (f *Fabric) syncRules(h *host) error {
	mh := f.model.Host(h.name)
	var ports []SGPort
	for inst, pl := range h.ports {
		g, in, out, ok := mh.SecurityGroups(inst)
		if !ok {
			continue
		}
		ports = append(ports, SGPort{Instance: inst, Tap: pl.port.HostIf, Groups: g, DefIngress: in, DefEgress: out})
	}
	rules4, rules6 := RenderSecurityGroups(ports), RenderSecurityGroups6(ports)
	rules := rules4 + rules6
	if rules == h.rules {
		return nil
	}
	if err := f.env.Lab.Do(h.name, func() error {
		for _, c := range []struct{ cmd, rules string }{{"iptables-restore", rules4}, {"ip6tables-restore", rules6}} {
			cmd := exec.Command(c.cmd)
			cmd.Stdin = strings.NewReader(c.rules)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: %w: %s", c.cmd, err, strings.TrimSpace(stderr.String()))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	h.rules = rules
	return nil
}

// Settle waits until the switches' spanning tree has settled: no port
// listening or learning (every port forwarding or blocking), and no
// topology change running. A topology change follows every port that
// starts forwarding, at build as after a failure: while it runs, each
// bridge that hears of it flushes its MAC table, so that a path read
// from the tables right after a probe taught them finds them empty. On
// Open vSwitch it is over when the last BPDU each switch port received
// has no TC flag or is tcQuiet old (bpduWatch); on Linux bridges when no
// bridge reports topology_change or topology_change_detected. The error
// after timeout names the bridge that had not settled.
func (f *Fabric) Settle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending, err := f.unsettled()
		if err != nil {
			return err
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spanning tree not settled after %v: %s", timeout, pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unsettled says what keeps the spanning tree from having settled now
// ("" when nothing does).
func (f *Fabric) unsettled() (string, error) {
	for _, sw := range f.switches {
		states, err := f.PortStates(sw)
		if err != nil {
			return "", err
		}
		for _, ifc := range slices.Sorted(maps.Keys(states)) {
			if st := states[ifc]; st == "listening" || st == "learning" {
				return fmt.Sprintf("%s:%s %s", sw, ifc, st), nil
			}
		}
	}
	if f.opts.LinuxBridges {
		for _, sw := range f.switches {
			tc, err := f.linuxTopologyChange(sw)
			if err != nil {
				return "", err
			}
			if tc {
				return sw + ": topology change still running (its bridge's topology_change)", nil
			}
		}
		return "", nil
	}
	if f.bpdus == nil {
		return "", nil
	}
	t := f.env.Topology
	var watched []portKey
	for _, sw := range f.switches {
		for _, ifc := range f.fabricPorts(sw) {
			watched = append(watched, portKey{sw, ifc})
		}
	}
	if ch := f.bpdus.changing(time.Now(), tcQuiet, watched); len(ch) > 0 {
		node, ifc, _ := strings.Cut(ch[0], ":")
		from := "its peer"
		if peer, _, ok := t.Peer(topologies.Endpoint{Node: node, Iface: ifc}); ok {
			from = peer.Node + " (" + peer.Iface + ")"
		}
		return fmt.Sprintf("topology change still running: %s signals it to %s (the last BPDU there has TC, under %v ago; %d ports in all)",
			from, ch[0], tcQuiet, len(ch)), nil
	}
	return "", nil
}

// linuxTopologyChange reports whether node's Linux bridge has a topology
// change running, as `ip -d link show` reports it.
func (f *Fabric) linuxTopologyChange(node string) (bool, error) {
	var out []byte
	err := f.env.Lab.Do(node, func() error {
		var err error
		out, err = exec.Command("ip", "-j", "-d", "link", "show", "dev", DevSwitch).Output()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%s: ip -d link show %s: %w", node, DevSwitch, err)
	}
	var links []struct {
		LinkInfo struct {
			InfoData struct {
				TopologyChange         int `json:"topology_change"`
				TopologyChangeDetected int `json:"topology_change_detected"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return false, fmt.Errorf("%s: ip -d link show %s: %q: %v", node, DevSwitch, out, err)
	}
	d := links[0].LinkInfo.InfoData
	return d.TopologyChange != 0 || d.TopologyChangeDetected != 0, nil
}

// PortStates returns the spanning-tree state of every port of node's
// switch bridge ("forwarding", "blocking", "listening", "learning",
// "disabled"), as `bridge link` reports them; with RSTP, as
// `ovs-appctl rstp/show` does, in the same words (a discarding alternate
// or backup port is "blocking", a discarding root or designated port
// still agreeing with its peer "listening").
func (f *Fabric) PortStates(node string) (map[string]string, error) {
	if !f.opts.LinuxBridges {
		v := f.swv[node]
		if v == nil {
			return nil, fmt.Errorf("%s: not a switch of the fabric", node)
		}
		out, err := v.appctl(context.Background(), "rstp/show", DevSwitch)
		if err != nil {
			return nil, err
		}
		return rstpStates(out), nil
	}
	var out []byte
	err := f.env.Lab.Do(node, func() error {
		var err error
		out, err = exec.Command("bridge", "-j", "link", "show").Output()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: bridge link show: %w", node, err)
	}
	var links []struct {
		Ifname string `json:"ifname"`
		Master string `json:"master"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("%s: bridge link show: %w", node, err)
	}
	m := map[string]string{}
	for _, l := range links {
		if l.Master == DevSwitch {
			m[l.Ifname] = l.State
		}
	}
	return m, nil
}

// BlockedLinks returns the links between switches that the kernel's
// spanning tree blocks (a port at either end blocking), as "a-b" in
// topology link order: what vlan.Fabric.BlockedLinks says of the
// model's tree.
func (f *Fabric) BlockedLinks() ([]string, error) {
	if !f.built {
		return nil, ErrNotBuilt
	}
	states := map[string]map[string]string{}
	for _, sw := range f.switches {
		st, err := f.PortStates(sw)
		if err != nil {
			return nil, err
		}
		states[sw] = st
	}
	var out []string
	for _, l := range f.env.Topology.Links {
		sa, sb := states[l.A.Node], states[l.B.Node]
		if sa == nil || sb == nil {
			continue
		}
		if sa[l.A.Iface] == "blocking" || sb[l.B.Iface] == "blocking" {
			out = append(out, l.A.Node+"-"+l.B.Node)
		}
	}
	return out, nil
}

// Close stops every ovsdb-server and ovs-vswitchd the fabric started
// (SIGTERM, then SIGKILL; waited for) and removes their directories, and
// removes the bridges, veths and rules it created from the lab's
// namespaces where they still exist.
func (f *Fabric) Close() error {
	if !f.built {
		return nil
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	stop := func(v *vswitch) {
		defer wg.Done()
		if err := v.stop(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("ovs: stop vswitch on %s: %w", v.node, err))
			mu.Unlock()
		}
	}
	for _, h := range f.hosts {
		if h.v != nil {
			wg.Add(1)
			go stop(h.v)
		}
	}
	if f.gw != nil && f.opts.LinuxBridges {
		wg.Add(1)
		go stop(f.gw)
	}
	for _, v := range f.swv {
		wg.Add(1)
		go stop(v)
	}
	wg.Wait()
	f.bpdus.close()
	if err := os.RemoveAll(filepath.Join(f.env.StateDir, TemplateDir)); err != nil {
		errs = append(errs, err)
	}
	// Devices: best effort, a failed node's namespace may be gone.
	del := func(node string, names ...string) {
		h, err := f.env.Lab.Handle(node)
		if err != nil {
			return
		}
		for _, n := range names {
			if l, err := h.LinkByName(n); err == nil {
				h.LinkDel(l)
			}
		}
	}
	// A stopped vswitch's bridge devices may outlive it for a moment.
	for _, sw := range f.switches {
		del(sw, DevSwitch)
	}
	del(f.gwNode, DevGWTrunk, DevBrGW)
	for vid := range f.svis {
		del(f.gwNode, fmt.Sprintf("%s%d", PrefixSVI, vid))
	}
	for _, h := range f.hosts {
		del(h.name, DevBrInt, DevBrBond)
		for _, pl := range h.ports {
			if pl.qbr != "" {
				del(h.name, pl.qvb, pl.qbr)
			}
		}
		if h.rules != "" {
			f.env.Lab.Do(h.name, func() error { return exec.Command("iptables", "-F").Run() })
			f.env.Lab.Do(h.name, func() error { return exec.Command("iptables", "-X").Run() })
		}
	}
	f.hosts, f.gw, f.swv, f.bpdus, f.built = nil, nil, nil, nil, false
	return errors.Join(errs...)
}
