package cnc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/topologies"
)

// Service is the part of the network service the CNC reads from and reports
// to; *controller.Service implements it.
type Service interface {
	// GetPort returns a port by name, with its current host binding.
	GetPort(ctx context.Context, name string) (controller.Port, error)
	// GetNetwork returns a network by ID, for its segment.
	GetNetwork(ctx context.Context, ref string) (controller.Network, error)
	// SetOverlayState records the port's overlay state; a report naming a
	// host the port has left fails with controller.ErrStale.
	SetOverlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error)
}

var _ Service = (*controller.Service)(nil)

// Options tune a CNC. The zero value is usable.
type Options struct {
	// Attempts is how many times a leaf call is tried before the port's
	// overlay stays in ERROR. Default 5.
	Attempts int
	// Backoff is the wait before the first retry; it doubles up to
	// MaxBackoff. Defaults 50ms and 2s.
	Backoff, MaxBackoff time.Duration
	// Clock stamps the recorded steps. Default the wall clock.
	Clock controller.Clock
	// StepHistory caps the steps kept per port. Default 64.
	StepHistory int
	// GoneHistory caps how many deleted ports keep their steps (for a
	// timeline read after the deletion). Default 4096.
	GoneHistory int
	// AccessVLAN, when set and returning ok, fixes the access VLAN of a
	// VXLAN network on a leaf (a fabric model whose hosts tag each network
	// with one VLAN, as evpndriver.Driver.AccessVLAN does); otherwise the CNC
	// allocates the lowest free VLAN per leaf.
	AccessVLAN func(leaf string, vni uint32) (uint16, bool)
}

func (o *Options) defaults() {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(2*time.Second, o.Backoff)
	}
	if o.Clock == nil {
		o.Clock = controller.SystemClock{}
	}
	if o.StepHistory <= 0 {
		o.StepHistory = 64
	}
	if o.GoneHistory <= 0 {
		o.GoneHistory = 4096
	}
}

// CNC programs leaves for bound ports. It implements controller.Overlay:
// PortBound and PortUnbound return at once; the work runs in the
// background, one port at a time per port. Each run reconciles the port:
// it reads the port's current binding from the service, removes its
// configuration from the leaves it no longer needs (the old host's, after a
// drift) and pushes it to the leaves of its current host, then reports the
// overlay state. Hooks that arrive out of order therefore converge on the
// binding the store holds. Close stops it.
type CNC struct {
	w    *wiring
	drv  LeafDriver
	opts Options

	ctx    context.Context
	cancel context.CancelFunc

	svcMu sync.RWMutex
	svc   Service

	mu       sync.Mutex
	dirty    map[PortID]*pending // ports waiting for a run
	running  map[PortID]bool     // ports with a worker
	busy     int                 // ports dirty or running
	idle     chan struct{}       // closed while busy == 0
	workers  sync.WaitGroup
	bound    map[PortID]*binding
	refs     map[mapKey]map[PortID]bool   // mapping on a leaf port -> ports needing it
	attLocks map[Attachment]*sync.Mutex   // see lockAttachment
	vlans    map[string]map[uint32]uint16 // leaf -> VNI -> access VLAN
	networks map[string]controller.Segment
	steps    map[PortID][]Step
	gone     []PortID // deleted ports whose steps are still kept, oldest first
}

var _ controller.Overlay = (*CNC)(nil)

// pending is a port's queued work: its name (to read it back) and the hosts
// the hooks said it left (used when the CNC holds no record of the port).
type pending struct {
	last     controller.Port // the port as the latest hook saw it
	oldHosts []string
}

// binding is what the CNC configured for one port.
type binding struct {
	port    controller.Port // as last applied: its MAC and addresses go in removals
	name    string
	host    string
	network string
	seg     controller.Segment
	applied map[Attachment]uint16 // leaf port -> access VLAN, once applied
}

type mapKey struct {
	leaf, iface string
	vlan        uint16
	vni         uint32
}

