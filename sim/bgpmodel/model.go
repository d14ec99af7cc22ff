package bgpmodel

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/bgpevpn"
	"github.com/netbed/netbed/topologies"
)

// Scheduler runs functions in virtual time; sim.Engine is one. Functions
// run one at a time, in (time, scheduling) order.
type Scheduler interface {
	Now() time.Duration
	At(t time.Duration, f func())
}

// Model is a fabric's speakers and sessions. It is not safe for
// concurrent use: call it, and let its leaves export to it, only from the
// scheduler's goroutine or while the scheduler is stopped.
//
// What it models, per speaker: an Adj-RIB-In per session, the routes it
// originates (its leaf's exports), a Loc-RIB of best paths and an
// Adj-RIB-Out per session. A change of best path is sent to every
// established peer the design lets it go to (route reflection: a
// client's routes to every peer, a non-client's to clients only, none
// back to where it came from; a non-reflector passes no iBGP route on),
// one route per UPDATE, at most one batch per MRAI; each UPDATE reaches
// the peer after the link's delay and waits for the peer to have handled
// the ones before it (Params.Update each, its last Params.UpdateCPU on
// the CPUs below). A session that ends (carrier,
// hold timer, NOTIFICATION) costs the speaker Params.Drop per path learnt
// on it, each path's change sent on as it is dropped, and is reported
// down after the last, as GoBGP does; that work runs on Params.Cores CPUs
// shared by every speaker, a path at a time, so that speakers dropping
// at once wait for one another when they outnumber the CPUs (on netns
// the speakers are processes on one machine). Best path: an originated route
// wins, then the lowest router ID (ORIGINATOR_ID when reflected) of the
// peer it came from, then the shorter cluster list, then the lowest peer
// address. Loops are cut by ORIGINATOR_ID and CLUSTER_LIST (RFC 4456).
// Between ASes (eBGP, RFC 7938's design): a speaker puts its AS in front
// of AS_PATH, the shorter AS path wins before the router ID and an eBGP
// path over an iBGP one, and no route goes to a peer whose AS is on its
// path (GoBGP checks before sending) nor is taken by one.
// What it leaves out: MAC mobility sequence numbers (GoBGP acts on them
// only between different Ethernet segments; netbed's are all single
// homed), the TCP connection's own behaviour (a message is lost only when
// the session is), and collisions beyond "a new session replaces the
// old".
type Model struct {
	s      Scheduler
	p      Params
	t      Timers
	rng    *rand.Rand
	sp     []*speaker
	byName map[string]*speaker
	ss     []*session
	errs   []error
	// inflight counts exports, messages and imports under way.
	inflight int
	// carried caches routes as BGP carries them.
	carried map[carryKey]carriedRoute
	cpus    cpus
	// bfdRng spaces BFD's packets (its jitter), apart from rng so that
	// runs without BFD draw what they drew before; bfdDisc numbers the
	// BFD sessions' discriminators.
	bfdRng  *rand.Rand
	bfdDisc uint32
}

// cpus are the CPUs the speakers' Drop and UpdateCPU work shares
// (Params.Cores): each
// job runs on the one free soonest, after the jobs claimed on it before.
// No CPUs: every job starts when it is ready.
type cpus struct {
	free []time.Duration // when each CPU has finished what it was given
}

// claim gives a job of d, ready at ready, a CPU and returns when it ends.
// Speakers claim one path at a time, each when their previous one ends,
// so that speakers busy at once take turns (as a time-sharing scheduler
// lets them) rather than one running all its paths before the next.
func (c *cpus) claim(ready, d time.Duration) time.Duration {
	if len(c.free) == 0 {
		return ready + d
	}
	i := 0
	for j, f := range c.free {
		if f < c.free[i] {
			i = j
		}
	}
	c.free[i] = max(ready, c.free[i]) + d
	return c.free[i]
}

type carryKey struct {
	r   evpn.Route
	asn uint16
}

type carriedRoute struct {
	key   string // the NLRI: what one destination of a RIB is
	route evpn.Route
	rts   []string
}

// speaker is one node's model speaker.
type speaker struct {
	m *Model
	Speaker
	asn16 uint16
	up    bool // powered: the process runs
	// silent drops everything the speaker sends and receives, its links
	// keeping carrier (a hung box).
	silent bool
	// epoch counts incarnations: what was scheduled by an earlier one is
	// dropped.
	epoch uint64
	busy  time.Duration // when it will have handled the last UPDATE it received, or dropped the last path of a session that ended
	// drops is the work of sessions that ended, in order: a path to drop
	// or, after a session's last, its peer-down; dropBusy says one is
	// on a CPU. UPDATEs that arrive meanwhile wait in held (GoBGP's
	// main loop handles them after the drops).
	drops    []dropJob
	dropBusy bool
	held     []heldMsg
	// rx are the UPDATEs accepted and not yet on a CPU, in order;
	// rxArmed says the first one's claim is scheduled (when it is
	// ready). A drop starts after the last of them has claimed its CPU.
	rx      []heldMsg
	rxArmed bool
	local   map[string]path
	best    map[string]path
	ends    []*end
	// imports are best-path changes not yet in the leaf's table.
	imports     []change
	importArmed bool
}

