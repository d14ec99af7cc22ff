package netnsrt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/bridge"
	"github.com/netbed/netbed/datapath/kernel/ovs"
	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/datapath/userspace"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// FRRDir is where Debian's frr package installs its daemons.
const FRRDir = "/usr/lib/frr"

// frrProto marks the underlay routes an FRR leaf's namespace gets from
// netbed (zebra's own are proto zebra/bgp).
const frrProto = netlink.RouteProtocol(0x72)

// frrLeaf is a gen 2 leaf realised as FRR (frr_leaves): Debian's zebra
// and bgpd, run as the frr user inside the leaf's namespace with every
// path (configurations, vty sockets, zserv socket, pid files, logs) in
// <lab state>/frr/<leaf>, over the kernel's devices: per L2 VNI a bridge
// br<VNI> and a VXLAN device vx<VNI> (nolearning, local the leaf's VTEP
// loopback), and, as on the kernel backend's leaves, a private Open
// vSwitch br-acc that pops the hosts' VLAN tags into one internal port
// per (access port, VLAN) enslaved to the VNI's bridge.
//
// netbed's model of the leaf stays the desired configuration, as the
// CNC programs a switch: which VNIs the leaf carries, on which access
// ports and VLANs, and which MACs the controller bound there (static FDB
// entries on the access port, and their addresses as neighbours on the
// VNI's bridge, which zebra advertises as type 2 MAC/IP routes). Every
// remote entry (the VXLAN devices' FDB, flood lists, remote neighbours)
// is zebra's, from bgpd's EVPN routes (advertise-all-vni); bgpd peers
// with the spines (iBGP, route-reflector clients) over the same /31
// session addresses as netbed's leaves.
//
// The model leaf does not run in the userspace datapath: its links are
// the kernel's. Its fabric-facing interfaces take the model's port MACs
// and the spines' model MACs are permanent neighbours, so that the
// spines' routers (which forward to the model's MACs) and the kernel
// exchange VXLAN packets.
//
// Limits: this kernel has no VRF devices, so an FRR leaf bridges its L2
// VNIs only: FRR's symmetric IRB needs a VRF per tenant, and a probe
// routed between subnets to or from an instance behind an FRR leaf is
// not forwarded.
type frrLeaf struct {
	p       *bgpPlane
	name    string
	dir     string
	vtep    netip.Addr
	uid     int
	gid     int
	uplinks []string // fabric-facing interfaces (to spines)
	trunks  []string // host-facing interfaces, on br-acc
	ifaces  []string
	v       *ovs.Vswitch

	mu     sync.Mutex
	cmds   []*exec.Cmd // zebra, bgpd of the running incarnation
	exited []chan struct{}
	down   bool                // failed: links down, daemons gone
	access map[string]string   // internal port → trunk, built
	flows  string              // br-acc's flows last applied
	l2     map[uint32]bool     // L2 VNIs with their devices
	nets   map[uint32][]string // L2 VNI → its access ports
}

// FRRAvailable says why FRR leaves cannot run here, or nil.
func FRRAvailable() error {
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		if _, err := os.Stat(filepath.Join(FRRDir, d)); err != nil {
			return fmt.Errorf("frr_leaves needs FRR's %s (Debian package frr): %w", d, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return fmt.Errorf("frr_leaves needs vtysh (Debian package frr): %w", err)
	}
	if _, err := user.Lookup("frr"); err != nil {
		return fmt.Errorf("frr_leaves runs FRR as the frr user (Debian package frr): %w", err)
	}
	return ovs.Available()
}

// newFRRLeaf prepares node's FRR leaf (nothing runs yet): its directory,
// owned by the frr user, and its underlay (the loopback, the model's MACs
// on its fabric interfaces, routes to every other VTEP through the
// spines).
func (p *bgpPlane) newFRRLeaf(t *topologies.Topology, bn *bgpNode) (*frrLeaf, error) {
	if err := FRRAvailable(); err != nil {
		return nil, err
	}
	u, _ := user.Lookup("frr")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := filepath.Join(filepath.Dir(p.dir), "frr", bn.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("frr leaf %s: %w", bn.name, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("frr leaf %s: %w", bn.name, err)
	}
	if len(filepath.Join(dir, "zserv.api")) >= len(syscall.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("frr leaf %s: socket path %s is longer than a unix socket allows; use a shorter state directory", bn.name, dir)
	}
	fl := &frrLeaf{p: p, name: bn.name, dir: dir, vtep: bn.cfg.RouterID, uid: uid, gid: gid, ifaces: t.Interfaces(bn.name),
		access: map[string]string{}, l2: map[uint32]bool{}, nets: map[uint32][]string{}}
	for _, ifc := range fl.ifaces {
		peer, _, ok := t.Peer(topologies.Endpoint{Node: bn.name, Iface: ifc})
		if !ok {
			continue
		}
		switch t.Node(peer.Node).Role {
		case topologies.RoleHost:
			fl.trunks = append(fl.trunks, ifc)
		case topologies.RoleSpine:
			fl.uplinks = append(fl.uplinks, ifc)
		}
	}
	return fl, nil
}

// buildUnderlay gives the FRR leaf's kernel what netbed's leaf model
// does in userspace: the VTEP on lo, the model's port MACs on the
// fabric interfaces (the spines forward to them), each spine's loopback
// a permanent neighbour at the spine's model MAC, and a route to every
// other leaf's VTEP over every spine (ECMP).
func (fl *frrLeaf) buildUnderlay() error {
	r, t := fl.p.r, fl.p.r.topo
	h, err := r.lab.Handle(fl.name)
	if err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%s: find lo: %w", fl.name, err)
	}
	if err := h.AddrReplace(lo, &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(fl.vtep, 32))}); err != nil {
		return fmt.Errorf("%s: loopback %v: %w", fl.name, fl.vtep, err)
	}
	// rp_filter off: a VXLAN packet's source is a loopback behind a
	// spine, as on any unnumbered fabric.
	for _, s := range kernel.RouterSysctls[1:3] {
		if err := kernel.Sysctl(r.lab, fl.name, s.Path, s.Value); err != nil {
			return err
		}
	}
	var hops []kernel.Hop
	for _, ifc := range fl.uplinks {
		i := slices.Index(fl.ifaces, ifc)
		lk, err := h.LinkByName(ifc)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", fl.name, ifc, err)
		}
		if err := h.LinkSetHardwareAddr(lk, l3.PortMAC(fl.name, i)); err != nil {
			return fmt.Errorf("%s:%s: model MAC: %w", fl.name, ifc, err)
		}
		peer, _, _ := t.Peer(topologies.Endpoint{Node: fl.name, Iface: ifc})
		slo, ok := fl.p.fab.Loopback(peer.Node)
		if !ok {
			return fmt.Errorf("%s: spine %s has no loopback", fl.name, peer.Node)
		}
		pmac := l3.PortMAC(peer.Node, slices.Index(t.Interfaces(peer.Node), peer.Iface))
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: slo.AsSlice(), HardwareAddr: pmac}); err != nil {
			return fmt.Errorf("%s:%s: neighbour %v: %w", fl.name, ifc, slo, err)
		}
		hops = append(hops, kernel.Hop{Dev: ifc, Gw: slo})
	}
	if len(hops) == 0 {
		return fmt.Errorf("%s has no link to a spine", fl.name)
	}
	var want []*netlink.Route
	for _, other := range fl.p.fab.Leaves() {
		a, ok := fl.p.fab.Loopback(other)
		if !ok || other == fl.name {
			continue
		}
		rt, err := kernel.ECMPRoute(h, fl.name, netip.PrefixFrom(a, 32), hops, frrProto)
		if err != nil {
			return err
		}
		want = append(want, rt)
	}
	return kernel.SyncRoutes(h, fl.name, frrProto, want)
}

