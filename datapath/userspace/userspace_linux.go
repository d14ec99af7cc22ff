package userspace

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
)

// KindLink marks trace events the runtime itself emits for frames it
// dropped outside a node (port-down, node-down, queue-full), as sim does.
const KindLink datapath.DeviceKind = "link"

// Errors callers test with errors.Is.
var (
	ErrUnknownNode = errors.New("unknown node")
	ErrBadPort     = errors.New("port out of range")
	ErrDuplicate   = errors.New("duplicate name")
	ErrClosed      = errors.New("runtime closed")
)

// Options tune a Runtime. The zero value is the default.
type Options struct {
	// ProbeID returns the probe a frame belongs to (0: none); default
	// ProbeIDOf. Frames of probe 0 are forwarded but not recorded.
	ProbeID func(frame []byte) uint64
	// Batch is how many frames one read takes from a socket (64).
	Batch int
	// FrameSize is the largest frame a port reads or writes (9216).
	FrameSize int
	// Taps makes the sockets send through the qdisc, so that packet
	// captures on the nodes' interfaces see the frames the nodes send;
	// by default they bypass it (PACKET_QDISC_BYPASS, faster). See
	// OpenSocket.
	Taps bool
	// NoRing reads with recvmmsg instead of a TPACKET_V2 receive ring
	// mapped into memory (the default).
	NoRing bool
	// RingBytes is the size of each port's receive ring (512 KiB).
	RingBytes int
	// TxRing writes through a TPACKET_V2 transmit ring (128 KiB per port)
	// instead of sendmmsg: the kernel sends each frame from the ring's
	// pages instead of copying it into a new buffer, 7% less CPU per
	// 1500-byte frame at full load. Off by default: setting a ring up and
	// tearing it down each wait for an RCU grace period, which made the
	// shipped scenarios' runs about a second longer.
	TxRing bool
	// OnEvent, if set, is called with every trace event of a probe, from
	// the node's goroutine.
	OnEvent func(Record)
}

// Key names a frame arriving at a port: the receiving node and port and a
// hash of the frame's bytes. A frame sent on a port and read on its peer
// has the same key on both sides, which is how the runtime follows a
// frame across a veth (its lineage) without carrying anything in it.
type Key struct {
	Node string
	Port int
	Hash uint64
}

// Record is one trace event with its lineage: Prev is the index (in
// Trace) of the device before it on the frame's path, -1 at the start or
// when the frame came from outside the runtime (From is then set: the key
// under which the caller can find the frame's origin).
type Record struct {
	datapath.Event
	Prev int32
	ARP  bool
	From *Key
}

// Egress is a probe frame sent to a port whose peer is not a node of the
// runtime (an instance's kernel stack): Head is the trace index of the
// last device before it.
type Egress struct {
	Key
	Head  int32
	Time  time.Duration
	Probe uint64
}

type port struct {
	name    string // interface name
	fd      int
	tok     uint64
	tx      *txQueue
	ring    *RxRing // nil: read with recvmmsg
	kern    kernelSide
	up      bool // the link is up (SetLinkState)
	delay   time.Duration
	held    []heldFrame // sent, waiting out the link delay (due times ascend)
	peer    datapath.PortRef
	hasPeer bool
}

// heldFrame is a frame a node sent on a port with link delay, sent to
// the socket when its time comes (monotonic ns).
type heldFrame struct {
	due   int64
	frame []byte
}

type nodeRun struct {
	r     *Runtime
	n     datapath.Node
	name  string
	ns    vnetns.NsHandle
	ports []*port
	byTok map[uint64]int
	poll  *poller
	up    atomic.Bool
	// hung: down by HangNode, its neighbours never told (changed
	// under the runtime's pause).
	hung  bool
	stop  atomic.Bool
	tid   atomic.Int32
	reads atomic.Int64 // recvmmsg calls that returned frames
	// holding is set when a port holds delayed frames; the node's
	// goroutine (or whoever holds the gate) releases them.
	holding bool
	done    chan struct{}
	rx      *batch
	out     output
	// links is a netlink handle in the node's namespace, opened at the
	// first refused send (carrierLost).
	linkMu sync.Mutex
	links  *netlink.Handle
}

