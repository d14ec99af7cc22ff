package netnsrt

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/reports/capture"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// kernelFabrics are the generations the kernel backend builds, by the
// model's Generation(): each returns a fresh datapath/kernel fabric.
var kernelFabrics = map[string]func() kernel.Fabric{}

// KernelGenerations lists the generations the kernel backend can run.
func KernelGenerations() []string { return slices.Sorted(maps.Keys(kernelFabrics)) }

// kernelFabric runs a generation on the kernel's devices: the model is
// its desired state, and every change to the model is followed by Sync.
type kernelFabric struct {
	f     kernel.Fabric
	start time.Time
	// mu serialises changes to the model with Plug, Unplug and Sync.
	mu sync.Mutex
	// down are the interfaces a node failure set down, per node, for
	// its restore.
	down map[string][]string
}

// loadKernel builds f's generation on kernel devices in the deployed lab:
// the model's nodes are recorded (their port names name the hosts'
// interfaces) but never run, every node's namespace is captured, and the
// generation's kernel fabric is built.
func (r *Runtime) loadKernel(ctx context.Context, f datapath.Fabric, tc *topologies.Topology) error {
	mk, ok := kernelFabrics[f.Generation()]
	if !ok {
		have := "none yet"
		if gs := KernelGenerations(); len(gs) > 0 {
			have = strings.Join(gs, ", ")
		}
		return fmt.Errorf("kernel runtime: generation %s has no kernel fabric (the kernel backend runs: %s)", f.Generation(), have)
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
	r.k = &kernelFabric{f: mk(), start: time.Now(), down: map[string][]string{}}
	if err := r.k.f.Build(ctx, kernel.Env{Lab: r.lab, Topology: tc, Model: f, StateDir: dir}); err != nil {
		return fmt.Errorf("kernel runtime: build %s: %w", f.Generation(), err)
	}
	return nil
}

// mutate changes the model, then has the kernel follow.
func (k *kernelFabric) mutate(f func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := f(); err != nil {
		return err
	}
	if err := k.f.Sync(context.Background()); err != nil {
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
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	return r.k.f.Plug(ctx, in.port())
}

func (r *Runtime) detach(ctx context.Context, in *instance) error {
	if r.k == nil {
		return r.us.DetachPort(in.host, in.hostPort)
	}
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	return r.k.f.Unplug(ctx, in.port())
}

// setCarrier fails or restores node as power does: every link of the
// node (its topology links and, on a host, its instances' veths) goes
// down in its namespace, so that every neighbour loses carrier and
// learns of it only from that; restored, the same links come up and
// the fabric syncs again (a link set down lost its routes).
func (r *Runtime) setCarrier(node string, up bool) error {
	h, err := r.lab.Handle(node)
	if err != nil {
		return fmt.Errorf("kernel runtime: %w", err)
	}
	k := r.k
	k.mu.Lock()
	defer k.mu.Unlock()
	names := k.down[node]
	if !up {
		names = slices.Clone(r.topo.Interfaces(node))
		r.mu.Lock()
		for _, in := range r.insts {
			if in.host == node && in.inFabric {
				names = append(names, in.ifname)
			}
		}
		r.mu.Unlock()
		k.down[node] = names
	} else {
		delete(k.down, node)
	}
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("kernel runtime: node %s: %s: %w", node, name, err)
		}
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
		if err != nil {
			return fmt.Errorf("kernel runtime: node %s: set %s up=%v: %w", node, name, up, err)
		}
	}
	if up {
		if err := k.f.Sync(context.Background()); err != nil {
			return fmt.Errorf("kernel runtime: restore %s: sync: %w", node, err)
		}
	}
	return nil
}

func (k *kernelFabric) stats(capLost int) (map[string]int, int) {
	drops := map[string]int{}
	if capLost > 0 {
		drops["capture-lost"] = capLost
	}
	return drops, capLost
}

func (k *kernelFabric) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.f.Close()
}

