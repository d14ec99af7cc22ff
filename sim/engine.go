package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/outcome"
	"github.com/netbed/netbed/datapath/stack"
)

// KindLink marks trace events the engine itself emits for frames a link or
// a failed node dropped (queue-full, link-loss, port-down, node-down).
const KindLink datapath.DeviceKind = "link"

// Errors callers test with errors.Is.
var (
	ErrUnknownNode = errors.New("unknown node")
	ErrDuplicate   = errors.New("duplicate name")
	ErrBadPort     = errors.New("port out of range")
	ErrEventLimit  = errors.New("event limit reached")
	ErrNoTrace     = errors.New("trace recording is off")
)

// LinkOpts are the engine-side properties of a wire, beyond its rate and
// delay (in datapath.Wire).
type LinkOpts struct {
	// QueueFrames bounds each direction's FIFO, counting the frame being
	// serialised; a frame sent to a full queue is dropped (queue-full).
	// 0 means unbounded.
	QueueFrames int
	// Loss is the probability that a frame is lost on the wire (link-loss),
	// drawn from the engine's seeded RNG when the frame is sent.
	Loss float64
}

// direction is one way of a wire: a FIFO of transmission end times.
type direction struct {
	lag     time.Duration   // wire delay + the far node's processing delay
	lastLen int             // the last frame's length and serialisation time:
	lastSer time.Duration   // frames on a wire repeat lengths, a division saved
	ends    []time.Duration // ring of the queued frames' end times, grown up to limit
	limit   int             // QueueFrames; 0: unbounded, no ring
	head, n int
	lastEnd time.Duration // when the last queued frame finishes serialising
}

// grow doubles the ring (up to limit), unrolling it: most links never
// queue more than a few frames, so their rings stay small and in cache.
func (d *direction) grow() {
	n := min(max(2*len(d.ends), 4), d.limit)
	ends := make([]time.Duration, n)
	k := copy(ends, d.ends[d.head:])
	copy(ends[k:], d.ends[:d.head])
	d.ends, d.head = ends, 0
}

type wireState struct {
	w       datapath.Wire
	opts    LinkOpts
	node    [2]int32 // A, B
	port    [2]int32
	dir     [2]direction // 0: A to B
	up      bool
	removed bool
	epoch   uint32 // bumped when the wire goes down: frames in flight are lost
}

type nodeState struct {
	n       datapath.Node
	name    string
	ports   []string
	delay   time.Duration
	wire    []int32 // per port: wire index, -1 if unwired
	side    []uint8 // per port: which end of the wire the node is
	up      bool
	removed bool
	// hung: down by HangNode, its neighbours never told.
	hung   bool
	out    *output
	prober Prober // n as a Prober, nil if it is not one
}

// output is the datapath.Output of one node; it also implements
// stack.Resumer so that packets queued behind ARP keep their lineage.
type output struct {
	e *Engine
	n int32
}

var (
	_ datapath.Output = (*output)(nil)
	_ stack.Resumer   = (*output)(nil)
)

func (o *output) Send(port int, b []byte)    { o.e.send(o.n, port, b, false) }
func (o *output) Forward(port int, b []byte) { o.e.send(o.n, port, b, true) }
func (o *output) Trace(ev datapath.Event) {
	e := o.e
	if !e.keeping && e.devCost == nil {
		// Nothing reads the event past a count and a drop: no copy.
		e.counts.Trace++
		if ev.Action == datapath.ActDrop {
			e.cur.dropped = true
			e.cur.reason = ev.Reason
		}
		return
	}
	// Through the engine's own event, not &ev: a pointer handed to the
	// device-cost function would move every traced event to the heap.
	e.ev = ev
	e.nodeTrace(o.n, &e.ev)
}
func (o *output) Context() stack.Context { return o.e.context() }
func (o *output) Resume(c stack.Context) { o.e.resume(c) }
func (o *output) String() string         { return o.e.nodes[o.n].name }

