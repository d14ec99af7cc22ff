package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/stack"
)

// Prober is an instance that can originate probes; *stack.Instance is one.
type Prober interface {
	datapath.Node
	Probe(now time.Duration, out datapath.Output, p stack.ProbeSpec)
	Addr() netip.Prefix
}

// ErrUnknownProbe is returned by Result for an ID never sent.
var ErrUnknownProbe = errors.New("unknown probe")

type probeInfo struct {
	from string
	node Prober
	spec stack.ProbeSpec
	at   time.Duration
}

// probeRec is a probe as the table stores it: no pointers, so that the
// garbage collector never scans the table, however many probes a run
// sends. The source is an engine node index.
type probeRec struct {
	at    time.Duration
	dst   [16]byte
	node  int32
	port  uint16
	proto stack.Proto
	kind  uint8 // 0: no probe; 4: dst is IPv4 (first 4 bytes); 6: IPv6
}

// probeChunk is how many probes one block of the table holds.
const probeChunk = 4096

// probeTable holds what the engine knows of every probe sent, by ID. IDs
// the engine picks are consecutive, so they index fixed-size blocks (added
// as needed, never copied); a probe whose ID a caller chose far beyond
// them, or whose destination has an IPv6 zone, goes to a map.
type probeTable struct {
	blocks [][]probeRec // ID i+1 at blocks[i/probeChunk][i%probeChunk]
	sparse map[uint64]probeInfo
}

// rec returns the stored probe with ID id, or nil.
func (t *probeTable) rec(id uint64) *probeRec {
	i := id - 1
	if b := i / probeChunk; b < uint64(len(t.blocks)) {
		if r := &t.blocks[b][i%probeChunk]; r.kind != 0 {
			return r
		}
	}
	return nil
}

func (t *probeTable) has(id uint64) bool {
	if t.rec(id) != nil {
		return true
	}
	_, ok := t.sparse[id]
	return ok
}

// add records probe p sent by engine node ni; p.spec.ID must be unused.
func (t *probeTable) add(ni int32, p probeInfo) {
	i := p.spec.ID - 1
	r := probeRec{at: p.at, node: ni, port: p.spec.DstPort, proto: p.spec.Proto}
	switch d := p.spec.Dst; {
	case d.Is4():
		r.kind = 4
		a := d.As4()
		copy(r.dst[:], a[:])
	case d.Is6() && d.Zone() == "":
		r.kind, r.dst = 6, d.As16()
	}
	if b := i / probeChunk; r.kind != 0 && b <= uint64(len(t.blocks)) {
		if b == uint64(len(t.blocks)) {
			t.blocks = append(t.blocks, make([]probeRec, probeChunk))
		}
		t.blocks[b][i%probeChunk] = r
		return
	}
	if t.sparse == nil {
		t.sparse = map[uint64]probeInfo{}
	}
	t.sparse[p.spec.ID] = p
}

// probe returns what the engine knows of probe id.
func (e *Engine) probe(id uint64) (probeInfo, bool) {
	r := e.probes.rec(id)
	if r == nil {
		p, ok := e.probes.sparse[id]
		return p, ok
	}
	n := e.nodes[r.node]
	pr, _ := n.n.(Prober) // checked by Probe
	return probeInfo{from: n.name, node: pr, spec: r.spec(id), at: r.at}, true
}

func (r *probeRec) spec(id uint64) stack.ProbeSpec {
	s := stack.ProbeSpec{Proto: r.proto, DstPort: r.port, ID: id}
	if r.kind == 4 {
		s.Dst = netip.AddrFrom4([4]byte(r.dst[:4]))
	} else {
		s.Dst = netip.AddrFrom16(r.dst)
	}
	return s
}

// probeIndex maps probe IDs to their trace indices, rebuilt when the trace
// has grown since.
type probeIndex struct {
	n  int
	by map[uint64][]int64
	// spare are the emptied slices of the probes ResetTrace forgot,
	// for the next probes' indices.
	spare [][]int64
}

// Probe schedules instance from to send spec at time at and returns the
// probe's ID (spec.ID, or the next free one when spec.ID is 0). Every frame
// the probe causes, on its way out and back, carries the ID in the trace.
func (e *Engine) Probe(at time.Duration, from string, spec stack.ProbeSpec) (uint64, error) {
	ni, err := e.lookup(from)
	if err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	pr, ok := e.nodes[ni].n.(Prober)
	if !ok {
		return 0, fmt.Errorf("probe from %q: node is a %T, not an instance", from, e.nodes[ni].n)
	}
	if spec.ID == 0 {
		for e.nextProbe++; e.probes.has(e.nextProbe); e.nextProbe++ {
		}
		spec.ID = e.nextProbe
	} else if e.probes.has(spec.ID) {
		return 0, fmt.Errorf("probe %d from %q: %w", spec.ID, from, ErrDuplicate)
	}
	e.probes.add(ni, probeInfo{from: from, node: pr, spec: spec, at: at})
	e.enqueue(at, event{kind: evProbe, wire: ni, probe: spec.ID})
	return spec.ID, nil
}