// Runtime runs nodes in real time. Node calls never overlap: each node has
// one goroutine, and Mutate runs its function while no node is inside
// Receive or SetPortState.
type Runtime struct {
	opts  Options
	start time.Time
	seed  maphash.Seed
	gate  sync.RWMutex
	// pmu guards paused: how many pauses (Mutate and the like) hold the
	// gate; the first takes it, the last gives it back.
	pmu    sync.Mutex
	paused int

	mu     sync.Mutex // nodes, peers
	nodes  map[string]*nodeRun
	tokens atomic.Uint64
	closed bool

	tmu      sync.Mutex // trace, pending, egress
	trace    []Record
	byProbe  map[uint64][]int32
	egressOf map[uint64][]int32
	pending  map[Key][]int32
	egress   []Egress

	drops   sync.Map // datapath.Reason -> *atomic.Int64
	frames  atomic.Int64
	sendErr atomic.Int64
	kernel  atomic.Int64 // frames left to the nodes' kernels
	rxLost  atomic.Int64 // frames the kernel dropped on full receive rings or buffers
}

// New returns an empty runtime whose clock starts now.
func New(opts Options) *Runtime {
	if opts.ProbeID == nil {
		opts.ProbeID = func(b []byte) uint64 { id, _ := ProbeIDOf(b); return id }
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.RingBytes <= 0 {
		opts.RingBytes = 512 << 10
	}
	if opts.FrameSize <= 0 {
		opts.FrameSize = 9216
	}
	return &Runtime{opts: opts, start: time.Now(), seed: maphash.MakeSeed(),
		nodes: map[string]*nodeRun{}, pending: map[Key][]int32{}, byProbe: map[uint64][]int32{}, egressOf: map[uint64][]int32{}}
}

// Now is the time since New (monotonic).
func (r *Runtime) Now() time.Duration { return time.Since(r.start) }

// Start is the wall-clock time Now counts from; kernel timestamps convert
// to the runtime's time as ts.Sub(Start()).
func (r *Runtime) Start() time.Time { return r.start }

// AddNode starts n: for every port i with ifaces[i] != "", a socket on that
// interface inside ns. The node's goroutine runs until Close or
// RemoveNode. ifaces may be shorter than n.Ports(); ports without an
// interface drop what the node sends to them (port-down) until AttachPort.
//
// Nodes may be added side by side: each socket with a ring waits for an
// RCU grace period as it is set up, which concurrent ones share.
func (r *Runtime) AddNode(n datapath.Node, ns vnetns.NsHandle, ifaces []string) error {
	name := n.Name()
	if err := r.canAdd(name); err != nil {
		return err
	}
	p, err := newPoller()
	if err != nil {
		return fmt.Errorf("add node %q: %w", name, err)
	}
	nr := &nodeRun{r: r, n: n, name: name, ns: ns, byTok: map[uint64]int{}, poll: p,
		done: make(chan struct{}), rx: newBatch(r.opts.Batch, r.opts.FrameSize, true)}
	nr.out = output{nr: nr, head: -1, flood: -1}
	nr.up.Store(true)
	nr.ports = make([]*port, len(n.Ports()))
	// The ports' sockets open side by side: each ring's setup waits for
	// an RCU grace period, which concurrent ones share.
	opened := make([]openedPort, len(ifaces))
	errs := make([]error, len(ifaces))
	var wg sync.WaitGroup
	for i, ifn := range ifaces {
		if ifn != "" && i < len(nr.ports) {
			wg.Go(func() { opened[i], errs[i] = nr.open(ifn) })
		}
	}
	wg.Wait()
	var failed error
	for i, ifn := range ifaces {
		switch {
		case ifn == "" || i >= len(nr.ports):
		case errs[i] != nil:
			failed = cmp.Or(failed, fmt.Errorf("port %d: %w", i, errs[i]))
		case failed != nil:
			opened[i].close()
		default:
			failed = nr.adopt(i, ifn, opened[i])
		}
	}
	if failed != nil {
		// The ports before the failure are the node's; those after it
		// were closed above.
		nr.closeAll()
		return fmt.Errorf("add node %q: %w", name, failed)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.canAddLocked(name); err != nil {
		nr.closeAll()
		return err
	}
	r.nodes[name] = nr
	go nr.run()
	return nil
}

// canAdd says why a node called name cannot be added, if it cannot.
func (r *Runtime) canAdd(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.canAddLocked(name)
}

func (r *Runtime) canAddLocked(name string) error {
	if r.closed {
		return fmt.Errorf("add node %q: %w", name, ErrClosed)
	}
	if _, ok := r.nodes[name]; ok {
		return fmt.Errorf("add node %q: %w", name, ErrDuplicate)
	}
	return nil
}

// openedPort is a port's sockets, not yet the node's.
type openedPort struct {
	fd   int
	ring *RxRing
	tx   *txRing
	kern kernelSide
}

// open opens the sockets of a port on ifname. It touches nothing of nr's
// state, so a node's ports may be opened side by side.
func (nr *nodeRun) open(ifname string) (openedPort, error) {
	fd, ring, kern, err := openSocket(nr.ns, ifname, !nr.r.opts.Taps, ringSize(!nr.r.opts.NoRing, nr.r.opts.RingBytes))
	if err != nil {
		return openedPort{}, err
	}
	op := openedPort{fd: fd, ring: ring, kern: kern}
	if nr.r.opts.TxRing {
		// Without one (the kernel refused it), frames go by sendmmsg.
		if t, err := openTxRing(nr.ns, ifname, !nr.r.opts.Taps, 128<<10); err == nil {
			op.tx = t
		}
	}
	return op, nil
}

// close closes sockets that never became a port's.
func (op openedPort) close() {
	if op.tx != nil {
		op.tx.close()
	}
	if op.ring != nil {
		_ = op.ring.Close()
	}
	closeFD(op.fd)
}

// attach opens port i on ifname and makes it the node's.
func (nr *nodeRun) attach(i int, ifname string) error {
	op, err := nr.open(ifname)
	if err != nil {
		return fmt.Errorf("port %d: %w", i, err)
	}
	return nr.adopt(i, ifname, op)
}

// adopt makes the opened sockets port i's.
func (nr *nodeRun) adopt(i int, ifname string, op openedPort) error {
	tok := nr.r.tokens.Add(1)
	if err := nr.poll.add(op.fd, tok); err != nil {
		op.close()
		return fmt.Errorf("port %d (%s): %w", i, ifname, err)
	}
	p := nr.ports[i]
	if p == nil {
		p = &port{up: true}
		nr.ports[i] = p
	}
	p.name, p.fd, p.tok, p.ring, p.kern = ifname, op.fd, tok, op.ring, op.kern
	p.tx = newTxQueue(op.fd, nr.r.opts.Batch, nr.r.opts.FrameSize)
	p.tx.ring = op.tx
	nr.byTok[tok] = i
	return nil
}

func (nr *nodeRun) detach(i int) {
	if op, ok := nr.unplug(i); ok {
		op.close()
	}
}

// unplug takes port i's sockets from the node (which forgets them) and
// returns them to be closed.
func (nr *nodeRun) unplug(i int) (openedPort, bool) {
	p := nr.ports[i]
	if p == nil || p.fd == 0 {
		return openedPort{}, false
	}
	nr.poll.remove(p.fd)
	nr.r.rxLost.Add(int64(SocketDrops(p.fd)))
	op := openedPort{fd: p.fd, ring: p.ring}
	if p.tx != nil {
		op.tx = p.tx.ring
	}
	delete(nr.byTok, p.tok)
	p.fd, p.tok, p.tx, p.name, p.ring, p.kern = 0, 0, nil, "", nil, kernelSide{}
	return op, true
}

// closeAll closes every port, side by side (each socket with a ring waits
// for an RCU grace period as it closes), and the poller.
func (nr *nodeRun) closeAll() {
	var wg sync.WaitGroup
	for i := range nr.ports {
		if op, ok := nr.unplug(i); ok {
			wg.Go(op.close)
		}
	}
	wg.Wait()
	nr.poll.close()
	nr.linkMu.Lock()
	if nr.links != nil {
		nr.links.Close()
		nr.links = nil
	}
	nr.linkMu.Unlock()
}

func (r *Runtime) node(name string) (*nodeRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nr, ok := r.nodes[name]
	if !ok {
		return nil, fmt.Errorf("node %q: %w", name, ErrUnknownNode)
	}
	return nr, nil
}

// AttachPort opens port of a running node on interface ifname (an
// instance wired after the node started).
//
// AttachPort, DetachPort, Connect, Do, SetLinkState and SetNodeState wait
// for the nodes to be idle themselves: never call them inside Mutate.
func (r *Runtime) AttachPort(node string, port int, ifname string) error {
	nr, err := r.node(node)
	if err != nil {
		return fmt.Errorf("attach port: %w", err)
	}
	defer r.Pause()()
	if port < 0 || port >= len(nr.n.Ports()) {
		return fmt.Errorf("attach port %d of %s: %w", port, node, ErrBadPort)
	}
	for len(nr.ports) <= port { // the node grew a port since it started
		nr.ports = append(nr.ports, nil)
	}
	nr.detach(port)
	if err := nr.attach(port, ifname); err != nil {
		return fmt.Errorf("attach port of %s: %w", node, err)
	}
	return nil
}

// DetachPort closes port's socket and forgets its peer.
func (r *Runtime) DetachPort(node string, port int) error {
	nr, err := r.node(node)
	if err != nil {
		return fmt.Errorf("detach port: %w", err)
	}
	defer r.Pause()()
	if port < 0 || port >= len(nr.ports) {
		return fmt.Errorf("detach port %d of %s: %w", port, node, ErrBadPort)
	}
	nr.detach(port)
	if p := nr.ports[port]; p != nil {
		p.hasPeer = false
	}
	return nil
}

// Connect records that the two ports of w face each other, so that the
// lineage of probe frames follows them from one node to the other. A port
// left unconnected has its peer outside the runtime (see Egress).
func (r *Runtime) Connect(w datapath.Wire) error {
	defer r.Pause()()
	for _, e := range [2][2]datapath.PortRef{{w.A, w.B}, {w.B, w.A}} {
		nr, err := r.node(e[0].Node)
		if err != nil {
			continue // the kernel's side: an instance
		}
		if e[0].Port < 0 || e[0].Port >= len(nr.ports) {
			return fmt.Errorf("connect %s:%d: %w", e[0].Node, e[0].Port, ErrBadPort)
		}
		if _, err := r.node(e[1].Node); err != nil {
			continue
		}
		p := nr.ports[e[0].Port]
		if p == nil {
			p = &port{up: true}
			nr.ports[e[0].Port] = p
		}
		p.peer, p.hasPeer = e[1], true
		p.delay = w.Delay
	}
	return nil
}

// Mutate runs f while no node is processing a frame.
//
// Calls nest: a Mutate that starts while the nodes are already paused
// runs at once, from whatever goroutine (a driver that takes the
// runtime's pause as its lock, called inside a Mutate, does so from a
// goroutine of its own). As on sim, Mutate does not order mutators
// among themselves: callers must not change the fabric concurrently.
func (r *Runtime) Mutate(f func() error) error {
	defer r.Pause()()
	return f()
}

// Pause stops the nodes (or joins a pause in progress) and returns the
// function that ends it; the nodes resume when the last pause ends.
func (r *Runtime) Pause() (resume func()) {
	r.pmu.Lock()
	if r.paused > 0 {
		r.paused++
		r.pmu.Unlock()
		return r.unpause
	}
	r.pmu.Unlock()
	r.gate.Lock()
	r.pmu.Lock()
	r.paused++
	r.pmu.Unlock()
	return r.unpause
}

func (r *Runtime) unpause() {
	r.pmu.Lock()
	r.paused--
	last := r.paused == 0
	r.pmu.Unlock()
	if last {
		r.gate.Unlock()
	}
}

// Do runs f in node's context (its Output) while the node is not
// processing, e.g. to call SetPortState. It waits for f to return.
func (r *Runtime) Do(node string, f func(now time.Duration, n datapath.Node, out datapath.Output)) error {
	nr, err := r.node(node)
	if err != nil {
		return fmt.Errorf("do: %w", err)
	}
	defer r.Pause()()
	nr.out.begin(0, -1, false)
	f(r.Now(), nr.n, &nr.out)
	nr.out.flush()
	return nil
}

// SetLinkState takes the link on ref down or up: frames sent or arriving
// on it are dropped (port-down) while it is down, and the node (and the
// peer node, if it is one of the runtime's) gets SetPortState.
func (r *Runtime) SetLinkState(ref datapath.PortRef, up bool) error {
	nr, err := r.node(ref.Node)
	if err != nil {
		return fmt.Errorf("set link state: %w", err)
	}
	if ref.Port < 0 || ref.Port >= len(nr.ports) {
		return fmt.Errorf("set link state of %s:%d: %w", ref.Node, ref.Port, ErrBadPort)
	}
	defer r.Pause()()
	ends := []datapath.PortRef{ref}
	if p := nr.ports[ref.Port]; p != nil && p.hasPeer {
		ends = append(ends, p.peer)
	}
	for _, e := range ends {
		n, err := r.node(e.Node)
		if err != nil {
			continue
		}
		p := n.ports[e.Port]
		if p == nil {
			p = &port{}
			n.ports[e.Port] = p
		}
		if p.up == up {
			continue
		}
		p.up = up
		if n.up.Load() {
			n.out.begin(0, -1, false)
			n.n.SetPortState(r.Now(), e.Port, up, &n.out)
			n.out.flush()
		}
	}
	return nil
}

// SetNodeState fails (up false) or restores a node: while down it reads
// and drops every frame (node-down); its neighbours among the runtime's
// nodes get SetPortState on the ports facing it. Its state is kept.
func (r *Runtime) SetNodeState(name string, up bool) error {
	nr, err := r.node(name)
	if err != nil {
		return fmt.Errorf("set node state: %w", err)
	}
	defer r.Pause()()
	if nr.up.Load() == up {
		return nil
	}
	nr.up.Store(up)
	if nr.hung {
		// Its neighbours never saw it go: nothing to tell them.
		nr.hung = false
		return nil
	}
	for _, p := range nr.ports {
		if p == nil || !p.hasPeer || !p.up {
			continue
		}
		peer, err := r.node(p.peer.Node)
		if err != nil || !peer.up.Load() {
			continue
		}
		peer.out.begin(0, -1, false)
		peer.n.SetPortState(r.Now(), p.peer.Port, up, &peer.out)
		peer.out.flush()
	}
	return nil
}

// HangNode fails a node as a hung line card fails: like SetNodeState
// it reads and drops every frame (node-down), but its neighbours are
// told nothing and their ports stay up; they notice only the silence.
// SetNodeState(name, true) brings it back.
func (r *Runtime) HangNode(name string) error {
	nr, err := r.node(name)
	if err != nil {
		return fmt.Errorf("hang node: %w", err)
	}
	defer r.Pause()()
	if !nr.up.Load() {
		return nil
	}
	nr.up.Store(false)
	nr.hung = true
	return nil
}

// RemoveNode stops a node's goroutine and closes its sockets.
func (r *Runtime) RemoveNode(name string) error {
	r.mu.Lock()
	nr, ok := r.nodes[name]
	delete(r.nodes, name)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove node %q: %w", name, ErrUnknownNode)
	}
	nr.halt()
	return nil
}

func (nr *nodeRun) halt() {
	nr.stop.Store(true)
	nr.poll.wake()
	<-nr.done
	nr.closeAll()
}

// Close stops every node and closes every socket.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	nodes := slices.Collect(maps.Values(r.nodes))
	r.nodes = map[string]*nodeRun{}
	r.mu.Unlock()
	for _, nr := range nodes {
		nr.stop.Store(true)
		nr.poll.wake()
	}
	// Each socket with a ring waits for an RCU grace period as it
	// closes: nodes close theirs side by side, so that they share them.
	var wg sync.WaitGroup
	for _, nr := range nodes {
		wg.Go(func() {
			<-nr.done
			nr.closeAll()
		})
	}
	wg.Wait()
	return nil
}

