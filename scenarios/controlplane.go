package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
)

// ControlPlaneInspector is a Runtime, or a Backend, whose control plane
// is BGP speakers that can be asked what they hold (control_plane: bgp:
// GoBGP processes on netns, the BGP model on sim). The runner's control-plane expectations
// (bgp_sessions, bgp_route, fabric_consistent) read it; a backend without
// it, or with no speakers, fails them.
type ControlPlaneInspector interface {
	// BGPSpeakers returns every node that runs a BGP speaker, spines
	// first; none when the control plane is not BGP. A failed node's
	// speaker is listed, not Running.
	BGPSpeakers(ctx context.Context) ([]BGPSpeaker, error)
	// BGPSessions returns the sessions of node's running speaker.
	BGPSessions(ctx context.Context, node string) ([]BGPSession, error)
	// BGPRoutes returns the best EVPN paths of node's running speaker.
	BGPRoutes(ctx context.Context, node string) ([]BGPRoute, error)
}

// BGPEventClock is a Runtime that follows its leaves' speakers as they
// report changes (netns: each leaf imports its speaker's WatchEvent
// stream). LastBGPChange is when node's leaf last received a best path of
// vtep gained or lost, in the runtime's time (Now); false if never. A
// leaf's convergence is then timed by the speakers' own reports, not by
// when a poll happened to see it.
type BGPEventClock interface {
	LastBGPChange(node string, vtep netip.Addr) (time.Duration, bool)
}

// BGPSpeaker is one node's speaker.
type BGPSpeaker struct {
	Node string
	// RouterID is what the running speaker says it is (as configured
	// while it does not run). A leaf's is its VTEP address.
	RouterID netip.Addr
	Leaf     bool
	// Direct is a speaker of gen 3's direct routing (a host advertising
	// its pod CIDR, or the leaf that learns it): it has no EVPN routes,
	// so a fault of it is over when no running peer's session to it is
	// established (the withdrawal comes with the session), and its
	// restore when its own sessions are.
	Direct  bool
	Running bool
}

// BGPSession is one session of a speaker.
type BGPSession struct {
	Peer        netip.Addr
	PeerNode    string // the node at Peer, "" when unknown
	State       string // idle, connect, active, opensent, openconfirm, established
	Established bool
}

// BGPRoute is one best EVPN path with the route targets it carries.
type BGPRoute struct {
	evpn.Route
	RouteTargets []string
}

// cpView is what the speakers held at one moment.
type cpView struct {
	speakers []BGPSpeaker
	sessions map[string][]BGPSession
	routes   map[string][]BGPRoute
	errs     map[string]error // per node: why its sessions or routes are unknown
}

func (v *cpView) speaker(node string) (BGPSpeaker, bool) {
	for _, s := range v.speakers {
		if s.Node == node {
			return s, true
		}
	}
	return BGPSpeaker{}, false
}

// nodeOf names the speaker whose router ID is a ("" when none).
func (v *cpView) nodeOf(a netip.Addr) string {
	for _, s := range v.speakers {
		if s.RouterID == a {
			return s.Node
		}
	}
	return ""
}

func inspect(ctx context.Context, ins ControlPlaneInspector) (*cpView, error) {
	ss, err := ins.BGPSpeakers(ctx)
	if err != nil {
		return nil, err
	}
	v := &cpView{speakers: ss, sessions: map[string][]BGPSession{}, routes: map[string][]BGPRoute{}, errs: map[string]error{}}
	for _, s := range ss {
		if !s.Running {
			v.errs[s.Node] = fmt.Errorf("its speaker does not run (the node is failed)")
			continue
		}
		if v.sessions[s.Node], err = ins.BGPSessions(ctx, s.Node); err != nil {
			v.errs[s.Node] = err
			continue
		}
		if v.routes[s.Node], err = ins.BGPRoutes(ctx, s.Node); err != nil {
			v.errs[s.Node] = err
		}
	}
	return v, nil
}