// dropJob is one path to drop from e's Adj-RIB-In (key), or e's session
// to take down (key "", why).
type dropJob struct {
	e   *end
	inc uint64
	key string
	why string
}

// heldMsg is an UPDATE that arrived at a speaker while it dropped paths.
type heldMsg struct {
	at     time.Duration // arrival
	r      *end
	inc    uint64
	kind   msgKind
	handle func(r *end)
}

// change is one best-path change a leaf imports.
type change struct {
	withdraw bool
	route    evpn.Route
}

// path is one route a speaker holds, with its path attributes.
type path struct {
	carriedRoute
	from       *end // nil: originated
	originator netip.Addr
	cluster    []netip.Addr
	// asPath is AS_PATH: the ASes the route crossed over eBGP, nearest
	// first.
	asPath []uint32
}

type session struct {
	Session
	link bool // the link has carrier
	inc  uint64
	// connecting is the token of the establishment scheduled (0: none).
	connecting uint64
	end        [2]*end
}

// end is one speaker's side of a session.
type end struct {
	s    *session
	sp   *speaker
	i    int // 0: A, 1: B
	addr netip.Addr
	// inc is the session incarnation this end is established in; 0 when
	// it is not.
	inc    uint64
	lastRx time.Duration
	in     map[string]path // Adj-RIB-In
	out    map[string]bool // Adj-RIB-Out: what the peer was sent
	// pend is what waits for the MRAI to pass, in order; a nil path is a
	// withdrawal.
	pend      map[string]*path
	pendOrder []string
	lastSent  time.Duration
	sentAny   bool
	flushArm  bool
	// down is why the end last went down ("" before any).
	down string
	// dropping is the incarnation whose paths are being dropped (0: none).
	dropping uint64
	// bfd is the end's BFD session (Timers.BFD), which outlives BGP
	// sessions.
	bfd endBFD
}

func (e *end) peer() *end { return e.s.end[1-e.i] }

// peerIsClient: this end's speaker reflects routes for the peer.
func (e *end) peerIsClient() bool { return e.i == 0 && e.s.BClient || e.i == 1 && e.s.AClient }

func (e *end) established() bool { return e.inc != 0 }

// New builds the model of d. Every speaker starts powered with no
// session; Start establishes them.
func New(s Scheduler, d Design, p Params, t Timers, seed int64) (*Model, error) {
	if p.Cores < 0 {
		return nil, fmt.Errorf("bgp model: cores: %d is negative", p.Cores)
	}
	m := &Model{s: s, p: p, t: t.withDefaults(), rng: rand.New(rand.NewPCG(uint64(seed), 0x6267706d6f64656c)),
		bfdRng: rand.New(rand.NewPCG(uint64(seed), 0x62666435383830)),
		byName: map[string]*speaker{}, carried: map[carryKey]carriedRoute{}, cpus: cpus{free: make([]time.Duration, p.Cores)}}
	for _, sd := range d.Speakers {
		if _, dup := m.byName[sd.Node]; dup {
			return nil, fmt.Errorf("bgp model: node %s: two speakers", sd.Node)
		}
		if sd.ASN == 0 {
			return nil, fmt.Errorf("bgp model: node %s: asn: 0 is not an AS number", sd.Node)
		}
		if sd.RouteTargetASN == 0 {
			sd.RouteTargetASN = sd.ASN
		}
		if sd.RouteTargetASN > 65535 {
			return nil, fmt.Errorf("bgp model: node %s: route target asn: %d is not an AS number 1..65535 (route targets carry it in two bytes)", sd.Node, sd.RouteTargetASN)
		}
		if !sd.RouterID.Is4() {
			return nil, fmt.Errorf("bgp model: node %s: router_id: %v is not an IPv4 address", sd.Node, sd.RouterID)
		}
		if !sd.ClusterID.IsValid() {
			sd.ClusterID = sd.RouterID
		}
		sp := &speaker{m: m, Speaker: sd, asn16: uint16(sd.RouteTargetASN), up: true, busy: idle, local: map[string]path{}, best: map[string]path{}}
		m.sp = append(m.sp, sp)
		m.byName[sd.Node] = sp
	}
	for _, sd := range d.Sessions {
		a, b := m.byName[sd.A.Node], m.byName[sd.B.Node]
		if a == nil || b == nil {
			return nil, fmt.Errorf("bgp model: session %s–%s: both ends need a speaker", sd.A, sd.B)
		}
		if (sd.AClient || sd.BClient) && a.ASN != b.ASN {
			return nil, fmt.Errorf("bgp model: session %s–%s: a route-reflector client must be iBGP (AS %d, AS %d)", sd.A, sd.B, a.ASN, b.ASN)
		}
		s := &session{Session: sd, link: true}
		for i, sp := range []*speaker{a, b} {
			e := &end{s: s, sp: sp, i: i, addr: [2]netip.Addr{sd.AddrA, sd.AddrB}[i]}
			e.reset()
			s.end[i] = e
			sp.ends = append(sp.ends, e)
		}
		m.ss = append(m.ss, s)
	}
	for _, sp := range m.sp {
		if sp.Leaf != nil {
			sp.Leaf.SetExporter(exporter{sp})
		}
	}
	return m, nil
}