// run is the node's goroutine. It keeps its OS thread, which spends its
// idle time blocked in epoll_wait.
func (nr *nodeRun) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(nr.done)
	nr.tid.Store(int32(gettid()))
	r := nr.r
	toks := make([]uint64, 0, 64)
	for !nr.stop.Load() {
		var err error
		toks, err = nr.poll.wait(toks)
		if err != nil || nr.stop.Load() {
			return
		}
		r.gate.RLock()
		for _, t := range toks {
			i, ok := nr.byTok[t]
			if !ok {
				continue
			}
			// A full batch means more is waiting: read on without
			// another epoll_wait, a few batches at most so that the
			// other ports and Mutate get their turn.
			// A ring is looked at again while it yields frames (a
			// memory read); recvmmsg only after a full batch (a
			// system call).
			for range 8 {
				n := nr.drain(i)
				if n == 0 || n < len(nr.rx.msgs) && !nr.hasRing(i) {
					break
				}
				nr.out.flush()
			}
		}
		nr.out.flush()
		r.gate.RUnlock()
	}
}

// drain reads one batch from port i (from its ring, or with recvmmsg),
// hands the frames to the node and returns how many it read.
func (nr *nodeRun) drain(i int) int {
	p := nr.ports[i]
	if p == nil || p.fd == 0 {
		return 0
	}
	if p.ring != nil {
		n := p.ring.Drain(len(nr.rx.msgs), func(f RxFrame) { nr.handle(i, p, f.Data, nr.stamp(f)) })
		if n > 0 {
			nr.r.frames.Add(int64(n))
			nr.reads.Add(1)
		} else {
			// Woken with nothing to read: a pending socket error (the
			// link went down), which only reading it clears.
			clearSocketError(p.fd)
		}
		return n
	}
	n, err := nr.rx.recv(p.fd)
	if err != nil || n == 0 {
		return 0
	}
	nr.r.frames.Add(int64(n))
	nr.reads.Add(1)
	for k := range n {
		nr.handle(i, p, nr.rx.frame(k), nr.r.Now())
	}
	return n
}

