package ktrace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/netbed/netbed/datapath/kernel"
)

// Tracer is the attached programs and what they have reported so far.
// Its methods may be called from any goroutine.
type Tracer struct {
	opts    Options
	m       maps
	progs   []*ebpf.Program
	links   []link.Link
	rd      *ringbuf.Reader
	reasons dropReasons
	syms    *kallsyms

	mu     sync.Mutex
	keys   map[Key]uint64
	events map[uint64][]kernel.Event
	// watched counts each probe's watched keys; taken holds the probes
	// taken since they were last watched. Events of a probe that is
	// both unwatched and taken (a TCP probe's last ACK and RST, read
	// after the outcome was derived) are discarded.
	watched map[uint64]int
	taken   map[uint64]bool
	err     error // the reader's, once it stopped

	syncMu  sync.Mutex
	flushed chan struct{}
	// stale is set when a Sync gave up before the reader acknowledged
	// its flush: the next Sync waits for that acknowledgement first.
	stale  bool
	done   chan struct{}
	closed bool
}

// New loads the programs and attaches them to the tracepoints, which see
// every namespace. Nothing is reported until a key is watched.
func New(opts Options) (*Tracer, error) {
	opts = opts.withDefaults()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("ktrace: kernel BTF: %w", err)
	}
	l, err := loadLayout(spec)
	if err != nil {
		return nil, fmt.Errorf("ktrace: %w", err)
	}
	reasons, err := loadDropReasons(spec)
	if err != nil {
		return nil, fmt.Errorf("ktrace: %w", err)
	}
	t := &Tracer{opts: opts, reasons: reasons, syms: &kallsyms{},
		keys: map[Key]uint64{}, events: map[uint64][]kernel.Event{},
		watched: map[uint64]int{}, taken: map[uint64]bool{},
		flushed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := t.load(l); err != nil {
		t.release()
		return nil, fmt.Errorf("ktrace: %w", err)
	}
	go t.read()
	return t, nil
}

func (t *Tracer) load(l layout) error {
	var err error
	if t.m.keys, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ktrace_keys", Type: ebpf.Hash,
		KeySize: keyLen, ValueSize: 8, MaxEntries: uint32(t.opts.MaxKeys)}); err != nil {
		return fmt.Errorf("create keys map: %w", err)
	}
	if t.m.gate, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ktrace_gate", Type: ebpf.Array,
		KeySize: 4, ValueSize: 8, MaxEntries: 1}); err != nil {
		return fmt.Errorf("create gate map: %w", err)
	}
	if t.m.lost, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ktrace_lost", Type: ebpf.Array,
		KeySize: 4, ValueSize: 8, MaxEntries: 1}); err != nil {
		return fmt.Errorf("create lost map: %w", err)
	}
	if t.m.events, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ktrace_events", Type: ebpf.RingBuf,
		MaxEntries: uint32(t.opts.RingBytes)}); err != nil {
		return fmt.Errorf("create ring buffer of %d bytes: %w", t.opts.RingBytes, err)
	}
	if t.rd, err = ringbuf.NewReader(t.m.events); err != nil {
		return fmt.Errorf("read ring buffer: %w", err)
	}
	for _, h := range hooks {
		p, err := loadProgram(h, l, t.m, t.opts.VXLANPorts, t.opts.RingBytes)
		if err != nil {
			return err
		}
		t.progs = append(t.progs, p)
		lk, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attach %s to tracepoint %s: %w", h.name, h.tracepoint, err)
		}
		t.links = append(t.links, lk)
	}
	return nil
}

// Watch reports from now on every packet that matches k or its answer as
// an event of probe. Watching a key again gives it the new probe.
func (t *Tracer) Watch(k Key, probe uint64) error {
	b, err := k.marshal()
	if err != nil {
		return fmt.Errorf("ktrace: watch: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("ktrace: watch %v: %w", k, ErrClosed)
	}
	if err := t.m.keys.Put(b[:], probe); err != nil {
		return fmt.Errorf("ktrace: watch %v: %w", k, err)
	}
	if old, ok := t.keys[k]; ok {
		t.unwatched(old)
	}
	t.keys[k] = probe
	t.watched[probe]++
	delete(t.taken, probe)
	return t.setGate()
}

// Unwatch stops matching k; the events already reported stay. Unwatching
// a key that is not watched does nothing.
func (t *Tracer) Unwatch(k Key) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	probe, ok := t.keys[k]
	if !ok || t.closed {
		return nil
	}
	b, _ := k.marshal()
	if err := t.m.keys.Delete(b[:]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("ktrace: unwatch %v: %w", k, err)
	}
	delete(t.keys, k)
	t.unwatched(probe)
	return t.setGate()
}

// unwatched counts one key of probe less (t.mu held).
func (t *Tracer) unwatched(probe uint64) {
	if t.watched[probe]--; t.watched[probe] > 0 {
		return
	}
	delete(t.watched, probe)
	if t.taken[probe] {
		delete(t.events, probe)
	}
}