// startVswitch starts br-acc's Open vSwitch (once).
func (fl *frrLeaf) startVswitch(ctx context.Context) error {
	if fl.v != nil {
		return nil
	}
	cfg := []string{"--", "add-br", bridge.DevAccess, "--", "set", "bridge", bridge.DevAccess, "datapath_type=netdev", "fail_mode=secure"}
	for _, tr := range fl.trunks {
		cfg = append(cfg, "--", "add-port", bridge.DevAccess, tr)
	}
	v, err := ovs.StartVswitch(ctx, fl.p.r.lab, fl.name, filepath.Join(fl.dir, "ovs"), cfg...)
	if err != nil {
		return fmt.Errorf("frr leaf %s: %w", fl.name, err)
	}
	fl.v = v
	return nil
}

func (fl *frrLeaf) writeConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults datacenter\nhostname %s\nlog file %s\n", fl.name, filepath.Join(fl.dir, "bgpd.log"))
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp default ipv4-unicast\n", fl.p.asn, fl.vtep)
	tm := fl.p.r.opts.BGPTimers
	for _, pr := range fl.p.nodes[fl.name].cfg.Peers {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", pr.Address, pr.ASN, pr.Address)
		if fl.p.r.opts.BFD {
			fmt.Fprintf(&b, " neighbor %s bfd\n", pr.Address)
		}
		if tm.Hold != 0 {
			hold, ka := int(tm.Hold/time.Second), int(tm.Keepalive/time.Second)
			if hold < 0 {
				hold, ka = 0, 0
			} else if ka == 0 {
				ka = hold / 3
			}
			fmt.Fprintf(&b, " neighbor %s timers %d %d\n", pr.Address, ka, hold)
		}
	}
	b.WriteString(" address-family l2vpn evpn\n")
	for _, pr := range fl.p.nodes[fl.name].cfg.Peers {
		fmt.Fprintf(&b, "  neighbor %s activate\n", pr.Address)
	}
	b.WriteString("  advertise-all-vni\n exit-address-family\n")
	// bfdd runs a single-hop session with each spine from the start, as
	// netbed's speakers do: bgpd asks for one only once its TCP session
	// showed the peer connected (an iBGP peer counts as multihop until
	// then), and a spine whose BFD saw this leaf go down takes the BGP
	// session back only once BFD is up again (a silent failure's
	// restore). bgpd's own registration then shares it.
	var bfdPeers strings.Builder
	if fl.p.r.opts.BFD {
		bfdPeers.WriteString("bfd\n")
		for _, pr := range fl.p.nodes[fl.name].cfg.Peers {
			if a, ok := fl.localAddr(pr.Address); ok {
				fmt.Fprintf(&bfdPeers, " peer %s local-address %s\n exit\n", pr.Address, a)
			}
		}
		bfdPeers.WriteString("exit\n")
	}
	files := map[string]string{
		"bgpd.conf":  b.String(),
		"zebra.conf": fmt.Sprintf("hostname %s\nlog file %s\n", fl.name, filepath.Join(fl.dir, "zebra.log")),
		"bfdd.conf":  fmt.Sprintf("hostname %s\nlog file %s\n", fl.name, filepath.Join(fl.dir, "bfdd.log")) + bfdPeers.String(),
	}
	for name, conf := range files {
		path := filepath.Join(fl.dir, name)
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("frr leaf %s: %w", fl.name, err)
		}
		if err := os.Chown(path, fl.uid, fl.gid); err != nil {
			return fmt.Errorf("frr leaf %s: %w", fl.name, err)
		}
	}
	return nil
}