func ringSize(on bool, n int) int {
	if !on {
		return 0
	}
	return n
}

func (nr *nodeRun) hasRing(i int) bool { return nr.ports[i] != nil && nr.ports[i].ring != nil }

// stamp is when the kernel received f on the node's port (the ring's
// timestamp, the time a capture on that interface would show) on the
// runtime's clock, so that a node's trace events are timed where the frame
// reached the node, not when its goroutine got to it; the runtime's clock
// when the ring has no timestamp or one from before the runtime began.
func (nr *nodeRun) stamp(f RxFrame) time.Duration {
	if f.hdr.Sec == 0 {
		return nr.r.Now()
	}
	at := f.Time().Sub(nr.r.start)
	if at < 0 || at > nr.r.Now() {
		return nr.r.Now()
	}
	return at
}

// handle gives one frame read on port i at time now to the node.
func (nr *nodeRun) handle(i int, p *port, b []byte, now time.Duration) {
	if len(b) < 14 {
		return
	}
	r := nr.r
	if p.kern.owns(b) {
		// The node's kernel got it through its own stack.
		r.kernel.Add(1)
		return
	}
	probe := r.opts.ProbeID(b)
	arp := isARP(b)
	var head int32 = -1
	var from *Key
	if probe != 0 {
		key := Key{Node: nr.name, Port: i, Hash: maphash.Bytes(r.seed, b)}
		if !p.hasPeer {
			from = &key
		} else {
			head = r.popPending(key)
		}
	}
	o := &nr.out
	o.begin(probe, head, arp)
	o.now = now
	o.from = from
	switch {
	case !p.up:
		o.linkDrop(i, false, datapath.ReasonPortDown, "userspace:link-down")
	case !nr.up.Load():
		o.linkDrop(i, false, datapath.ReasonNodeDown, "userspace:node-down")
	default:
		nr.n.Receive(now, i, b, o)
	}
}

