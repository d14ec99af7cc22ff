// Package simrt is the sim runtime: a generation's fabric run by the
// discrete-event simulator in virtual time, deterministic for a seed.
package simrt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/sim/bgpmodel"
	"github.com/netbed/netbed/topologies"
)

// ControllerLatency is what FabricOptions.ControllerLatency should be on
// sim: a controller API call in virtual time. Measured calls take ~1–4 ms
// over HTTP with a durable store (docs/benchmarks.md); the seed's Neutron
// took ~100 ms.
const ControllerLatency = 2 * time.Millisecond

// Runtime runs a fabric in the simulator. It implements scenarios.Runtime.
//
// Timing: every device a frame crosses costs what the calibration table
// says its kind costs (package datapath/cost: measured on this machine's
// kernel devices and Open vSwitch, documented for physical switches), hop
// by hop (sim.Engine.SetDeviceCost); links add their own delay and
// serialisation. Nodes have no processing delay of their own.
//
// The engine runs on the caller's goroutine (Sleep, Probe), but the
// controller's CNC programs leaves from goroutines of its own: Pause
// waits for the engine to stop between two runs and keeps it stopped,
// so that a leaf's tables never change while it handles a frame.
type Runtime struct {
	e     *sim.Engine
	model *cost.Model
	seed  int64

	// With control_plane: bgp, gen 2's speakers (bgp.go).
	bgp       *bgpmodel.Model
	fab       *evpn.Fabric
	bgpParams *bgpmodel.Params
	bgpTimers bgpmodel.Timers
	bgpDesign string
	// hung are the nodes failed silently (FailSilently), until restored.
	hung map[string]bool

	// streamProbes counts background stream probes, numbered from
	// scenarios.StreamProbeIDs.
	streamProbes uint64

	mu      sync.Mutex
	cond    *sync.Cond
	running bool // the engine is running events
	paused  int  // pauses in force
}

var _ scenarios.Runtime = (*Runtime)(nil)

// New returns a sim runtime seeded with seed, costing devices with the
// calibration checked into the repository.
func New(seed int64) *Runtime { return NewCalibrated(seed, nil) }

// NewCalibrated returns a sim runtime seeded with seed whose devices cost
// what t says (cost.Default() when nil).
func NewCalibrated(seed int64, t *cost.Table) *Runtime {
	r := &Runtime{e: sim.New(seed), model: cost.NewModel(t), seed: seed}
	r.e.SetDeviceCost(r.model.Of)
	// Only probes' events are kept (see Probe): an instance's
	// announcements, flooded to every host of its segment, belong to none.
	r.e.SetRecordFilter(func(probe uint64) bool { return probe != 0 })
	r.cond = sync.NewCond(&r.mu)
	return r
}