// localAddr is the leaf's own session address towards peer: the other
// address of their link's /31.
func (fl *frrLeaf) localAddr(peer netip.Addr) (netip.Addr, bool) {
	if !peer.Is4() {
		return netip.Addr{}, false
	}
	b := peer.As4()
	b[3] ^= 1
	a := netip.AddrFrom4(b)
	return a, fl.p.peers[a] == fl.name
}

// start runs zebra, then (with BFD) bfdd, then bgpd, inside the leaf's
// namespace as the frr user, and records them with the lab
// (netns.RecordProcess), so that 'netbed down' kills them even after a
// crash of this process, wherever they are.
func (fl *frrLeaf) start(ctx context.Context) error {
	if err := fl.writeConfig(); err != nil {
		return err
	}
	zserv := filepath.Join(fl.dir, "zserv.api")
	_ = os.Remove(zserv)
	var cmds []*exec.Cmd
	var exited []chan struct{}
	kill := func() {
		for i, c := range cmds {
			_ = c.Process.Kill()
			<-exited[i]
		}
	}
	daemons := []string{"zebra", "bgpd"}
	if fl.p.r.opts.BFD {
		daemons = []string{"zebra", "bfdd", "bgpd"}
	}
	for _, d := range daemons {
		args := []string{"-u", "frr", "-g", "frr", "-f", filepath.Join(fl.dir, d+".conf"), "-z", zserv,
			"--vty_socket", fl.dir, "-i", filepath.Join(fl.dir, d+".pid")}
		switch d {
		case "bgpd":
			args = append(args, "-p", "179")
		case "bfdd":
			args = append(args, "--bfdctl", filepath.Join(fl.dir, "bfdd.sock"))
		}
		logf, err := os.OpenFile(filepath.Join(fl.dir, d+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			kill()
			return fmt.Errorf("frr leaf %s: %w", fl.name, err)
		}
		cmd := exec.Command(filepath.Join(FRRDir, d), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = fl.p.r.lab.Do(fl.name, cmd.Start)
		logf.Close()
		if err != nil {
			kill()
			return fmt.Errorf("frr leaf %s: start %s: %w", fl.name, d, err)
		}
		ch := make(chan struct{})
		go func() { _ = cmd.Wait(); close(ch) }()
		cmds, exited = append(cmds, cmd), append(exited, ch)
		if d == "zebra" {
			if err := waitPath(ctx, zserv, ch); err != nil {
				kill()
				return fmt.Errorf("frr leaf %s: zebra: %w (log: %s)", fl.name, err, filepath.Join(fl.dir, "zebra.log"))
			}
		}
	}
	for i, c := range cmds {
		if err := netns.RecordProcess(fl.p.r.name, c.Process.Pid, fl.name+" "+daemons[i], fl.p.r.labOpt); err != nil {
			kill()
			return fmt.Errorf("frr leaf %s: %w", fl.name, err)
		}
	}
	fl.mu.Lock()
	fl.cmds, fl.exited, fl.down = cmds, exited, false
	fl.mu.Unlock()
	return nil
}

func waitPath(ctx context.Context, path string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before opening %s", path)
		case <-ctx.Done():
			return fmt.Errorf("no socket at %s: %w", path, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop kills zebra and bgpd (SIGKILL: a power loss) and waits for them.
func (fl *frrLeaf) stop() {
	fl.mu.Lock()
	cmds, exited := fl.cmds, fl.exited
	fl.cmds, fl.exited = nil, nil
	fl.mu.Unlock()
	for i, c := range cmds {
		_ = c.Process.Signal(syscall.SIGKILL)
		<-exited[i]
	}
	_ = os.Remove(filepath.Join(fl.dir, "zserv.api"))
}

// hang freezes zebra and bgpd (SIGSTOP), as a hung line card.
func (fl *frrLeaf) hang() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, c := range fl.cmds {
		if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
			return fmt.Errorf("freeze FRR on %s: %w", fl.name, err)
		}
	}
	return nil
}

func (fl *frrLeaf) running() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.cmds) > 0
}

// forget is the leaf losing power: its VNIs' devices go, and with them
// every FDB and neighbour entry zebra had installed; sync builds them
// again once it is back.
func (fl *frrLeaf) forget() error {
	h, err := fl.p.r.lab.Handle(fl.name)
	if err != nil {
		return err
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.down = true
	var errs []error
	for vni := range fl.l2 {
		errs = append(errs, delLinks(h, bridge.VXLANName(vni), bridge.BridgeName(vni)))
	}
	fl.l2, fl.nets = map[uint32]bool{}, map[uint32][]string{}
	return errors.Join(errs...)
}

func delLinks(h *netlink.Handle, names ...string) error {
	var errs []error
	for _, n := range names {
		if lk, err := h.LinkByName(n); err == nil {
			if err := h.LinkDel(lk); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", n, err))
			}
		}
	}
	return errors.Join(errs...)
}

