package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltOptions tune a Bolt store. The zero value is durable and suitable.
type BoltOptions struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// live process before failing with ErrLocked. Default 2s. A process
	// killed with SIGKILL releases its lock with its file descriptors, so a
	// store it left behind opens at once.
	LockTimeout time.Duration
	// MaxBatchSize caps the writers committed together. Default 1000.
	MaxBatchSize int
	// NoBatch commits each Update on its own (db.Update) instead of batching:
	// fine for a single writer, far lower throughput for many.
	NoBatch bool
	// BoltBatch batches with bbolt's own DB.Batch instead of the store's
	// group commit (kept to compare; see docs/bench/controller.md).
	// MaxBatchDelay is then how long a batch waits for company (default 1ms).
	BoltBatch     bool
	MaxBatchDelay time.Duration
	// NoSync skips fsync on commit: fast, not durable. For benchmarks that
	// want to compare; never for a real controller.
	NoSync bool
}

// Bolt is the default Store: one bbolt file, each Update a durable commit.
// Concurrent Updates are group-committed: one committer goroutine takes every
// Update waiting when the previous commit finishes and runs them in one
// transaction and one fsync, so the batch grows with the load and a lone
// writer waits for nobody.
type Bolt struct {
	db        *bolt.DB
	noBatch   bool
	boltBatch bool
	maxBatch  int

	mu     sync.RWMutex // held shared while enqueueing, exclusively by Close
	closed atomic.Bool
	reqs   chan *call
	done   chan struct{} // committer exited

	statMu  sync.Mutex
	commits uint64
	updates uint64
	recent  [statWindow]commitStat // ring of the last commits
}

// statWindow is how many recent commits Stats describes.
const statWindow = 4096

type commitStat struct {
	dur  time.Duration
	size int
}

// BoltStats describes the group commit: how many commits and updates, and
// over the last commits (up to 4096) the batch size and commit time.
type BoltStats struct {
	Commits, Updates                uint64
	BatchP50, BatchP90, BatchMax    int
	CommitP50, CommitP99, CommitMax time.Duration
}

// Stats returns the group commit's figures (zero with NoBatch or BoltBatch).
func (b *Bolt) Stats() BoltStats {
	b.statMu.Lock()
	st := BoltStats{Commits: b.commits, Updates: b.updates}
	n := int(min(b.commits, statWindow))
	durs := make([]time.Duration, n)
	sizes := make([]int, n)
	for i := range n {
		durs[i], sizes[i] = b.recent[i].dur, b.recent[i].size
	}
	b.statMu.Unlock()
	if n == 0 {
		return st
	}
	slices.Sort(durs)
	slices.Sort(sizes)
	st.BatchP50, st.BatchP90, st.BatchMax = sizes[n/2], sizes[n*9/10], sizes[n-1]
	st.CommitP50, st.CommitP99, st.CommitMax = durs[n/2], durs[n*99/100], durs[n-1]
	return st
}

type call struct {
	fn  func(*bolt.Tx) error
	err chan error
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store file at path.
func OpenBolt(path string, o BoltOptions) (*Bolt, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = time.Millisecond
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = 1000
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      o.LockTimeout,
		NoSync:       o.NoSync,
		FreelistType: bolt.FreelistMapType,
		// The freelist is rebuilt by scanning on open instead of written on
		// every commit (as etcd does): fewer pages per commit.
		NoFreelistSync: true,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w (waited %v; is another controller running on it?)", path, ErrLocked, o.LockTimeout)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open store %s: %w (check the file's owner and mode)", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.MaxBatchDelay = o.MaxBatchDelay
	db.MaxBatchSize = o.MaxBatchSize
	b := &Bolt{db: db, noBatch: o.NoBatch, boltBatch: o.BoltBatch, maxBatch: o.MaxBatchSize,
		reqs: make(chan *call, 4*o.MaxBatchSize), done: make(chan struct{})}
	go b.committer()
	return b, nil
}

// committer runs queued Updates in batches until reqs is closed.
func (b *Bolt) committer() {
	defer close(b.done)
	batch := make([]*call, 0, b.maxBatch)
	for c := range b.reqs {
		batch = append(batch[:0], c)
	fill:
		for len(batch) < b.maxBatch {
			select {
			case c, ok := <-b.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		t0 := time.Now()
		b.commit(batch)
		d := time.Since(t0)
		b.statMu.Lock()
		b.recent[b.commits%statWindow] = commitStat{dur: d, size: len(batch)}
		b.commits++
		b.updates += uint64(len(batch))
		b.statMu.Unlock()
	}
}

// commit runs batch in one transaction. A function that fails gets its own
// error (having seen the writes of those before it, which commit next) and
// the batch is retried without it.
func (b *Bolt) commit(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		var ferr error
		err := b.db.Update(func(tx *bolt.Tx) error {
			for i, c := range batch {
				if ferr = safeCall(c.fn, tx); ferr != nil {
					failed = i
					return ferr
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range batch {
				c.err <- err
			}
			return
		}
		batch[failed].err <- ferr
		batch = append(batch[:failed], batch[failed+1:]...)
	}
}

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store update panicked: %v", p)
		}
	}()
	return fn(tx)
}

// Path returns the store file's path.
func (b *Bolt) Path() string { return b.db.Path() }

// Update runs fn in a batched read-write transaction; see Store.
func (b *Bolt) Update(ctx context.Context, fn func(tx Tx) error) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bfn := func(btx *bolt.Tx) error { return fn(&boltTx{tx: btx}) }
	var err error
	switch {
	case b.noBatch:
		err = b.db.Update(bfn)
	case b.boltBatch:
		err = b.db.Batch(bfn)
	default:
		c := &call{fn: bfn, err: make(chan error, 1)}
		b.mu.RLock()
		if b.closed.Load() {
			b.mu.RUnlock()
			return ErrClosed
		}
		b.reqs <- c
		b.mu.RUnlock()
		err = <-c.err
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// View runs fn in a read-only snapshot; see Store.
func (b *Bolt) View(ctx context.Context, fn func(tx Tx) error) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.View(func(btx *bolt.Tx) error {
		return fn(&boltTx{tx: btx, ro: true})
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Close commits the Updates already queued, waits for running
// transactions and closes the file.
func (b *Bolt) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	close(b.reqs)
	b.mu.Unlock()
	<-b.done
	return b.db.Close()
}

type boltTx struct {
	tx *bolt.Tx
	ro bool
}

func (t *boltTx) Get(bucket string, key []byte) []byte {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	return bk.Get(key)
}

func (t *boltTx) Put(bucket string, key, value []byte) error {
	if t.ro {
		return ErrReadOnly
	}
	bk, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("bucket %q: %w", bucket, err)
	}
	if err := bk.Put(key, value); err != nil {
		return fmt.Errorf("put %q/%x: %w", bucket, key, err)
	}
	return nil
}

func (t *boltTx) Delete(bucket string, key []byte) error {
	if t.ro {
		return ErrReadOnly
	}
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	return bk.Delete(key)
}

func (t *boltTx) Scan(bucket string, prefix, from []byte, fn func(k, v []byte) bool) error {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	start := prefix
	if bytes.Compare(from, prefix) > 0 {
		start = from
	}
	c := bk.Cursor()
	var k, v []byte
	if len(start) == 0 {
		k, v = c.First()
	} else {
		k, v = c.Seek(start)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !fn(k, v) {
			return nil
		}
	}
	return nil
}
