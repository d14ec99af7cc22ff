package simrt

import (
	"context"
	"fmt"
	"time"

	"github.com/netbed/netbed/datapath/bfd"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/sim/bgpmodel"
	"github.com/netbed/netbed/topologies"
)

// SetBGP sets the timings (nil: the calibration checked into the
// repository, bgpmodel.Default) and session timers of the BGP model that
// Load builds for a gen 2 fabric with control_plane: bgp. Call it before
// Load.
func (r *Runtime) SetBGP(p *bgpmodel.Params, t bgpmodel.Timers) {
	r.bgpParams, r.bgpTimers = p, t
}

var _ scenarios.BGPConfigurer = (*Runtime)(nil)

// ConfigureBGP implements scenarios.BGPConfigurer: the scenario's hold and
// keepalive times become the model's session timers (unless SetBGP set
// them), bfd: true runs BFD beside its sessions, and its design (ibgp,
// ebgp) the model's.
func (r *Runtime) ConfigureBGP(s scenarios.BGPSettings) {
	if r.bgpTimers.Hold == 0 {
		r.bgpTimers.Hold = s.Hold
		if s.Hold == scenarios.NoHoldTimer {
			r.bgpTimers.Hold = bgpmodel.NoHold
		}
	}
	if r.bgpTimers.Keepalive == 0 {
		r.bgpTimers.Keepalive = s.Keepalive
	}
	if s.BFD && r.bgpTimers.BFD == nil {
		r.bgpTimers.BFD = &bfd.Config{} // package bfd's defaults, as netns's speakers run it
	}
	r.bgpDesign = s.Design
}

// BGP returns the runtime's BGP model, nil without control_plane: bgp.
func (r *Runtime) BGP() *bgpmodel.Model { return r.bgp }

// loadBGP builds gen 2's BGP control plane as netns runs it (the
// scenario's design, bgpmodel.Gen2) in the model, every session
// established as netns's Load leaves them.
func (r *Runtime) loadBGP(f *evpn.Fabric, t *topologies.Topology) error {
	d, err := bgpmodel.Gen2(t, f, r.bgpDesign == scenarios.DesignEBGP)
	if err != nil {
		return fmt.Errorf("sim runtime: %w", err)
	}
	p := r.bgpParams
	if p == nil {
		p = bgpmodel.Default()
	}
	m, err := bgpmodel.New(r.e, d, *p, r.bgpTimers, r.seed)
	if err != nil {
		return fmt.Errorf("sim runtime: %w", err)
	}
	r.bgp, r.fab = m, f
	m.Start()
	return nil
}

var (
	_ scenarios.ControlPlaneInspector = (*Runtime)(nil)
	_ scenarios.Settler               = (*Runtime)(nil)
)

// BGPSpeakers implements scenarios.ControlPlaneInspector: the model's
// speakers, none without control_plane: bgp.
func (r *Runtime) BGPSpeakers(context.Context) ([]scenarios.BGPSpeaker, error) {
	if r.bgp == nil {
		return nil, nil
	}
	var out []scenarios.BGPSpeaker
	_ = r.Mutate(func() error {
		for _, s := range r.bgp.Speakers() {
			out = append(out, scenarios.BGPSpeaker{Node: s.Node, RouterID: s.RouterID, Leaf: s.Leaf, Running: s.Running})
		}
		return nil
	})
	return out, nil
}

// BGPSessions implements scenarios.ControlPlaneInspector.
func (r *Runtime) BGPSessions(_ context.Context, node string) ([]scenarios.BGPSession, error) {
	if r.bgp == nil {
		return nil, fmt.Errorf("%s runs no BGP speaker", node)
	}
	var out []scenarios.BGPSession
	err := r.Mutate(func() error {
		ss, err := r.bgp.Sessions(node)
		for _, s := range ss {
			out = append(out, scenarios.BGPSession{Peer: s.Peer, PeerNode: s.PeerNode, State: s.State, Established: s.Established})
		}
		return err
	})
	return out, err
}

// BGPRoutes implements scenarios.ControlPlaneInspector.
func (r *Runtime) BGPRoutes(_ context.Context, node string) ([]scenarios.BGPRoute, error) {
	if r.bgp == nil {
		return nil, fmt.Errorf("%s runs no BGP speaker", node)
	}
	var out []scenarios.BGPRoute
	err := r.Mutate(func() error {
		rs, err := r.bgp.Routes(node)
		for _, x := range rs {
			out = append(out, scenarios.BGPRoute{Route: x.Route, RouteTargets: x.RouteTargets})
		}
		return err
	})
	return out, err
}

// restored runs virtual time until node's speaker (if it has one) has
// every session established whose peer runs and whose link is up, then
// settles the fabric: netns's restore does both before it returns.
func (r *Runtime) restored(ctx context.Context, node string) error {
	deadline := r.e.Now() + settleLimit
	for {
		var pending string
		_ = r.Mutate(func() error { pending = r.bgp.Establishing(node); return nil })
		if pending == "" {
			return r.Settle(ctx)
		}
		if r.e.Now() >= deadline {
			return fmt.Errorf("control_plane bgp: restore %s: after %v: %s", node, settleLimit, pending)
		}
		if err := r.Sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// settleLimit bounds Settle in virtual time, as netns's does in real time.
const settleLimit = 15 * time.Second

// Settle implements scenarios.Settler: with control_plane: bgp it runs
// virtual time until every live leaf's table holds every route the other
// live leaves advertise (netns's test, in the same terms) and no UPDATE
// is under way any more (on netns the speakers go on in real time while
// the run does; here time stands still between steps), at most 15 s.
func (r *Runtime) Settle(ctx context.Context) error {
	if r.bgp == nil {
		return nil
	}
	deadline := r.e.Now() + settleLimit
	for {
		var missing string
		var err error
		_ = r.Mutate(func() error {
			missing, err = r.missing(), r.bgp.Err()
			if missing == "" && !r.bgp.Quiet() {
				missing = "UPDATEs still under way"
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sim runtime: bgp: %w", err)
		}
		if missing == "" {
			return nil
		}
		if r.e.Now() >= deadline {
			return fmt.Errorf("control_plane bgp: not converged after %v: %s", settleLimit, missing)
		}
		if err := r.Sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// missing names a live leaf and a route of another live leaf its table
// lacks ("" when none).
func (r *Runtime) missing() string {
	var live []*evpn.Leaf
	for _, s := range r.bgp.Speakers() {
		if s.Leaf && s.Running {
			l, _ := r.fab.Leaf(s.Node)
			live = append(live, l)
		}
	}
	for _, to := range live {
		have := map[evpn.Route]bool{}
		for _, x := range to.Table().Routes() {
			have[asCarried(x)] = true
		}
		for _, from := range live {
			if from == to {
				continue
			}
			for _, x := range from.Advertised() {
				if !have[asCarried(x)] {
					return fmt.Sprintf("%s lacks %s of %s", to.Name(), x, from.Name())
				}
			}
		}
	}
	return ""
}

// asCarried is x as BGP carries it: a type 2 route without an IP has no
// router MAC or L3 VNI (bgpevpn.Encode).
func asCarried(x evpn.Route) evpn.Route {
	if x.Type == evpn.MACIP && !x.IP.IsValid() {
		x.RouterMAC, x.L3VNI = evpn.MAC{}, 0
	}
	return x
}