// vtysh asks the leaf's daemons cmd and returns the output.
func (fl *frrLeaf) vtysh(ctx context.Context, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", fl.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("frr leaf %s: vtysh %q: %w: %s", fl.name, cmd, err, out)
	}
	return string(out), nil
}

// sessions returns bgpd's EVPN sessions: peer address → state.
func (fl *frrLeaf) sessions(ctx context.Context) (map[netip.Addr]string, error) {
	out, err := fl.vtysh(ctx, "show bgp l2vpn evpn summary json")
	if err != nil {
		return nil, err
	}
	var s struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("frr leaf %s: bgp summary: %w", fl.name, err)
	}
	m := map[netip.Addr]string{}
	for a, p := range s.Peers {
		if ip, err := netip.ParseAddr(a); err == nil {
			m[ip] = p.State
		}
	}
	return m, nil
}

// waitEstablished waits until every configured session of bgpd is
// established.
func (fl *frrLeaf) waitEstablished(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last := "no answer"
	for {
		ss, err := fl.sessions(ctx)
		if err == nil {
			last = ""
			for _, pr := range fl.p.nodes[fl.name].cfg.Peers {
				if st := ss[pr.Address]; st != "Established" {
					last = fmt.Sprintf("session to %s (%s) is %q", pr.Address, fl.p.peers[pr.Address], st)
					break
				}
			}
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("frr leaf %s: %s (log: %s)", fl.name, last, filepath.Join(fl.dir, "bgpd.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sync makes the leaf's devices, access ports and local entries what
// the model's leaf configuration (st) says; remote entries are zebra's.
func (fl *frrLeaf) sync(ctx context.Context, st evpn.LeafState) error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.down {
		return nil
	}
	h, err := fl.p.r.lab.Handle(fl.name)
	if err != nil {
		return err
	}
	want := map[string]string{}
	nets := map[uint32][]string{}
	var flows strings.Builder
	for _, n := range st.Networks {
		for _, a := range n.Access {
			if a.Port < 0 || a.Port >= len(fl.ifaces) {
				return fmt.Errorf("frr leaf %s: access port %d out of range", fl.name, a.Port)
			}
			dev, trunk := bridge.AccessName(a.Port, a.VLAN), fl.ifaces[a.Port]
			want[dev] = trunk
			nets[n.VNI] = append(nets[n.VNI], dev)
			fmt.Fprintf(&flows, "priority=100,in_port=%s,dl_vlan=%d,actions=strip_vlan,output:%s\n", trunk, a.VLAN, dev)
			fmt.Fprintf(&flows, "priority=100,in_port=%s,actions=mod_vlan_vid:%d,output:%s\n", dev, a.VLAN, trunk)
		}
	}
	if err := fl.syncAccess(ctx, want, flows.String()); err != nil {
		return err
	}
	var errs []error
	keep := map[uint32]bool{}
	for _, n := range st.Networks {
		keep[n.VNI] = true
		if err := fl.syncNetwork(h, st, n, nets[n.VNI]); err != nil {
			errs = append(errs, fmt.Errorf("frr leaf %s: vni %d: %w", fl.name, n.VNI, err))
		}
	}
	for vni := range fl.l2 {
		if !keep[vni] {
			errs = append(errs, delLinks(h, bridge.VXLANName(vni), bridge.BridgeName(vni)))
			delete(fl.l2, vni)
		}
	}
	fl.nets = nets
	return errors.Join(errs...)
}

func (fl *frrLeaf) syncAccess(ctx context.Context, want map[string]string, flows string) error {
	var args []string
	for dev := range want {
		if _, ok := fl.access[dev]; !ok {
			args = append(args, "--", "add-port", bridge.DevAccess, dev, "--", "set", "interface", dev, "type=internal")
		}
	}
	for dev := range fl.access {
		if _, ok := want[dev]; !ok {
			args = append(args, "--", "--if-exists", "del-port", bridge.DevAccess, dev)
		}
	}
	if len(args) > 0 {
		if _, err := fl.v.Vsctl(ctx, args...); err != nil {
			return fmt.Errorf("frr leaf %s: access ports: %w", fl.name, err)
		}
	}
	for dev := range want {
		if _, ok := fl.access[dev]; ok {
			continue
		}
		if err := fl.p.r.lab.Do(fl.name, func() error { return ovs.NoTxChecksum(dev) }); err != nil {
			return fmt.Errorf("frr leaf %s: access port %s: %w", fl.name, dev, err)
		}
	}
	fl.access = want
	if flows == fl.flows {
		return nil
	}
	file := filepath.Join(fl.dir, "access.flows")
	if err := os.WriteFile(file, []byte(flows), 0o644); err != nil {
		return err
	}
	if _, err := fl.v.Ofctl(ctx, "replace-flows", bridge.DevAccess, file); err != nil {
		return fmt.Errorf("frr leaf %s: access flows: %w", fl.name, err)
	}
	fl.flows = flows
	return nil
}

// syncNetwork programs one L2 VNI: its bridge (the anycast gateway's MAC
// and address), its VXLAN device (nolearning, neigh_suppress: the bridge
// answers ARP from zebra's neighbour entries), its access ports, the
// MACs bound on them (static FDB entries, which zebra advertises) and
// their addresses (permanent neighbours on the bridge: zebra's MAC/IP).
func (fl *frrLeaf) syncNetwork(h *netlink.Handle, st evpn.LeafState, n evpn.NetworkState, access []string) error {
	brName, vxName := bridge.BridgeName(n.VNI), bridge.VXLANName(n.VNI)
	br, err := h.LinkByName(brName)
	if err != nil {
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: brName, HardwareAddr: st.GatewayMAC.HardwareAddr()}}); err != nil {
			return fmt.Errorf("create %s: %w", brName, err)
		}
		if br, err = h.LinkByName(brName); err != nil {
			return err
		}
	}
	vx, err := h.LinkByName(vxName)
	if err != nil {
		x := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: vxName, MasterIndex: br.Attrs().Index},
			VxlanId: int(n.VNI), SrcAddr: st.VTEP.AsSlice(), Port: bridge.PortVXLAN, Learning: false, TTL: 64}
		if err := h.LinkAdd(x); err != nil {
			return fmt.Errorf("create %s: %w", vxName, err)
		}
		if vx, err = h.LinkByName(vxName); err != nil {
			return err
		}
		if err := h.LinkSetLearning(vx, false); err != nil {
			return fmt.Errorf("%s: learning off: %w", vxName, err)
		}
		if err := h.LinkSetBrNeighSuppress(vx, true); err != nil {
			return fmt.Errorf("%s: neigh_suppress on: %w", vxName, err)
		}
	}
	for _, lk := range []netlink.Link{vx, br} {
		if lk.Attrs().Flags&net.FlagUp == 0 {
			if err := h.LinkSetUp(lk); err != nil {
				return fmt.Errorf("set %s up: %w", lk.Attrs().Name, err)
			}
		}
	}
	fl.l2[n.VNI] = true
	if n.Gateway.IsValid() {
		gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
		if err := h.AddrReplace(br, &netlink.Addr{IPNet: kernel.IPNet(gw)}); err != nil {
			return fmt.Errorf("gateway %v on %s: %w", gw, brName, err)
		}
	}
	local := map[string][]evpn.MAC{}
	for _, m := range n.Local {
		dev := bridge.AccessName(m.Port, m.VLAN)
		local[dev] = append(local[dev], m.MAC)
	}
	var errs []error
	for _, dev := range access {
		lk, err := h.LinkByName(dev)
		if err != nil {
			errs = append(errs, fmt.Errorf("access port %s: %w", dev, err))
			continue
		}
		if lk.Attrs().MasterIndex != br.Attrs().Index {
			if err := h.LinkSetMaster(lk, br); err != nil {
				errs = append(errs, fmt.Errorf("%s master %s: %w", dev, brName, err))
				continue
			}
		}
		if lk.Attrs().Flags&net.FlagUp == 0 {
			if err := h.LinkSetUp(lk); err != nil {
				errs = append(errs, fmt.Errorf("set %s up: %w", dev, err))
				continue
			}
		}
		errs = append(errs, bridge.SyncLocalFDB(h, lk, local[dev]))
	}
	isLocal := map[evpn.MAC]bool{}
	for _, m := range n.Local {
		isLocal[m.MAC] = true
	}
	var neighs []evpn.Neighbor
	for _, a := range n.ARP {
		if isLocal[a.MAC] {
			neighs = append(neighs, a)
		}
	}
	errs = append(errs, syncLocalNeighs(h, br, neighs))
	return errors.Join(errs...)
}

