package netnsrt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// The BGP control plane's default design (docs/design.md, "Gen 2's BGP
// control plane"; Options.BGPDesign ebgp is RFC 7938's; both from bgpevpn.NewDesign, which the sim model builds too): one
// AS for the fabric (iBGP), the spines route reflectors
// sharing one cluster ID, every leaf a client of every spine, each
// speaker's router ID its node's loopback (a leaf's VTEP address), and
// every session real TCP over the leaf–spine veth itself, between /31
// addresses the kernels hold on the link's two ends.
const (
	// DefaultASN is the fabric's AS unless its switches carry LabelASN.
	DefaultASN = bgpevpn.DefaultASN
	// LabelASN, on a topology's spines and leaves, sets the fabric's AS
	// number (one for all of them: the design is iBGP).
	LabelASN = bgpevpn.LabelASN
)

// DefaultSessionPool is where the leaf–spine links' /31 session
// addresses come from: link-local, so that they collide with no
// loopback, tenant subnet or anything routed.
var DefaultSessionPool = bgpevpn.SessionPool

// DefaultLeafASN is the first leaf's AS in the eBGP design
// (bgpevpn.DesignASNs).
const DefaultLeafASN = bgpevpn.DefaultLeafASN

// bgpPlane is gen 2's control plane as real BGP: a speaker process in
// every leaf's and spine's namespace, each leaf's route table fed from
// its own speaker's best paths.
type bgpPlane struct {
	r   *Runtime
	fab *evpn.Fabric // gen 2's, or nil
	// direct is gen 3's fabric with direct routing (newDirectPlane), or
	// nil.
	direct *ebpf.Fabric
	asn    uint32
	dir    string // <lab state>/bgp: configurations, sockets, logs
	exe    string
	nodes  map[string]*bgpNode
	order  []string // spines, then leaves, in topology order
	// peers names the node at each session address.
	peers map[netip.Addr]string
	// frrSync brings the FRR leaves' devices in line with the model
	// (frr_leaves), or is nil.
	frrSync *frrSyncer
}

// bgpNode is one switch's speaker. Its process comes and goes with the
// node's failures and restores; the node stays.
type bgpNode struct {
	p      *bgpPlane
	name   string
	leaf   *evpn.Leaf // nil for a spine
	cfg    speaker.Config
	ifaces []string // the node's fabric interfaces (its links)

	// Gen 3 (newDirectPlane): a leaf's speaker learns its hosts' pod
	// CIDRs (podRouter; ifaceOf maps a host's session address to the
	// leaf's interface towards it, learnt the CIDRs the leaf routes, by
	// interface, under mu); a host's advertises its own (pod) from its
	// first session address (local).
	podRouter bool
	ifaceOf   map[netip.Addr]string
	learnt    map[netip.Prefix]string
	pod       netip.Prefix
	local     netip.Addr
	// loopback, on a leaf of the eBGP design, is the VTEP address it
	// advertises in IPv4 unicast.
	loopback netip.Addr
	// frr, on a leaf named in frr_leaves, is the FRR leaf that stands in
	// for the node's speaker and datapath (no 'netbed speaker' runs).
	frr *frrLeaf

	// The current incarnation (between start and stop).
	cmd    *exec.Cmd
	exited chan struct{}
	client *speaker.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	live  bool          // the speaker runs: exports are queued
	hung  bool          // the speaker is frozen (hang) until stop
	queue []evpn.Update // exports not sent yet
	wake  chan struct{}
	errs  []error
	// changed is, by VTEP, when the leaf's watch last received a best
	// path of that VTEP gained or lost (runtime time), under mu.
	changed map[netip.Addr]time.Duration
}

