package netns

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// maxErrors caps how many errors a pool collects; after that it stops.
const maxErrors = 10

func workerCount(o *Options, n int) int {
	w := 2 * runtime.NumCPU()
	if o != nil && o.Workers > 0 {
		w = o.Workers
	}
	return max(1, min(w, n))
}

// pool runs jobs 0..n-1 on workers goroutines. start, run on each worker's
// goroutine, returns that worker's job function and a cleanup; this lets a
// worker hold per-goroutine state such as a locked OS thread. pool stops
// handing out jobs after the context ends or maxErrors jobs fail, and
// returns the errors joined.
func pool(ctx context.Context, n, workers int, start func() (job func(i int) error, done func(), err error)) error {
	var (
		mu   sync.Mutex
		errs []error
		next int
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || len(errs) >= maxErrors || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job, done, err := start()
			if err != nil {
				fail(err)
				return
			}
			defer done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := job(i); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil && next < n {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// simple adapts a stateless job to pool.
func simple(job func(i int) error) func() (func(int) error, func(), error) {
	return func() (func(int) error, func(), error) { return job, func() {}, nil }
}