// controlPlane checks e's control-plane expectations, polling the
// speakers until they all hold or e.Within (backend time) has passed.
func (r *runner) controlPlane(ctx context.Context, i int, st *Step) {
	e := st.Expect
	var names []string
	if e.BGPSessions != nil {
		names = append(names, "bgp_sessions")
	}
	if len(e.BGPRoutes) > 0 {
		names = append(names, "bgp_route")
	}
	if e.FabricConsistent {
		names = append(names, "fabric_consistent")
	}
	if len(names) == 0 {
		return
	}
	var ss []BGPSpeaker
	ins, ok := r.b.(ControlPlaneInspector)
	if ok {
		var err error
		if ss, err = ins.BGPSpeakers(ctx); err != nil {
			r.check(i, st, strings.Join(names, ", "), false, "%v", err)
			return
		}
	}
	if len(ss) == 0 {
		verb := "needs"
		if len(names) > 1 {
			verb = "need"
		}
		r.check(i, st, strings.Join(names, ", "), false, "%s %s control_plane: bgp (this run: control plane %s on %s, which has no BGP speakers to ask)",
			strings.Join(names, " and "), verb, r.s.ControlPlane, r.b.Name())
		return
	}
	deadline := r.b.Now() + e.Within
	for {
		v, err := inspect(ctx, ins)
		var results []cpResult
		if err == nil {
			results = r.cpResults(v, e)
		} else {
			results = []cpResult{{what: strings.Join(names, ", "), detail: err.Error()}}
		}
		failed := slices.ContainsFunc(results, func(c cpResult) bool { return c.detail != "" })
		if !failed || r.b.Now() >= deadline || ctx.Err() != nil {
			for _, c := range results {
				what := c.what
				if failed && e.Within > 0 {
					what += " within " + e.Within.String()
				}
				r.check(i, st, what, c.detail == "", "%s", c.detail)
			}
			return
		}
		if err := r.b.Sleep(ctx, max(e.Within/50, 50*time.Millisecond)); err != nil {
			r.check(i, st, strings.Join(names, ", "), false, "%v", err)
			return
		}
	}
}

// cpResult is one control-plane check's outcome: detail says why it
// failed, "" when it passed.
type cpResult struct{ what, detail string }

func (r *runner) cpResults(v *cpView, e *Expect) []cpResult {
	var out []cpResult
	if e.BGPSessions != nil {
		what := "bgp sessions established"
		if len(e.BGPSessions.Nodes) > 0 {
			what += " on " + strings.Join(e.BGPSessions.Nodes, ", ")
		}
		out = append(out, cpResult{what, strings.Join(sessionProblems(v, e.BGPSessions.Nodes), "; ")})
	}
	for _, re := range e.BGPRoutes {
		out = append(out, r.routeResults(v, re)...)
	}
	if e.FabricConsistent {
		out = append(out, cpResult{"fabric consistent", strings.Join(fabricProblems(v.speakers, v.routes), "; ")})
	}
	return out
}

// sessionProblems names every session of nodes (every speaker's when
// empty) that is not established, and every node whose sessions are
// unknown.
func sessionProblems(v *cpView, nodes []string) []string {
	if len(nodes) == 0 {
		for _, s := range v.speakers {
			nodes = append(nodes, s.Node)
		}
	}
	var bad []string
	for _, n := range nodes {
		if _, ok := v.speaker(n); !ok {
			bad = append(bad, fmt.Sprintf("%s runs no BGP speaker", n))
			continue
		}
		if err := v.errs[n]; err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		if len(v.sessions[n]) == 0 {
			bad = append(bad, fmt.Sprintf("%s has no sessions", n))
		}
		for _, x := range v.sessions[n] {
			if !x.Established {
				peer := x.Peer.String()
				if x.PeerNode != "" {
					peer = fmt.Sprintf("%s (%s)", x.PeerNode, x.Peer)
				}
				bad = append(bad, fmt.Sprintf("%s: session to %s is %s", n, peer, x.State))
			}
		}
	}
	return bad
}

// routeResults checks one bgp_route expectation: one result per speaker
// list (present on, absent from).
func (r *runner) routeResults(v *cpView, re BGPRouteExpect) []cpResult {
	desc, match, err := r.routeMatcher(v, re)
	if err != nil {
		return []cpResult{{"bgp route " + desc, err.Error()}}
	}
	var out []cpResult
	if len(re.PresentOn) > 0 {
		var bad []string
		for _, n := range re.PresentOn {
			switch _, ok := v.speaker(n); {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s runs no BGP speaker", n))
			case v.errs[n] != nil:
				bad = append(bad, fmt.Sprintf("%s: %v", n, v.errs[n]))
			case !slices.ContainsFunc(v.routes[n], match):
				bad = append(bad, fmt.Sprintf("%s lacks it (holds %d EVPN routes)", n, len(v.routes[n])))
			}
		}
		out = append(out, cpResult{"bgp route " + desc + " present on " + strings.Join(re.PresentOn, ", "), strings.Join(bad, "; ")})
	}
	if len(re.AbsentFrom) > 0 {
		var bad []string
		for _, n := range re.AbsentFrom {
			switch _, ok := v.speaker(n); {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s runs no BGP speaker", n))
			case v.errs[n] != nil:
				bad = append(bad, fmt.Sprintf("%s: %v", n, v.errs[n]))
			default:
				if j := slices.IndexFunc(v.routes[n], match); j >= 0 {
					rt := v.routes[n][j]
					bad = append(bad, fmt.Sprintf("%s holds %s%s", n, rt.Route, originOf(v, rt.VTEP)))
				}
			}
		}
		out = append(out, cpResult{"bgp route " + desc + " absent from " + strings.Join(re.AbsentFrom, ", "), strings.Join(bad, "; ")})
	}
	return out
}