// context packs the current segment's lineage: Ref is the path head,
// Aux the flood point (+1, shifted) and the ARP bit.
func (e *Engine) context() stack.Context {
	aux := (e.cur.flood + 1) << 1
	if e.cur.arp {
		aux |= 1
	}
	return stack.Context{Probe: e.cur.probe, Ref: e.cur.head, Aux: aux}
}

func (e *Engine) resume(c stack.Context) {
	e.cur.probe = c.Probe
	e.cur.head = c.Ref
	e.cur.arp = c.Aux&1 != 0
	e.cur.flood = c.Aux>>1 - 1
	if e.cur.floodAt >= 0 {
		// A flood's next branch (vlan's floodPoint): its devices start
		// from the flooding device's time again.
		e.cur.at, e.cur.prev = e.cur.floodAt, e.cur.floodKind
	}
}

// segment is what the engine knows about the step a node is running: the
// frame's probe and lineage, and what the node did with it.
type segment struct {
	probe   uint64
	head    int64 // trace index of the last non-drop event on this frame's path, -1 if none
	flood   int64 // trace index of the last flood event in this step, -1 if none
	arp     bool  // the frame being processed is ARP
	sends   int
	dropped bool
	reason  datapath.Reason
	// at is the device time spent in this step so far (DeviceCost), so
	// the devices traced run at now+at and frames leave at now+at;
	// floodAt is at just after the last flood event (-1: none), where
	// each branch of the flood starts again. prev is the kind of the
	// device traced before in this step, floodKind the flooding device's.
	at, floodAt     time.Duration
	prev, floodKind datapath.DeviceKind
}

// DeviceCost is the time a device takes to handle a frame, by its trace
// event and where it is (see cost.Where); cost.Model.Of is one. See
// SetDeviceCost.
type DeviceCost func(ev *datapath.Event, at cost.Where) time.Duration

// Counts is the engine's packet accounting. Every frame a node sends is
// injected; each injected frame ends exactly one way: a node consumed it
// (Delivered: it sent nothing in response; Forwarded: it sent one or more
// frames, which are injected in turn), it was dropped (by the node, which
// traced a drop and sent nothing, or by the engine: queue-full, link-loss,
// port-down, node-down), or it is still in flight.
type Counts struct {
	Injected  uint64
	Delivered uint64
	Forwarded uint64
	InFlight  uint64
	Dropped   map[datapath.Reason]uint64
	// Hops is the number of frames handed to a node's Receive: packet-hop
	// events. Trace counts the trace events emitted.
	Hops  uint64
	Trace uint64
}

// DroppedTotal sums the drops of every reason.
func (c Counts) DroppedTotal() uint64 {
	var n uint64
	for _, v := range c.Dropped {
		n += v
	}
	return n
}

// Engine is a discrete-event simulator of datapath nodes. It is not safe for
// concurrent use; scheduled functions run on the goroutine that calls Run.
type Engine struct {
	now    time.Duration
	seq    uint64
	q      queue
	rng    *rand.Rand
	nodes  []*nodeState
	byName map[string]int32
	wires  []wireState

	// Frame buffers: bufs holds the frames, each at the start of its
	// buffer; freeBufs are the indices not in flight. rx is the buffer of
	// the frame a node is receiving until the node forwards it
	// (datapath.Output.Forward), -1 otherwise.
	bufs     [][]byte
	freeBufs []int32
	rx       int32
	actions  []action
	freeActs []int32

	cur     segment
	counts  Counts
	devCost DeviceCost
	ev      datapath.Event // the event a node is tracing (output.Trace)

	record  bool
	keeping bool // record || sink != nil: trace events go further than a count
	filter  func(probe uint64) bool
	trace   []record
	base    int64 // trace index of trace[0]: indices stay valid across ResetTrace
	sink    func(datapath.Event)
	limit   uint64
	handled uint64

	// Load remembers how to add instances later.
	delayFn func(datapath.Node) time.Duration
	opts    LinkOpts

	probes    probeTable
	nextProbe uint64
	index     probeIndex
	// Result's scratch: the records handed to outcome.Derive, the
	// lineage indices and the set of them seen.
	scratch []outcome.Record
	lineage []int64
	seen    map[int64]bool
}

