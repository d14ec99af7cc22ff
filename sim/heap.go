package sim

import "time"

// Event kinds in the queue.
const (
	evArrive uint8 = iota // a frame reaches the far end of a wire
	evAction              // a scheduled function (At, Do, faults)
)

// event is one entry of the queue: a value type, no pointers, so that the
// heap is one flat slice and pushing allocates nothing once it has grown.
type event struct {
	at    time.Duration
	seq   uint64 // ties broken by scheduling order: determinism
	probe uint64
	head  int64 // trace index of the last device on the frame's path, -1 if none
	wire  int32 // evArrive: wire index; evAction: action index
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

// queue orders events by (at, seq). Events scheduled in time order (most
// of them: probes laid out in advance, frames on links of equal delay) go
// to a FIFO; the rest go to a 4-ary min-heap (half the depth of a binary
// heap, children sharing cache lines). pop takes the smaller head of the
// two, so the order is exactly (at, seq) either way.
type queue struct {
	h     []event
	fifo  []event
	fhead int
}

func (q *queue) len() int { return len(q.h) + len(q.fifo) - q.fhead }

func (q *queue) push(e event) {
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

// fromFIFO reports whether the next event is the FIFO's head.
func (q *queue) fromFIFO() bool {
	if q.fhead == len(q.fifo) {
		return false
	}
	return len(q.h) == 0 || q.fifo[q.fhead].before(&q.h[0])
}

func (q *queue) peek() *event {
	if q.fromFIFO() {
		return &q.fifo[q.fhead]
	}
	return &q.h[0]
}

func (q *queue) pop() event {
	if q.fromFIFO() {
		e := q.fifo[q.fhead]
		q.fhead++
		if q.fhead == len(q.fifo) {
			q.fifo, q.fhead = q.fifo[:0], 0
		} else if q.fhead >= 4096 && q.fhead*2 >= len(q.fifo) {
			n := copy(q.fifo, q.fifo[q.fhead:])
			q.fifo, q.fhead = q.fifo[:n], 0
		}
		return e
	}
	return q.popHeap()
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