func (e *end) reset() {
	e.inc, e.dropping = 0, 0
	e.in, e.out, e.pend, e.pendOrder = map[string]path{}, map[string]bool{}, map[string]*path{}, nil
	e.flushArm = false
}

// Start establishes every session at once and takes in what the leaves
// originate: the fabric as netns's Load leaves it, with every session up.
func (m *Model) Start() {
	for _, sp := range m.sp {
		if sp.Leaf != nil {
			for _, r := range sp.Leaf.Advertised() {
				sp.originate(r, false)
			}
		}
	}
	for _, s := range m.ss {
		if s.transport() {
			m.establish(s)
		}
	}
	for _, sp := range m.sp {
		for _, e := range sp.ends {
			if sp.up {
				e.startBFD()
			}
		}
	}
}

// Close detaches the model from its leaves.
func (m *Model) Close() {
	for _, sp := range m.sp {
		if sp.Leaf != nil {
			sp.Leaf.SetExporter(nil)
		}
	}
}

// Err returns what went wrong importing routes into the leaves, or
// encoding what they exported.
func (m *Model) Err() error { return errors.Join(m.errs...) }

// Params returns the timings the model runs with; Timers, the session
// timers (defaults filled in).
func (m *Model) Params() Params { return m.p }

// Timers returns the session timers, defaults filled in.
func (m *Model) Timers() Timers { return m.t }

// exporter takes a leaf's exports to its speaker, after Params.Originate.
type exporter struct{ sp *speaker }

func (x exporter) Export(u evpn.Update) {
	sp := x.sp
	if !sp.up {
		return // the speaker does not run: the leaf exports again when it does
	}
	epoch := sp.epoch
	sp.m.inflight++
	sp.m.s.At(sp.m.s.Now()+sp.m.p.Originate, func() {
		sp.m.inflight--
		if sp.up && sp.epoch == epoch {
			sp.originate(u.Route, u.Op == evpn.OpWithdraw)
		}
	})
}

// carry returns r as BGP carries it (bgpevpn's encoding, decoded again)
// with its route targets and NLRI.
func (m *Model) carry(r evpn.Route, asn16 uint16) (carriedRoute, error) {
	if c, ok := m.carried[carryKey{r, asn16}]; ok {
		return c, nil
	}
	p, err := bgpevpn.Encode(r, asn16)
	if err != nil {
		return carriedRoute{}, err
	}
	d, err := bgpevpn.Decode(p)
	if err != nil {
		return carriedRoute{}, fmt.Errorf("%s as BGP carries it: %w", r, err)
	}
	c := carriedRoute{key: p.NLRI.String(), route: d, rts: routeTargets(p.Attrs)}
	m.carried[carryKey{r, asn16}] = c
	return c, nil
}

// routeTargets returns the route targets among attrs' extended
// communities, as GoBGP prints them (AS:N), sorted.
func routeTargets(attrs []bgp.PathAttributeInterface) []string {
	var rts []string
	for _, a := range attrs {
		ec, ok := a.(*bgp.PathAttributeExtendedCommunities)
		if !ok {
			continue
		}
		for _, c := range ec.Value {
			if typ, sub := c.GetTypes(); sub == bgp.EC_SUBTYPE_ROUTE_TARGET && typ <= bgp.EC_TYPE_TRANSITIVE_FOUR_OCTET_AS_SPECIFIC {
				rts = append(rts, c.String())
			}
		}
	}
	slices.Sort(rts)
	return rts
}

// originate adds (or withdraws) r to the routes sp originates.
func (sp *speaker) originate(r evpn.Route, withdraw bool) {
	c, err := sp.m.carry(r, sp.asn16)
	if err != nil {
		sp.m.errs = append(sp.m.errs, fmt.Errorf("%s: originate: %w", sp.Node, err))
		return
	}
	if withdraw {
		if _, ok := sp.local[c.key]; !ok {
			return
		}
		delete(sp.local, c.key)
	} else {
		sp.local[c.key] = path{carriedRoute: c}
	}
	sp.recompute(c.key)
}