// New returns an engine whose random choices (link loss) come from seed.
// Trace recording is on; see SetRecord.
func New(seed int64) *Engine {
	s := uint64(seed)
	return &Engine{
		rng:    rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
		byName: map[string]int32{},
		counts: Counts{Dropped: map[datapath.Reason]uint64{}},
		record: true, keeping: true,
		cur: idle, rx: -1,
	}
}

// idle is the segment between steps.
var idle = segment{head: -1, flood: -1, floodAt: -1}

// SetDeviceCost makes every device a node traces cost time (nil: none,
// the default). Within one step of a node (one frame received, one
// scheduled function, one probe sent), each traced device starts when the
// one before it is done, so an event's time is when its device finished
// with the frame: the step's start plus the costs of the devices traced so
// far, its own included. Frames the node sends leave then. After a flood
// event, each branch (each send, and each restore of the flood point
// through stack.Resumer) starts from the flooding device's time. Drops
// the engine traces (links, failed nodes) cost nothing.
func (e *Engine) SetDeviceCost(c DeviceCost) { e.devCost = c }

// Now returns the virtual time.
func (e *Engine) Now() time.Duration { return e.now }

// SetRecord turns the in-memory trace on or off (on by default). Probe
// results need it; throughput runs turn it off.
func (e *Engine) SetRecord(on bool) {
	e.record = on
	e.keeping = e.record || e.sink != nil
}

// SetRecordFilter records only the events whose probe ID keep accepts
// (nil: all). Lineage survives it, since every event on a probe's path
// carries the probe's ID; e.g. func(p uint64) bool { return p != 0 }
// leaves out traffic that belongs to no probe.
func (e *Engine) SetRecordFilter(keep func(probe uint64) bool) { e.filter = keep }

// OnTrace sets a function called with every trace event, stamped.
func (e *Engine) OnTrace(f func(datapath.Event)) {
	e.sink = f
	e.keeping = e.record || e.sink != nil
}

// SetEventLimit makes Run stop with ErrEventLimit after n more queue events
// (0: no limit), a guard against forwarding loops.
func (e *Engine) SetEventLimit(n uint64) { e.limit, e.handled = n, 0 }

// AddNode adds a node whose every frame takes procDelay to process.
func (e *Engine) AddNode(n datapath.Node, procDelay time.Duration) error {
	name := n.Name()
	if i, ok := e.byName[name]; ok && !e.nodes[i].removed {
		return fmt.Errorf("add node %q: %w", name, ErrDuplicate)
	}
	ports := n.Ports()
	ns := &nodeState{n: n, name: name, ports: ports, delay: procDelay,
		wire: make([]int32, len(ports)), side: make([]uint8, len(ports)), up: true}
	for i := range ns.wire {
		ns.wire[i] = -1
	}
	idx := int32(len(e.nodes))
	ns.out = &output{e: e, n: idx}
	ns.prober, _ = n.(Prober)
	e.nodes = append(e.nodes, ns)
	e.byName[name] = idx
	return nil
}

// Node returns the node called name.
func (e *Engine) Node(name string) (datapath.Node, bool) {
	i, ok := e.byName[name]
	if !ok || e.nodes[i].removed {
		return nil, false
	}
	return e.nodes[i].n, true
}

func (e *Engine) lookup(name string) (int32, error) {
	i, ok := e.byName[name]
	if !ok || e.nodes[i].removed {
		return 0, fmt.Errorf("node %q: %w", name, ErrUnknownNode)
	}
	return i, nil
}

