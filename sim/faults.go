package sim

import (
	"fmt"
	"time"

	"github.com/netbed/netbed/datapath"
)

// SetLinkState takes wire (an index from Connect or Wire) down or up at
// time at. Frames in flight on a wire that goes down are lost (port-down),
// and so are frames sent on it while it is down. Both end nodes get
// SetPortState, in the order A, B.
func (e *Engine) SetLinkState(at time.Duration, wire int, up bool) error {
	if wire < 0 || wire >= len(e.wires) {
		return fmt.Errorf("set link %d state: %w", wire, ErrBadPort)
	}
	e.At(at, func() {
		w := &e.wires[wire]
		if w.removed || w.up == up {
			return
		}
		w.up = up
		if !up {
			w.epoch++
			for s := range w.dir {
				w.dir[s].head, w.dir[s].n, w.dir[s].lastEnd = 0, 0, 0
			}
		}
		for s := range 2 {
			e.portState(w.node[s], int(w.port[s]), up)
		}
	})
	return nil
}

// SetPortLinkState is SetLinkState for the wire on port ref.
func (e *Engine) SetPortLinkState(at time.Duration, ref datapath.PortRef, up bool) error {
	w, err := e.Wire(ref)
	if err != nil {
		return fmt.Errorf("set link state: %w", err)
	}
	return e.SetLinkState(at, w, up)
}

// portState tells a node (if it is up) that the link on port changed.
func (e *Engine) portState(ni int32, port int, up bool) {
	n := e.nodes[ni]
	if !n.up {
		return
	}
	e.begin(0, -1, false)
	n.n.SetPortState(e.now, port, up, n.out)
	e.cur = idle
}

// SetNodeState fails a node (up false) or restores it at time at. A node
// that is down drops every frame that reaches it (node-down) and runs no
// Do functions; its neighbours get SetPortState on the ports facing it, as
// if those links had gone down (or come back). The node's own state is
// kept, as after a reboot with a saved configuration. A node hung by
// HangNode comes back without its neighbours being told: for them
// nothing changed.
func (e *Engine) SetNodeState(at time.Duration, node string, up bool) error {
	ni, err := e.lookup(node)
	if err != nil {
		return fmt.Errorf("set node state: %w", err)
	}
	e.At(at, func() {
		n := e.nodes[ni]
		if n.removed || n.up == up {
			return
		}
		n.up = up
		if n.hung {
			n.hung = false
			return
		}
		for p, wi := range n.wire {
			if wi < 0 {
				continue
			}
			w := &e.wires[wi]
			if !w.up {
				continue
			}
			far := 1 - n.side[p]
			e.portState(w.node[far], int(w.port[far]), up)
		}
	})
	return nil
}

// HangNode fails a node at time at as a hung line card fails: like
// SetNodeState it drops every frame that reaches it (node-down) and runs
// no Do functions, but its links keep carrier: its neighbours are told
// nothing and notice only the silence. SetNodeState(node, true) brings
// it back.
func (e *Engine) HangNode(at time.Duration, node string) error {
	ni, err := e.lookup(node)
	if err != nil {
		return fmt.Errorf("hang node: %w", err)
	}
	e.At(at, func() {
		n := e.nodes[ni]
		if n.removed || !n.up {
			return
		}
		n.up, n.hung = false, true
	})
	return nil
}