// ProbeTo is Probe with the destination given as an instance's name: its
// address fills spec.Dst.
func (e *Engine) ProbeTo(at time.Duration, from, to string, spec stack.ProbeSpec) (uint64, error) {
	ni, err := e.lookup(to)
	if err != nil {
		return 0, fmt.Errorf("probe to: %w", err)
	}
	pr, ok := e.nodes[ni].n.(Prober)
	if !ok {
		return 0, fmt.Errorf("probe to %q: node is a %T, not an instance", to, e.nodes[ni].n)
	}
	spec.Dst = pr.Addr().Addr()
	return e.Probe(at, from, spec)
}

// Result is what happened to one probe.
//
// Paths follow frame lineage, not trace order: each trace event records the
// device before it on its frame's path; a frame sent by a node continues
// from the last device the node traced before sending (after a flood event,
// every further send branches from the flood point); a packet an instance
// held back for ARP resolution continues from where it was queued
// (stack.Resumer). So the forward path is the chain that ends at the
// destination's deliver event, with ARP exchanges and flood copies to
// other ports left out; the return path is the part of the reply's chain
// after that deliver event, starting at the destination's originate. Drop
// events are never on a path.
type Result struct {
	ID   uint64
	From string
	Spec stack.ProbeSpec
	// Outcome is the verdict, paths and times (outcome.Derive); its
	// Forward ends at the last device before the drop when the probe
	// was not delivered.
	outcome.Outcome
	Hops       int // Forward.Hops()
	SwitchHops int // Forward.SwitchHops()
	ReplyKind  stack.ReplyKind
}

// String summarises the result on one line: verdict, path, hops, times.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "probe %d %s %s -> %v", r.ID, r.Spec.Proto, r.From, r.Spec.Dst)
	switch {
	case r.Replied:
		fmt.Fprintf(&b, ": replied (%s) rtt %v", r.ReplyKind, r.RTT)
	case r.Delivered:
		fmt.Fprintf(&b, ": delivered to %s, no reply", r.To)
	default:
		b.WriteString(": not delivered")
	}
	if r.Reason != datapath.ReasonNone {
		fmt.Fprintf(&b, ", dropped at %s/%s: %s", r.DropNode, r.DropDevice, r.Reason)
		if r.Rule != "" {
			fmt.Fprintf(&b, " (%s)", r.Rule)
		}
	}
	if len(r.Forward) > 0 {
		fmt.Fprintf(&b, "; %d hops, %d switch hops, one-way %v: %s", r.Hops, r.SwitchHops, r.OneWay,
			strings.Join(r.Forward.Devices(), " > "))
	}
	if len(r.Return) > 0 {
		fmt.Fprintf(&b, "; back: %s", strings.Join(r.Return.Devices(), " > "))
	}
	return b.String()
}

// probeEvents returns the trace indices of probe id's events (valid
// until the trace is reset).
func (e *Engine) probeEvents(id uint64) []int64 {
	if e.index.by == nil || e.index.n != len(e.trace) {
		if e.index.by == nil || e.index.n > len(e.trace) {
			e.index = probeIndex{by: map[uint64][]int64{}}
		}
		for i := e.index.n; i < len(e.trace); i++ {
			if p := e.trace[i].ev.Probe; p != 0 {
				evs, ok := e.index.by[p]
				if !ok && len(e.index.spare) > 0 {
					evs = e.index.spare[len(e.index.spare)-1]
					e.index.spare = e.index.spare[:len(e.index.spare)-1]
				}
				e.index.by[p] = append(evs, e.base+int64(i))
			}
		}
		e.index.n = len(e.trace)
	}
	return e.index.by[id]
}

// ReplyTraced reports whether the trace holds a delivery of one of probe
// id's frames (not ARP) at the node that sent it: without one, Result
// cannot find the probe replied, so a caller waiting for the reply can
// skip deriving it.
func (e *Engine) ReplyTraced(id uint64) bool {
	info, ok := e.probe(id)
	if !ok {
		return false
	}
	for _, g := range e.probeEvents(id) {
		r := e.rec(g)
		if r.ev.Action == datapath.ActDeliver && !r.arp && r.ev.Node == info.from {
			return true
		}
	}
	return false
}

