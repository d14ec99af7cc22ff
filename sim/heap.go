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
	wire  int32 // evArrive: wire index; evAction: action index
	buf   int32 // frame buffer in the arena
	head  int32 // trace index of the last device on the frame's path, -1 if none
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

// queue is a binary min-heap of events ordered by (at, seq).
type queue struct{ h []event }

func (q *queue) len() int { return len(q.h) }

func (q *queue) push(e event) {
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) peek() *event { return &q.h[0] }

func (q *queue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.h[r].before(&q.h[l]) {
			m = r
		}
		if !q.h[m].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}