// syncLocalNeighs makes br's permanent neighbours (netbed's: the local
// instances' addresses) exactly want; zebra's (extern_learn) stay.
func syncLocalNeighs(h *netlink.Handle, br netlink.Link, want []evpn.Neighbor) error {
	idx := br.Attrs().Index
	have, err := h.NeighList(idx, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list neighbours of %s: %w", br.Attrs().Name, err)
	}
	w := map[netip.Addr]evpn.MAC{}
	for _, n := range want {
		w[n.IP] = n.MAC
	}
	var errs []error
	for _, n := range have {
		if n.State&netlink.NUD_PERMANENT == 0 || n.Flags&netlink.NTF_EXT_LEARNED != 0 {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		if m, ok := w[ip]; ok && len(n.HardwareAddr) == 6 && evpn.MACOf(n.HardwareAddr) == m {
			delete(w, ip)
			continue
		}
		if _, ok := w[ip]; ok {
			continue // replaced below
		}
		if err := h.NeighDel(&n); err != nil && !kernel.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove neighbour %v dev %s: %w", ip, br.Attrs().Name, err))
		}
	}
	for ip, m := range w {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: ip.AsSlice(), HardwareAddr: m.HardwareAddr()}); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %v lladdr %s dev %s: %w", ip, m, br.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// kernelFDB returns the remote entries zebra installed on the leaf's
// VXLAN devices: per VNI, MAC → VTEP (the all-zero MAC: a flood entry,
// one VTEP of them).
func (fl *frrLeaf) kernelFDB() (map[uint32]map[evpn.MAC][]netip.Addr, error) {
	return fl.kernelTable("fdb", bridge.VXLANName, unix.AF_BRIDGE, netlink.NTF_SELF)
}

// kernelNeighs returns zebra's neighbour entries (extern_learn) on the
// leaf's VNI bridges: per VNI, MAC → addresses.
func (fl *frrLeaf) kernelNeighs() (map[uint32]map[evpn.MAC][]netip.Addr, error) {
	return fl.kernelTable("neighbours", bridge.BridgeName, unix.AF_INET, netlink.NTF_EXT_LEARNED)
}