// run runs the engine until t, once no pause is in force.
func (r *Runtime) run(t time.Duration) error {
	r.mu.Lock()
	for r.paused > 0 {
		r.cond.Wait()
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	return r.e.Run(t)
}

// Engine exposes the simulator, for tests and traces.
func (r *Runtime) Engine() *sim.Engine { return r.e }

// Name implements scenarios.Runtime.
func (r *Runtime) Name() string { return "sim" }

// Latency says that the runtime's latencies are modelled, and from which
// calibration.
func (r *Runtime) Latency() reports.Latency {
	t := r.model.Table()
	return reports.Latency{Kind: reports.LatencyModelled, Calibration: t.Date, Machine: t.Machine,
		Method: "each device on the path costs its kind's calibrated time (datapath/cost), plus link delays, in virtual time"}
}

// Load implements scenarios.Runtime. A gen 2 fabric whose leaves have
// tables of their own (control_plane: bgp) gets its control plane from
// the BGP model (package sim/bgpmodel), its sessions established.
func (r *Runtime) Load(_ context.Context, f datapath.Fabric, t *topologies.Topology) error {
	if pb, ok := f.(interface{ PodCIDRsFromBGP() bool }); ok && pb.PodCIDRsFromBGP() {
		return errors.New("sim runtime: control_plane: bgp: the BGP model has no speakers for gen 3's direct routing; run the scenario on netns, or use control_plane: shared")
	}
	if err := r.e.Load(f, nil, sim.LinkOpts{QueueFrames: 1024}); err != nil {
		return err
	}
	if ef, ok := f.(*evpn.Fabric); ok && ef.LeafTables() {
		if t == nil {
			return errors.New("sim runtime: control_plane: bgp needs the topology to design the sessions")
		}
		return r.loadBGP(ef, t)
	}
	if lt, ok := f.(interface{ LeafTables() bool }); ok && lt.LeafTables() {
		return fmt.Errorf("sim runtime: control_plane: bgp: the BGP model runs gen 2's fabric only, not %s", f.Generation())
	}
	return nil
}

// AddInstance implements scenarios.Runtime.
func (r *Runtime) AddInstance(_ context.Context, f datapath.Fabric, s datapath.InstanceSpec) error {
	return r.Mutate(func() error {
		_, err := r.e.AddInstance(f, s)
		return err
	})
}

// RemoveInstance implements scenarios.Runtime.
func (r *Runtime) RemoveInstance(_ context.Context, f datapath.Fabric, name string) error {
	return r.Mutate(func() error { return r.e.RemoveInstance(f, name) })
}

// Announce implements scenarios.Runtime: the instance's stack announces
// itself now, and the hypervisor's RARP rounds of a migrated VM are
// scheduled in virtual time.
func (r *Runtime) Announce(_ context.Context, name string, migrated bool) error {
	n, ok := r.e.Node(name)
	if !ok {
		return fmt.Errorf("announce %s: no such instance", name)
	}
	in, ok := n.(*stack.Instance)
	if !ok {
		return fmt.Errorf("announce %s: not an instance (%T)", name, n)
	}
	now := r.e.Now()
	if migrated {
		for _, at := range scenarios.MigrationAnnounce {
			if err := r.e.Do(now+at, name, 0, in.AnnounceSelf); err != nil {
				return fmt.Errorf("announce %s: %w", name, err)
			}
		}
	}
	if err := r.e.Do(now, name, 0, in.Announce); err != nil {
		return fmt.Errorf("announce %s: %w", name, err)
	}
	return nil
}

// SetNodeState implements scenarios.Runtime. A failed node loses power:
// its links lose carrier, and with control_plane: bgp its speaker dies
// and the speakers at the far ends of its links take their sessions down
// (bgpmodel.Model.SetNodeState). A restored node's speaker starts again
// and, as on netns, the restore lasts (in virtual time) until its
// sessions are established and every live leaf's table is complete. A
// node failed silently (FailSilently) is rebooted: its speaker goes down
// and starts afresh, as on netns, where the frozen speaker is killed.
func (r *Runtime) SetNodeState(ctx context.Context, node string, up bool) error {
	if err := r.Mutate(func() error {
		if err := r.e.SetNodeState(r.e.Now(), node, up); err != nil {
			return err
		}
		if up && r.hung[node] {
			delete(r.hung, node)
			if r.bgp != nil {
				r.bgp.SetNodeState(node, false)
				r.bgp.SetSilent(node, false)
			}
		}
		if r.bgp != nil {
			r.bgp.SetNodeState(node, up)
		}
		return nil
	}); err != nil {
		return err
	}
	if r.bgp == nil || !up {
		return nil
	}
	return r.restored(ctx, node)
}

// SetLinkState implements scenarios.Runtime.
func (r *Runtime) SetLinkState(_ context.Context, ep topologies.Endpoint, up bool) error {
	n, ok := r.e.Node(ep.Node)
	if !ok {
		return fmt.Errorf("link %s: no node %q", ep, ep.Node)
	}
	port := slices.Index(n.Ports(), ep.Iface)
	if port < 0 {
		return fmt.Errorf("link %s: node %s has no port %q", ep, ep.Node, ep.Iface)
	}
	w, err := r.e.Wire(datapath.PortRef{Node: ep.Node, Port: port})
	if err != nil {
		return fmt.Errorf("link %s: %w", ep, err)
	}
	return r.Mutate(func() error {
		if err := r.e.SetLinkState(r.e.Now(), w, up); err != nil {
			return err
		}
		if r.bgp != nil {
			r.bgp.SetLinkState(ep, up)
		}
		return nil
	})
}

var protos = map[string]stack.Proto{"icmp": stack.ICMP, "udp": stack.UDP, "tcp": stack.TCP}

// Probe implements scenarios.Runtime: the probe leaves now and virtual
// time runs until it is answered or the timeout passes.
func (r *Runtime) Probe(_ context.Context, p scenarios.RuntimeProbe) (reports.Probe, error) {
	proto, ok := protos[p.Proto]
	if !ok {
		return reports.Probe{}, fmt.Errorf("probe: unknown protocol %q", p.Proto)
	}
	// A probe's result is derived from its own trace events alone (its
	// paths start at its originate event), and the runner asks for it
	// once, here: what was traced before it goes, so that the trace holds
	// one probe at a time, not a whole run (a 4x16x16 all-pairs matrix
	// traced ~40 events of ~180 bytes per probe, gigabytes in all).
	_ = r.Mutate(func() error { r.e.ResetTrace(); return nil })
	start := r.e.Now()
	spec := stack.ProbeSpec{Proto: proto, Dst: p.Dst, DstPort: p.Port}
	if p.Background {
		r.streamProbes++
		spec.ID = scenarios.StreamProbeIDs + r.streamProbes
	}
	id, err := r.e.Probe(start, p.From, spec)
	if err != nil {
		return reports.Probe{}, err
	}
	var res sim.Result
	for step := 50 * time.Microsecond; ; step *= 2 {
		deadline := min(r.e.Now()+step, start+p.Timeout)
		if err := r.run(deadline); err != nil {
			return reports.Probe{}, fmt.Errorf("probe %s -> %s: %w", p.From, p.To, err)
		}
		timedOut := r.e.Now() >= start+p.Timeout
		if !timedOut && !r.e.ReplyTraced(id) {
			continue // Result would not find it replied yet
		}
		if res, err = r.e.Result(id); err != nil {
			return reports.Probe{}, err
		}
		if res.Replied || timedOut {
			break
		}
	}
	return scenarios.ProbeRecord(res.Outcome, p), nil
}

// Mutate implements scenarios.Runtime.
func (r *Runtime) Mutate(f func() error) error {
	defer r.Pause()()
	return f()
}

// Pause implements scenarios.Runtime: it waits for the engine to finish
// its current run; pauses nest.
func (r *Runtime) Pause() func() {
	r.mu.Lock()
	for r.running {
		r.cond.Wait()
	}
	r.paused++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.paused--
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// Sleep implements scenarios.Runtime by running virtual time.
func (r *Runtime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.run(r.e.Now() + d)
}

// Now implements scenarios.Runtime.
func (r *Runtime) Now() time.Duration { return r.e.Now() }

// Stats implements scenarios.Runtime.
func (r *Runtime) Stats() (map[string]int, int) {
	c, err := r.e.Conservation()
	drops := map[string]int{}
	for reason, n := range c.Dropped {
		drops[string(reason)] = int(n)
	}
	unexplained := 0
	if errors.Is(err, sim.ErrConservation) {
		sum := c.Delivered + c.Forwarded + c.DroppedTotal() + c.InFlight
		unexplained = int(max(c.Injected, sum) - min(c.Injected, sum))
	}
	if n := drops[""]; n > 0 {
		unexplained += n
	}
	return drops, unexplained
}

// Close implements scenarios.Runtime; the simulator holds no resources.
// The BGP model lets go of the leaves.
func (r *Runtime) Close() error {
	if r.bgp != nil {
		r.bgp.Close()
	}
	return nil
}