// store keeps ev for probe, unless probe is finished (t.mu held).
func (t *Tracer) store(probe uint64, ev kernel.Event) {
	if t.watched[probe] == 0 && t.taken[probe] {
		return
	}
	t.events[probe] = append(t.events[probe], ev)
}

// setGate tells the programs how many keys are watched (t.mu held).
func (t *Tracer) setGate() error {
	if err := t.m.gate.Put(uint32(0), uint64(len(t.keys))); err != nil {
		return fmt.Errorf("ktrace: gate: %w", err)
	}
	return nil
}

// Sync returns once every event the kernel reported before the call is
// in Events. Packets still in flight are not waited for.
func (t *Tracer) Sync(ctx context.Context) error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return fmt.Errorf("ktrace: sync: %w", ErrClosed)
	}
	if t.stale {
		if err := t.flushDone(ctx); err != nil {
			return err
		}
	}
	if err := t.rd.Flush(); err != nil {
		return fmt.Errorf("ktrace: sync: %w", err)
	}
	return t.flushDone(ctx)
}

// flushDone waits for the reader to acknowledge a flush (t.syncMu held).
func (t *Tracer) flushDone(ctx context.Context) error {
	t.stale = true
	select {
	case <-t.flushed:
		t.stale = false
		return nil
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.err != nil {
			return fmt.Errorf("ktrace: sync: %w", t.err)
		}
		return fmt.Errorf("ktrace: sync: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("ktrace: sync: %w", ctx.Err())
	}
}

// Events returns probe's events read so far, in the kernel's time order.
// The kernel wakes the reader only when its ring is half full: call Sync
// first to have every event reported until then.
func (t *Tracer) Events(probe uint64) []kernel.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sorted(t.events[probe])
}

// Take returns probe's events, as Events does (after Sync), and forgets
// them. Once probe is taken and none of its keys is watched, its events
// still in the ring buffer are discarded.
func (t *Tracer) Take(probe uint64) []kernel.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	evs := t.events[probe]
	delete(t.events, probe)
	t.taken[probe] = true
	return sorted(evs)
}

func sorted(evs []kernel.Event) []kernel.Event {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b kernel.Event) int {
		switch {
		case a.Nanos < b.Nanos:
			return -1
		case a.Nanos > b.Nanos:
			return 1
		}
		return 0
	})
	return out
}

// Lost is how many events the ring buffer had no room for.
func (t *Tracer) Lost() (uint64, error) {
	var n uint64
	if err := t.m.lost.Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("ktrace: lost: %w", err)
	}
	return n, nil
}

// Close detaches the programs and frees them and their maps. Calling it
// again does nothing; other methods then return ErrClosed.
func (t *Tracer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	err := t.release()
	<-t.done
	return err
}

// release detaches and frees everything New made.
func (t *Tracer) release() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	for _, p := range t.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range []*ebpf.Map{t.m.keys, t.m.gate, t.m.lost, t.m.events} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ktrace: close: %w", err)
	}
	return nil
}

// read delivers the ring buffer's records until Close.
func (t *Tracer) read() {
	defer close(t.done)
	var rec ringbuf.Record
	for {
		err := t.rd.ReadInto(&rec)
		switch {
		case errors.Is(err, ringbuf.ErrFlushed):
			select {
			case t.flushed <- struct{}{}:
			default:
			}
			continue
		case errors.Is(err, ringbuf.ErrClosed):
			return
		case err != nil:
			t.mu.Lock()
			t.err = err
			t.mu.Unlock()
			return
		}
		r, err := decodeRecord(rec.RawSample)
		if err != nil {
			continue
		}
		if ev, ok := t.event(r); ok {
			t.mu.Lock()
			t.store(r.probe, ev)
			t.mu.Unlock()
		}
	}
}

// event names r's device and drop reason; it is false for a namespace
// the resolver does not know (another lab's, the host's).
func (t *Tracer) event(r record) (kernel.Event, bool) {
	ev := kernel.Event{Out: r.kind == kindXmit, Reply: r.reply(), Encap: r.flags&flagEncap != 0,
		TCPFlags: r.tcpFlags, Nanos: r.nanos}
	if t.opts.Resolver != nil {
		node, iface, ok := t.opts.Resolver.Resolve(r.netns, r.ifindex)
		if !ok {
			return ev, false
		}
		ev.Node, ev.Iface = node, iface
	} else {
		ev.Node = fmt.Sprintf("netns:%d", r.netns)
		if r.ifindex != 0 {
			ev.Iface = fmt.Sprintf("if%d", r.ifindex)
		}
	}
	if r.kind == kindDrop {
		ev.Drop = &kernel.Drop{Node: ev.Node, Iface: ev.Iface, Reason: t.reasons.name(r.reason), Func: t.syms.name(r.location)}
	}
	return ev, true
}