// Connect adds a wire between two ports of nodes already added and returns
// its index (for SetLinkState).
func (e *Engine) Connect(w datapath.Wire, opts LinkOpts) (int, error) {
	ws := wireState{w: w, opts: opts, up: true}
	for s, end := range [2]datapath.PortRef{w.A, w.B} {
		ni, err := e.lookup(end.Node)
		if err != nil {
			return 0, fmt.Errorf("connect %s:%d: %w", end.Node, end.Port, err)
		}
		n := e.nodes[ni]
		if end.Port < 0 || end.Port >= len(n.ports) {
			return 0, fmt.Errorf("connect %s:%d (node has %d ports): %w", end.Node, end.Port, len(n.ports), ErrBadPort)
		}
		if n.wire[end.Port] >= 0 {
			return 0, fmt.Errorf("connect %s port %s: already wired: %w", end.Node, n.ports[end.Port], ErrDuplicate)
		}
		ws.node[s], ws.port[s] = ni, int32(end.Port)
		if opts.QueueFrames > 0 {
			ws.dir[s].limit = opts.QueueFrames
		}
	}
	wi := int32(len(e.wires))
	for s := range 2 {
		n := e.nodes[ws.node[s]]
		n.wire[ws.port[s]], n.side[ws.port[s]] = wi, uint8(s)
		ws.dir[s].lag = w.Delay + e.nodes[ws.node[1-s]].delay
		ws.dir[s].lastLen = -1
	}
	e.wires = append(e.wires, ws)
	return int(wi), nil
}

// Wire returns the index of the wire on port ref.
func (e *Engine) Wire(ref datapath.PortRef) (int, error) {
	ni, err := e.lookup(ref.Node)
	if err != nil {
		return 0, err
	}
	n := e.nodes[ni]
	if ref.Port < 0 || ref.Port >= len(n.wire) || n.wire[ref.Port] < 0 {
		return 0, fmt.Errorf("wire on %s:%d: %w", ref.Node, ref.Port, ErrBadPort)
	}
	return int(n.wire[ref.Port]), nil
}

// UniformDelay gives every node the same processing delay.
func UniformDelay(d time.Duration) func(datapath.Node) time.Duration {
	return func(datapath.Node) time.Duration { return d }
}

// Load adds every node and wire of f, with the processing delay delay(node)
// (nil: none) and opts on every wire. Instances added later through
// AddInstance get the same.
func (e *Engine) Load(f datapath.Fabric, delay func(datapath.Node) time.Duration, opts LinkOpts) error {
	if delay == nil {
		delay = UniformDelay(0)
	}
	e.delayFn, e.opts = delay, opts
	for _, n := range f.Nodes() {
		if err := e.AddNode(n, delay(n)); err != nil {
			return fmt.Errorf("load %s fabric: %w", f.Generation(), err)
		}
	}
	for _, w := range f.Wires() {
		if _, err := e.Connect(w, opts); err != nil {
			return fmt.Errorf("load %s fabric: %w", f.Generation(), err)
		}
	}
	return nil
}

