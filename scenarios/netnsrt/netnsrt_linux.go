package netnsrt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/userspace"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt/capture"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// Runtime runs a fabric's nodes on real namespaces in real time. It
// implements scenarios.Runtime.
type Runtime struct {
	opts   Options
	lab    *netns.Lab
	labOpt *netns.Options
	name   string // lab name
	topo   *topologies.Topology
	// model is the fabric Load was given: the datapath netns runs, or
	// on the kernel backend the model beside the real devices.
	model datapath.Fabric
	us    *userspace.Runtime
	// bgp is gen 2's BGP control plane (control_plane: bgp), or nil.
	bgp    *bgpPlane
	cap    *capture.Capture
	capTmp string // capture directory to remove at Close
	// cniCache is libcni's result cache, created by the first AttachPod.
	cniCache string

	mu    sync.Mutex
	insts map[string]*instance
	// nodes are the fabric's nodes by name, for port names.
	nodes map[string]datapath.Node

	fmu    sync.RWMutex
	flows  map[userspace.Flow]uint64
	nflows atomic.Int32

	// xmu guards pauses and excl: Pause joins any pause but an exclusive
	// one (exclusive), which waits until no pause is held.
	xmu    sync.Mutex
	xcond  *sync.Cond
	pauses int
	excl   bool

	// k is the kernel's fabric (Options.Kernel), else nil.
	k *kernelFabric
	// hung are the nodes failed silently (FailSilently), and silenced
	// the drops on their links, under mu.
	hung     map[string]bool
	silenced map[string][]link.Link

	nextProbe atomic.Uint64
	// streamProbes counts background stream probes, numbered from
	// scenarios.StreamProbeIDs.
	streamProbes atomic.Uint64
	closeOnce    sync.Once
	closeErr     error
}

var _ scenarios.PodAttacher = (*Runtime)(nil)

// New returns a netns runtime; Load deploys its lab.
func New(opts Options) *Runtime {
	if opts.Settle <= 0 {
		opts.Settle = 3 * time.Second
	}
	r := &Runtime{opts: opts, insts: map[string]*instance{}, nodes: map[string]datapath.Node{},
		flows: map[userspace.Flow]uint64{}}
	r.xcond = sync.NewCond(&r.xmu)
	return r
}

// Name implements scenarios.Runtime: "netns", or "kernel" on the
// kernel's devices.
func (r *Runtime) Name() string {
	if r.opts.Kernel {
		return "kernel"
	}
	return "netns"
}

// Lab returns the deployed lab (nil before Load).
func (r *Runtime) Lab() *netns.Lab { return r.lab }

// Topology returns the topology Load deployed (nil before Load).
func (r *Runtime) Topology() *topologies.Topology {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topo
}

// LabName returns the lab's name ("" before Load). It may be called from
// any goroutine, as during Load to learn what to clean.
func (r *Runtime) LabName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.name
}

// Capture returns the lab's capture (nil before Load).
func (r *Runtime) Capture() *capture.Capture { return r.cap }

// Node returns the fabric node called name that the runtime runs. Its
// state may be read only inside Mutate.
func (r *Runtime) Node(name string) (datapath.Node, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[name]
	return n, ok
}

// Userspace returns the userspace datapath running the nodes.
func (r *Runtime) Userspace() *userspace.Runtime { return r.us }

// sanitize keeps a name usable in a lab name.
func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 24 {
		out = out[:24]
	}
	if out == "" {
		out = "run"
	}
	return out
}

// labName returns "nb-<scenario>-<gen>-<8 hex>".
func labName(scenario, gen string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return LabPrefix + sanitize(scenario) + "-" + sanitize(gen) + "-" + hex.EncodeToString(b[:])
}

// probeID is the userspace datapath's and the captures' view of which
// probe a frame belongs to: the ID in its payload, else its flow's.
func (r *Runtime) probeID(b []byte) uint64 {
	if id, ok := userspace.ProbeIDOf(b); ok {
		return id
	}
	if r.nflows.Load() == 0 {
		return 0
	}
	f, ok := userspace.FlowOf(b)
	if !ok {
		return 0
	}
	return r.flowProbe(f)
}

func (r *Runtime) flowProbe(f userspace.Flow) uint64 {
	if r.nflows.Load() == 0 {
		return 0
	}
	r.fmu.RLock()
	defer r.fmu.RUnlock()
	return r.flows[f]
}

