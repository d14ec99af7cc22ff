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
//
// On the kernel backend the same drops are the node's datapath's silence
// too, on its instances' veths as well (silence): whatever a node's
// datapath is (the bridge, VXLAN and routing of the kernel, tc BPF
// programs, Open vSwitch), nothing that reaches the node gets past its
// links' ingress into the kernel, and nothing the node forwards or sends
// gets out of any of its links. Open vSwitch reads its ports before tc
// ingress, so a node's vswitch still sees what arrives; what it forwards
// is dropped on the way out. The kernel reports the drops (TC_INGRESS,
// TC_EGRESS), which kernelLineage records as node-down at the hung node,
// as the models do.
func (r *Runtime) FailSilently(ctx context.Context, node string) error {
	what := "netns runtime"
	if r.k != nil {
		what = "kernel runtime"
	}
	r.mu.Lock()
	_, ok := r.nodes[node]
	r.mu.Unlock()
	if !ok && !r.isFRR(node) {
		return fmt.Errorf("%s: fail %s silently: no fabric node %q", what, node, node)
	}
	if r.bgp != nil && r.bgp.nodes[node] != nil {
		if err := r.bgp.nodes[node].hang(); err != nil {
			return fmt.Errorf("%s: fail %s silently: %w", what, node, err)
		}
	}
	if err := r.silence(node, true); err != nil {
		return fmt.Errorf("%s: fail %s silently: %w", what, node, err)
	}
	var err error
	// An FRR leaf's kernel is silenced and its daemons frozen; on the
	// kernel backend the drops are the whole of it.
	if !r.isFRR(node) && r.k == nil {
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
// returns TC_ACT_SHOT, attached first (TCX, anchored at the head) at each
// link's ingress and egress, so that it runs before any program of the
// node's own (gen 3's, appended at the tail, or clsact filters, which
// run after TCX). Captures and the userspace datapath read frames before
// TCX ingress, so the datapath still sees what arrives (and, hung, drops
// it); nothing sent from the namespace leaves it. On the kernel backend
// the node's instances' veths are its links too (a host's pods).
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
	ifaces := r.topo.Interfaces(node)
	if r.k != nil {
		ifaces = r.kernelLinks(node)
	}
	return errors.Join(append(errs, r.silenceLinks(node, ifaces))...)
}

// silenceLinks puts silence's drop on node's interfaces ifaces, beside
// the drops node has already (an instance plugged while it hangs).
func (r *Runtime) silenceLinks(node string, ifaces []string) error {
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
	var links []link.Link
	var errs []error
	for _, ifn := range ifaces {
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
	r.silenced[node] = append(r.silenced[node], links...)
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