// newBGPPlane designs the fabric's BGP (ASN, router IDs, sessions),
// puts the session addresses on the links' veths and writes every
// speaker's configuration; start runs them.
func newBGPPlane(r *Runtime, fab *evpn.Fabric, t *topologies.Topology, dir string) (*bgpPlane, error) {
	exe, err := r.ControllerBinary()
	if err != nil {
		return nil, fmt.Errorf("control_plane bgp: the speakers run as 'netbed speaker': %w", err)
	}
	ebgp := r.opts.BGPDesign == scenarios.DesignEBGP
	d, err := bgpevpn.NewDesign(t, ebgp, fab.Loopback)
	if err != nil {
		return nil, err
	}
	p := &bgpPlane{r: r, fab: fab, asn: d.RouteTargetASN, dir: dir, exe: exe, nodes: map[string]*bgpNode{}, peers: map[netip.Addr]string{}}
	for _, s := range d.Speakers {
		sock := filepath.Join(dir, s.Node+".sock")
		if len(sock) >= len(syscall.RawSockaddrUnix{}.Path) {
			return nil, fmt.Errorf("control_plane bgp: node %s: gRPC socket path %s is longer than a unix socket allows; use a shorter state directory", s.Node, sock)
		}
		bn := &bgpNode{p: p, name: s.Node, ifaces: t.Interfaces(s.Node), wake: make(chan struct{}, 1),
			cfg: speaker.Config{Node: s.Node, ASN: s.ASN, RouterID: s.RouterID, GRPC: sock, Timers: r.opts.BGPTimers}}
		if r.opts.BFD {
			bn.cfg.BFD = &speaker.BFD{}
		}
		if s.Leaf {
			bn.leaf, _ = fab.Leaf(s.Node)
			bn.cfg.Port = -1 // leaves dial their spines
			if ebgp {
				bn.loopback = s.RouterID // advertised in IPv4 unicast
			}
		} else if ebgp {
			bn.cfg.EVPNNextHopUnchanged = true
		}
		bn.cfg.ClusterID = s.ClusterID // a route reflector's
		p.nodes[s.Node] = bn
		// Spines first, so that they listen before the leaves dial.
		p.order = append(p.order, s.Node)
	}
	for _, ss := range d.Sessions {
		a, b := p.nodes[ss.A.Node], p.nodes[ss.B.Node]
		p.peers[ss.AddrA], p.peers[ss.AddrB] = ss.A.Node, ss.B.Node
		if err := p.addAddr(ss.A, ss.AddrA); err != nil {
			return nil, err
		}
		if err := p.addAddr(ss.B, ss.AddrB); err != nil {
			return nil, err
		}
		// A listens, B dials.
		a.cfg.Listen = append(a.cfg.Listen, ss.AddrA)
		a.cfg.Port = 0
		switch {
		case ebgp:
			fams := []speaker.Family{speaker.EVPN, speaker.IPv4Unicast}
			a.cfg.Peers = append(a.cfg.Peers, speaker.Peer{Address: ss.AddrB, ASN: b.cfg.ASN, Passive: true, Families: fams})
			b.cfg.Peers = append(b.cfg.Peers, speaker.Peer{Address: ss.AddrA, ASN: a.cfg.ASN, Families: fams})
		default:
			a.cfg.Peers = append(a.cfg.Peers, speaker.Peer{Address: ss.AddrB, ASN: a.cfg.ASN, RRClient: ss.BClient, Passive: true})
			b.cfg.Peers = append(b.cfg.Peers, speaker.Peer{Address: ss.AddrA, ASN: b.cfg.ASN, RRClient: ss.AClient})
		}
	}
	if err := p.frrLeaves(t); err != nil {
		return nil, err
	}
	for _, name := range p.order {
		bn := p.nodes[name]
		if len(bn.cfg.Peers) == 0 {
			return nil, fmt.Errorf("control_plane bgp: node %s has no leaf–spine link to run a session on", name)
		}
		if err := bn.cfg.Validate(); err != nil {
			return nil, fmt.Errorf("control_plane bgp: %w", err)
		}
		if bn.frr != nil {
			continue // FRR advertises what its kernel holds
		}
		if err := speaker.WriteConfig(bn.configPath(), bn.cfg); err != nil {
			return nil, fmt.Errorf("control_plane bgp: %w", err)
		}
		if bn.leaf != nil {
			bn.leaf.SetExporter(bn)
		}
	}
	return p, nil
}

