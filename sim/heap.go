package sim

import (
	"math/bits"
	"time"
)

// Event kinds in the queue.
const (
	evArrive uint8 = iota // a frame reaches the far end of a wire
	evAction              // a scheduled function (At, Do, faults)
	evProbe               // an instance sends a probe (Engine.Probe)
)

// event is one entry of the queue: a value type, no pointers, so that the
// heap is one flat slice and pushing allocates nothing once it has grown.
type event struct {
	at    time.Duration
	seq   uint64 // ties broken by scheduling order: determinism
	probe uint64
	head  int64 // trace index of the last device on the frame's path, -1 if none
	wire  int32 // evArrive: wire index; evAction: action index; evProbe: node index
	buf   int32 // frame buffer in the arena
	epoch uint32
	kind  uint8
	dir   uint8 // 0: A to B, 1: B to A
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// queue orders events by (at, seq). Three structures hold the events, each
// giving them out in (at, seq) order, and pop takes the smallest of their
// heads, so the order is exactly (at, seq) whichever holds what:
//
//   - a timing wheel for events due within wheelSpan of the last event
//     popped (most of them: a frame arriving after its link's serialisation
//     and delay and the next node's processing time), one FIFO per
//     nanosecond; pushes and pops cost O(1);
//   - a FIFO for later events scheduled in time order (probes laid out in
//     advance);
//   - a 4-ary min-heap for the rest (half the depth of a binary heap,
//     children sharing cache lines).
type queue struct {
	w     wheel
	h     []event
	fifo  []event
	fhead int
}

// The wheel spans 16.384 µs in 1 ns slots.
const (
	wheelBits = 14
	wheelSpan = 1 << wheelBits
	wheelMask = wheelSpan - 1
)

type wheelNode struct {
	ev   event
	next int32 // pool index + 1 of the next event in the slot; 0: last
}

// wheel is a calendar of 1 ns slots covering [base, base+wheelSpan): slot
// at&wheelMask lists, in push order (so by seq), the events due at at.
// Indices are stored +1 so that the zero wheel is empty.
type wheel struct {
	base        time.Duration // no event in the wheel is due before base
	n           int
	first, last [wheelSpan]int32
	occupied    [wheelSpan / 64]uint64 // bit per slot with events
	pool        []wheelNode
	free        []int32
}

// fits reports whether an event due at at may go in the wheel.
func (w *wheel) fits(at time.Duration) bool {
	d := at - w.base
	return d >= 0 && d < wheelSpan
}

func (w *wheel) push(e event) {
	var i int32
	if n := len(w.free); n > 0 {
		i = w.free[n-1]
		w.free = w.free[:n-1]
		w.pool[i] = wheelNode{ev: e}
	} else {
		i = int32(len(w.pool))
		w.pool = append(w.pool, wheelNode{ev: e})
	}
	s := int(uint64(e.at) & wheelMask)
	if w.last[s] == 0 {
		w.first[s] = i + 1
		w.occupied[s>>6] |= 1 << (s & 63)
	} else {
		w.pool[w.last[s]-1].next = i + 1
	}
	w.last[s] = i + 1
	w.n++
}

// next returns the slot of the earliest event, or -1 when empty. Every
// event is due in [base, base+wheelSpan), so the first occupied slot from
// base's, going round, holds it.
func (w *wheel) next() int {
	if w.n == 0 {
		return -1
	}
	s := int(uint64(w.base) & wheelMask)
	i := s >> 6
	word := w.occupied[i] &^ (1<<(s&63) - 1)
	for word == 0 {
		i = (i + 1) & (len(w.occupied) - 1)
		word = w.occupied[i]
	}
	return i<<6 | bits.TrailingZeros64(word)
}

func (w *wheel) head(s int) *event { return &w.pool[w.first[s]-1].ev }

func (w *wheel) pop(s int) event {
	i := w.first[s] - 1
	nd := &w.pool[i]
	e := nd.ev
	w.first[s] = nd.next
	if nd.next == 0 {
		w.last[s] = 0
		w.occupied[s>>6] &^= 1 << (s & 63)
	}
	w.free = append(w.free, i)
	w.n--
	return e
}

func (q *queue) len() int { return q.w.n + len(q.h) + len(q.fifo) - q.fhead }

func (q *queue) push(e event) {
	if q.w.fits(e.at) {
		q.w.push(e)
		return
	}
	if n := len(q.fifo); n == q.fhead || !e.before(&q.fifo[n-1]) {
		if q.fhead > 0 && q.fhead == n {
			q.fifo, q.fhead = q.fifo[:0], 0
		}
		q.fifo = append(q.fifo, e)
		return
	}
	q.h = append(q.h, e)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

// Where the next event is.
const (
	inWheel = iota
	inFIFO
	inHeap
)

// min returns where the next event is, the wheel slot if there, and the
// event; the queue must not be empty.
func (q *queue) min() (where, slot int, e *event) {
	where, slot = -1, q.w.next()
	if slot >= 0 {
		where, e = inWheel, q.w.head(slot)
	}
	if q.fhead < len(q.fifo) && (e == nil || q.fifo[q.fhead].before(e)) {
		where, e = inFIFO, &q.fifo[q.fhead]
	}
	if len(q.h) > 0 && (e == nil || q.h[0].before(e)) {
		where, e = inHeap, &q.h[0]
	}
	return where, slot, e
}

func (q *queue) peek() *event {
	_, _, e := q.min()
	return e
}

func (q *queue) pop() event {
	where, slot, _ := q.min()
	var e event
	switch where {
	case inWheel:
		e = q.w.pop(slot)
	case inFIFO:
		e = q.fifo[q.fhead]
		q.fhead++
		if q.fhead == len(q.fifo) {
			q.fifo, q.fhead = q.fifo[:0], 0
		} else if q.fhead >= 4096 && q.fhead*2 >= len(q.fifo) {
			n := copy(q.fifo, q.fifo[q.fhead:])
			q.fifo, q.fhead = q.fifo[:n], 0
		}
	default:
		e = q.popHeap()
	}
	// e was the earliest event: the wheel holds none due before it, so
	// its window moves up to e (never back: a caller may push into the
	// past, and such events go to the FIFO or the heap).
	if e.at > q.w.base {
		q.w.base = e.at
	}
	return e
}

func (q *queue) popHeap() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	last := h[n]
	q.h = h[:n]
	h = h[:n]
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for k := c + 1; k < end; k++ {
			if h[k].before(&h[m]) {
				m = k
			}
		}
		if !h[m].before(&last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}
