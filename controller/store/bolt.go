package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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
	// MaxBatchDelay is how long the first writer of a batch waits for others
	// to join it before committing. Default 1ms.
	MaxBatchDelay time.Duration
	// MaxBatchSize caps the writers committed together. Default 1000.
	MaxBatchSize int
	// NoBatch commits each Update on its own (db.Update) instead of batching:
	// lower latency for a single writer, far lower throughput for many.
	NoBatch bool
	// NoSync skips fsync on commit: fast, not durable. For benchmarks that
	// want to compare; never for a real controller.
	NoSync bool
}

// Bolt is the default Store: one bbolt file, each Update a durable commit,
// concurrent Updates batched into one commit by bbolt's DB.Batch.
type Bolt struct {
	db      *bolt.DB
	noBatch bool
	closed  atomic.Bool
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
	return &Bolt{db: db, noBatch: o.NoBatch}, nil
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
	commit := b.db.Batch
	if b.noBatch {
		commit = b.db.Update
	}
	err := commit(func(btx *bolt.Tx) error {
		return fn(&boltTx{tx: btx})
	})
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

// Close waits for running transactions and closes the file.
func (b *Bolt) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
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
