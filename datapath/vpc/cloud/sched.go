package cloud

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Sched is virtual time for many actors, run one at a time: an actor runs
// until it sleeps or ends, then the actor due earliest (ties: the one that
// slept first) runs, and time jumps to its wake-up. A run with the same
// actors started in the same order is the same run, whatever the machine:
// netbed plan and the benchmarks run spawn storms of thousands of pods on
// it. It implements Clock for code called from its actors; an actor must
// not block on anything but Sleep (a mutex held by a sleeping actor would
// stop the run).
type Sched struct {
	mu      sync.Mutex
	now     time.Duration
	seq     int
	due     wakeups
	running bool
	started bool
	actors  int
	done    chan struct{}
}

type wakeup struct {
	at  time.Duration
	seq int
	ch  chan struct{}
}

type wakeups []*wakeup

func (w wakeups) Len() int { return len(w) }
func (w wakeups) Less(i, j int) bool {
	if w[i].at != w[j].at {
		return w[i].at < w[j].at
	}
	return w[i].seq < w[j].seq
}
func (w wakeups) Swap(i, j int) { w[i], w[j] = w[j], w[i] }
func (w *wakeups) Push(x any)   { *w = append(*w, x.(*wakeup)) }
func (w *wakeups) Pop() any {
	old := *w
	x := old[len(old)-1]
	*w = old[:len(old)-1]
	return x
}

// Now implements Clock.
func (s *Sched) Now() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *Sched) push(at time.Duration) *wakeup {
	s.seq++
	w := &wakeup{at: at, seq: s.seq, ch: make(chan struct{})}
	heap.Push(&s.due, w)
	return w
}

// dispatch runs the next actor if none is running.
func (s *Sched) dispatch() {
	if !s.started || s.running || len(s.due) == 0 {
		return
	}
	w := heap.Pop(&s.due).(*wakeup)
	s.now = max(s.now, w.at)
	s.running = true
	close(w.ch)
}

// Go adds f as an actor starting at the current time: from Run on, or,
// called by an actor, when that actor sleeps or ends.
func (s *Sched) Go(f func()) {
	s.mu.Lock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	s.actors++
	w := s.push(s.now)
	s.dispatch()
	s.mu.Unlock()
	go func() {
		<-w.ch
		f()
		s.mu.Lock()
		s.running = false
		s.actors--
		if s.actors == 0 {
			close(s.done)
			s.done = nil
			s.started = false
		}
		s.dispatch()
		s.mu.Unlock()
	}()
}

// Run runs the actors until every one has ended (actors started by
// actors included). Then the Sched can take more actors and Run again.
func (s *Sched) Run() {
	s.mu.Lock()
	done := s.done
	s.started = true
	s.dispatch()
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Sleep implements Clock: the calling actor waits d of virtual time.
func (s *Sched) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	w := s.push(s.now + max(d, 0))
	s.running = false
	s.dispatch()
	s.mu.Unlock()
	<-w.ch
	return nil
}
