package netnsrt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/bpf"
	"github.com/netbed/netbed/datapath/kernel/ktrace"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// kernelGen is how the kernel backend runs one generation: a fresh
// datapath/kernel fabric, what the machine must have for it (nil: the
// kernel backend's own needs), and whether its fabric carries IPv6 (a
// dual-stack instance's IPv6 probes; otherwise they are refused, naming
// the generation).
type kernelGen struct {
	make  func() kernel.Fabric
	needs func() error
	ipv6  bool
}

// kernelFabrics are the generations the kernel backend builds, by the
// model's Generation() (registerKernel, in kernelgens_linux.go).
var kernelFabrics = map[string]kernelGen{}

// registerKernel registers generation g's kernel fabric. g must be a
// registered generation; registering twice panics.
func registerKernel(g generation.Name, k kernelGen) {
	if !generation.Known(g) {
		panic(fmt.Sprintf("netnsrt: kernel fabric for %q, which is not a registered generation", g))
	}
	if _, ok := kernelFabrics[string(g)]; ok {
		panic(fmt.Sprintf("netnsrt: kernel fabric for %s registered twice", g))
	}
	kernelFabrics[string(g)] = k
}

// KernelIPv6Generations lists the generations the kernel backend runs
// dual-stack: their IPv6 probes are sent and traced as IPv4 ones.
func KernelIPv6Generations() []string {
	var out []string
	for g, k := range kernelFabrics {
		if k.ipv6 {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// KernelGenerations lists the generations the kernel backend can run.
func KernelGenerations() []string { return slices.Sorted(maps.Keys(kernelFabrics)) }

// KernelNeeds says, per generation the kernel backend runs, what this
// machine lacks for it beyond the backend's own needs (nil: nothing).
func KernelNeeds() map[string]error {
	out := map[string]error{}
	for g, k := range kernelFabrics {
		if k.needs != nil {
			out[g] = k.needs()
		} else {
			out[g] = nil
		}
	}
	return out
}

// kernelFabric runs a generation on the kernel's devices: the model is
// its desired state, and every change to the model is followed by Sync.
type kernelFabric struct {
	f     kernel.Fabric
	gen   string
	ipv6  bool // the fabric carries IPv6 (kernelGen.ipv6)
	start time.Time
	// mu serialises changes to the model with Plug, Unplug and Sync;
	// lock and unlock take it. dirty says the model changed under a
	// pause (the CNC's leaf driver) and the kernel has not followed yet.
	mu    sync.Mutex
	dirty atomic.Bool
	// model is held while the fabric reads the model (Sync, Plug, a
	// path's view) and by a pause, in which the CNC's leaf driver
	// writes it from a goroutine of its own. It is taken after mu, and
	// not around Mutate's change: a driver may pause inside it.
	model sync.Mutex
	// down are the interfaces a node failure set down, per node, for
	// its restore.
	down  map[string][]string
	emu   sync.Mutex
	bgErr error
	// tr reports every probe's packets from the kernel's tracepoints,
	// with names names the namespaces of the lab and its instances.
	tr    *ktrace.Tracer
	names *ktrace.Namespaces
	// views are the host paths a PathReporter gave (hostView).
	views map[string]datapath.Path
	// drops counts the probes' drops the kernel reported, by reason.
	dmu   sync.Mutex
	drops map[string]int
	// synced, if set, is told after every sync of the fabric: the FRR
	// leaves, which the fabric leaves alone (kernel.Env.Foreign), follow
	// the model's changes through their own syncer.
	synced func()
}

// loadKernel builds f's generation on kernel devices in the deployed lab:
// the model's nodes are recorded (their port names name the hosts'
// interfaces) but never run, every node's namespace is captured, and the
// generation's kernel fabric is built.
func (r *Runtime) loadKernel(ctx context.Context, f datapath.Fabric, tc *topologies.Topology) error {
	kg, ok := kernelFabrics[f.Generation()]
	if !ok {
		have := "none yet"
		if gs := KernelGenerations(); len(gs) > 0 {
			have = strings.Join(gs, ", ")
		}
		return fmt.Errorf("kernel runtime: %s is not built on the kernel backend yet (it runs %s); use --backend netns or sim", f.Generation(), have)
	}
	if err := r.lab.WaitUp(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	for _, n := range f.Nodes() {
		ns, err := r.lab.NsHandle(n.Name())
		if err != nil {
			return fmt.Errorf("kernel runtime: fabric node %q is not a topology node: %w", n.Name(), err)
		}
		r.mu.Lock()
		r.nodes[n.Name()] = n
		r.mu.Unlock()
		if !r.opts.InstancesOnly {
			if err := r.cap.Add(n.Name(), ns); err != nil {
				return fmt.Errorf("kernel runtime: %w", err)
			}
		}
	}
	dir := filepath.Join(r.labOpt.LabDir(tc.Name), "kernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	if kg.needs != nil {
		if err := kg.needs(); err != nil {
			return fmt.Errorf("kernel runtime: %s: %w", f.Generation(), err)
		}
	}
	k := &kernelFabric{f: kg.make(), gen: f.Generation(), ipv6: kg.ipv6, start: time.Now(), down: map[string][]string{}, names: ktrace.NewNamespaces(), drops: map[string]int{},
		views: map[string]datapath.Path{}}
	r.k = k
	if err := k.names.AddLab(r.lab); err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	tr, err := ktrace.New(ktrace.Options{Resolver: k.names})
	if err != nil {
		return fmt.Errorf("kernel runtime: trace the kernel's packets: %w", err)
	}
	k.tr = tr
	env := kernel.Env{Lab: r.lab, Topology: tc, Model: f, StateDir: dir}
	if r.bgp != nil && r.bgp.frrSync != nil {
		// FRR's leaves are FRR's: the fabric routes to them, and the
		// FRR code builds their devices (frrLeaf.sync) after each sync.
		for _, bn := range r.bgp.frrSync.leaves {
			env.Foreign = append(env.Foreign, bn.name)
		}
		k.synced = r.bgp.frrSync.kick
	}
	if err := r.k.f.Build(ctx, env); err != nil {
		return fmt.Errorf("kernel runtime: build %s: %w", f.Generation(), err)
	}
	if r.bgp != nil {
		// The speakers fill each leaf's model tables; every import
		// is a change the kernel follows (exclusive is mutate here).
		if err := r.bgp.start(ctx); err != nil {
			return fmt.Errorf("kernel runtime: %w", err)
		}
	}
	return nil
}

func (k *kernelFabric) lock() { k.mu.Lock() }

// reading runs f, a call of the fabric's that reads the model, while no
// pause writes it.
func (k *kernelFabric) reading(f func() error) error {
	k.model.Lock()
	defer k.model.Unlock()
	return f()
}

func (k *kernelFabric) sync() error {
	if err := k.reading(func() error { return k.f.Sync(context.Background()) }); err != nil {
		return err
	}
	if k.synced != nil {
		k.synced()
	}
	return nil
}

// readModel runs f, which reads the model and changes nothing, while no
// change or pause writes it (exclusive would sync the kernel after it).
func (r *Runtime) readModel(f func() error) error {
	if r.k == nil {
		return r.exclusive(f)
	}
	r.k.lock()
	defer r.k.unlock()
	return r.k.reading(f)
}

// pause holds the model for the CNC's leaf driver; resume syncs.
func (k *kernelFabric) pause() (resume func()) {
	k.model.Lock()
	return func() {
		k.model.Unlock()
		k.changed()
	}
}

// unlock releases mu, syncing first if the model changed under a pause
// meanwhile. A change that finds mu taken marks dirty before trying it,
// and unlock looks at dirty after releasing, so one of the two syncs it.
func (k *kernelFabric) unlock() {
	for {
		if k.dirty.Swap(false) {
			if err := k.sync(); err != nil {
				k.syncErr(err)
			}
		}
		k.mu.Unlock()
		if !k.dirty.Load() || !k.mu.TryLock() {
			return
		}
	}
}

// changed is a pause's resume: the model changed outside Mutate (the
// CNC's leaf driver, which may run inside a Mutate as well): the kernel
// follows now, or when mu's holder lets go.
func (k *kernelFabric) changed() {
	k.dirty.Store(true)
	if k.mu.TryLock() {
		k.unlock()
	}
}

// syncErr keeps the first error of a sync no caller waits for; the
// runtime reports it at Close.
func (k *kernelFabric) syncErr(err error) {
	k.emu.Lock()
	defer k.emu.Unlock()
	if k.bgErr == nil {
		k.bgErr = fmt.Errorf("kernel runtime: sync after a change: %w", err)
	}
}

// mutate changes the model, then has the kernel follow.
func (k *kernelFabric) mutate(f func() error) error {
	k.lock()
	defer k.unlock()
	if err := f(); err != nil {
		return err
	}
	if err := k.sync(); err != nil {
		return fmt.Errorf("kernel runtime: sync: %w", err)
	}
	return nil
}

// port is in's attachment as a kernel fabric sees it.
func (in *instance) port() kernel.Port {
	return kernel.Port{Instance: in.name, Host: in.host, HostIf: in.ifname, MAC: in.mac, IP: in.ip, Gateway: in.gw,
		Network: in.network, Labels: in.labels}
}

// attach plugs a wired instance into its host's datapath.
func (r *Runtime) attach(ctx context.Context, in *instance) error {
	if r.k == nil {
		return r.us.AttachPort(in.host, in.hostPort, in.ifname)
	}
	if err := r.k.names.Add(in.name, in.ns); err != nil {
		return err
	}
	r.k.lock()
	defer r.k.unlock()
	return r.k.reading(func() error { return r.k.f.Plug(ctx, in.port()) })
}

func (r *Runtime) detach(ctx context.Context, in *instance) error {
	if r.k == nil {
		return r.us.DetachPort(in.host, in.hostPort)
	}
	r.k.names.Remove(in.name)
	r.k.lock()
	defer r.k.unlock()
	return r.k.reading(func() error { return r.k.f.Unplug(ctx, in.port()) })
}

// forgetFlows has a kernel.FlowCache fabric drop its switches' cached
// flows before a migrated instance announces itself, so that each switch
// learns from the announcement as it passes, as the models do. A cached
// flow of the instance's earlier announcements (from when it was here
// before, the datapath keeping an idle flow for 10 s) would carry the new
// ones past a switch's MAC table, and the switch would send frames for
// the instance to its old place until its revalidators next passed:
// drift-ping-pong on gen 1 saw a probe sent right after the move back
// dropped at the old host's ToR, its RARP rounds of both moves counted on
// one cached flow at a bystander host.
func (k *kernelFabric) forgetFlows(ctx context.Context) error {
	fc, ok := k.f.(kernel.FlowCache)
	if !ok {
		return nil
	}
	k.lock()
	defer k.unlock()
	if err := fc.ForgetFlows(ctx); err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	return nil
}

// kernelLinks are node's links on the kernel backend: its topology
// interfaces and, on a host, its instances' veths (their ends in its
// namespace), which a power loss or a hang takes with it.
func (r *Runtime) kernelLinks(node string) []string {
	names := slices.Clone(r.topo.Interfaces(node))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, in := range r.insts {
		if in.host == node && in.inFabric {
			names = append(names, in.ifname)
		}
	}
	return names
}

// setCarrier fails or restores node as power does: every link of the
// node (its topology links and, on a host, its instances' veths) goes
// down in its namespace, so that every neighbour loses carrier and
// learns of it only from that; restored, the same links come up and
// the fabric syncs again, reading its tables back (kernel.Resyncer: a
// link set down lost its routes).
func (r *Runtime) setCarrier(node string, up bool) error {
	k := r.k
	k.lock()
	defer k.unlock()
	names := k.down[node]
	if !up {
		names = r.kernelLinks(node)
		k.down[node] = names
	} else {
		delete(k.down, node)
	}
	if err := r.lab.SetLinks(node, names, up); err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	if up {
		// The node's links lost their routes while down: a fabric
		// that writes only the model's changes reads its tables again.
		sync := k.f.Sync
		if rs, ok := k.f.(kernel.Resyncer); ok {
			sync = rs.Resync
		}
		if err := k.reading(func() error { return sync(context.Background()) }); err != nil {
			return fmt.Errorf("kernel runtime: restore %s: sync: %w", node, err)
		}
	}
	return nil
}

func (k *kernelFabric) stats(capLost int) (map[string]int, int) {
	k.dmu.Lock()
	drops := maps.Clone(k.drops)
	k.dmu.Unlock()
	if lost, err := k.tr.Lost(); err == nil && lost > 0 {
		drops["trace-lost"] = int(lost)
		capLost += int(lost)
	}
	if capLost > 0 {
		drops["capture-lost"] = capLost
	}
	return drops, capLost
}

func (k *kernelFabric) close() error {
	k.lock()
	defer k.unlock()
	var errs []error
	if k.tr != nil {
		errs = append(errs, k.tr.Close())
	}
	k.names.Close()
	k.emu.Lock()
	errs = append(errs, k.bgErr)
	k.emu.Unlock()
	return errors.Join(append(errs, k.f.Close())...)
}

// reasonAnswerLate is a probe whose answer the kernel traced back to the
// source after the source's socket had given up on it.
const reasonAnswerLate datapath.Reason = "answer-late"

// kernelKey is the key under which the kernel's tracepoints report probe
// id's packets and their answers (see Probe for what each protocol sends).
func kernelKey(id uint64, proto string, src, dst netip.Addr, port uint16) ktrace.Key {
	switch proto {
	case "udp":
		return ktrace.Flow(ktrace.ProtoUDP, src, srcPort(id), dst, port)
	case "tcp":
		return ktrace.Flow(ktrace.ProtoTCP, src, srcPort(id), dst, port)
	}
	return ktrace.ICMPEcho(src, dst, uint16(id>>16), uint16(id))
}

// kernelResult derives probe id's outcome from what the kernel's
// tracepoints saw of it and of its answer, in every namespace.
func (r *Runtime) kernelResult(ctx context.Context, id uint64, p scenarios.RuntimeProbe, key ktrace.Key, src, dst *instance, answered bool) (reports.Probe, error) {
	if err := r.k.tr.Sync(ctx); err != nil {
		return reports.Probe{}, fmt.Errorf("probe %d: %w", id, err)
	}
	if !answered {
		if err := r.awaitNeighbour(ctx, id); err != nil {
			return reports.Probe{}, fmt.Errorf("probe %d: %w", id, err)
		}
	}
	evs := r.k.tr.Take(id)
	if debugTrace {
		for i, e := range evs {
			drop := ""
			if e.Drop != nil {
				drop = " drop " + e.Drop.Reason
			}
			fmt.Printf("%d\t%d\t%s\t%s\tout=%v%s\n", i, e.Nanos, e.Node, e.Iface, e.Out, drop)
		}
	}
	rs := r.kernelRecords(evs)
	// No packet of the probe left the source: its stack still waits for
	// ARP or neighbour discovery (the tracepoints match neither).
	pending := func() bool {
		return !slices.ContainsFunc(rs, func(x outcome.Record) bool { return x.Ev.Action == datapath.ActOriginate && x.Ev.Node == p.From })
	}
	o := outcome.Derive(rs, p.From, pending)
	// The source's socket says whether the answer came in time; the
	// trace may hold an answer that came after the timeout.
	if o.Replied && !answered {
		o.Replied, o.DropNode, o.DropDevice, o.Reason, o.Rule = false, p.From, stack.Port, reasonAnswerLate, "timeout"
	}
	if bf, ok := r.k.f.(*bpf.Fabric); ok && o.Reason != "" && o.Reason != datapath.ReasonNodeDown && !o.Delivered {
		if err := bf.FlushFlows(ctx); err != nil {
			return reports.Probe{}, fmt.Errorf("probe %d: %w", id, err)
		}
		explainDrop(&o, bf.LastDrop, key)
	}
	var view datapath.Path
	if o.Delivered && dst != nil {
		view = r.k.hostView(ctx, src, dst, o.Forward, r.isHost)
	}
	o.Forward = r.devicePath(o.Forward, view)
	if o.Reason != "" {
		r.k.dmu.Lock()
		r.k.drops[string(o.Reason)]++
		r.k.dmu.Unlock()
	}
	return scenarios.ProbeRecord(o, p), nil
}

// neighbourWait bounds awaitNeighbour: a resolution asks three times a
// second apart (the kernel's default mcast_solicit and retrans_time on
// the fabric's nodes), and the packets it held are dropped after the
// third goes unanswered; twice that, for a resolution that began after
// the probe was sent and a trace read late on a loaded machine (CI once
// lost a probe held this way without its drop after 4 s).
const neighbourWait = 8 * time.Second

// awaitNeighbour waits, while a node hangs, for the fate of probe id's
// packet when the kernel last saw it received by a node beside a hung
// one and nothing since: that node holds it for ARP towards the hung node
// (its entry came up for confirmation during the hang, failed, and a
// fresh resolution goes unanswered), and drops it (NEIGH_FAILED) only
// once the resolution gives up, after the probe's timeout. The drop is
// then recorded (kernelLineage: node-down at the hung node, as sim
// records it) rather than the probe lost without one.
func (r *Runtime) awaitNeighbour(ctx context.Context, id uint64) error {
	r.mu.Lock()
	hung := len(r.hung) > 0
	r.mu.Unlock()
	if !hung {
		return nil
	}
	held := func() bool {
		evs := r.k.tr.Events(id)
		if len(evs) == 0 {
			return false
		}
		last := evs[len(evs)-1]
		if last.Drop != nil {
			return false
		}
		// Received beside a hung node and held there, or sent to it
		// (its drop not read yet).
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.ContainsFunc(r.topo.Neighbors(last.Node), func(n string) bool { return r.hung[n] })
	}
	for deadline := time.Now().Add(neighbourWait); held() && time.Now().Before(deadline); {
		if err := r.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if err := r.k.tr.Sync(ctx); err != nil {
			return err
		}
	}
	return nil
}

// devicePath turns the kernel's sightings of a probe into devices as
// datapath.HopRule counts them: a fabric switch once per visit, whatever
// ports it took the packet in and out of (a core's routing between its
// internal ports included), and on a host whose datapath the kernel
// cannot see, the devices that datapath reports (view, from
// kernel.PathReporter), at the time the kernel first saw the packet on
// that host (the last one when the kernel last saw it).
func (r *Runtime) devicePath(obs, view datapath.Path) datapath.Path {
	return devicePath(obs, view, r.isHost)
}

func (r *Runtime) isHost(node string) bool {
	n := r.topo.Node(node)
	return n != nil && n.Role == topologies.RoleHost
}

// hostView asks a kernel.PathReporter fabric for the devices between src
// and dst. The devices a datapath takes a packet through on a host follow
// from where the packet entered and left that host, so the answer is
// kept for the same instances on the same hosts and the same sightings
// on them (asking OVS runs ofproto/trace, several processes, per host).
func (k *kernelFabric) hostView(ctx context.Context, src, dst *instance, obs datapath.Path, isHost func(string) bool) datapath.Path {
	pr, ok := k.f.(kernel.PathReporter)
	if !ok {
		return nil
	}
	var key strings.Builder
	fmt.Fprintf(&key, "%s@%s>%s@%s", src.name, src.host, dst.name, dst.host)
	for _, e := range obs {
		if isHost(e.Node) {
			key.WriteString("|" + e.Node + "/" + e.Device)
		}
	}
	// The view reads the switches' MAC tables, which the probe itself
	// taught: a table behind is asked again. Each question
	// holds mu (the fabric's calls never overlap); the waits between
	// them do not, so that plugs and syncs go on meanwhile.
	ask := func() (datapath.Path, error) {
		k.lock()
		defer k.unlock()
		if v, ok := k.views[key.String()]; ok {
			return v, nil
		}
		var v datapath.Path
		err := k.reading(func() (err error) {
			v, err = pr.ProbePath(ctx, src.port(), dst.port())
			return err
		})
		if err == nil {
			k.views[key.String()] = v
		}
		return v, err
	}
	var v datapath.Path
	var err error
	// Up to 2 s: a failure or a restore starts a topology change of the
	// switches' spanning tree, and until it is over every switch that
	// hears of it flushes its MAC table, the probe's MACs with it. (A
	// build waits for its own to end: ovs.Fabric.Settle. Before it did,
	// CI saw vlan-stock's 24 hops as 14 after 250 ms of asking.) Only a
	// view that is missing waits.
	for try := 0; try < 40; try++ {
		if try > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if v, err = ask(); err == nil {
			break
		}
	}
	if err != nil {
		if debugTrace {
			fmt.Printf("%s: no host view: %v\n", key.String(), err)
		}
		return nil
	}
	return v
}

func devicePath(obs, view datapath.Path, isHost func(string) bool) datapath.Path {
	out := make(datapath.Path, 0, len(obs)+len(view))
	for i := 0; i < len(obs); {
		e := obs[i]
		j := i
		for j < len(obs) && obs[j].Node == e.Node {
			j++
		}
		var host datapath.Path
		if isHost(e.Node) {
			for _, v := range view {
				if v.Node == e.Node {
					v.Time = e.Time
					host = append(host, v)
				}
			}
		}
		switch {
		case e.Kind == datapath.KindSwitch:
			e.Device = e.Node
			out = append(out, e)
		case len(host) > 0:
			// The view has no times: what the host took shows
			// on its last device, when the kernel last saw it.
			host[len(host)-1].Time = obs[j-1].Time
			out = append(out, host...)
		default:
			out = append(out, obs[i:j]...)
		}
		i = j
	}
	return out
}

// explainDrop names the BPF program's verdict for a drop the kernel
// reported on a node whose programs record their verdicts (gen 3's flow
// events, as Hubble shows them): the kernel says only that tc dropped
// the packet, the program says which policy entry decided. lastDrop is
// bpf.Fabric.LastDrop: the flow's latest drop verdict on the drop's node.
func explainDrop(o *outcome.Outcome, lastDrop func(bpf.DropKey) (bpf.FlowEvent, bool), k ktrace.Key) {
	dk := bpf.DropKey{Node: o.DropNode, Proto: ebpf.Proto(k.Proto), Src: k.Src, Dst: k.Dst, DPort: k.DstPort}
	if k.Proto == ktrace.ProtoICMP {
		dk.DPort = 0 // the key's echo sequence number; flow events have no port
	}
	if fe, ok := lastDrop(dk); ok {
		o.Reason, o.Rule = fe.Reason, fe.Rule
	}
}

// kernelRecords turns kernel events (in time order) into records with
// their lineage, for outcome.Derive.
func (r *Runtime) kernelRecords(evs []kernel.Event) []outcome.Record {
	r.mu.Lock()
	peers := map[[2]string][2]string{}
	insts := map[string]bool{}
	for _, in := range r.insts {
		insts[in.name] = true
		peers[[2]string{in.name, stack.Port}] = [2]string{in.host, in.ifname}
		peers[[2]string{in.host, in.ifname}] = [2]string{in.name, stack.Port}
	}
	hung := maps.Clone(r.hung)
	r.mu.Unlock()
	peerOf := func(node, iface string) (string, string, bool) {
		if p, ok := peers[[2]string{node, iface}]; ok {
			return p[0], p[1], true
		}
		if e, _, ok := r.topo.Peer(topologies.Endpoint{Node: node, Iface: iface}); ok {
			return e.Node, e.Iface, true
		}
		return "", "", false
	}
	kind := func(node string) datapath.DeviceKind {
		if n := r.topo.Node(node); n != nil && n.Role.IsSwitch() {
			return datapath.KindSwitch
		}
		return datapath.KindNIC
	}
	var prog func(node, iface string) string
	if pr, ok := r.k.f.(kernel.ProgramReporter); ok {
		prog = pr.IngressProgram
	}
	return kernelLineage(evs, insts, hung, peerOf, kind, prog)
}

// kernelLineage gives each kernel event its place on a frame's path: a
// packet received on an interface continues the last one sent on the
// other end of its link (else the last seen on that node, else on this
// one: a device such as a VXLAN or BPF-redirect target has no link); a
// packet a node sent, or dropped, continues the last one it received, or
// the last it sent on a device without a link (a tunnel device, whose
// transmit the node's stack carries on as the encapsulated packet).
// An instance's eth0 originates what it sends and delivers what it
// receives.
//
// Where a host hands on what a device received with a program on that
// device's ingress (prog, the fabric's kernel.ProgramReporter; nil:
// none), the program is a device of the path after the receive, as the
// models trace gen 3's bpf_lxc and bpf_overlay: what the host sends on
// continues it. A drop continues the receive itself.
//
// A stack copy's refusal (stackCopies) is left out first: it is not a
// place where the frame was lost.
//
// A drop on a node failed silently (hung: FailSilently's drops, which the
// kernel reports as TC_INGRESS or TC_EGRESS) is node-down, as the models
// record a hung node's drops, and so is a neighbour's drop of a packet it
// held for ARP towards a hung node (NEIGH_FAILED on the link to it), at
// the hung node; the rule keeps the kernel's reason.
func kernelLineage(evs []kernel.Event, insts, hung map[string]bool,
	peerOf func(node, iface string) (string, string, bool), kind func(string) datapath.DeviceKind,
	prog func(node, iface string) string) []outcome.Record {
	evs = withoutStackCopies(evs)
	rs := make([]outcome.Record, 0, len(evs))
	// rec and via are event i's record and the record what continues it
	// comes from (its program's, if one handed it on).
	rec := make([]int32, len(evs))
	via := make([]int32, len(evs))
	last := func(i int, ok func(kernel.Event) bool) int {
		for j := i - 1; j >= 0; j-- {
			if ok(evs[j]) {
				return j
			}
		}
		return -1
	}
	linkless := func(g kernel.Event) bool {
		_, _, ok := peerOf(g.Node, g.Iface)
		return !ok && !(insts[g.Node] && g.Iface == stack.Port)
	}
	for i, e := range evs {
		ev := datapath.Event{Time: time.Duration(e.Nanos - evs[0].Nanos), Node: e.Node, Device: e.Iface, Kind: kind(e.Node),
			Action: datapath.ActForward}
		onNode := func(g kernel.Event) bool { return g.Node == e.Node }
		prev, through := -1, true
		switch {
		case e.Drop != nil:
			ev.Action, ev.Reason, ev.Rule = datapath.ActDrop, kernelReason(e.Drop.Reason), "kernel:"+e.Drop.Reason
			if hung[e.Node] {
				ev.Reason = datapath.ReasonNodeDown
			}
			// Held for ARP towards a hung node that never answered:
			// lost at that node, as the models record it.
			if pn, pi, ok := peerOf(e.Node, e.Iface); ok && hung[pn] && strings.HasPrefix(e.Drop.Reason, "NEIGH_") {
				ev.Node, ev.Device, ev.Kind, ev.Reason = pn, pi, kind(pn), datapath.ReasonNodeDown
			}
			prev, through = last(i, onNode), false
		case e.Out:
			if insts[e.Node] && e.Iface == stack.Port {
				ev.Action, ev.Kind = datapath.ActOriginate, datapath.KindNIC
			}
			prev = last(i, func(g kernel.Event) bool {
				return g.Node == e.Node && g.Drop == nil && (!g.Out || linkless(g))
			})
			if prev < 0 {
				prev = last(i, onNode)
			}
		default:
			if insts[e.Node] && e.Iface == stack.Port {
				ev.Action, ev.Kind = datapath.ActDeliver, datapath.KindNIC
			}
			if pn, pi, ok := peerOf(e.Node, e.Iface); ok {
				prev = last(i, func(g kernel.Event) bool { return g.Out && g.Node == pn && g.Iface == pi })
				if prev < 0 {
					prev = last(i, func(g kernel.Event) bool { return g.Node == pn && g.Drop == nil })
				}
			}
			if prev < 0 {
				prev = last(i, onNode)
			}
		}
		if insts[e.Node] && ev.Action == datapath.ActForward {
			ev.Kind = datapath.KindNIC
		}
		p := int32(-1)
		if prev >= 0 {
			p = rec[prev]
			if through {
				p = via[prev]
			}
		}
		rec[i] = int32(len(rs))
		via[i] = rec[i]
		rs = append(rs, outcome.Record{Ev: ev, Prev: p})
		if prog != nil && e.Drop == nil && !e.Out && !insts[e.Node] && ev.Kind != datapath.KindSwitch {
			if name := prog(e.Node, e.Iface); name != "" {
				via[i] = int32(len(rs))
				rs = append(rs, outcome.Record{Ev: datapath.Event{Time: ev.Time, Node: e.Node, Device: name, Kind: datapath.KindBPF,
					Action: datapath.ActForward}, Prev: rec[i]})
			}
		}
	}
	return rs
}

// withoutStackCopies returns evs without the kernel stack's refusals
// (OTHERHOST) of frames that their node then sent on. A port that a
// userspace switch reads from (an OVS port: a host's tap or qvo, a
// switch's NIC) hands every frame both to the switch and to the node's
// own stack, which drops a frame for another MAC; the frame itself goes
// on through the switch. Kept is the refusal of a frame its node sent
// nowhere: the kernel saw nothing more of it there, so that is where it
// was lost (inside the switch, for a MAC on no port of it).
func withoutStackCopies(evs []kernel.Event) []kernel.Event {
	out := make([]kernel.Event, 0, len(evs))
	for i, e := range evs {
		if e.Drop == nil || e.Drop.Reason != "OTHERHOST" || !sentOn(evs, i) {
			out = append(out, e)
		}
	}
	return out
}

// sentOn reports whether the frame that evs[i] (a drop) refused was sent
// on by its node: after i, the node transmits before it receives
// another frame.
func sentOn(evs []kernel.Event, i int) bool {
	node := evs[i].Node
	for _, e := range evs[i+1:] {
		if e.Node != node || e.Drop != nil {
			continue
		}
		return e.Out
	}
	return false
}

// kernelReason is the report's name for a kernel drop reason: the
// kernel's own, lower case with dashes (NETFILTER_DROP: netfilter-drop),
// except where the kernel's reason is one datapath already names.
// OTHERHOST is a frame for another MAC reaching a stack that is not its
// destination, as on a device a userspace switch owns (an OVS port) or a
// flood copy: the not-for-me of netbed's own models, incidental.
func kernelReason(r string) datapath.Reason {
	if r == "OTHERHOST" {
		return datapath.ReasonNotForMe
	}
	return datapath.Reason(strings.ReplaceAll(strings.ToLower(r), "_", "-"))
}
