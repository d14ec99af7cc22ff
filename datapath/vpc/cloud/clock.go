package cloud

import (
	"context"
	"sync"
	"time"
)

// RealClock is the wall clock, for the netns runtime: Now is the time
// since NewRealClock, Sleep sleeps.
type RealClock struct{ origin time.Time }

// NewRealClock returns a wall clock starting at 0 now.
func NewRealClock() *RealClock { return &RealClock{origin: time.Now()} }

// Now implements Clock.
func (c *RealClock) Now() time.Duration { return time.Since(c.origin) }

// Sleep implements Clock.
func (c *RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StepClock is virtual time for one caller at a time: Sleep moves the
// time on at once. It is the in-memory twin of the sim runtime's clock for
// code that drives the model from one goroutine (tests, netbed plan).
type StepClock struct {
	mu  sync.Mutex
	now time.Duration
}

// Now implements Clock.
func (c *StepClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep implements Clock.
func (c *StepClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the time on by d.
func (c *StepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now += d
	}
}