// AddInstance attaches an instance through f and adds its node and wire.
// Call it before Run or from a scheduled function (At).
func (e *Engine) AddInstance(f datapath.Fabric, s datapath.InstanceSpec) (datapath.Node, error) {
	n, w, err := f.AddInstance(s)
	if err != nil {
		return nil, fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	d := time.Duration(0)
	if e.delayFn != nil {
		d = e.delayFn(n)
	}
	if err := e.AddNode(n, d); err != nil {
		return nil, fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if _, err := e.Connect(w, e.opts); err != nil {
		return nil, fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	return n, nil
}

// RemoveInstance detaches an instance through f and removes its node and
// wire; frames in flight to it are dropped (port-down).
func (e *Engine) RemoveInstance(f datapath.Fabric, name string) error {
	ni, err := e.lookup(name)
	if err != nil {
		return fmt.Errorf("remove instance: %w", err)
	}
	if err := f.RemoveInstance(name); err != nil {
		return fmt.Errorf("remove instance %q: %w", name, err)
	}
	n := e.nodes[ni]
	n.removed, n.up = true, false
	for p, wi := range n.wire {
		if wi < 0 {
			continue
		}
		w := &e.wires[wi]
		w.up, w.removed = false, true
		w.epoch++
		peer := e.nodes[w.node[1-n.side[p]]]
		peer.wire[w.port[1-n.side[p]]] = -1
		n.wire[p] = -1
	}
	delete(e.byName, name)
	return nil
}

// action is a scheduled function: f, or do in node's context with probe.
// Do keeps the caller's function as it is, so that scheduling allocates
// nothing once the tables have grown. (Probes need no action: the queue
// event names the node and the probe.)
type action struct {
	f     func()
	do    func(now time.Duration, out datapath.Output)
	node  int32
	probe uint64
}

// schedule queues an action at t (not before now).
func (e *Engine) schedule(t time.Duration, a action) {
	var i int32
	if n := len(e.freeActs); n > 0 {
		i = e.freeActs[n-1]
		e.freeActs = e.freeActs[:n-1]
		e.actions[i] = a
	} else {
		i = int32(len(e.actions))
		e.actions = append(e.actions, a)
	}
	e.enqueue(t, event{kind: evAction, wire: i})
}

// enqueue queues ev at t (not before now).
func (e *Engine) enqueue(t time.Duration, ev event) {
	e.seq++
	ev.at, ev.seq = max(t, e.now), e.seq
	e.q.push(ev)
}

// runAction runs the action at index i and frees its slot.
func (e *Engine) runAction(i int32) {
	a := e.actions[i]
	e.actions[i] = action{}
	e.freeActs = append(e.freeActs, i)
	if a.f != nil {
		a.f()
		return
	}
	n := e.nodes[a.node]
	if n.up {
		e.begin(a.probe, -1, false)
		a.do(e.now, n.out)
	}
	e.cur = idle
}

// sendProbe has node ni send probe id (Engine.Probe).
func (e *Engine) sendProbe(ni int32, id uint64) {
	n := e.nodes[ni]
	e.begin(id, -1, false)
	if n.up {
		var spec stack.ProbeSpec
		if r := e.probes.rec(id); r != nil {
			spec = r.spec(id)
		} else {
			spec = e.probes.sparse[id].spec
		}
		n.prober.Probe(e.now, n.out, spec)
	} else {
		// The probe's source is down: say so in the probe's trace.
		e.emit(&datapath.Event{Node: n.name, Device: stack.Port, Kind: KindLink,
			Action: datapath.ActDrop, Reason: datapath.ReasonNodeDown, Rule: "sim:source-down"})
	}
	e.cur = idle
}

// At runs f at virtual time t (now, if t is past).
func (e *Engine) At(t time.Duration, f func()) { e.schedule(t, action{f: f}) }

// Do runs f at time t in node's context: frames it sends leave from the
// node, and they and the trace events carry probe (0: none). A node that is
// down or removed by then does nothing.
func (e *Engine) Do(t time.Duration, node string, probe uint64, f func(now time.Duration, out datapath.Output)) error {
	ni, err := e.lookup(node)
	if err != nil {
		return fmt.Errorf("do: %w", err)
	}
	e.schedule(t, action{do: f, node: ni, probe: probe})
	return nil
}

func (e *Engine) begin(probe uint64, head int64, arp bool) {
	e.cur = segment{probe: probe, head: head, flood: -1, arp: arp, floodAt: -1}
}

// isARP reports whether a raw frame is address resolution: ARP or IPv6
// neighbour discovery.
func isARP(b []byte) bool { return frame.IsResolution(b) }

// serialisation returns the time to put n bytes on a wire of rate bit/s,
// rounded up to the nanosecond; 0 for an unlimited rate.
func serialisation(n int, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	bits := int64(n) * 8 * int64(time.Second)
	return time.Duration((bits + rate - 1) / rate)
}

// allocBuf copies b into a free buffer and returns its index.
func (e *Engine) allocBuf(b []byte) int32 {
	var i int32
	if n := len(e.freeBufs); n > 0 {
		i = e.freeBufs[n-1]
		e.freeBufs = e.freeBufs[:n-1]
	} else {
		i = int32(len(e.bufs))
		e.bufs = append(e.bufs, make([]byte, 0, max(len(b), 1600)))
	}
	e.bufs[i] = append(e.bufs[i][:0], b...)
	return i
}

// send queues a frame node ni sends on port: a copy of b, or b itself when
// the node forwards the frame it is receiving (take).
func (e *Engine) send(ni int32, port int, b []byte, take bool) {
	e.counts.Injected++
	e.cur.sends++
	n := e.nodes[ni]
	head := e.cur.head
	if e.cur.flood >= 0 {
		// The next branch of a flood starts again from the flood point.
		e.cur.head = e.cur.flood
	}
	leave := e.now + e.cur.at
	if e.cur.floodAt >= 0 {
		e.cur.at, e.cur.prev = e.cur.floodAt, e.cur.floodKind
	}
	if port < 0 || port >= len(n.wire) || n.wire[port] < 0 {
		e.linkDrop(n, port, true, datapath.ReasonPortDown, "sim:unwired", head)
		return
	}
	wi := n.wire[port]
	w := &e.wires[wi]
	side := n.side[port]
	if !w.up {
		e.linkDrop(n, port, true, datapath.ReasonPortDown, "sim:link-down", head)
		return
	}
	if w.opts.Loss > 0 && e.rng.Float64() < w.opts.Loss {
		e.linkDrop(n, port, true, datapath.ReasonLoss, "sim:loss", head)
		return
	}
	d := &w.dir[side]
	if d.limit > 0 {
		if d.lastEnd <= e.now {
			// Idle wire: the queue is empty, no need to walk it.
			d.n = 0
		}
		for d.n > 0 && d.ends[d.head] <= e.now {
			if d.head++; d.head == len(d.ends) {
				d.head = 0
			}
			d.n--
		}
		if d.n == d.limit {
			e.linkDrop(n, port, true, datapath.ReasonQueueFull, "sim:queue-full", head)
			return
		}
	}
	start := max(leave, d.lastEnd)
	if len(b) != d.lastLen {
		d.lastLen, d.lastSer = len(b), serialisation(len(b), w.w.Rate)
	}
	end := start + d.lastSer
	d.lastEnd = end
	if d.limit > 0 {
		if d.n == len(d.ends) {
			d.grow()
		}
		i := d.head + d.n
		if i >= len(d.ends) {
			i -= len(d.ends)
		}
		d.ends[i] = end
		d.n++
	}
	e.counts.InFlight++
	e.seq++
	var buf int32
	if take && e.rx >= 0 && len(b) > 0 && &b[0] == &e.bufs[e.rx][:1][0] {
		// b is the frame being received, or a slice of it from its
		// start: its buffer goes on without a copy.
		buf, e.rx = e.rx, -1
		e.bufs[buf] = b
	} else {
		buf = e.allocBuf(b)
	}
	e.q.push(event{at: end + d.lag, seq: e.seq, probe: e.cur.probe,
		wire: wi, buf: buf, head: head, epoch: w.epoch, kind: evArrive, dir: side})
}

// linkDrop counts and traces a frame the engine dropped on n's port.
func (e *Engine) linkDrop(n *nodeState, port int, out bool, r datapath.Reason, rule string, head int64) {
	e.counts.Dropped[r]++
	ev := datapath.Event{Node: n.name, Kind: KindLink, Action: datapath.ActDrop, Reason: r, Rule: rule}
	if port >= 0 && port < len(n.ports) {
		ev.Device = n.ports[port]
		if out {
			ev.OutPort = ev.Device
		} else {
			ev.InPort = ev.Device
		}
	}
	saved := e.cur.head
	e.cur.head = head
	e.emit(&ev)
	e.cur.head = saved
}

func (e *Engine) nodeTrace(ni int32, ev *datapath.Event) {
	if e.devCost != nil {
		e.cur.at += e.devCost(ev, cost.Where{Instance: e.nodes[ni].prober != nil, Prev: e.cur.prev})
		e.cur.prev = ev.Kind
		if ev.Action == datapath.ActFlood {
			e.cur.floodAt, e.cur.floodKind = e.cur.at, ev.Kind
		}
	}
	if ev.Action == datapath.ActDrop {
		e.cur.dropped = true
		e.cur.reason = ev.Reason
	}
	e.emit(ev)
}

// emit stamps ev, records it with its lineage and passes it to the sink.
// Small enough to inline: with recording off and no sink, a trace event
// costs a count.
func (e *Engine) emit(ev *datapath.Event) {
	ev.Time = e.now + e.cur.at
	ev.Probe = e.cur.probe
	e.counts.Trace++
	if e.keeping {
		e.keep(ev)
	}
}

// keep records ev (when recording) and passes it to the sink.
func (e *Engine) keep(ev *datapath.Event) {
	if e.record && (e.filter == nil || e.filter(ev.Probe)) {
		i := e.base + int64(len(e.trace))
		e.trace = append(e.trace, record{ev: *ev, prev: e.cur.head, arp: e.cur.arp})
		switch ev.Action {
		case datapath.ActDrop:
			// A drop ends its branch; the path goes on without it.
		case datapath.ActFlood:
			e.cur.head, e.cur.flood = i, i
		default:
			e.cur.head = i
		}
	}
	if e.sink != nil {
		e.sink(*ev)
	}
}

func (e *Engine) arrive(ev *event) {
	e.counts.InFlight--
	w := &e.wires[ev.wire]
	far := 1 - ev.dir
	n := e.nodes[w.node[far]]
	port := int(w.port[far])
	b := e.bufs[ev.buf]
	e.begin(ev.probe, ev.head, e.record && isARP(b))
	switch {
	case !w.up || w.epoch != ev.epoch:
		e.linkDrop(n, port, false, datapath.ReasonPortDown, "sim:link-down", ev.head)
	case !n.up:
		e.linkDrop(n, port, false, datapath.ReasonNodeDown, "sim:node-down", ev.head)
	default:
		e.counts.Hops++
		e.rx = ev.buf
		n.n.Receive(e.now, port, b, n.out)
		if e.rx < 0 {
			// The node forwarded the frame: its buffer is in flight.
			ev.buf = -1
		}
		e.rx = -1
		switch {
		case e.cur.sends > 0:
			e.counts.Forwarded++
		case e.cur.dropped:
			e.counts.Dropped[e.cur.reason]++
		default:
			e.counts.Delivered++
		}
	}
	if ev.buf >= 0 {
		e.freeBufs = append(e.freeBufs, ev.buf)
	}
	e.cur = idle
}

// Run processes events up to and including virtual time until, then sets
// the clock to until.
func (e *Engine) Run(until time.Duration) error {
	for e.q.len() > 0 && e.q.peek().at <= until {
		if err := e.step(); err != nil {
			return err
		}
	}
	if until > e.now {
		e.now = until
	}
	return nil
}

// RunUntilIdle processes events until the queue is empty.
func (e *Engine) RunUntilIdle() error {
	for e.q.len() > 0 {
		if err := e.step(); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) step() error {
	if e.limit > 0 {
		if e.handled >= e.limit {
			return fmt.Errorf("run at %v: %w (%d events; a forwarding loop?)", e.now, ErrEventLimit, e.limit)
		}
		e.handled++
	}
	ev := e.q.pop()
	e.now = ev.at
	switch ev.kind {
	case evArrive:
		e.arrive(&ev)
	case evAction:
		e.runAction(ev.wire)
	case evProbe:
		e.sendProbe(ev.wire, ev.probe)
	}
	return nil
}

// Counts returns a copy of the packet accounting.
func (e *Engine) Counts() Counts {
	c := e.counts
	c.Dropped = make(map[datapath.Reason]uint64, len(e.counts.Dropped))
	for k, v := range e.counts.Dropped {
		c.Dropped[k] = v
	}
	return c
}

// ErrConservation is returned when frames went missing in the accounting.
var ErrConservation = errors.New("packet conservation violated")

// Conservation returns the accounting and an error unless every injected
// frame was delivered, forwarded, dropped, or is in flight.
func (e *Engine) Conservation() (Counts, error) {
	c := e.Counts()
	sum := c.Delivered + c.Forwarded + c.DroppedTotal() + c.InFlight
	if c.Injected != sum {
		return c, fmt.Errorf("injected %d != delivered %d + forwarded %d + dropped %d + in flight %d: %w",
			c.Injected, c.Delivered, c.Forwarded, c.DroppedTotal(), c.InFlight, ErrConservation)
	}
	return c, nil
}