// Step is one timed step of the CNC's work on a port, for the spawn
// timeline. Kinds: "lookup" (read the binding, find the host's leaves),
// "remove" and "apply" (one per leaf and attempt), "report" (the overlay
// state sent to the service).
type Step struct {
	Port    PortID
	Kind    string
	Host    string // the host the port is bound to
	Leaf    string // remove and apply
	Attempt int    // remove and apply, from 1
	State   controller.State
	Start   time.Time
	End     time.Time
	Err     string
}

// Duration is how long the step took.
func (s Step) Duration() time.Duration { return s.End.Sub(s.Start) }

// New returns a CNC for the fabric topo, programming leaves through drv and
// reporting to svc. svc may be nil and set later with SetService, because
// the service is usually built first with the CNC as its Overlay.
func New(topo *topologies.Topology, drv LeafDriver, svc Service, o Options) *CNC {
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	idle := make(chan struct{})
	close(idle)
	return &CNC{
		w: newWiring(topo), drv: drv, opts: o, ctx: ctx, cancel: cancel, svc: svc,
		dirty: map[PortID]*pending{}, running: map[PortID]bool{}, idle: idle,
		bound: map[PortID]*binding{}, refs: map[mapKey]map[PortID]bool{}, attLocks: map[Attachment]*sync.Mutex{},
		vlans: map[string]map[uint32]uint16{}, networks: map[string]controller.Segment{},
		steps: map[PortID][]Step{},
	}
}

// SetService sets the service the CNC reports to.
func (c *CNC) SetService(svc Service) {
	c.svcMu.Lock()
	defer c.svcMu.Unlock()
	c.svc = svc
}

func (c *CNC) service() (Service, error) {
	c.svcMu.RLock()
	defer c.svcMu.RUnlock()
	if c.svc == nil {
		return nil, errors.New("cnc: no service set (call SetService)")
	}
	return c.svc, nil
}

// Close stops the background work and waits for it; queued work is
// dropped.
func (c *CNC) Close() error {
	c.cancel()
	c.workers.Wait()
	return nil
}

// PortBound queues a reconcile of p: its configuration is pushed to its
// host's leaves and, after a drift, removed from oldHost's. It does not
// block and does not keep ctx, which may end before the work does.
func (c *CNC) PortBound(_ context.Context, p controller.Port, oldHost string) {
	c.enqueue(p, oldHost)
}

// PortUnbound queues a reconcile of p after it left host (or was deleted).
func (c *CNC) PortUnbound(_ context.Context, p controller.Port, host string) {
	c.enqueue(p, host)
}

// Resync queues every bound port of ports, for a CNC that starts against
// a service with existing bindings. Drivers are idempotent, so leaves
// already configured stay as they are.
func (c *CNC) Resync(ports []controller.Port) {
	for _, p := range ports {
		if p.Host != "" {
			c.enqueue(p, "")
		}
	}
}

func (c *CNC) enqueue(p controller.Port, oldHost string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	pd := c.dirty[p.ID]
	if pd == nil {
		pd = &pending{}
		c.dirty[p.ID] = pd
		if !c.running[p.ID] {
			if c.busy == 0 {
				c.idle = make(chan struct{})
			}
			c.busy++
		}
	}
	pd.last = p
	if oldHost != "" && oldHost != p.Host && !slices.Contains(pd.oldHosts, oldHost) {
		pd.oldHosts = append(pd.oldHosts, oldHost)
	}
	if !c.running[p.ID] {
		c.running[p.ID] = true
		c.workers.Add(1)
		go c.work(p.ID)
	}
}