// kernelTable reads, on each VNI's device (dev names it), the entries of
// family that carry flag and an IPv4 address: per VNI, MAC → addresses.
func (fl *frrLeaf) kernelTable(what string, dev func(uint32) string, family, flag int) (map[uint32]map[evpn.MAC][]netip.Addr, error) {
	h, err := fl.p.r.lab.Handle(fl.name)
	if err != nil {
		return nil, err
	}
	fl.mu.Lock()
	vnis := make([]uint32, 0, len(fl.l2))
	for v := range fl.l2 {
		vnis = append(vnis, v)
	}
	fl.mu.Unlock()
	out := map[uint32]map[evpn.MAC][]netip.Addr{}
	for _, vni := range vnis {
		l, err := h.LinkByName(dev(vni))
		if err != nil {
			continue
		}
		ns, err := h.NeighList(l.Attrs().Index, family)
		if err != nil {
			return nil, fmt.Errorf("frr leaf %s: %s of %s: %w", fl.name, what, dev(vni), err)
		}
		m := map[evpn.MAC][]netip.Addr{}
		for _, n := range ns {
			if n.Flags&flag == 0 || len(n.HardwareAddr) != 6 {
				continue
			}
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
				mac := evpn.MACOf(n.HardwareAddr)
				m[mac] = append(m[mac], ip)
			}
		}
		out[vni] = m
	}
	return out, nil
}

// missingFrom names a route of another live leaf that the FRR leaf's
// kernel lacks (a type 2 MAC in a VNI it carries not in its VXLAN
// device's FDB towards the right VTEP; a type 3 not a flood entry), or
// "".
func (fl *frrLeaf) missingFrom(live []*bgpNode) string {
	fdb, err := fl.kernelFDB()
	if err != nil {
		return err.Error()
	}
	for _, from := range live {
		if from.frr != nil {
			continue
		}
		for _, r := range from.leaf.Advertised() {
			m, carried := fdb[r.VNI]
			if !carried {
				continue
			}
			mac := r.MAC
			if r.Type == evpn.InclusiveMulticast {
				mac = evpn.MAC{}
			} else if r.Type != evpn.MACIP {
				continue
			}
			if !slices.Contains(m[mac], r.VTEP) {
				return fmt.Sprintf("FRR leaf %s's kernel lacks %s of %s (bridge fdb of %s)", fl.name, r, from.name, bridge.VXLANName(r.VNI))
			}
		}
	}
	return ""
}

// missingAt names a route the FRR leaf advertises (per the model: its
// VNIs' type 3, its bound MACs' type 2, by MAC: FRR's carries an IP only
// once zebra took the neighbour) that a live netbed leaf's table lacks.
func (fl *frrLeaf) missingAt(bn *bgpNode, to *bgpNode) string {
	type key struct {
		t   evpn.RouteType
		vni uint32
		mac evpn.MAC
	}
	have := map[key]bool{}
	for _, r := range to.leaf.Table().Routes() {
		if r.VTEP == fl.vtep {
			have[key{r.Type, r.VNI, r.MAC}] = true
		}
	}
	for _, r := range bn.leaf.Advertised() {
		if r.Type != evpn.MACIP && r.Type != evpn.InclusiveMulticast {
			continue
		}
		if !have[key{r.Type, r.VNI, r.MAC}] {
			return fmt.Sprintf("%s lacks %s of FRR leaf %s", to.name, r, fl.name)
		}
	}
	return ""
}

// frrLeaves makes the nodes named in Options.FRRLeaves FRR leaves.
func (p *bgpPlane) frrLeaves(t *topologies.Topology) error {
	if len(p.r.opts.FRRLeaves) == 0 {
		return nil
	}
	if p.fab == nil {
		return fmt.Errorf("frr_leaves: FRR stands in for gen 2 leaves only")
	}
	s := &frrSyncer{p: p, wake: make(chan struct{}, 1)}
	for _, name := range p.r.opts.FRRLeaves {
		bn := p.nodes[name]
		if n := t.Node(name); bn == nil || bn.leaf == nil || n == nil || n.Role != topologies.RoleLeaf {
			return fmt.Errorf("frr_leaves: %s is not a leaf of %s", name, t.Name)
		}
		fl, err := p.newFRRLeaf(t, bn)
		if err != nil {
			return err
		}
		bn.frr = fl
		s.leaves = append(s.leaves, bn)
	}
	p.frrSync = s
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.run(ctx) })
	return nil
}

// isFRR reports whether node is an FRR leaf.
func (r *Runtime) isFRR(node string) bool {
	return r.bgp != nil && r.bgp.nodes[node] != nil && r.bgp.nodes[node].frr != nil
}

// FRRLeaf returns the directory of node's FRR leaf (its configurations,
// vty sockets and logs: `vtysh --vty_socket <dir>` works on it), false
// when node is not one.
func (r *Runtime) FRRLeaf(node string) (string, bool) {
	if !r.isFRR(node) {
		return "", false
	}
	return r.bgp.nodes[node].frr.dir, true
}