func (p *bgpPlane) addAddr(e topologies.Endpoint, a netip.Addr) error {
	h, err := p.r.lab.Handle(e.Node)
	if err != nil {
		return fmt.Errorf("control_plane bgp: %s: %w", e, err)
	}
	l, err := h.LinkByName(e.Iface)
	if err != nil {
		return fmt.Errorf("control_plane bgp: %s: %w", e, err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(31, 32)}}); err != nil {
		return fmt.Errorf("control_plane bgp: session address %s on %s: %w", a, e, err)
	}
	return nil
}

func (bn *bgpNode) configPath() string { return strings.TrimSuffix(bn.cfg.GRPC, ".sock") + ".json" }

// start runs every speaker, side by side, and waits until every session
// is established.
func (p *bgpPlane) start(ctx context.Context) error {
	errs := make([]error, len(p.order))
	var wg sync.WaitGroup
	for i, name := range p.order {
		wg.Go(func() { errs[i] = p.nodes[name].start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return p.waitEstablished(ctx, p.order)
}

func (p *bgpPlane) waitEstablished(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range names {
		if fl := p.nodes[name].frr; fl != nil {
			if err := fl.waitEstablished(ctx); err != nil {
				return fmt.Errorf("control_plane bgp: %w", err)
			}
			continue
		}
		if err := p.nodes[name].client.WaitEstablished(ctx); err != nil {
			return fmt.Errorf("control_plane bgp: %w (log: %s)", err, p.nodes[name].logPath())
		}
	}
	return nil
}

func (bn *bgpNode) logPath() string { return strings.TrimSuffix(bn.cfg.GRPC, ".sock") + ".log" }

// start runs the node's speaker as a process born inside its namespace,
// connects to its API and, for a leaf, starts sending the leaf's exports
// and importing the speaker's best paths into the leaf's table.
func (bn *bgpNode) start(ctx context.Context) error {
	if bn.frr != nil {
		return bn.startFRR(ctx)
	}
	logf, err := os.OpenFile(bn.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("control_plane bgp: %s: %w", bn.name, err)
	}
	defer logf.Close()
	cmd := exec.Command(bn.p.exe, "speaker", "--config", bn.configPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := bn.p.r.lab.Do(bn.name, cmd.Start); err != nil {
		return fmt.Errorf("control_plane bgp: start the speaker of %s: %w", bn.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	client, err := dialSpeaker(ctx, bn.cfg, bn.p.asn, exited)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("control_plane bgp: %w (log: %s)", err, bn.logPath())
	}
	ictx, cancel := context.WithCancel(context.Background())
	bn.mu.Lock()
	bn.cmd, bn.exited, bn.client, bn.cancel = cmd, exited, client, cancel
	bn.live, bn.queue = true, nil
	bn.mu.Unlock()
	if bn.leaf != nil {
		bn.wg.Go(func() { bn.send(ictx, client) })
		bn.wg.Go(func() { bn.watch(ictx, client) })
	}
	if bn.podRouter {
		bn.wg.Go(func() { bn.watchPods(ictx, client) })
	}
	if bn.loopback.IsValid() {
		lo := speaker.PrefixRoute{Prefix: netip.PrefixFrom(bn.loopback, 32), NextHop: netip.IPv4Unspecified()}
		if err := client.AdvertisePrefix(ctx, lo); err != nil {
			return fmt.Errorf("control_plane bgp: %w", err)
		}
	}
	if bn.pod.IsValid() {
		if err := client.AdvertisePrefix(ctx, speaker.PrefixRoute{Prefix: bn.pod, NextHop: bn.local}); err != nil {
			return fmt.Errorf("control_plane bgp: %w", err)
		}
	}
	return nil
}

// dialSpeaker waits for the speaker's socket and connects to it.
func dialSpeaker(ctx context.Context, c speaker.Config, rtASN uint32, exited <-chan struct{}) (*speaker.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(c.GRPC); err == nil {
			return speaker.Dial(ctx, c.Node, c.GRPC, rtASN)
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s: the speaker exited before opening %s", c.Node, c.GRPC)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no gRPC socket at %s: %w", c.Node, c.GRPC, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Export implements evpn.Exporter: it queues u for the speaker (never
// blocking the leaf) while the speaker runs, and drops it otherwise (the
// leaf exports everything again when its session comes back).
func (bn *bgpNode) Export(u evpn.Update) {
	bn.mu.Lock()
	if bn.live {
		bn.queue = append(bn.queue, u)
	}
	bn.mu.Unlock()
	select {
	case bn.wake <- struct{}{}:
	default:
	}
}

// send hands the queued exports to the speaker in order, consecutive ones
// of the same kind in one call.
func (bn *bgpNode) send(ctx context.Context, c *speaker.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-bn.wake:
		}
		bn.mu.Lock()
		q := bn.queue
		bn.queue = nil
		bn.mu.Unlock()
		for i := 0; i < len(q); {
			j := i
			var rs []evpn.Route
			for ; j < len(q) && q[j].Op == q[i].Op; j++ {
				rs = append(rs, q[j].Route)
			}
			var err error
			if q[i].Op == evpn.OpAdd {
				err = c.Advertise(ctx, rs...)
			} else {
				err = c.Withdraw(ctx, rs...)
			}
			if err != nil && ctx.Err() == nil {
				bn.fail(err)
			}
			i = j
		}
	}
}

// watch imports the speaker's best paths into the leaf's table, each
// change while the nodes are paused.
func (bn *bgpNode) watch(ctx context.Context, c *speaker.Client) {
	present := map[evpn.Route]bool{}
	err := c.Watch(ctx, func(u speaker.Update) {
		at := bn.p.r.Now()
		adds, gone := newPaths(present, dropAsymmetric(u))
		if len(adds)+len(gone) == 0 {
			return
		}
		bn.mu.Lock()
		if bn.changed == nil {
			bn.changed = map[netip.Addr]time.Duration{}
		}
		for _, rs := range [][]evpn.Route{adds, gone} {
			for _, r := range rs {
				bn.changed[r.VTEP] = at
			}
		}
		bn.mu.Unlock()
		if err := bn.p.r.exclusive(func() error { return bn.leaf.Import(adds, gone) }); err != nil {
			bn.fail(err)
		}
	})
	if err != nil && ctx.Err() == nil {
		bn.fail(err)
	}
}

// newPaths returns what in u the leaf imports, and keeps present (the
// best paths the speaker holds) up to date: a best path that changes to
// another copy of the same route (learnt from the other route reflector
// when the first withdrew it) is reported as an add, but it is no new
// advertisement, and importing it again would undo a newer route of the
// same MAC from another leaf (MAC mobility). Withdrawals all pass.
func newPaths(present map[evpn.Route]bool, u speaker.Update) (adds, gone []evpn.Route) {
	for _, r := range u.Withdrawn {
		delete(present, r)
	}
	gone = u.Withdrawn
	for _, r := range u.Adds {
		if !present[r] {
			present[r] = true
			adds = append(adds, r)
		}
	}
	return adds, gone
}

func (bn *bgpNode) fail(err error) {
	bn.mu.Lock()
	bn.errs = append(bn.errs, err)
	bn.mu.Unlock()
}

// stop ends the incarnation: no more exports are queued, the speaker
// process gets SIGKILL (it vanishes without a word, as on power loss),
// and the import and export goroutines end.
func (bn *bgpNode) stop() {
	if bn.frr != nil {
		bn.mu.Lock()
		bn.live, bn.hung = false, false
		bn.mu.Unlock()
		bn.frr.stop()
		return
	}
	bn.mu.Lock()
	bn.live, bn.queue, bn.hung = false, nil, false
	cmd, exited, client, cancel := bn.cmd, bn.exited, bn.client, bn.cancel
	bn.cmd, bn.client, bn.cancel = nil, nil, nil
	bn.mu.Unlock()
	if cmd == nil {
		return
	}
	cancel()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	bn.wg.Wait()
	_ = client.Close()
	_ = os.Remove(bn.cfg.GRPC)
}

// hang freezes the speaker process (SIGSTOP), as on a hung line card:
// its sessions' sockets stay open but it sends nothing, not even a
// keepalive, so its peers drop it when their hold timers expire. The
// leaf's exports are dropped and the import and export goroutines end;
// the node's speaker is no longer listed as running. stop ends the
// process for good.
func (bn *bgpNode) hang() error {
	if bn.frr != nil {
		bn.mu.Lock()
		bn.live, bn.hung = false, true
		bn.mu.Unlock()
		return bn.frr.hang()
	}
	bn.mu.Lock()
	bn.live, bn.queue, bn.hung = false, nil, true
	cmd, cancel := bn.cmd, bn.cancel
	bn.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze the speaker of %s: %w", bn.name, err)
	}
	cancel()
	bn.wg.Wait()
	return nil
}

// setLinks takes every link of the node down (its veth ends, inside its
// namespace: the peers lose carrier) or up, all in one send.
func (bn *bgpNode) setLinks(up bool) error {
	return bn.p.r.lab.SetLinks(bn.name, bn.ifaces, up)
}

// fail is a switch losing power: its links lose carrier, its speaker
// dies, and a leaf forgets what it had learnt. Its peers learn it only
// from what they observe (carrier, the TCP session).
func (p *bgpPlane) failNode(name string) error {
	bn := p.nodes[name]
	if err := bn.setLinks(false); err != nil {
		return fmt.Errorf("control_plane bgp: fail %s: %w", name, err)
	}
	bn.stop()
	if bn.podRouter {
		return bn.forgetPods()
	}
	if bn.frr != nil {
		if err := bn.frr.forget(); err != nil {
			return fmt.Errorf("control_plane bgp: fail %s: %w", name, err)
		}
	}
	if bn.leaf != nil {
		return p.r.exclusive(func() error { bn.leaf.Forget(); return nil })
	}
	return nil
}

// restoreNode powers the switch back on: links up, speaker restarted,
// its sessions established; a leaf advertises its routes again, and the
// restore ends once every live leaf's table holds every live leaf's
// routes.
func (p *bgpPlane) restoreNode(ctx context.Context, name string) error {
	bn := p.nodes[name]
	bn.mu.Lock()
	hung := bn.hung
	bn.mu.Unlock()
	if hung {
		// A hung switch is rebooted: the frozen speaker goes, and a
		// leaf forgets what it had learnt, as after a power loss.
		bn.stop()
		if bn.podRouter {
			if err := bn.forgetPods(); err != nil {
				return err
			}
		}
		if bn.frr != nil {
			if err := bn.frr.forget(); err != nil {
				return err
			}
		}
		if bn.leaf != nil {
			if err := p.r.exclusive(func() error { bn.leaf.Forget(); return nil }); err != nil {
				return err
			}
		}
	}
	if err := bn.setLinks(true); err != nil {
		return fmt.Errorf("control_plane bgp: restore %s: %w", name, err)
	}
	if err := p.r.waitLinksUp(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("control_plane bgp: restore %s: %w", name, err)
	}
	if err := bn.start(ctx); err != nil {
		return err
	}
	if err := p.waitEstablished(ctx, []string{name}); err != nil {
		return err
	}
	if bn.frr != nil {
		if err := p.frrSync.wait(ctx); err != nil {
			return err
		}
	} else if bn.leaf != nil {
		// The leaf's session comes back: it advertises everything again
		// (to a speaker that knows nothing), whether or not the fabric's
		// control plane saw it go down.
		if err := p.r.exclusive(func() error {
			bn.leaf.SetSession(false)
			p.fab.NodeStateChanged(name, true)
			return nil
		}); err != nil {
			return err
		}
	}
	return p.waitConverged(ctx, 15*time.Second)
}

// waitConverged polls until every live leaf's table holds every route
// the other live leaves advertise, or timeout; the error then names a
// leaf and a route it lacks.
func (p *bgpPlane) waitConverged(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing string
		if p.fab != nil {
			_ = p.r.exclusive(func() error { missing = p.missing(); return nil })
		} else {
			missing = p.missingPods()
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("control_plane bgp: not converged after %v: %s", timeout, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// missing names a live leaf and a route of another live leaf its table
// lacks ("" when none); it runs while the nodes are paused.
func (p *bgpPlane) missing() string {
	var live []*bgpNode
	for _, name := range p.order {
		if bn := p.nodes[name]; bn.leaf != nil && bn.running() {
			live = append(live, bn)
		}
	}
	for _, to := range live {
		if to.frr != nil {
			if m := to.frr.missingFrom(live); m != "" {
				return m
			}
			continue
		}
		for _, from := range live {
			if from.frr != nil {
				if m := from.frr.missingAt(from, to); m != "" {
					return m
				}
			}
		}
		have := map[evpn.Route]bool{}
		for _, r := range to.leaf.Table().Routes() {
			have[asCarried(r)] = true
		}
		for _, from := range live {
			if from == to || from.frr != nil {
				continue
			}
			for _, r := range from.leaf.Advertised() {
				if !have[asCarried(r)] {
					return fmt.Sprintf("%s lacks %s of %s", to.name, r, from.name)
				}
			}
		}
	}
	return ""
}

// asCarried is r as BGP carries it: a type 2 route without an IP has no
// router MAC or L3 VNI (bgpevpn.Encode).
func asCarried(r evpn.Route) evpn.Route {
	if r.Type == evpn.MACIP && !r.IP.IsValid() {
		r.RouterMAC, r.L3VNI = evpn.MAC{}, 0
	}
	return r
}

func (bn *bgpNode) running() bool {
	bn.mu.Lock()
	defer bn.mu.Unlock()
	return bn.live
}

// close stops every speaker and returns the errors their import and
// export met.
func (p *bgpPlane) close() error {
	var wg sync.WaitGroup
	for _, bn := range p.nodes {
		wg.Go(bn.stop)
	}
	wg.Wait()
	var errs []error
	if p.frrSync != nil {
		errs = append(errs, p.frrSync.close())
	}
	for _, name := range p.order {
		bn := p.nodes[name]
		bn.mu.Lock()
		errs = append(errs, bn.errs...)
		bn.mu.Unlock()
		if bn.leaf != nil {
			bn.leaf.SetExporter(nil)
		}
	}
	return errors.Join(errs...)
}

// Speakers returns the names of the nodes that run a BGP speaker
// (control_plane: bgp), spines first; none otherwise.
func (r *Runtime) Speakers() []string {
	if r.bgp == nil {
		return nil
	}
	return slices.Clone(r.bgp.order)
}

// SpeakerSocket returns the unix socket where node's speaker serves
// GoBGP's gRPC API: `gobgp --target unix://<path> neighbor` works on it.
func (r *Runtime) SpeakerSocket(node string) (string, bool) {
	if r.bgp == nil || r.bgp.nodes[node] == nil {
		return "", false
	}
	return r.bgp.nodes[node].cfg.GRPC, true
}

// Speaker returns a client of node's running speaker (nil while the node
// is failed, silently or not). It stays the runtime's: do not close it.
func (r *Runtime) Speaker(node string) (*speaker.Client, bool) {
	if r.bgp == nil || r.bgp.nodes[node] == nil {
		return nil, false
	}
	bn := r.bgp.nodes[node]
	bn.mu.Lock()
	defer bn.mu.Unlock()
	if bn.hung {
		return nil, false // frozen: its API would not answer
	}
	return bn.client, bn.client != nil
}

var _ scenarios.ControlPlaneInspector = (*Runtime)(nil)

// BGPSpeakers implements scenarios.ControlPlaneInspector: every node
// with a speaker (none without control_plane bgp), its router ID as the
// running speaker reports it.
func (r *Runtime) BGPSpeakers(ctx context.Context) ([]scenarios.BGPSpeaker, error) {
	if r.bgp == nil {
		return nil, nil
	}
	var out []scenarios.BGPSpeaker
	for _, name := range r.bgp.order {
		bn := r.bgp.nodes[name]
		s := scenarios.BGPSpeaker{Node: name, RouterID: bn.cfg.RouterID, Leaf: bn.leaf != nil, Direct: bn.podRouter || bn.pod.IsValid()}
		if bn.frr != nil {
			s.Running = bn.running()
		} else if c, ok := r.Speaker(name); ok {
			id, err := c.RouterID(ctx)
			if err != nil {
				return nil, err
			}
			s.RouterID, s.Running = id, true
		}
		out = append(out, s)
	}
	return out, nil
}

// BGPSessions implements scenarios.ControlPlaneInspector.
func (r *Runtime) BGPSessions(ctx context.Context, node string) ([]scenarios.BGPSession, error) {
	if r.bgp != nil && r.bgp.nodes[node] != nil && r.bgp.nodes[node].frr != nil {
		return r.bgp.nodes[node].frr.bgpSessions(ctx)
	}
	c, err := r.runningSpeaker(node)
	if err != nil {
		return nil, err
	}
	ss, err := c.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]scenarios.BGPSession, len(ss))
	for i, s := range ss {
		out[i] = scenarios.BGPSession{Peer: s.Peer, PeerNode: r.bgp.peers[s.Peer], State: s.State, Established: s.Established}
	}
	return out, nil
}

// BGPRoutes implements scenarios.ControlPlaneInspector.
func (r *Runtime) BGPRoutes(ctx context.Context, node string) ([]scenarios.BGPRoute, error) {
	if r.bgp != nil && r.bgp.nodes[node] != nil && r.bgp.nodes[node].frr != nil {
		return r.bgp.nodes[node].frrRoutes()
	}
	c, err := r.runningSpeaker(node)
	if err != nil {
		return nil, err
	}
	ps, err := c.Paths(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]scenarios.BGPRoute, len(ps))
	for i, p := range ps {
		out[i] = scenarios.BGPRoute{Route: p.Route, RouteTargets: p.RouteTargets}
	}
	return out, nil
}

// LastBGPChange implements scenarios.BGPEventClock: when node's leaf
// last received, from its speaker's watch, a best path of vtep gained or
// lost (a copy of a held route from the other reflector does not count);
// false for a node whose speaker netbed does not watch (a spine, an FRR
// leaf) or that received none.
func (r *Runtime) LastBGPChange(node string, vtep netip.Addr) (time.Duration, bool) {
	if r.bgp == nil || r.bgp.nodes[node] == nil {
		return 0, false
	}
	bn := r.bgp.nodes[node]
	bn.mu.Lock()
	defer bn.mu.Unlock()
	at, ok := bn.changed[vtep]
	return at, ok
}

var _ scenarios.BGPEventClock = (*Runtime)(nil)

func (r *Runtime) runningSpeaker(node string) (*speaker.Client, error) {
	if r.bgp == nil || r.bgp.nodes[node] == nil {
		return nil, fmt.Errorf("%s runs no BGP speaker", node)
	}
	c, ok := r.Speaker(node)
	if !ok {
		return nil, fmt.Errorf("%s: its speaker does not run or is frozen (the node is failed)", node)
	}
	return c, nil
}

// Settle implements scenarios.Settler: with control_plane bgp it waits
// until every live leaf's table holds every route the other live leaves
// advertise (at most 15 s); with the shared table there is nothing to
// wait for.
func (r *Runtime) Settle(ctx context.Context) error {
	if r.bgp == nil {
		return nil
	}
	if err := r.bgp.frrSync.wait(ctx); err != nil {
		return err
	}
	return r.bgp.waitConverged(ctx, 15*time.Second)
}

var _ scenarios.Settler = (*Runtime)(nil)