// work reconciles one port until no new hook asked for another run.
func (c *CNC) work(id PortID) {
	defer c.workers.Done()
	for {
		c.mu.Lock()
		pd := c.dirty[id]
		delete(c.dirty, id)
		if pd == nil || c.ctx.Err() != nil {
			delete(c.running, id)
			c.busy--
			if c.busy == 0 {
				close(c.idle)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.reconcile(id, pd)
	}
}

// Wait blocks until no work is queued or running, or ctx ends.
func (c *CNC) Wait(ctx context.Context) error {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *CNC) record(s Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := append(c.steps[s.Port], s)
	if len(st) > c.opts.StepHistory {
		st = slices.Delete(st, 0, len(st)-c.opts.StepHistory)
	}
	c.steps[s.Port] = st
}

// forget marks a deleted port: its steps go once GoneHistory newer
// deleted ports have come.
func (c *CNC) forget(id PortID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = append(c.gone, id)
	for len(c.gone) > c.opts.GoneHistory {
		old := c.gone[0]
		c.gone = c.gone[1:]
		if _, back := c.bound[old]; !back {
			delete(c.steps, old)
		}
	}
}

// Steps returns the recorded steps of port, oldest first.
func (c *CNC) Steps(port PortID) []Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.steps[port])
}

// report sends the overlay state; a report the service refuses because the
// port moved on or was deleted meanwhile is dropped (a newer run follows).
// One the service could not take (its store away for a moment) is sent
// again, backing off, until it is taken or refused.
func (c *CNC) report(id PortID, name, host string, s controller.State, reason string) {
	st := Step{Port: id, Kind: "report", Host: host, State: s, Start: c.opts.Clock.Now()}
	err := c.untilAnswered(id, func(svc Service) error {
		_, err := svc.SetOverlayState(c.ctx, name, controller.StateUpdate{State: s, Reason: reason, Host: host})
		return err
	})
	st.End = c.opts.Clock.Now()
	if err != nil {
		st.Err = err.Error()
	}
	c.record(st)
}

// answered reports whether err is the service's answer about the port (it
// is gone, moved on, or the change is refused) rather than the service
// failing to answer (its store unreachable, the replica shutting down).
func answered(err error) bool {
	return err == nil || errors.Is(err, controller.ErrNotFound) || errors.Is(err, controller.ErrStale) ||
		errors.Is(err, controller.ErrIllegalTransition) || errors.Is(err, controller.ErrInvalid) || errors.Is(err, controller.ErrExists)
}

// untilAnswered calls f until the service answers it (see answered), backing
// off from Backoff to MaxBackoff, while the CNC runs and no newer run of the
// port is queued (which will ask again itself).
func (c *CNC) untilAnswered(id PortID, f func(Service) error) error {
	wait := c.opts.Backoff
	for {
		svc, err := c.service()
		if err == nil {
			err = f(svc)
		}
		if answered(err) || c.hasNewer(id) || !c.sleep(wait) {
			return err
		}
		wait = min(2*wait, c.opts.MaxBackoff)
	}
}

// segment returns a network's segment, cached (segments do not change).
func (c *CNC) segment(network string) (controller.Segment, error) {
	c.mu.Lock()
	seg, ok := c.networks[network]
	c.mu.Unlock()
	if ok {
		return seg, nil
	}
	svc, err := c.service()
	if err != nil {
		return seg, err
	}
	n, err := svc.GetNetwork(c.ctx, network)
	if err != nil {
		return seg, fmt.Errorf("network %q: %w", network, err)
	}
	c.mu.Lock()
	c.networks[network] = n.Segment
	c.mu.Unlock()
	return n.Segment, nil
}