// startFRR powers the FRR leaf on: its underlay, its access vswitch
// (once), zebra and bgpd; the syncer then programs its VNIs. On the
// kernel backend the fabric routes the leaf's underlay as any leaf's
// (kernel.Env.Foreign), the spines being kernels that resolve its
// loopback by ARP; on netns buildUnderlay does, for the spines' models.
func (bn *bgpNode) startFRR(ctx context.Context) error {
	fl := bn.frr
	if bn.p.r.k == nil {
		if err := fl.buildUnderlay(); err != nil {
			return fmt.Errorf("frr leaf %s: %w", bn.name, err)
		}
	}
	if err := fl.startVswitch(ctx); err != nil {
		return err
	}
	if err := fl.start(ctx); err != nil {
		return err
	}
	bn.mu.Lock()
	bn.live = true
	bn.mu.Unlock()
	bn.p.frrSync.kick()
	return nil
}

// bgpSessions implements BGPSessions for an FRR leaf, from bgpd.
func (fl *frrLeaf) bgpSessions(ctx context.Context) ([]scenarios.BGPSession, error) {
	ss, err := fl.sessions(ctx)
	if err != nil {
		return nil, err
	}
	var out []scenarios.BGPSession
	for _, pr := range fl.p.nodes[fl.name].cfg.Peers {
		st := strings.ToLower(ss[pr.Address])
		out = append(out, scenarios.BGPSession{Peer: pr.Address, PeerNode: fl.p.peers[pr.Address], State: st, Established: st == "established"})
	}
	return out, nil
}

// dropAsymmetric leaves out of u the type 2 routes with an IP but no L3
// VNI: an FRR leaf's MAC/IP routes, which bridge only (no VRF here for
// symmetric IRB). Their MACs come in FRR's MAC-only type 2 routes; a
// netbed leaf's table takes no IP without the tenant's L3 VNI.
func dropAsymmetric(u speaker.Update) speaker.Update {
	keep := func(rs []evpn.Route) []evpn.Route {
		return slices.DeleteFunc(slices.Clone(rs), func(r evpn.Route) bool {
			return r.Type == evpn.MACIP && r.IP.IsValid() && r.L3VNI == 0
		})
	}
	u.Adds, u.Withdrawn = keep(u.Adds), keep(u.Withdrawn)
	return u
}

// frrSyncer programs the FRR leaves from their model leaves' state after
// every change to the model (kick: the runtime's pauses end, a leaf
// restarts), one sync at a time; wait returns once a sync that started
// after the last kick has ended.
type frrSyncer struct {
	p      *bgpPlane
	leaves []*bgpNode
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	want, done uint64
	err        error
}

func (s *frrSyncer) kick() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.want++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *frrSyncer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		target := s.want
		s.mu.Unlock()
		err := s.syncAll(ctx)
		s.mu.Lock()
		s.done, s.err = target, err
		s.mu.Unlock()
	}
}

func (s *frrSyncer) syncAll(ctx context.Context) error {
	states := make([]evpn.LeafState, len(s.leaves))
	if err := s.p.r.readModel(func() error {
		for i, bn := range s.leaves {
			states[i] = bn.leaf.State()
		}
		return nil
	}); err != nil {
		return err
	}
	var errs []error
	for i, bn := range s.leaves {
		errs = append(errs, bn.frr.sync(ctx, states[i]))
	}
	return errors.Join(errs...)
}