// recompute selects the best path for key and, if it changed, tells the
// peers and the leaf.
func (sp *speaker) recompute(key string) {
	var cands []path
	if p, ok := sp.local[key]; ok {
		cands = append(cands, p)
	}
	for _, e := range sp.ends {
		if p, ok := e.in[key]; ok && e.established() {
			cands = append(cands, p)
		}
	}
	old, had := sp.best[key]
	var nb path
	has := len(cands) > 0
	if has {
		nb = slices.MinFunc(cands, comparePaths)
	}
	switch {
	case !had && !has:
		return
	case had && has && samePath(old, nb):
		return
	}
	if has {
		sp.best[key] = nb
	} else {
		delete(sp.best, key)
	}
	for _, e := range sp.ends {
		if !e.established() {
			continue
		}
		if has && sp.exports(nb, e) {
			e.queue(key, sp.outgoing(nb, e))
		} else if e.out[key] || e.pend[key] != nil {
			e.queue(key, nil)
		}
	}
	if sp.Leaf == nil {
		return
	}
	switch {
	case !has:
		sp.importChange(change{withdraw: true, route: old.route})
	case !had || old.route != nb.route:
		sp.importChange(change{route: nb.route})
	}
}

// comparePaths orders candidates for the same destination, best first.
func comparePaths(a, b path) int {
	if (a.from == nil) != (b.from == nil) {
		if a.from == nil {
			return -1
		}
		return 1
	}
	if a.from == nil {
		return 0
	}
	if c := len(a.asPath) - len(b.asPath); c != 0 {
		return c
	}
	if ae, be := a.from.ebgp(), b.from.ebgp(); ae != be {
		if ae {
			return -1
		}
		return 1
	}
	if c := a.peerID().Compare(b.peerID()); c != 0 {
		return c
	}
	if c := len(a.cluster) - len(b.cluster); c != 0 {
		return c
	}
	return a.from.peer().addr.Compare(b.from.peer().addr)
}

// peerID is the router ID best-path selection compares: ORIGINATOR_ID
// when the path was reflected, else the sending peer's.
func (p path) peerID() netip.Addr {
	if p.originator.IsValid() {
		return p.originator
	}
	return p.from.peer().sp.RouterID
}

func samePath(a, b path) bool {
	return a.from == b.from && a.route == b.route && a.originator == b.originator && slices.Equal(a.cluster, b.cluster) &&
		slices.Equal(a.asPath, b.asPath)
}

// ebgp says whether e's session is eBGP (its speakers in different ASes).
func (e *end) ebgp() bool { return e.sp.ASN != e.peer().sp.ASN }

// exports says whether sp sends its best path p to the peer of e.
func (sp *speaker) exports(p path, e *end) bool {
	if p.from == nil {
		return true
	}
	if p.from.peer().sp == e.peer().sp {
		return false // never back where it came from
	}
	if slices.Contains(p.asPath, e.peer().sp.ASN) {
		return false // the peer's AS is on the path: it would drop it (GoBGP checks before sending)
	}
	if p.from.peer().sp.ASN != sp.ASN || e.peer().sp.ASN != sp.ASN {
		return true // learnt over eBGP, or to an eBGP peer
	}
	// iBGP to iBGP: only a route reflector passes routes on; a client's
	// to everyone, a non-client's to clients only.
	return p.from.peerIsClient() || e.peerIsClient()
}

// outgoing is p as sp sends it to the peer of e: over eBGP with sp's AS
// in front of the AS path (and no iBGP attributes); over iBGP a
// reflected route carries its originator and sp's cluster.
func (sp *speaker) outgoing(p path, e *end) *path {
	out := path{carriedRoute: p.carriedRoute, asPath: p.asPath}
	if e.ebgp() {
		out.asPath = append([]uint32{sp.ASN}, p.asPath...)
		return &out
	}
	if p.from != nil && !p.from.ebgp() {
		out.originator = p.originator
		if !out.originator.IsValid() {
			out.originator = p.from.peer().sp.RouterID
		}
		out.cluster = append([]netip.Addr{sp.ClusterID}, p.cluster...)
	}
	return &out
}

// queue puts an advertisement (p) or a withdrawal (nil) of key in e's
// Adj-RIB-Out, sent at once or when the MRAI has passed.
func (e *end) queue(key string, p *path) {
	if _, ok := e.pend[key]; !ok {
		e.pendOrder = append(e.pendOrder, key)
	}
	e.pend[key] = p
	m := e.sp.m
	now := m.s.Now()
	if m.p.MRAI <= 0 || !e.sentAny || now >= e.lastSent+m.p.MRAI {
		e.flush()
		return
	}
	if !e.flushArm {
		e.flushArm = true
		inc := e.inc
		m.inflight++
		m.s.At(e.lastSent+m.p.MRAI, func() {
			m.inflight--
			if e.inc == inc {
				e.flushArm = false
				e.flush()
			}
		})
	}
}

