package sim

import (
	"bufio"
	"fmt"
	"io"

	"github.com/netbed/netbed/datapath"
)

// record is one trace event with its lineage: prev is the trace index of
// the device before it on the frame's path (-1 at the start), arp says the
// event handled an ARP frame.
type record struct {
	ev   datapath.Event
	prev int64
	arp  bool
}

// Trace returns a copy of the recorded trace events, in order.
func (e *Engine) Trace() []datapath.Event {
	out := make([]datapath.Event, len(e.trace))
	for i := range e.trace {
		out[i] = e.trace[i].ev
	}
	return out
}

// ResetTrace forgets the recorded trace (and so the results of probes sent
// so far). Counts are kept.
func (e *Engine) ResetTrace() {
	e.base += int64(len(e.trace))
	e.trace = e.trace[:0]
	// The index's map is kept, emptied: the sim runtime resets the trace
	// before every probe, and a new map a probe cost 6 % of a run's CPU.
	for _, evs := range e.index.by {
		e.index.spare = append(e.index.spare, evs[:0])
	}
	clear(e.index.by)
	e.index.n = 0
}

// WriteTrace writes the recorded trace as text, one event a line:
// time in ns, probe, node, device, kind, in port, out port, action, reason,
// rule and the index of the previous device on the frame's path. Equal
// seeds and inputs give byte-identical output.
func (e *Engine) WriteTrace(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := range e.trace {
		r := &e.trace[i]
		ev := &r.ev
		fmt.Fprintf(bw, "%d\t%d\t%d\t%s\t%s\t%s\tin=%s\tout=%s\t%s\t%s\t%s\tprev=%d\n",
			e.base+int64(i), ev.Time.Nanoseconds(), ev.Probe, ev.Node, ev.Device, ev.Kind, ev.InPort, ev.OutPort,
			ev.Action, ev.Reason, ev.Rule, r.prev)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}

// rec returns the record at trace index g (which must be >= e.base).
func (e *Engine) rec(g int64) *record { return &e.trace[g-e.base] }

// pathTo returns the devices on the path of the frame that reached trace
// index g, ending with g itself unless it is a drop. The path stops at the
// first device forgotten by ResetTrace.
func (e *Engine) pathTo(g int64) datapath.Path {
	var idx []int64
	if e.rec(g).ev.Action != datapath.ActDrop {
		idx = append(idx, g)
	}
	for j := e.rec(g).prev; j >= e.base; j = e.rec(j).prev {
		idx = append(idx, j)
	}
	p := make(datapath.Path, len(idx))
	for k, j := range idx {
		p[len(idx)-1-k] = e.rec(j).ev
	}
	return p
}

// chain returns the trace indices on the path to g, from its start.
func (e *Engine) chain(g int64) []int64 {
	var idx []int64
	for j := g; j >= e.base; j = e.rec(j).prev {
		idx = append(idx, j)
	}
	for a, b := 0, len(idx)-1; a < b; a, b = a+1, b-1 {
		idx[a], idx[b] = idx[b], idx[a]
	}
	return idx
}