// reconcile brings the leaves in line with the port's current binding.
func (c *CNC) reconcile(id PortID, pd *pending) {
	look := Step{Port: id, Kind: "lookup", Start: c.opts.Clock.Now()}
	var p controller.Port
	err := c.untilAnswered(id, func(svc Service) (err error) {
		p, err = svc.GetPort(c.ctx, pd.last.Name)
		return err
	})
	gone := errors.Is(err, controller.ErrNotFound) || (err == nil && p.ID != id)
	if gone {
		err = nil
		p = pd.last
		p.Host = ""
	}
	var atts []Attachment
	var seg controller.Segment
	if err == nil && p.Host != "" {
		err = c.untilAnswered(id, func(Service) (err error) {
			seg, err = c.segment(p.Network)
			return err
		})
	}
	if err == nil && p.Host != "" && seg.Type != controller.SegmentNone {
		// A routed network (a VPC's, in a hybrid network) needs no leaf.
		var ok bool
		if atts, ok = c.w.leaves[p.Host]; !ok {
			err = fmt.Errorf("host %q is wired to no leaf in topology %q; add its links or bind the port to another host", p.Host, c.w.topo.Name)
		}
	}
	look.Host, look.End = p.Host, c.opts.Clock.Now()
	if err != nil {
		look.Err = err.Error()
	}
	c.record(look)
	if err != nil && look.Host == "" {
		return // cannot read the port: leave the leaves as they are
	}

	want := map[Attachment]bool{}
	for _, a := range atts {
		want[a] = true
	}
	// The seed's order: remove from the old leaves, then push to the new.
	c.removeStale(p, seg, want, pd.oldHosts)
	if gone {
		c.forget(id)
	}
	if err != nil {
		c.report(id, p.Name, p.Host, controller.StateError, err.Error())
		return
	}
	if p.Host == "" {
		return // unbound or deleted: the service set the overlay DOWN
	}
	if seg.Type == controller.SegmentNone {
		// A routed network has no overlay to program; the service marked
		// it ACTIVE. Keep the binding for the blast radius.
		c.mu.Lock()
		c.bound[id] = &binding{port: p, name: p.Name, host: p.Host, network: p.Network, seg: seg, applied: map[Attachment]uint16{}}
		c.mu.Unlock()
		return
	}

	c.mu.Lock()
	b := c.bound[id]
	if b == nil || b.host != p.Host {
		b = &binding{applied: map[Attachment]uint16{}}
		if old := c.bound[id]; old != nil {
			b.applied = old.applied // what removeStale kept
		}
		c.bound[id] = b
	}
	b.port, b.name, b.host, b.network, b.seg = p, p.Name, p.Host, p.Network, seg
	c.mu.Unlock()

	wait := c.opts.Backoff
	todo := slices.Clone(atts)
	for attempt := 1; ; attempt++ {
		var failed []Attachment
		var why []string
		for _, a := range todo {
			if err := c.applyOne(p, seg, a, attempt); err != nil {
				failed = append(failed, a)
				why = append(why, err.Error())
			}
		}
		if len(failed) == 0 {
			c.report(id, p.Name, p.Host, controller.StateActive, "")
			return
		}
		reason := fmt.Sprintf("attempt %d/%d: %s", attempt, c.opts.Attempts, strings.Join(why, "; "))
		c.report(id, p.Name, p.Host, controller.StateError, reason)
		if attempt >= c.opts.Attempts || !c.sleep(wait) || c.hasNewer(id) {
			return // out of attempts, closing, or a newer run will retry
		}
		wait = min(2*wait, c.opts.MaxBackoff)
		c.report(id, p.Name, p.Host, controller.StateBuild, "retrying leaf configuration")
		todo = failed
	}
}

// hasNewer reports whether a hook queued another run of the port.
func (c *CNC) hasNewer(id PortID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty[id] != nil
}

func (c *CNC) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *CNC) applyOne(p controller.Port, seg controller.Segment, a Attachment, attempt int) error {
	st := Step{Port: p.ID, Kind: "apply", Host: p.Host, Leaf: a.Leaf, Attempt: attempt, Start: c.opts.Clock.Now()}
	defer c.lockAttachment(a)()
	vlan, err := c.acquire(a, p.ID, seg)
	if err == nil {
		err = c.drv.Apply(c.ctx, a.Leaf, c.config(a, vlan, seg, p))
	}
	st.End = c.opts.Clock.Now()
	if err != nil {
		st.Err = err.Error()
		err = fmt.Errorf("apply on leaf %s port %s: %w", a.Leaf, a.Iface, err)
	} else {
		c.mu.Lock()
		if b := c.bound[p.ID]; b != nil {
			b.applied[a] = vlan
		}
		c.mu.Unlock()
	}
	c.record(st)
	return err
}