// flush sends what waits in e's Adj-RIB-Out, one route per UPDATE.
func (e *end) flush() {
	order, pend := e.pendOrder, e.pend
	e.pendOrder, e.pend = nil, map[string]*path{}
	sent := false
	for _, key := range order {
		p := pend[key]
		switch {
		case p != nil:
			e.out[key] = true
		case e.out[key]:
			delete(e.out, key)
		default:
			continue
		}
		kind := msgAdvertise
		if p == nil {
			kind = msgWithdraw
		}
		e.send(func(r *end) { r.update(key, p) }, kind)
		sent = true
	}
	if sent {
		e.lastSent, e.sentAny = e.sp.m.s.Now(), true
	}
}

// idle is a speaker's busy time before its first UPDATE: long ago.
const idle = time.Duration(math.MinInt64 / 4)

// msgKind is what a message is, for what handling it costs.
type msgKind uint8

const (
	msgControl   msgKind = iota // KEEPALIVE, NOTIFICATION: handled on arrival
	msgAdvertise                // an UPDATE with a route
	msgWithdraw                 // an UPDATE withdrawing one
)

// send carries a message from e to its peer over the session's link:
// it arrives after the link's delay if the session's transport works
// then and on arrival, and is handled if the session is the same
// incarnation: an UPDATE at the later of its arrival plus Params.Update
// and the receiver's previous UPDATE plus Params.Service (or
// ServiceWithdraw), after the paths it is dropping if it is.
func (e *end) send(handle func(r *end), kind msgKind) {
	m, s := e.sp.m, e.s
	if !s.transport() {
		return
	}
	inc := e.inc
	r := e.peer()
	m.inflight++
	m.s.At(m.s.Now()+s.Delay, func() {
		m.inflight--
		if !s.transport() || r.inc != inc || inc == 0 {
			return
		}
		if kind == msgControl {
			handle(r)
			return
		}
		r.sp.accept(heldMsg{at: m.s.Now(), r: r, inc: inc, kind: kind, handle: handle})
	})
}

// accept queues the handling of an UPDATE that arrived at sp, or holds
// it while sp drops paths.
func (sp *speaker) accept(h heldMsg) {
	m := sp.m
	m.inflight++
	if sp.dropBusy || len(sp.drops) > 0 {
		sp.held = append(sp.held, h)
		return
	}
	sp.rx = append(sp.rx, h)
	sp.nextRx()
}

// nextRx starts sp's queued UPDATEs in order. One is handled at the
// later of its arrival plus Update and sp's previous one's end plus the
// service time (Service, or ServiceWithdraw), as long as a CPU of the
// pool (Params.Cores), which every speaker's UPDATEs and drops share, is
// free for its last UpdateCPU; else when that CPU time ends. The CPU is
// claimed when the message is ready for it, so that the pool serves the
// speakers in the order their work is ready.
func (sp *speaker) nextRx() {
	m := sp.m
	c := m.p.UpdateCPU
	for len(sp.rx) > 0 && !sp.rxArmed {
		h := sp.rx[0]
		service := m.p.Service
		if h.kind == msgWithdraw {
			service = m.p.ServiceWithdraw
		}
		done := max(h.at+m.p.Update, sp.busy+service)
		ready := max(done-c, sp.busy)
		if c > 0 && ready > m.s.Now() {
			sp.rxArmed = true
			epoch := sp.epoch
			m.s.At(ready, func() {
				if sp.epoch != epoch {
					return // powered off meanwhile: its queue is gone
				}
				sp.rxArmed = false
				sp.nextRx()
			})
			return
		}
		sp.rx = sp.rx[1:]
		if c > 0 {
			done = max(done, m.cpus.claim(ready, c))
		}
		sp.busy = done
		m.s.At(done, func() {
			m.inflight--
			if h.r.inc == h.inc {
				h.handle(h.r)
			}
		})
	}
	if len(sp.rx) == 0 && len(sp.drops) > 0 {
		sp.nextDrop()
	}
}

// update handles an UPDATE received on e: a path for key, or its
// withdrawal (nil).
func (e *end) update(key string, p *path) {
	e.lastRx = e.sp.m.s.Now()
	sp := e.sp
	if p != nil && (p.originator == sp.RouterID || slices.Contains(p.cluster, sp.ClusterID) && sp.reflects() ||
		slices.Contains(p.asPath, sp.ASN)) {
		p = nil // a loop: treated as withdrawn
	}
	if p == nil {
		if _, ok := e.in[key]; !ok {
			return
		}
		delete(e.in, key)
	} else {
		in := *p
		in.from = e
		e.in[key] = in
	}
	sp.recompute(key)
}

