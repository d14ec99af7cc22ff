package netnsrt

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/scenarios"
)

var (
	_ scenarios.BGPConfigurer = (*Runtime)(nil)
	_ scenarios.SilentFailer  = (*Runtime)(nil)
)

// ConfigureBGP implements scenarios.BGPConfigurer: the scenario's hold
// and keepalive times and design become the speakers', unless
// Options.BGPTimers and BGPDesign set them (tests).
func (r *Runtime) ConfigureBGP(s scenarios.BGPSettings) {
	t := &r.opts.BGPTimers
	if t.Hold == 0 {
		t.Hold = s.Hold
		if s.Hold == scenarios.NoHoldTimer {
			t.Hold = speaker.NoHold
		}
	}
	if t.Keepalive == 0 {
		t.Keepalive = s.Keepalive
	}
	if r.opts.BGPDesign == "" {
		r.opts.BGPDesign = s.Design
	}
	r.opts.BFD = r.opts.BFD || s.BFD
	if len(r.opts.FRRLeaves) == 0 {
		r.opts.FRRLeaves = s.FRRLeaves
	}
}

// FailSilently implements scenarios.SilentFailer: node hangs as a line
// card does. Its links keep their carrier; its datapath drops every frame
// without its neighbours being told (userspace.Runtime.HangNode); its
// kernel neither sends nor receives anything (a tc drop on every one of
// its links, both ways, so no TCP or ARP answer leaves it); and its BGP
// speaker, if it has one, is frozen (SIGSTOP). Its peers learn of it only
// when their hold timers expire. SetNodeState(node, true) reboots it.
func (r *Runtime) FailSilently(ctx context.Context, node string) error {
	if r.k != nil {
		return fmt.Errorf("kernel runtime: fail %s silently: not built for the kernel backend (its datapath's tc programs run before a drop filter); use mode power", node)
	}
	if _, ok := r.nodes[node]; !ok && !r.isFRR(node) {
		return fmt.Errorf("netns runtime: fail %s silently: no fabric node %q", node, node)
	}
	if r.bgp != nil && r.bgp.nodes[node] != nil {
		if err := r.bgp.nodes[node].hang(); err != nil {
			return fmt.Errorf("netns runtime: fail %s silently: %w", node, err)
		}
	}
	if err := r.silence(node, true); err != nil {
		return fmt.Errorf("netns runtime: fail %s silently: %w", node, err)
	}
	var err error
	if !r.isFRR(node) { // an FRR leaf's kernel is silenced and its daemons frozen
		resume := r.Pause()
		err = r.us.HangNode(node)
		resume()
	}
	if err != nil {
		return fmt.Errorf("netns runtime: %w", err)
	}
	r.mu.Lock()
	if r.hung == nil {
		r.hung = map[string]bool{}
	}
	r.hung[node] = true
	r.mu.Unlock()
	return nil
}

// silence puts (on) or takes off a drop of everything on every link of
// node, in both directions, in front of its kernel: a BPF program that
// returns TC_ACT_SHOT, attached first (TCX) at each link's ingress and
// egress. Captures and the userspace datapath read frames before TCX
// ingress, so the datapath still sees what arrives (and, hung, drops
// it); nothing sent from the namespace leaves it.
func (r *Runtime) silence(node string, on bool) error {
	r.mu.Lock()
	links := r.silenced[node]
	delete(r.silenced, node)
	r.mu.Unlock()
	var errs []error
	for _, l := range links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove the drop: %w", node, err))
		}
	}
	if !on {
		return errors.Join(errs...)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "netbed_silent", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* TC_ACT_SHOT */), asm.Return()}})
	if err != nil {
		return fmt.Errorf("%s: load the drop program: %w", node, err)
	}
	defer prog.Close() // the links hold it
	h, err := r.lab.Handle(node)
	if err != nil {
		return err
	}
	for _, ifn := range r.topo.Interfaces(node) {
		lk, err := h.LinkByName(ifn)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%s: %w", node, ifn, err))
			continue
		}
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			err := r.lab.Do(node, func() error {
				l, err := link.AttachTCX(link.TCXOptions{Interface: lk.Attrs().Index, Program: prog, Attach: at, Anchor: link.Head()})
				if err == nil {
					links = append(links, l)
				}
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%s: attach the drop (%v): %w", node, ifn, at, err))
			}
		}
	}
	r.mu.Lock()
	if r.silenced == nil {
		r.silenced = map[string][]link.Link{}
	}
	r.silenced[node] = links
	r.mu.Unlock()
	return errors.Join(errs...)
}

// unhang undoes FailSilently's drops on node, reporting whether it was
// hung.
func (r *Runtime) unhang(node string) (bool, error) {
	r.mu.Lock()
	hung := r.hung[node]
	delete(r.hung, node)
	r.mu.Unlock()
	if !hung {
		return false, nil
	}
	if err := r.silence(node, false); err != nil {
		return true, fmt.Errorf("netns runtime: restore %s: %w", node, err)
	}
	return true, nil
}