// removeStale removes p's configuration from every leaf port it has but
// does not want. With no record of the port (a CNC restarted since), it
// removes p's entry from the leaves of the hosts the hooks said it left,
// keeping their mappings, which other ports may need.
func (c *CNC) removeStale(p controller.Port, seg controller.Segment, want map[Attachment]bool, oldHosts []string) {
	c.mu.Lock()
	b := c.bound[p.ID]
	type rm struct {
		a       Attachment
		vlan    uint16
		mapping bool
	}
	var rms []rm
	if b != nil {
		for a, vlan := range b.applied {
			if !want[a] {
				rms = append(rms, rm{a: a, vlan: vlan, mapping: c.releaseLocked(a, vlan, b.seg, p.ID)})
				delete(b.applied, a)
			}
		}
		if len(want) == 0 {
			delete(c.bound, p.ID)
		}
	} else {
		for _, h := range oldHosts {
			for _, a := range c.w.leaves[h] {
				if !want[a] {
					rms = append(rms, rm{a: a})
				}
			}
		}
	}
	c.mu.Unlock()
	sort.Slice(rms, func(i, j int) bool {
		if rms[i].a.Leaf != rms[j].a.Leaf {
			return rms[i].a.Leaf < rms[j].a.Leaf
		}
		return rms[i].a.Iface < rms[j].a.Iface
	})
	old := p // the configuration to remove is the one applied
	if b != nil {
		seg, old = b.seg, b.port
	}
	for _, r := range rms {
		unlock := c.lockAttachment(r.a)
		cfg := c.config(r.a, r.vlan, seg, old)
		// Another port may have taken the mapping again since this one
		// released it; then only the entry goes.
		cfg.RemoveMapping = r.mapping && !c.mapped(r.a, r.vlan, seg)
		wait := c.opts.Backoff
		for attempt := 1; ; attempt++ {
			st := Step{Port: p.ID, Kind: "remove", Host: p.Host, Leaf: r.a.Leaf, Attempt: attempt, Start: c.opts.Clock.Now()}
			err := c.drv.Remove(c.ctx, r.a.Leaf, cfg)
			st.End = c.opts.Clock.Now()
			if err != nil {
				st.Err = err.Error()
			}
			c.record(st)
			// A removal that keeps failing is left in the steps: the port
			// works elsewhere, the leaf keeps a stale entry.
			if err == nil || attempt >= c.opts.Attempts || !c.sleep(wait) {
				break
			}
			wait = min(2*wait, c.opts.MaxBackoff)
		}
		unlock()
	}
}