// reflects says whether sp is a route reflector for any peer.
func (sp *speaker) reflects() bool {
	return slices.ContainsFunc(sp.ends, (*end).peerIsClient)
}

// importChange queues a change of the leaf's table, applied after
// Params.Watch together with the others queued by then, in order.
func (sp *speaker) importChange(c change) {
	sp.imports = append(sp.imports, c)
	if sp.importArmed {
		return
	}
	sp.importArmed = true
	epoch := sp.epoch
	sp.m.inflight++
	sp.m.s.At(sp.m.s.Now()+sp.m.p.Watch, func() {
		sp.m.inflight--
		if sp.epoch != epoch {
			return
		}
		cs := sp.imports
		sp.imports, sp.importArmed = nil, false
		for _, c := range cs {
			var err error
			if c.withdraw {
				err = sp.Leaf.Import(nil, []evpn.Route{c.route})
			} else {
				err = sp.Leaf.Import([]evpn.Route{c.route}, nil)
			}
			if err != nil {
				sp.m.errs = append(sp.m.errs, err)
			}
		}
	})
}

// transport says whether the session's messages get through: carrier on
// the link, both speakers running and neither silent.
func (s *session) transport() bool {
	a, b := s.end[0].sp, s.end[1].sp
	return s.link && a.up && b.up && !a.silent && !b.silent
}

// carrier says whether e's end of the link has carrier: the link is up
// and the node at the far end powered.
func (e *end) carrier() bool { return e.s.link && e.peer().sp.up }

// establish brings both ends of s up in a new incarnation (replacing an
// old one either end still held), arms their timers and sends each side
// the other's table.
func (m *Model) establish(s *session) {
	for _, e := range s.end {
		if e.established() {
			e.takeDown("replaced by a new session")
		}
	}
	s.inc++
	s.connecting = 0
	now := m.s.Now()
	for _, e := range s.end {
		e.inc, e.lastRx, e.sentAny = s.inc, now, false
		if m.t.Hold > 0 {
			e.keepalive()
			e.armHold()
		}
	}
	for _, e := range s.end {
		sp := e.sp
		for _, key := range sortedKeys(sp.best) {
			if p := sp.best[key]; sp.exports(p, e) {
				e.queue(key, sp.outgoing(p, e))
			}
		}
	}
}

// keepalive sends a KEEPALIVE every Timers.Keepalive while e stays in
// its incarnation.
func (e *end) keepalive() {
	m, inc := e.sp.m, e.inc
	m.s.At(m.s.Now()+m.t.Keepalive, func() {
		if e.inc != inc || !e.sp.up {
			return
		}
		if !e.sp.silent {
			e.send(func(r *end) { r.lastRx = m.s.Now() }, msgControl)
		}
		e.keepalive()
	})
}

// armHold checks, when the hold time since the last message received
// has passed, that nothing came meanwhile; else the session is dropped.
func (e *end) armHold() {
	m, inc := e.sp.m, e.inc
	m.s.At(e.lastRx+m.t.Hold, func() {
		if e.inc != inc || !e.sp.up {
			return
		}
		if m.s.Now() < e.lastRx+m.t.Hold {
			e.armHold()
			return
		}
		e.notify("hold timer expired")
	})
}

// notify takes e down and sends the peer a NOTIFICATION, which drops its end
// too if it gets through.
func (e *end) notify(why string) {
	inc := e.inc
	if !e.sp.silent {
		e.send(func(r *end) {
			if r.inc == inc {
				r.endSession("notification: " + why)
			}
		}, msgControl)
	}
	e.endSession(why)
}

// endSession ends e's session as GoBGP does: after what the speaker is busy
// with (UPDATEs, other sessions' drops), it removes the paths learnt on
// the session one after another, Params.Drop of CPU each (its best path
// recomputed, a change sent on at once), and then takes the session down
// (the peer-down event).
func (e *end) endSession(why string) {
	m := e.sp.m
	if m.p.Drop <= 0 {
		e.takeDown(why)
		return
	}
	if !e.established() || e.dropping == e.inc {
		return
	}
	inc, sp := e.inc, e.sp
	e.dropping = inc
	for _, key := range sortedKeys(e.in) {
		sp.drops = append(sp.drops, dropJob{e: e, inc: inc, key: key})
	}
	sp.drops = append(sp.drops, dropJob{e: e, inc: inc, why: why})
	sp.nextDrop()
}