func (r *Runtime) addFlow(f userspace.Flow, id uint64) {
	r.fmu.Lock()
	r.flows[f], r.flows[f.Reverse()] = id, id
	r.nflows.Store(int32(len(r.flows)))
	r.fmu.Unlock()
}

func (r *Runtime) dropFlow(f userspace.Flow) {
	r.fmu.Lock()
	delete(r.flows, f)
	delete(r.flows, f.Reverse())
	r.nflows.Store(int32(len(r.flows)))
	r.fmu.Unlock()
}

// Load implements scenarios.Runtime: it deploys t as a new lab (one
// namespace per node, one veth pair per link), turns IPv6 off in every
// namespace (no router solicitations or MLD reports in the fabric), starts
// every fabric node in the userspace datapath inside its namespace, and
// starts the captures.
func (r *Runtime) Load(ctx context.Context, f datapath.Fabric, t *topologies.Topology) (err error) {
	if r.lab != nil {
		return errors.New("netns runtime: Load called twice")
	}
	tc := *t
	tc.Name = labName(r.opts.Scenario, f.Generation())
	tc.Prefix = nil
	r.mu.Lock()
	r.name, r.topo, r.model = tc.Name, &tc, f
	r.mu.Unlock()
	r.labOpt = &netns.Options{StateRoot: r.opts.StateRoot, Backend: r.Name()}
	lab, _, err := netns.Deploy(ctx, &tc, r.labOpt)
	if err != nil {
		// Deploy leaves what it created for Destroy.
		_, _ = netns.Destroy(tc.Name, r.labOpt)
		return fmt.Errorf("netns runtime: %w", err)
	}
	r.lab = lab
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	for _, n := range lab.Nodes() {
		if err := lab.Do(n, disableIPv6); err != nil {
			return fmt.Errorf("netns runtime: node %s: %w", n, err)
		}
	}
	// The sessions' addresses go on the veths before the nodes' ports
	// open: the datapath leaves what is addressed to them to the kernel.
	if ef, ok := f.(*evpn.Fabric); ok && ef.LeafTables() {
		dir := filepath.Join(r.labOpt.LabDir(tc.Name), "bgp")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
		if r.bgp, err = newBGPPlane(r, ef, &tc, dir); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	} else if df, ok := f.(*ebpf.Fabric); ok && df.PodCIDRsFromBGP() {
		dir := filepath.Join(r.labOpt.LabDir(tc.Name), "bgp")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
		if r.bgp, err = newDirectPlane(r, df, &tc, dir); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	dir := ""
	if r.opts.OutDir != "" {
		dir = filepath.Join(r.opts.OutDir, "pcap", r.name)
	} else {
		tmp, err := os.MkdirTemp("", r.name+"-pcap-")
		if err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
		r.capTmp, dir = tmp, tmp
		if err := r.RecordTempDir(tmp); err != nil {
			return err
		}
	}
	// 1 MiB rings (592 frames) per namespace: a 300-pod lab pins 300 MiB.
	// Capture.Lost, in Stats, tells if that was too little.
	r.cap, err = capture.New(dir, capture.Options{FlowProbe: r.flowProbe, RingBytes: 1 << 20})
	if err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	if r.opts.Kernel {
		return r.loadKernel(ctx, f, &tc)
	}
	// The nodes send through the qdisc when their namespaces are
	// captured, so that the captures see both directions of every veth.
	r.us = userspace.New(userspace.Options{ProbeID: r.probeID, Taps: !r.opts.InstancesOnly})
	if err := lab.WaitUp(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	// Nodes start side by side (their sockets' setup waits for RCU grace
	// periods, which concurrent ones share), eight at a time.
	// An FRR leaf's links are its kernel's (frr_leaves).
	nodes := slices.DeleteFunc(f.Nodes(), func(n datapath.Node) bool { return r.isFRR(n.Name()) })
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = r.startNode(n, tc.Interfaces(n.Name()))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, w := range f.Wires() {
		if err := r.us.Connect(w); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	if r.bgp != nil {
		if err := r.bgp.start(ctx); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	return nil
}

// startNode runs fabric node n in the userspace datapath inside its
// namespace, on the interfaces of ifs its ports name, and captures it.
func (r *Runtime) startNode(n datapath.Node, ifs []string) error {
	name := n.Name()
	ns, err := r.lab.NsHandle(name)
	if err != nil {
		return fmt.Errorf("netns runtime: fabric node %q is not a topology node: %w", name, err)
	}
	ports := n.Ports()
	ifaces := make([]string, len(ports))
	for i, p := range ports {
		if p != "" && slices.Contains(ifs, p) {
			ifaces[i] = p
		}
	}
	if err := r.us.AddNode(n, ns, ifaces); err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	r.mu.Lock()
	r.nodes[name] = n
	r.mu.Unlock()
	if !r.opts.InstancesOnly {
		if err := r.cap.Add(name, ns); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	return nil
}

// disableIPv6 runs inside a namespace.
func disableIPv6() error {
	for _, p := range []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"} {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	return nil
}

// Mutate implements scenarios.Runtime.
func (r *Runtime) Mutate(f func() error) error {
	if r.k != nil {
		return r.k.mutate(f)
	}
	defer r.Pause()()
	return f()
}

// Pause implements scenarios.Runtime: the userspace datapath's nodes stop
// until resume. Pauses nest, from any goroutine, except with an
// exclusive one (the BGP control plane's imports), which they wait for.
func (r *Runtime) Pause() (resume func()) {
	if r.k != nil {
		// The kernel never stops: the pause keeps the model from the
		// fabric's reads, and what changed is synced on resume.
		return r.k.pause()
	}
	if r.us == nil {
		return func() {}
	}
	r.xmu.Lock()
	for r.excl {
		r.xcond.Wait()
	}
	r.pauses++
	r.xmu.Unlock()
	end := r.us.Pause()
	return func() {
		end()
		r.xmu.Lock()
		r.pauses--
		r.xcond.Broadcast()
		r.xmu.Unlock()
		if r.bgp != nil {
			// What changed in the model goes to the FRR leaves.
			r.bgp.frrSync.kick()
		}
	}
}

// exclusive runs f while the nodes are paused and no one else holds a
// pause: unlike Mutate, whose callers order themselves (the runner, and a
// CNC driver inside it), f changes the fabric from a goroutine of its
// own at any time. f must not pause.
func (r *Runtime) exclusive(f func() error) error {
	if r.k != nil {
		return r.k.mutate(f)
	}
	r.xmu.Lock()
	for r.excl || r.pauses > 0 {
		r.xcond.Wait()
	}
	r.excl = true
	r.xmu.Unlock()
	end := r.us.Pause()
	defer func() {
		end()
		r.xmu.Lock()
		r.excl = false
		r.xcond.Broadcast()
		r.xmu.Unlock()
	}()
	return f()
}

// SetNodeState implements scenarios.Runtime: a failed node drops every
// frame (node-down) and its neighbours see their ports go down. With
// control_plane: bgp a failed leaf or spine also loses power: its links
// lose carrier (its veth ends go down) and its speaker is killed, so its
// peers learn of it only through BGP; restored, its links come up, its
// speaker restarts, a leaf advertises its routes again, and the call
// returns once every leaf's table is complete again.
func (r *Runtime) SetNodeState(ctx context.Context, node string, up bool) error {
	speaks := r.bgp != nil && r.bgp.nodes[node] != nil
	if up {
		if _, err := r.unhang(node); err != nil {
			return err
		}
	}
	if speaks && !up {
		if err := r.bgp.failNode(node); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	if r.k != nil {
		if err := r.setCarrier(node, up); err != nil {
			return err
		}
	} else {
		// Inside a pause of this runtime's: the neighbours'
		// SetPortState must not run beside an exclusive change.
		resume := r.Pause()
		var err error
		if r.isFRR(node) {
			err = r.frrNeighbours(node, up)
		} else {
			err = r.us.SetNodeState(node, up)
		}
		resume()
		if err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	if speaks && up {
		if err := r.bgp.restoreNode(ctx, node); err != nil {
			return fmt.Errorf("netns runtime: %w", err)
		}
	}
	return nil
}

// SetLinkState implements scenarios.Runtime: both veth ends go down (or
// up) in the kernel and both nodes see the port change.
func (r *Runtime) SetLinkState(_ context.Context, e topologies.Endpoint, up bool) error {
	n, ok := r.nodes[e.Node]
	if !ok {
		return fmt.Errorf("netns runtime: link %s: no fabric node %q", e, e.Node)
	}
	port := slices.Index(n.Ports(), e.Iface)
	if port < 0 {
		return fmt.Errorf("netns runtime: link %s: node %s has no port %q", e, e.Node, e.Iface)
	}
	ends := []topologies.Endpoint{e}
	if peer, _, ok := r.topo.Peer(e); ok {
		ends = append(ends, peer)
	}
	for _, end := range ends {
		if err := r.lab.SetLinks(end.Node, []string{end.Iface}, up); err != nil {
			return fmt.Errorf("netns runtime: link %s: %w", e, err)
		}
	}
	if r.k != nil {
		return nil
	}
	resume := r.Pause()
	err := r.us.SetLinkState(datapath.PortRef{Node: e.Node, Port: port}, up)
	resume()
	if err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	return nil
}

// Sleep implements scenarios.Runtime in real time.
func (r *Runtime) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Now implements scenarios.Runtime: the time since Load.
func (r *Runtime) Now() time.Duration {
	if r.k != nil {
		return time.Since(r.k.start)
	}
	if r.us == nil {
		return 0
	}
	return r.us.Now()
}

// Stats implements scenarios.Runtime: the nodes' drops by reason; drops
// without a reason and frames the kernel refused to send are unexplained.
func (r *Runtime) Stats() (map[string]int, int) {
	drops := map[string]int{}
	if r.k != nil {
		return r.k.stats(r.capLost())
	}
	if r.us == nil {
		return drops, 0
	}
	s := r.us.Stats()
	for k, v := range s.Drops {
		drops[k] = int(v)
	}
	unexplained := drops[""] + int(s.SendErrors)
	if s.SendErrors > 0 {
		drops["send-error"] = int(s.SendErrors)
	}
	// A node that could not keep up, as a switch's ingress buffer
	// overflows: explained, but not something sim models.
	if s.RxFull > 0 {
		drops["rx-ring-full"] = int(s.RxFull)
	}
	// Frames the captures missed: the results may lack them, so they
	// count as unexplained.
	if n := r.capLost(); n > 0 {
		drops["capture-lost"] = n
		unexplained += n
	}
	return drops, unexplained
}

// Close implements scenarios.Runtime: it stops the nodes and captures,
// removes the instances' namespaces and destroys the lab. It is safe to
// call more than once and from another goroutine (on SIGINT).
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.bgp != nil {
			errs = append(errs, r.bgp.close())
		}
		if r.us != nil {
			errs = append(errs, r.us.Close())
		}
		if r.k != nil {
			errs = append(errs, r.k.close())
		}
		r.mu.Lock()
		silenced := slices.Collect(maps.Keys(r.silenced))
		r.mu.Unlock()
		for _, n := range silenced {
			errs = append(errs, r.silence(n, false))
		}
		r.mu.Lock()
		insts := slices.Collect(maps.Values(r.insts))
		r.insts = map[string]*instance{}
		r.mu.Unlock()
		for _, in := range insts {
			if r.cap != nil && in.inFabric {
				errs = append(errs, r.cap.Remove(in.name))
			}
			errs = append(errs, r.destroy(in, false))
		}
		if r.cniCache != "" {
			errs = append(errs, os.RemoveAll(r.cniCache))
		}
		if r.cap != nil {
			errs = append(errs, r.cap.Close())
		}
		if r.capTmp != "" {
			errs = append(errs, os.RemoveAll(r.capTmp))
		}
		if r.lab != nil {
			r.lab.Close()
			if _, err := netns.Destroy(r.name, r.labOpt); err != nil {
				errs = append(errs, err)
			}
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// RecordTempDir implements scenarios.TempDirRecorder: dir is recorded in
// the lab's state, and `netbed down` removes it with the lab after a
// killed run.
func (r *Runtime) RecordTempDir(dir string) error {
	if r.lab == nil && r.labOpt == nil {
		return errors.New("netns runtime: no lab to record a temporary directory with")
	}
	if err := netns.RecordTempDir(r.name, dir, r.labOpt); err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	return nil
}

// InstanceNamespace returns the name of instance name's namespace (under
// /run/netns, for `ip netns exec`).
func (r *Runtime) InstanceNamespace(name string) (string, bool) {
	in, err := r.instance(name)
	if err != nil {
		return "", false
	}
	return in.netns, true
}

// instance returns a live instance.
func (r *Runtime) instance(name string) (*instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.insts[name]
	if !ok {
		return nil, fmt.Errorf("netns runtime: no instance %q", name)
	}
	return in, nil
}

func (r *Runtime) capLost() int {
	if r.cap == nil {
		return 0
	}
	return r.cap.Lost()
}