func originOf(v *cpView, vtep netip.Addr) string {
	if n := v.nodeOf(vtep); n != "" {
		return " (from " + n + ")"
	}
	return ""
}

// routeMatcher returns a description of the routes re selects and a
// test for them; instance names and networks are resolved now.
func (r *runner) routeMatcher(v *cpView, re BGPRouteExpect) (string, func(BGPRoute) bool, error) {
	var desc []string
	typ := evpn.RouteType(re.Type) // the same numbers
	if typ != 0 {
		desc = append(desc, typ.String())
	}
	var mac evpn.MAC
	var ip netip.Addr
	var vtep netip.Addr
	vni := re.VNI
	var errs []string
	if re.MAC != "" {
		desc = append(desc, "mac "+re.MAC)
		m, err := r.macOf(re.MAC)
		if err != nil {
			errs = append(errs, err.Error())
		}
		mac = m
	}
	if re.IP != "" {
		desc = append(desc, "ip "+re.IP)
		a, err := netip.ParseAddr(re.IP)
		if err != nil {
			in, ok := r.inst[re.IP]
			if !ok || !in.IP.IsValid() {
				errs = append(errs, fmt.Sprintf("ip: %q is neither an address nor a live instance", re.IP))
			}
			a = in.IP
		}
		ip = a
	}
	if re.Prefix.IsValid() {
		desc = append(desc, "prefix "+re.Prefix.String())
	}
	if re.Network != "" {
		desc = append(desc, "vni of "+re.Network)
		for _, seg := range SegmentsFor(r.s.Networks, r.s.OptionsFor(r.gen)) {
			if seg.Name == re.Network {
				vni = seg.VNI
			}
		}
	} else if vni != 0 {
		desc = append(desc, fmt.Sprintf("vni %d", vni))
	}
	if re.Origin != "" {
		desc = append(desc, "from "+re.Origin)
		s, ok := v.speaker(re.Origin)
		if !ok {
			errs = append(errs, fmt.Sprintf("origin: %s runs no BGP speaker", re.Origin))
		}
		vtep = s.RouterID
	}
	d := strings.Join(desc, " ")
	if len(errs) > 0 {
		return d, nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return d, func(rt BGPRoute) bool {
		switch {
		case typ != 0 && rt.Type != typ,
			re.MAC != "" && rt.MAC != mac,
			re.IP != "" && rt.IP != ip,
			re.Prefix.IsValid() && rt.Prefix.Masked() != re.Prefix.Masked(),
			re.Origin != "" && rt.VTEP != vtep:
			return false
		case vni != 0:
			if rt.Type == evpn.IPPrefix {
				return rt.L3VNI == vni
			}
			return rt.VNI == vni
		}
		return true
	}, nil
}

func (r *runner) macOf(s string) (evpn.MAC, error) {
	if hw, err := parseMAC(s); err == nil {
		return hw, nil
	}
	in, ok := r.inst[s]
	if !ok {
		return evpn.MAC{}, fmt.Errorf("mac: %q is neither a MAC address nor a live instance", s)
	}
	hw, err := parseMAC(in.MAC)
	if err != nil {
		return evpn.MAC{}, fmt.Errorf("mac: instance %s has no MAC address (%q)", s, in.MAC)
	}
	return hw, nil
}

var _ ControlPlaneInspector = (*FabricBackend)(nil)

// BGPSpeakers implements ControlPlaneInspector with the runtime's
// speakers: none when the runtime has none.
func (b *FabricBackend) BGPSpeakers(ctx context.Context) ([]BGPSpeaker, error) {
	if ins, ok := b.rt.(ControlPlaneInspector); ok {
		return ins.BGPSpeakers(ctx)
	}
	return nil, nil
}

// BGPSessions implements ControlPlaneInspector.
func (b *FabricBackend) BGPSessions(ctx context.Context, node string) ([]BGPSession, error) {
	if ins, ok := b.rt.(ControlPlaneInspector); ok {
		return ins.BGPSessions(ctx, node)
	}
	return nil, fmt.Errorf("the %s runtime runs no BGP speakers", b.rt.Name())
}

// BGPRoutes implements ControlPlaneInspector.
func (b *FabricBackend) BGPRoutes(ctx context.Context, node string) ([]BGPRoute, error) {
	if ins, ok := b.rt.(ControlPlaneInspector); ok {
		return ins.BGPRoutes(ctx, node)
	}
	return nil, fmt.Errorf("the %s runtime runs no BGP speakers", b.rt.Name())
}

// convergenceTimeout bounds how long a fail or restore step waits for
// the other leaves' speakers to withdraw or learn the leaf's routes.
const convergenceTimeout = 30 * time.Second

// convergenceWatch, for a leaf or spine about to fail (up false) or be
// restored on a runtime with BGP speakers, returns a function to call
// once the fault is carried out: it polls the other running leaves'
// speakers until none holds a route whose VTEP is the leaf's (after a
// failure), or each holds every route the leaf's own speaker originated
// (after a restore); a leaf that originated nothing when it failed (a
// border leaf without instances), until no running speaker has a session
// with it established (after the failure) or until its own sessions are
// (after the restore), and so for a speaker of gen 3's direct routing (a
// host or its leaf: BGPSpeaker.Direct);
// for a spine, until no running leaf has a session
// with it established (after a failure), or every one has and the spine
// holds every route they originate (after a restore). It returns the
// backend time that took from start (the operators' convergence), or
// what was still held or missing after convergenceTimeout, and whether
// node is a spine. It returns nil for anything else. The speakers are
// listed once, before the fault, and asked side by side: on netns every
// question is a gRPC call, and the figure is an upper bound by what one
// round of them takes.
func (b *FabricBackend) convergenceWatch(ctx context.Context, node string, start time.Duration, up bool) (func(context.Context) (time.Duration, string, error), bool) {
	ss, err := b.BGPSpeakers(ctx)
	if err != nil || len(ss) == 0 {
		return nil, false
	}
	i := slices.IndexFunc(ss, func(s BGPSpeaker) bool { return s.Node == node })
	if i < 0 || ss[i].Running == up {
		return nil, false
	}
	vtep, spine := ss[i].RouterID, !ss[i].Leaf && !ss[i].Direct
	if ss[i].Leaf && !up {
		// A leaf that originates nothing (a border leaf without
		// instances) cannot be waited for to originate again.
		rs, err := b.BGPRoutes(ctx, node)
		if err == nil && !slices.ContainsFunc(rs, func(r BGPRoute) bool { return r.VTEP == vtep }) {
			if b.originless == nil {
				b.originless = map[string]bool{}
			}
			b.originless[node] = true
		} else {
			delete(b.originless, node)
		}
	}
	originless := b.originless[node] || ss[i].Direct
	return func(ctx context.Context) (time.Duration, string, error) {
		for {
			var wrong string
			var err error
			switch {
			case spine:
				wrong, err = b.spineConverged(ctx, ss, node, up)
			case originless && up:
				wrong, err = b.sessionsUp(ctx, node)
			case originless:
				wrong, err = b.peersDown(ctx, ss, node)
			default:
				wrong, err = b.converged(ctx, ss, node, vtep, up)
			}
			if err != nil {
				return 0, "", err
			}
			took := b.rt.Now() - start
			if wrong == "" {
				if !spine && !originless {
					took = b.eventTimed(ss, node, vtep, start, took)
				}
				return took, "", nil
			}
			if took > convergenceTimeout {
				return 0, fmt.Sprintf("not converged after %v: %s", convergenceTimeout, wrong), nil
			}
			if err := b.rt.Sleep(ctx, convergencePoll); err != nil {
				return 0, "", err
			}
		}
	}, spine
}

// eventTimed returns a leaf's convergence as the other running leaves'
// speakers reported it, when the runtime follows their reports
// (BGPEventClock): from start until the last of them received the last
// change of vtep's routes. It returns polled, the figure the poll saw,
// when the runtime does not, or when a leaf reported no change since
// start (one netbed does not follow: an FRR leaf).
func (b *FabricBackend) eventTimed(ss []BGPSpeaker, node string, vtep netip.Addr, start, polled time.Duration) time.Duration {
	ec, ok := b.rt.(BGPEventClock)
	if !ok {
		return polled
	}
	var last time.Duration
	for _, s := range ss {
		if !s.Leaf || !s.Running || s.Node == node {
			continue
		}
		at, ok := ec.LastBGPChange(s.Node, vtep)
		if !ok || at < start {
			return polled
		}
		last = max(last, at-start)
	}
	if last == 0 || last > polled {
		return polled
	}
	return last
}

// sessionsUp names a session of node's speaker that is not established
// ("" when all are, or what keeps the speaker from answering).
func (b *FabricBackend) sessionsUp(ctx context.Context, node string) (string, error) {
	xs, err := b.BGPSessions(ctx, node)
	if err != nil {
		return node + "'s speaker does not answer yet", nil
	}
	for _, x := range xs {
		if !x.Established {
			return fmt.Sprintf("%s's session to %s is %s", node, x.PeerNode, x.State), nil
		}
	}
	return "", nil
}

// peersDown names a running speaker of ss whose session to node is still
// established ("" when none is).
func (b *FabricBackend) peersDown(ctx context.Context, ss []BGPSpeaker, node string) (string, error) {
	for _, s := range ss {
		if !s.Running || s.Node == node {
			continue
		}
		xs, err := b.BGPSessions(ctx, s.Node)
		if err != nil {
			return "", err
		}
		for _, x := range xs {
			if x.PeerNode == node && x.Established {
				return fmt.Sprintf("%s's session to %s is still established", s.Node, node), nil
			}
		}
	}
	return "", nil
}

// convergencePoll is how often convergence is polled, in backend time:
// the figures' resolution on sim.
const convergencePoll = time.Millisecond

// eachLeaf asks every running leaf of ss but skip, side by side, and
// returns the first problem in speaker order ("" when none).
func eachLeaf(ss []BGPSpeaker, skip string, ask func(BGPSpeaker) (string, error)) (string, error) {
	var leaves []BGPSpeaker
	for _, s := range ss {
		if s.Leaf && s.Running && s.Node != skip {
			leaves = append(leaves, s)
		}
	}
	wrong, errs := make([]string, len(leaves)), make([]error, len(leaves))
	var wg sync.WaitGroup
	for i, s := range leaves {
		wg.Go(func() { wrong[i], errs[i] = ask(s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for _, w := range wrong {
		if w != "" {
			return w, nil
		}
	}
	return "", nil
}

// spineConverged says what keeps the running leaves of ss from having
// dropped their sessions to spine (up false), or from having them
// established again with the spine holding every route they originate
// (up true); "" when nothing does.
func (b *FabricBackend) spineConverged(ctx context.Context, ss []BGPSpeaker, spine string, up bool) (string, error) {
	var held []BGPRoute
	if up {
		var err error
		if held, err = b.BGPRoutes(ctx, spine); err != nil {
			return spine + "'s speaker does not answer yet", nil
		}
	}
	return eachLeaf(ss, spine, func(s BGPSpeaker) (string, error) {
		xs, err := b.BGPSessions(ctx, s.Node)
		if err != nil {
			return "", err
		}
		for _, x := range xs {
			if x.PeerNode == spine && x.Established != up {
				return fmt.Sprintf("%s's session to %s is %s", s.Node, spine, x.State), nil
			}
		}
		if !up {
			return "", nil
		}
		rs, err := b.BGPRoutes(ctx, s.Node)
		if err != nil {
			return "", err
		}
		for _, r := range rs {
			if r.VTEP == s.RouterID && !slices.ContainsFunc(held, func(h BGPRoute) bool { return h.Route == r.Route }) {
				return fmt.Sprintf("%s lacks %s of %s", spine, r.Route, s.Node), nil
			}
		}
		return "", nil
	})
}

// converged says what keeps the other running leaves of ss from having
// withdrawn (up false) or learnt (up true) the routes of node, whose VTEP
// is vtep; "" when nothing does.
func (b *FabricBackend) converged(ctx context.Context, ss []BGPSpeaker, node string, vtep netip.Addr, up bool) (string, error) {
	var own []evpn.Route
	if up {
		rs, err := b.BGPRoutes(ctx, node)
		if err != nil {
			return "", err
		}
		for _, r := range rs {
			if r.VTEP == vtep {
				own = append(own, r.Route)
			}
		}
		if len(own) == 0 {
			return node + "'s speaker holds no route of its own yet", nil
		}
	}
	return eachLeaf(ss, node, func(s BGPSpeaker) (string, error) {
		rs, err := b.BGPRoutes(ctx, s.Node)
		if err != nil {
			return "", err
		}
		if !up {
			if j := slices.IndexFunc(rs, func(r BGPRoute) bool { return r.VTEP == vtep }); j >= 0 {
				return fmt.Sprintf("%s's speaker still holds %s", s.Node, rs[j].Route), nil
			}
			return "", nil
		}
		for _, r := range own {
			if !slices.ContainsFunc(rs, func(x BGPRoute) bool { return x.Route == r }) {
				return fmt.Sprintf("%s's speaker lacks %s", s.Node, r), nil
			}
		}
		return "", nil
	})
}