// nextDrop starts sp's next drop job, unless one runs: a path claims a
// CPU from when sp is free; a peer-down takes no time of its own. When
// the last is done, the UPDATEs held meanwhile are handled.
func (sp *speaker) nextDrop() {
	m := sp.m
	if sp.dropBusy {
		return
	}
	if len(sp.drops) == 0 {
		held := sp.held
		sp.held = nil
		for _, h := range held {
			m.inflight--
			sp.accept(h)
		}
		return
	}
	if len(sp.rx) > 0 {
		return // after the UPDATEs that came before (nextRx starts it)
	}
	j := sp.drops[0]
	sp.drops = sp.drops[1:]
	at := max(m.s.Now(), sp.busy)
	if j.key != "" {
		at = m.cpus.claim(at, m.p.Drop)
	}
	sp.dropBusy = true
	epoch := sp.epoch
	m.inflight++
	m.s.At(at, func() {
		m.inflight--
		if sp.epoch != epoch {
			return // powered off meanwhile: its state is gone
		}
		sp.dropBusy = false
		sp.busy = max(sp.busy, at)
		if j.e.inc == j.inc {
			if j.key == "" {
				j.e.takeDown(j.why)
			} else if _, ok := j.e.in[j.key]; ok {
				delete(j.e.in, j.key)
				sp.recompute(j.key)
			}
		}
		sp.nextDrop()
	})
}

// takeDown takes e's side of the session down: the paths learnt on it are
// gone, and once both sides are down a new session is attempted.
func (e *end) takeDown(why string) {
	if !e.established() {
		return
	}
	in := e.in
	e.reset()
	e.down = why
	for _, key := range sortedKeys(in) {
		e.sp.recompute(key)
	}
	e.sp.m.tryConnect(e.s)
}

// tryConnect schedules a session attempt on s when neither end holds a
// session, the transport works and none is scheduled: it succeeds after
// a time drawn from [EstablishMin, EstablishMax] if the transport still
// works then.
func (m *Model) tryConnect(s *session) {
	if s.connecting != 0 || !s.transport() || s.bfdHolds() || s.end[0].established() && s.end[1].established() {
		return
	}
	if s.end[0].established() != s.end[1].established() {
		// One side still holds the old session: it learns of the loss
		// (carrier, hold timer) or the new OPEN replaces it.
		if !s.end[0].sp.up || !s.end[1].sp.up {
			return
		}
	}
	tok := m.rng.Uint64() | 1
	s.connecting = tok
	d := m.p.EstablishMin
	if span := m.p.EstablishMax - m.p.EstablishMin; span > 0 {
		d += time.Duration(m.rng.Int64N(int64(span) + 1))
	}
	m.s.At(m.s.Now()+d, func() {
		if s.connecting != tok {
			return
		}
		s.connecting = 0
		if s.transport() && !s.bfdHolds() {
			m.establish(s)
		}
	})
}

// SetNodeState powers node off (up false: its speaker dies without a
// word, its links lose carrier, a leaf forgets what it learnt) or on
// again (the speaker starts afresh; a leaf advertises everything again,
// and its sessions come up after the establishment time). Nodes without
// a speaker are ignored, as are no-op changes.
func (m *Model) SetNodeState(node string, up bool) {
	sp := m.byName[node]
	if sp == nil || sp.up == up {
		return
	}
	sp.up = up
	sp.epoch++
	sp.local, sp.best = map[string]path{}, map[string]path{}
	sp.imports, sp.importArmed = nil, false
	sp.busy = idle
	m.inflight -= len(sp.held) + len(sp.rx)
	sp.drops, sp.dropBusy, sp.held = nil, false, nil
	sp.rx, sp.rxArmed = nil, false
	for _, e := range sp.ends {
		e.reset()
		e.s.connecting = 0
		e.stopBFD()
	}
	if !up {
		if sp.Leaf != nil {
			sp.Leaf.Forget()
		}
		for _, e := range sp.ends {
			e.peer().carrierLost()
		}
		return
	}
	if sp.Leaf != nil {
		// As on netns: the restarted speaker gets every route the leaf
		// originates (the leaf's session comes back).
		sp.Leaf.SetSession(false)
		sp.Leaf.SetSession(true)
	}
	for _, e := range sp.ends {
		e.startBFD()
		m.tryConnect(e.s)
	}
}

// carrierLost drops e after Params.CarrierLoss, if it is still the same
// session then (fast external failover).
func (e *end) carrierLost() {
	if !e.established() || !e.sp.up {
		return
	}
	m, inc := e.sp.m, e.inc
	m.s.At(m.s.Now()+m.p.CarrierLoss, func() {
		if e.inc == inc && !e.carrier() {
			e.endSession("carrier lost")
		}
	})
}

