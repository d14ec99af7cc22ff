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

// queue is a 4-ary min-heap of events ordered by (at, seq): half the
// depth of a binary heap and the children of a node share cache lines.
type queue struct{ h []event }

func (q *queue) len() int { return len(q.h) }

func (q *queue) push(e event) {
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

func (q *queue) peek() *event { return &q.h[0] }

func (q *queue) pop() event {
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