// Result derives the outcome of probe id from the trace (see Result):
// the probe's records, with every record on their lineage, go to
// outcome.Derive as every runtime's do.
func (e *Engine) Result(id uint64) (Result, error) {
	info, ok := e.probe(id)
	if !ok {
		return Result{}, fmt.Errorf("result of probe %d: %w", id, ErrUnknownProbe)
	}
	if !e.record {
		return Result{}, fmt.Errorf("result of probe %d: %w", id, ErrNoTrace)
	}
	r := Result{ID: id, From: info.from, Spec: info.spec}
	pending := func() bool {
		pd, ok := info.node.(interface{ Pending(uint64) bool })
		return ok && pd.Pending(id)
	}
	r.Outcome = outcome.Derive(e.records(e.probeEvents(id)), info.from, pending)
	r.Hops, r.SwitchHops = r.Forward.Hops(), r.Forward.SwitchHops()
	if r.Replied {
		if rp, ok := info.node.(interface{ Replies() []stack.Reply }); ok {
			for _, x := range rp.Replies() {
				if x.ID == id {
					r.ReplyKind = x.Kind
				}
			}
		}
	}
	return r, nil
}

// records returns the trace records at indices evs (in trace order) and
// every record on their lineage that is not among them, in trace order,
// with their lineage as indices into the result. The lineage stops at the
// first record forgotten by ResetTrace.
func (e *Engine) records(evs []int64) []outcome.Record {
	all, grown := evs, false
	seen := e.seen
	clear(seen)
	for _, g := range evs {
		for j := e.rec(g).prev; j >= e.base; j = e.rec(j).prev {
			if _, ok := slices.BinarySearch(evs, j); ok || seen[j] {
				break
			}
			if seen == nil {
				seen = map[int64]bool{}
				e.seen = seen
			}
			if !grown {
				all, grown = append(e.lineage[:0], evs...), true
			}
			seen[j] = true
			all = append(all, j)
		}
	}
	if grown {
		slices.Sort(all)
		e.lineage = all
	}
	// The records are the engine's scratch, reused by the next call:
	// Derive copies what it keeps.
	rs := slices.Grow(e.scratch[:0], len(all))[:len(all)]
	e.scratch = rs
	for k, g := range all {
		rec := e.rec(g)
		prev := int32(-1)
		if rec.prev >= e.base {
			if l, ok := slices.BinarySearch(all, rec.prev); ok {
				prev = int32(l)
			}
		}
		rs[k] = outcome.Record{Ev: rec.ev, Prev: prev, ARP: rec.arp}
	}
	return rs
}

// Matrix is a reachability matrix between instances.
type Matrix struct {
	Names []string
	// Reach[i][j]: the probe from Names[i] to Names[j] got its reply.
	// The diagonal is true and not probed.
	Reach [][]bool
	IDs   [][]uint64
}

// Reachable counts the ordered pairs (i != j) that reached each other.
func (m *Matrix) Reachable() int {
	n := 0
	for i := range m.Reach {
		for j := range m.Reach[i] {
			if i != j && m.Reach[i][j] {
				n++
			}
		}
	}
	return n
}

// String draws the matrix: one row per source, '+' reachable, '.' not.
func (m *Matrix) String() string {
	var b strings.Builder
	for i, row := range m.Reach {
		b.WriteString(m.Names[i])
		b.WriteByte(' ')
		for _, ok := range row {
			if ok {
				b.WriteByte('+')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// AllPairs probes every ordered pair of the named instances with spec
// (Dst filled in per pair), one probe every gap from start, runs the engine
// until idle and returns who reached whom.
func (e *Engine) AllPairs(start, gap time.Duration, names []string, spec stack.ProbeSpec) (*Matrix, error) {
	m := &Matrix{Names: names, Reach: make([][]bool, len(names)), IDs: make([][]uint64, len(names))}
	addrs := make([]netip.Addr, len(names))
	for i, n := range names {
		ni, err := e.lookup(n)
		if err != nil {
			return nil, fmt.Errorf("all pairs: %w", err)
		}
		pr, ok := e.nodes[ni].n.(Prober)
		if !ok {
			return nil, fmt.Errorf("all pairs: %q is a %T, not an instance", n, e.nodes[ni].n)
		}
		addrs[i] = pr.Addr().Addr()
	}
	t := start
	for i := range names {
		m.Reach[i] = make([]bool, len(names))
		m.IDs[i] = make([]uint64, len(names))
		for j := range names {
			if i == j {
				m.Reach[i][j] = true
				continue
			}
			s := spec
			s.Dst, s.ID = addrs[j], 0
			id, err := e.Probe(t, names[i], s)
			if err != nil {
				return nil, fmt.Errorf("all pairs: %w", err)
			}
			m.IDs[i][j] = id
			t += gap
		}
	}
	if err := e.RunUntilIdle(); err != nil {
		return nil, fmt.Errorf("all pairs: %w", err)
	}
	for i := range names {
		for j := range names {
			if i == j {
				continue
			}
			r, err := e.Result(m.IDs[i][j])
			if err != nil {
				return nil, fmt.Errorf("all pairs: %w", err)
			}
			m.Reach[i][j] = r.Replied
		}
	}
	return m, nil
}