// wait waits until the FRR leaves are synced with every change made
// before it was called, and returns that sync's error.
func (s *frrSyncer) wait(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	target := s.want
	s.mu.Unlock()
	s.kick() // a sync that starts now covers target
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		done, err := s.done, s.err
		s.mu.Unlock()
		if done > target {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("frr_leaves: the FRR leaves' devices were not synced within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// close stops the syncer and every FRR leaf's vswitch.
func (s *frrSyncer) close() error {
	s.cancel()
	s.wg.Wait()
	var errs []error
	for _, bn := range s.leaves {
		if bn.frr.v != nil {
			errs = append(errs, bn.frr.v.Stop())
		}
	}
	return errors.Join(errs...)
}

// frrNeighbours tells the userspace nodes linked to FRR leaf node that
// their ports towards it went down (or came back up): the carrier they
// observe when the leaf loses power. The caller holds a pause.
func (r *Runtime) frrNeighbours(node string, up bool) error {
	var errs []error
	for _, ifc := range r.topo.Interfaces(node) {
		peer, _, ok := r.topo.Peer(topologies.Endpoint{Node: node, Iface: ifc})
		if !ok {
			continue
		}
		if _, ok := r.nodes[peer.Node]; !ok {
			continue
		}
		port := slices.Index(r.topo.Interfaces(peer.Node), peer.Iface)
		if err := r.us.SetLinkState(datapath.PortRef{Node: peer.Node, Port: port}, up); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// frrLeafAt names the FRR leaf at the far end of node's port, or "".
func (r *Runtime) frrLeafAt(node string, port int) string {
	ifs := r.topo.Interfaces(node)
	if port < 0 || port >= len(ifs) {
		return ""
	}
	peer, _, ok := r.topo.Peer(topologies.Endpoint{Node: node, Iface: ifs[port]})
	if !ok || !r.isFRR(peer.Node) {
		return ""
	}
	return peer.Node
}

// frrCrossings joins a probe's path across FRR leaves, whose kernels
// leave no trace: a frame a node read from an FRR leaf continues from
// the last frame a node sent to that leaf before it, through one event
// of the leaf (a VTEP crossing, rule frr:kernel, at the time the frame
// came out), so that paths and hop counts read as through netbed's leaf.
// rs holds the nodes' records first (nrecs, by position); the records
// it adds go at the end.
func (r *Runtime) frrCrossings(rs []outcome.Record, nrecs []userspace.Record, local map[int32]int32, egress []userspace.Egress, id uint64) []outcome.Record {
	for k, nr := range nrecs {
		if nr.From == nil || rs[k].Prev >= 0 {
			continue
		}
		leaf := r.frrLeafAt(nr.From.Node, nr.From.Port)
		if leaf == "" {
			continue
		}
		best := -1
		for j, e := range egress {
			if r.frrLeafAt(e.Node, e.Port) == leaf && e.Time <= nr.Time && (best < 0 || e.Time >= egress[best].Time) {
				best = j
			}
		}
		if best < 0 {
			continue
		}
		e := egress[best]
		prev := int32(-1)
		if l, ok := local[e.Head]; ok && e.Head >= 0 {
			prev = l
		}
		peerIface := func(node string, port int) string {
			p, _, _ := r.topo.Peer(topologies.Endpoint{Node: node, Iface: r.topo.Interfaces(node)[port]})
			return p.Iface
		}
		ev := datapath.Event{Time: nr.Time, Node: leaf, Device: leaf, Kind: datapath.KindVTEP, Action: datapath.ActForward,
			InPort: peerIface(e.Node, e.Port), OutPort: peerIface(nr.From.Node, nr.From.Port), Rule: "frr:kernel", Probe: id}
		rs = append(rs, outcome.Record{Ev: ev, Prev: prev, ARP: nr.ARP})
		rs[k].Prev = int32(len(rs) - 1)
	}
	return rs
}

// frrRoutes implements BGPRoutes for an FRR leaf from what its kernel
// holds, as an operator reads a VTEP with `bridge fdb` and `ip neigh`:
// each remote MAC zebra installed on a VXLAN device is a type 2 route of
// the VTEP it points to, with the address of zebra's neighbour entry for
// it on the VNI's bridge (the route as its origin advertised it, router
// MAC and L3 VNI included, when a netbed leaf did), each flood entry a
// type 3; the leaf's own are the type 3 of every VNI it carries and a
// type 2 for every MAC bound on its access ports (what advertise-all-vni
// sends).
func (bn *bgpNode) frrRoutes() ([]scenarios.BGPRoute, error) {
	fl := bn.frr
	if !bn.running() {
		return nil, fmt.Errorf("%s: FRR does not run (the node is failed)", bn.name)
	}
	fdb, err := fl.kernelFDB()
	if err != nil {
		return nil, err
	}
	neighs, err := fl.kernelNeighs()
	if err != nil {
		return nil, err
	}
	var local []evpn.Route
	advertised := map[evpn.Route][]evpn.Route{} // by VNI, MAC, IP and VTEP
	if err := bn.p.r.readModel(func() error {
		local = bn.leaf.Advertised()
		for _, other := range bn.p.nodes {
			if other.leaf == nil || other.frr != nil {
				continue
			}
			for _, r := range other.leaf.Advertised() {
				k := evpn.Route{Type: r.Type, VNI: r.VNI, MAC: r.MAC, IP: r.IP, VTEP: r.VTEP}
				advertised[k] = append(advertised[k], r)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	add := func(out []scenarios.BGPRoute, r evpn.Route) []scenarios.BGPRoute {
		if full := advertised[r]; len(full) > 0 {
			for _, f := range full {
				out = append(out, scenarios.BGPRoute{Route: f})
			}
			return out
		}
		return append(out, scenarios.BGPRoute{Route: r})
	}
	var out []scenarios.BGPRoute
	for vni, m := range fdb {
		out = append(out, scenarios.BGPRoute{Route: evpn.Route{Type: evpn.InclusiveMulticast, VNI: vni, VTEP: fl.vtep}})
		for mac, vteps := range m {
			for _, v := range vteps {
				if mac == (evpn.MAC{}) {
					out = add(out, evpn.Route{Type: evpn.InclusiveMulticast, VNI: vni, VTEP: v})
					continue
				}
				ips := neighs[vni][mac]
				if len(ips) == 0 {
					out = add(out, evpn.Route{Type: evpn.MACIP, VNI: vni, MAC: mac, VTEP: v})
				}
				for _, ip := range ips {
					out = add(out, evpn.Route{Type: evpn.MACIP, VNI: vni, MAC: mac, IP: ip, VTEP: v})
				}
			}
		}
	}
	for _, r := range local {
		if r.Type == evpn.MACIP && fdb[r.VNI] != nil {
			out = append(out, scenarios.BGPRoute{Route: evpn.Route{Type: evpn.MACIP, VNI: r.VNI, MAC: r.MAC, VTEP: fl.vtep}})
		}
	}
	return out, nil
}

// waitLinksUp waits until every topology interface that is up is
// operationally up. Unlike netns.Lab.WaitUp it leaves out the devices an
// FRR leaf adds (its VXLAN devices' and Open vSwitch ports' operational
// state is "unknown").
func (r *Runtime) waitLinksUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range r.lab.Nodes() {
		h, err := r.lab.Handle(n)
		if err != nil {
			return err
		}
		for _, ifc := range r.topo.Interfaces(n) {
			for {
				lk, err := h.LinkByName(ifc)
				if err != nil {
					return fmt.Errorf("node %s: %s: %w", n, ifc, err)
				}
				if a := lk.Attrs(); a.Flags&net.FlagUp == 0 || a.OperState == netlink.OperUp {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("node %s: interface %s is not operationally up after %v", n, ifc, timeout)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}
	return nil
}