// kernelResult derives a probe's outcome from the captures of every
// namespace the probe crossed. The path is walked back from where the
// request ended (the destination's eth0, or the last place it was seen):
// a frame received on an interface came from the last frame sent on the
// other end of its link, and a frame a node sent came from the last frame
// that node received. Each sighting is one device crossing, so hops count
// the interfaces the kernel forwarded the probe through.
func (r *Runtime) kernelResult(id uint64, p scenarios.RuntimeProbe, src, dst *instance, replied bool) reports.Probe {
	out := reports.Probe{From: p.From, To: p.To, Proto: p.Proto, Replied: replied}
	var frames []capture.Frame
	for _, f := range r.cap.Frames(id) {
		if !f.ARP {
			frames = append(frames, f)
		}
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].Time.Before(frames[j].Time) })
	first := -1 // the source's first send
	for i, f := range frames {
		if f.Netns == src.name && f.Iface == stack.Port && f.Out {
			first = i
			break
		}
	}
	if first < 0 {
		out.DropAt, out.Reason = src.name, "not-sent"
		return out
	}
	end := -1
	for i := first; i < len(frames) && dst != nil; i++ {
		if f := frames[i]; f.Netns == dst.name && f.Iface == stack.Port && !f.Out && dst.forMe(f.Data) {
			end = i
			break
		}
	}
	out.Delivered = end >= 0
	if end < 0 {
		// The request's last sighting before the source heard anything
		// back: where it was lost.
		end = first
		for i := first + 1; i < len(frames); i++ {
			if frames[i].Netns == src.name {
				break
			}
			end = i
		}
	}
	path := r.walkBack(frames, first, end)
	out.Hops, out.SwitchHops, out.Path, out.HopAt = path.Hops(), path.SwitchHops(), path.Devices(), path.Offsets()
	t0 := frames[first].Time
	if out.Delivered {
		out.OneWay = frames[end].Time.Sub(t0)
		for i := end + 1; i < len(frames); i++ {
			if f := frames[i]; f.Netns == src.name && f.Iface == stack.Port && !f.Out && src.forMe(f.Data) {
				out.RTT = f.Time.Sub(t0)
				break
			}
		}
	} else {
		last := frames[end]
		out.DropAt = last.Netns + "/" + last.Iface
	}
	return out
}

// walkBack returns the path from frames[first] to frames[end] in the
// runtime's lab.
func (r *Runtime) walkBack(frames []capture.Frame, first, end int) datapath.Path {
	r.mu.Lock()
	peers := map[[2]string][2]string{}
	for _, in := range r.insts {
		peers[[2]string{in.name, stack.Port}] = [2]string{in.host, in.ifname}
		peers[[2]string{in.host, in.ifname}] = [2]string{in.name, stack.Port}
	}
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
	isSwitch := func(node string) bool {
		n := r.topo.Node(node)
		return n != nil && n.Role.IsSwitch()
	}
	return walkBack(frames, first, end, peerOf, isSwitch)
}

// walkBack returns the path from frames[first] to frames[end] (sorted by
// time): a frame received on an interface continues the last frame sent
// on the interface peerOf names (the link's other end), and a frame a
// node sent continues the last frame that node received. A chain a
// capture broke keeps what is known, from where it broke.
func walkBack(frames []capture.Frame, first, end int, peerOf func(node, iface string) (string, string, bool), isSwitch func(string) bool) datapath.Path {
	var rev []int
	for i := end; ; {
		rev = append(rev, i)
		if i <= first {
			break
		}
		f := frames[i]
		prev := -1
		for j := i - 1; j >= first && prev < 0; j-- {
			g := frames[j]
			switch {
			case f.Out && !g.Out && g.Netns == f.Netns:
				prev = j // forwarded by this node
			case !f.Out && g.Out:
				if pn, pi, ok := peerOf(f.Netns, f.Iface); ok && g.Netns == pn && g.Iface == pi {
					prev = j // sent by the other end of the link
				}
			}
		}
		if prev < 0 {
			break
		}
		i = prev
	}
	t0 := frames[rev[len(rev)-1]].Time
	path := make(datapath.Path, 0, len(rev))
	for k := len(rev) - 1; k >= 0; k-- {
		f := frames[rev[k]]
		ev := datapath.Event{Time: f.Time.Sub(t0), Node: f.Netns, Device: f.Iface, Kind: datapath.KindNIC}
		if isSwitch(f.Netns) {
			ev.Kind = datapath.KindSwitch
		}
		path = append(path, ev)
	}
	return path
}