// isARP reports whether a raw frame is address resolution: ARP or IPv6
// neighbour discovery.
func isARP(b []byte) bool { return frame.IsResolution(b) }

func (r *Runtime) popPending(k Key) int32 {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	q := r.pending[k]
	if len(q) == 0 {
		return -1
	}
	h := q[0]
	if len(q) == 1 {
		delete(r.pending, k)
	} else {
		r.pending[k] = q[1:]
	}
	return h
}

func (r *Runtime) countDrop(reason datapath.Reason) {
	v, ok := r.drops.Load(reason)
	if !ok {
		v, _ = r.drops.LoadOrStore(reason, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// output is a node's datapath.Output; it tracks the lineage of the frame
// being processed as sim does (stack.Resumer included).
type output struct {
	nr      *nodeRun
	now     time.Duration
	probe   uint64
	head    int32
	flood   int32
	arp     bool
	from    *Key
	pending []int // ports with queued frames
}

var (
	_ datapath.Output = (*output)(nil)
	_ stack.Resumer   = (*output)(nil)
)

func (o *output) begin(probe uint64, head int32, arp bool) {
	o.now = o.nr.r.Now()
	o.probe, o.head, o.flood, o.arp, o.from = probe, head, -1, arp, nil
}

// Context implements stack.Resumer.
func (o *output) Context() stack.Context {
	ref := int64(uint32(o.head))
	if o.arp {
		ref |= 1 << 32
	}
	return stack.Context{Probe: o.probe, Ref: ref}
}

// Resume implements stack.Resumer.
func (o *output) Resume(c stack.Context) {
	o.probe, o.head, o.arp, o.flood, o.from = c.Probe, int32(uint32(c.Ref)), c.Ref&(1<<32) != 0, -1, nil
}

// Forward implements datapath.Output: the socket or ring takes a copy
// anyway, as Send.
func (o *output) Forward(i int, b []byte) { o.Send(i, b) }

// Send implements datapath.Output.
func (o *output) Send(i int, b []byte) {
	nr := o.nr
	r := nr.r
	head := o.head
	if o.flood >= 0 {
		o.head = o.flood
	}
	if i < 0 || i >= len(nr.ports) || nr.ports[i] == nil || nr.ports[i].tx == nil {
		o.linkDropAt(i, true, datapath.ReasonPortDown, "userspace:unwired", head)
		return
	}
	p := nr.ports[i]
	if !p.up {
		o.linkDropAt(i, true, datapath.ReasonPortDown, "userspace:link-down", head)
		return
	}
	if p.tx.pending() == 0 {
		o.pending = append(o.pending, i)
	}
	if o.probe != 0 && r.opts.ProbeID(b) == o.probe {
		// Register the frame's lineage before it can reach the peer (a
		// frame that is not the probe's own, such as an ARP request it
		// triggered, is not followed: the peer will not look for it).
		if p.hasPeer {
			k := Key{Node: p.peer.Node, Port: p.peer.Port, Hash: maphash.Bytes(r.seed, b)}
			r.tmu.Lock()
			r.pending[k] = append(r.pending[k], head)
			r.tmu.Unlock()
		} else {
			e := Egress{Key: Key{Node: nr.name, Port: i, Hash: maphash.Bytes(r.seed, b)}, Head: head, Time: o.now, Probe: o.probe}
			r.tmu.Lock()
			r.egressOf[o.probe] = append(r.egressOf[o.probe], int32(len(r.egress)))
			r.egress = append(r.egress, e)
			r.tmu.Unlock()
		}
	}
	if p.delay > 0 {
		// The link's delay (which netem would add on a kernel link):
		// the frame waits in the node's timer queue.
		p.held = append(p.held, heldFrame{due: monoNow() + int64(p.delay), frame: append([]byte(nil), b...)})
		nr.holding = true
		return
	}
	ok, err := p.tx.add(b)
	if err != nil {
		nr.refused(p)
	}
	if !ok {
		o.linkDropAt(i, true, datapath.ReasonQueueFull, "userspace:frame-too-large", head)
	}
}

// release moves held frames that are due to their ports' queues and arms
// the timer for the next one.
func (nr *nodeRun) release() {
	if !nr.holding {
		return
	}
	now := monoNow()
	next := int64(0)
	for i, p := range nr.ports {
		if p == nil || len(p.held) == 0 {
			continue
		}
		k := 0
		for ; k < len(p.held) && p.held[k].due <= now; k++ {
			if p.tx == nil || !p.up {
				continue // unwired or down meanwhile: lost with the link
			}
			if p.tx.pending() == 0 {
				nr.out.pending = append(nr.out.pending, i)
			}
			if _, err := p.tx.add(p.held[k].frame); err != nil {
				nr.refused(p)
			}
		}
		p.held = p.held[k:]
		if len(p.held) > 0 && (next == 0 || p.held[0].due < next) {
			next = p.held[0].due
		}
	}
	nr.holding = next != 0
	nr.poll.arm(next)
}

// refused accounts for the frames the kernel refused on port p. When
// its interface is down or has lost carrier (a neighbour lost power and
// the node has not yet seen its port go down) they are lost with the
// link, as sim has them; else they are send errors, unexplained.
func (nr *nodeRun) refused(p *port) {
	n := p.tx.takeRefused()
	if n == 0 {
		return
	}
	if nr.carrierLost(p) {
		for range n {
			nr.r.countDrop(datapath.ReasonPortDown)
		}
		return
	}
	nr.r.sendErr.Add(int64(n))
}

// carrierLost tells whether port p's interface is down or has lost
// carrier, as the kernel has it now. It asks netlink in the node's
// namespace: the SIOCGIFFLAGS ioctl cannot carry IFF_LOWER_UP, and its
// IFF_RUNNING follows the carrier only once the kernel's link watcher
// has run, after the send was refused.
func (nr *nodeRun) carrierLost(p *port) bool {
	nr.linkMu.Lock()
	defer nr.linkMu.Unlock()
	if nr.links == nil {
		h, err := netlink.NewHandleAt(nr.ns)
		if err != nil {
			return false
		}
		nr.links = h
	}
	l, err := nr.links.LinkByName(p.name)
	if err != nil {
		return false
	}
	f := l.Attrs().RawFlags
	return f&unix.IFF_UP == 0 || f&unix.IFF_LOWER_UP == 0
}

// flush writes every port's queued frames.
func (o *output) flush() {
	o.nr.release()
	for _, i := range o.pending {
		p := o.nr.ports[i]
		if p == nil || p.tx == nil || p.tx.pending() == 0 {
			continue
		}
		if err := p.tx.flush(); err != nil {
			o.nr.refused(p)
		}
	}
	o.pending = o.pending[:0]
}

// Trace implements datapath.Output.
func (o *output) Trace(ev datapath.Event) {
	ev.Time = o.now
	ev.Probe = o.probe
	r := o.nr.r
	if ev.Action == datapath.ActDrop {
		r.countDrop(ev.Reason)
	}
	if o.probe == 0 {
		return
	}
	rec := Record{Event: ev, Prev: o.head, ARP: o.arp}
	if o.head < 0 && o.from != nil {
		rec.From = o.from
	}
	r.tmu.Lock()
	i := int32(len(r.trace))
	r.trace = append(r.trace, rec)
	r.byProbe[o.probe] = append(r.byProbe[o.probe], i)
	r.tmu.Unlock()
	switch ev.Action {
	case datapath.ActDrop:
	case datapath.ActFlood:
		o.head, o.flood = i, i
	default:
		o.head = i
	}
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(rec)
	}
}

func (o *output) linkDrop(port int, out bool, reason datapath.Reason, rule string) {
	o.linkDropAt(port, out, reason, rule, o.head)
}

func (o *output) linkDropAt(port int, out bool, reason datapath.Reason, rule string, head int32) {
	ev := datapath.Event{Node: o.nr.name, Kind: KindLink, Action: datapath.ActDrop, Reason: reason, Rule: rule}
	if ports := o.nr.n.Ports(); port >= 0 && port < len(ports) {
		ev.Device = ports[port]
		if out {
			ev.OutPort = ev.Device
		} else {
			ev.InPort = ev.Device
		}
	}
	saved := o.head
	o.head = head
	o.Trace(ev)
	o.head = saved
}

// Trace returns a copy of the recorded probe trace.
func (r *Runtime) Trace() []Record {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	return append([]Record(nil), r.trace...)
}

// TraceOf returns the records of probe id and their indices in Trace
// (which Prev refers to).
func (r *Runtime) TraceOf(id uint64) ([]Record, []int32) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	idx := append([]int32(nil), r.byProbe[id]...)
	recs := make([]Record, len(idx))
	for k, i := range idx {
		recs[k] = r.trace[i]
	}
	return recs, idx
}

// Hash is the hash of a frame's bytes that Key carries.
func (r *Runtime) Hash(b []byte) uint64 { return maphash.Bytes(r.seed, b) }

// Egress returns a copy of the probe frames sent to peers outside the
// runtime.
func (r *Runtime) Egress() []Egress {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	return append([]Egress(nil), r.egress...)
}

// EgressOf returns the egress log of probe id.
func (r *Runtime) EgressOf(id uint64) []Egress {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	out := make([]Egress, 0, len(r.egressOf[id]))
	for _, i := range r.egressOf[id] {
		out = append(out, r.egress[i])
	}
	return out
}

// ResetTrace forgets the recorded trace and egress log.
func (r *Runtime) ResetTrace() {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	r.trace, r.egress = nil, nil
	clear(r.pending)
	clear(r.byProbe)
	clear(r.egressOf)
}

// Stats are the runtime's counters.
type Stats struct {
	Frames     int64            // frames read
	SendErrors int64            // frames the kernel refused
	Drops      map[string]int64 // traced drops by reason
	// RxFull counts the frames the kernel dropped because a port's
	// receive ring (or socket buffer) was full: a node that could not keep
	// up, as a switch's ingress buffer overflows.
	RxFull int64
	// Kernel counts the frames left to the nodes' own kernels (addressed
	// to a port's interface MAC, or ARP for its addresses), neither
	// forwarded nor traced.
	Kernel int64
}

// Stats returns the counters. It pauses the nodes for a moment, to read
// their sockets' drop counters.
func (r *Runtime) Stats() Stats {
	resume := r.Pause()
	r.mu.Lock()
	for _, nr := range r.nodes {
		for _, p := range nr.ports {
			if p != nil && p.fd != 0 {
				r.rxLost.Add(int64(SocketDrops(p.fd)))
			}
		}
	}
	r.mu.Unlock()
	resume()
	s := Stats{Frames: r.frames.Load(), SendErrors: r.sendErr.Load(), RxFull: r.rxLost.Load(), Kernel: r.kernel.Load(), Drops: map[string]int64{}}
	r.drops.Range(func(k, v any) bool {
		s.Drops[string(k.(datapath.Reason))] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// Nodes returns the names of the running nodes, sorted.
func (r *Runtime) Nodes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