// lockAttachment serialises the work on one leaf port: a port's reference
// on an access mapping and the driver call that follows it happen together,
// so a removal never takes away a mapping another port has just applied.
func (c *CNC) lockAttachment(a Attachment) (unlock func()) {
	c.mu.Lock()
	m := c.attLocks[a]
	if m == nil {
		m = &sync.Mutex{}
		c.attLocks[a] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// mapped reports whether some port holds the access mapping vlan (and the
// segment's VNI) on a.
func (c *CNC) mapped(a Attachment, vlan uint16, seg controller.Segment) bool {
	var vni uint32
	if seg.Type == controller.SegmentVXLAN {
		vni = seg.ID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.refs[mapKey{leaf: a.Leaf, iface: a.Iface, vlan: vlan, vni: vni}]) > 0
}

func (c *CNC) config(a Attachment, vlan uint16, seg controller.Segment, p controller.Port) LeafConfig {
	ips := make([]netip.Addr, 0, len(p.IPs))
	for _, ip := range p.IPs {
		ips = append(ips, ip.Address)
	}
	var vni uint32
	if seg.Type == controller.SegmentVXLAN {
		vni = seg.ID
	}
	return LeafConfig{Iface: a.Iface, Host: p.Host, VLAN: vlan, VNI: vni, Network: p.Network, Port: p.ID, MAC: p.MAC, IPs: ips}
}

// acquire takes port's reference on the access mapping at a and returns its
// VLAN: the network's own for a VLAN network; for a VXLAN network, the
// leaf's VLAN for the VNI, allocated (lowest free) on first use.
func (c *CNC) acquire(a Attachment, port PortID, seg controller.Segment) (uint16, error) {
	// Ask a fixed VLAN before taking c.mu: the callback may take a lock of
	// the fabric model whose holder may call into the CNC.
	var fixed uint16
	var isFixed bool
	if seg.Type == controller.SegmentVXLAN && c.opts.AccessVLAN != nil {
		fixed, isFixed = c.opts.AccessVLAN(a.Leaf, seg.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var vlan uint16
	var vni uint32
	switch seg.Type {
	case controller.SegmentVLAN:
		vlan = uint16(seg.ID)
	case controller.SegmentVXLAN:
		vni = seg.ID
		if isFixed {
			vlan = fixed
			break
		}
		lv := c.vlans[a.Leaf]
		if lv == nil {
			lv = map[uint32]uint16{}
			c.vlans[a.Leaf] = lv
		}
		v, ok := lv[vni]
		if !ok {
			used := make(map[uint16]bool, len(lv))
			for _, x := range lv {
				used[x] = true
			}
			for cand := uint16(1); cand <= controller.MaxVLAN; cand++ {
				if !used[cand] {
					v, ok = cand, true
					break
				}
			}
			if !ok {
				return 0, fmt.Errorf("leaf %s: all %d access VLANs in use; spread the VNIs over more leaves", a.Leaf, controller.MaxVLAN)
			}
			lv[vni] = v
		}
		vlan = v
	}
	k := mapKey{leaf: a.Leaf, iface: a.Iface, vlan: vlan, vni: vni}
	if c.refs[k] == nil {
		c.refs[k] = map[PortID]bool{}
	}
	c.refs[k][port] = true
	return vlan, nil
}

// releaseLocked drops port's reference on the mapping at a and reports
// whether it was the last one, so that the mapping can go. The leaf's VLAN
// for the VNI is freed when no port of the leaf uses it any more.
func (c *CNC) releaseLocked(a Attachment, vlan uint16, seg controller.Segment, port PortID) bool {
	var vni uint32
	if seg.Type == controller.SegmentVXLAN {
		vni = seg.ID
	}
	k := mapKey{leaf: a.Leaf, iface: a.Iface, vlan: vlan, vni: vni}
	delete(c.refs[k], port)
	if len(c.refs[k]) > 0 {
		return false
	}
	delete(c.refs, k)
	if vni != 0 {
		for k2 := range c.refs {
			if k2.leaf == a.Leaf && k2.vni == vni {
				return true
			}
		}
		if lv := c.vlans[a.Leaf]; lv != nil && lv[vni] == vlan {
			delete(lv, vni)
		}
	}
	return vlan != 0 || vni != 0
}

// Attachments returns the leaf ports host is wired to, from the topology.
func (c *CNC) Attachments(host string) []Attachment { return slices.Clone(c.w.leaves[host]) }

// AccessVLAN returns the access VLAN the CNC uses for vni on leaf, if any.
func (c *CNC) AccessVLAN(leaf string, vni uint32) (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vlans[leaf][vni]
	return v, ok
}

// DependentPorts returns the ports, sorted, that depend on device: for a
// host, the ports bound to it; for a leaf, the ports bound to hosts wired to
// it; for a spine (or any device above the leaves), the ports that depend on
// any leaf it links. Unknown devices have none.
func (c *CNC) DependentPorts(device string) []PortID {
	return c.ports(device, false)
}

// IsolatedPorts returns the ports, sorted, that lose every path to the
// fabric when device fails: a host's own ports; for a leaf, ports whose
// host has no other leaf; for a spine, ports whose every leaf has no other
// uplink. A subset of DependentPorts.
func (c *CNC) IsolatedPorts(device string) []PortID {
	return c.ports(device, true)
}

func (c *CNC) ports(device string, isolatedOnly bool) []PortID {
	hit := c.w.hostHit(device, isolatedOnly)
	if hit == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []PortID
	for id, b := range c.bound {
		if hit(b.host) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// BoundPorts returns the IDs of the ports the CNC holds a binding for,
// sorted.
func (c *CNC) BoundPorts() []PortID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PortID, 0, len(c.bound))
	for id := range c.bound {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