// SetLinkState takes the link at endpoint ep down (both ends lose
// carrier) or up. Links that carry no session are ignored.
func (m *Model) SetLinkState(ep topologies.Endpoint, up bool) {
	for _, s := range m.ss {
		if s.A != ep && s.B != ep || s.link == up {
			continue
		}
		s.link = up
		if !up {
			s.connecting = 0
			for _, e := range s.end {
				e.carrierLost()
			}
			continue
		}
		m.tryConnect(s)
	}
}

// SetSilent makes node drop everything its speaker sends and receives,
// its links keeping carrier (a hung box): its peers learn of it by the
// hold timer. Silent false lets its sessions come back.
func (m *Model) SetSilent(node string, silent bool) {
	sp := m.byName[node]
	if sp == nil || sp.silent == silent {
		return
	}
	sp.silent = silent
	if !silent {
		for _, e := range sp.ends {
			if e.bfd.frozen {
				e.bfdTick() // its timers run again, late
			}
			m.tryConnect(e.s)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Quiet says that nothing is under way: no export, UPDATE, withdrawal
// or import pending. Timers and session attempts do not count.
func (m *Model) Quiet() bool { return m.inflight == 0 }

// Establishing names a session of node's speaker that is not
// established although its transport works (a session is being
// attempted); "" when there is none, or node runs no speaker.
func (m *Model) Establishing(node string) string {
	sp := m.byName[node]
	if sp == nil || !sp.up {
		return ""
	}
	for _, e := range sp.ends {
		if !e.established() && e.s.transport() {
			return fmt.Sprintf("session to %s (%s) not established yet", e.peer().sp.Node, e.peer().addr)
		}
	}
	return ""
}

// SpeakerState is one speaker as an operator sees it.
type SpeakerState struct {
	Node     string
	RouterID netip.Addr
	Leaf     bool
	// Running: powered and not silent (a frozen speaker answers no
	// question, as on netns).
	Running bool
}

// Speakers returns every speaker, spines first.
func (m *Model) Speakers() []SpeakerState {
	out := make([]SpeakerState, len(m.sp))
	for i, sp := range m.sp {
		out[i] = SpeakerState{Node: sp.Node, RouterID: sp.RouterID, Leaf: sp.Leaf != nil, Running: sp.up && !sp.silent}
	}
	return out
}

// SessionState is one session of a speaker.
type SessionState struct {
	Peer        netip.Addr
	PeerNode    string
	State       string // established, active (a session is being attempted or awaited), idle
	Established bool
	// Down is why the session last went down ("" if it never did).
	Down string
	// BFD is the state of the BFD session beside it (as bfd.State
	// prints it; "" without BFD).
	BFD string
}

// ErrNotRunning is returned for a speaker whose node is failed.
var ErrNotRunning = errors.New("its speaker does not run (the node is failed)")

// ErrSilent is returned for a speaker whose node hangs (SetSilent): it
// answers nothing, as a frozen process does not.
var ErrSilent = errors.New("its speaker is frozen (the node hangs)")

// Sessions returns node's sessions, by peer address.
func (m *Model) Sessions(node string) ([]SessionState, error) {
	sp, err := m.running(node)
	if err != nil {
		return nil, err
	}
	var out []SessionState
	for _, e := range sp.ends {
		p := e.peer()
		st := SessionState{Peer: p.addr, PeerNode: p.sp.Node, State: "idle", Established: e.established(), Down: e.down, BFD: e.bfdState()}
		switch {
		case e.established():
			st.State = "established"
		case e.s.connecting != 0 || e.carrier():
			st.State = "active"
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SessionState) int { return a.Peer.Compare(b.Peer) })
	return out, nil
}

// Route is one best path with the route targets it carries.
type Route struct {
	Route        evpn.Route
	RouteTargets []string
}

// Routes returns node's best paths, sorted by the routes' text (as
// speaker.Client.Paths returns a real speaker's).
func (m *Model) Routes(node string) ([]Route, error) {
	sp, err := m.running(node)
	if err != nil {
		return nil, err
	}
	type keyed struct {
		text string
		r    Route
	}
	ks := make([]keyed, 0, len(sp.best))
	for _, p := range sp.best {
		ks = append(ks, keyed{p.route.String(), Route{Route: p.route, RouteTargets: slices.Clone(p.rts)}})
	}
	slices.SortFunc(ks, func(a, b keyed) int { return strings.Compare(a.text, b.text) })
	out := make([]Route, len(ks))
	for i, k := range ks {
		out[i] = k.r
	}
	return out, nil
}

func (m *Model) running(node string) (*speaker, error) {
	sp := m.byName[node]
	if sp == nil {
		return nil, fmt.Errorf("%s runs no BGP speaker", node)
	}
	if !sp.up {
		return nil, fmt.Errorf("%s: %w", node, ErrNotRunning)
	}
	if sp.silent {
		return nil, fmt.Errorf("%s: %w", node, ErrSilent)
	}
	return sp, nil
}
