package store

import (
	"context"
	"errors"
)

// Store is the controller's persistent state: named buckets of ordered
// byte keys, read and written in transactions.
//
// Contract every implementation keeps:
//   - Update runs fn in a read-write transaction that commits atomically and
//     durably when fn returns nil and leaves nothing behind when fn returns an
//     error (that error is returned unchanged, so callers test it with
//     errors.Is). Concurrent Updates may be batched into one commit, so fn
//     may be called more than once: it must only read and write through tx,
//     set its results afresh on every call, and depend only on what it reads
//     (so that a re-run after a batch-mate's failure does the same).
//   - View runs fn in a read-only snapshot; a View never sees part of an
//     Update.
//   - Slices passed to fn (keys, values) are valid only inside fn.
//   - Buckets are created on first Put; reading a missing bucket is empty.
//   - After Close, Update and View return ErrClosed.
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
	View(ctx context.Context, fn func(tx Tx) error) error
	Close() error
}

// Tx is one transaction. A read-only Tx returns ErrReadOnly from Put and
// Delete.
type Tx interface {
	// Get returns the value of key in bucket, or nil when absent.
	Get(bucket string, key []byte) []byte
	// Put sets key to value in bucket.
	Put(bucket string, key, value []byte) error
	// Delete removes key from bucket; deleting an absent key is not an error.
	Delete(bucket string, key []byte) error
	// Scan calls fn for each key of bucket that starts with prefix and is
	// >= from (from may be nil), in key order, until fn returns false.
	Scan(bucket string, prefix, from []byte, fn func(k, v []byte) bool) error
}

// Sharded is a Tx of a store that several replicas write at once (Etcd).
// A counter every change updates (an address pool's) makes every two
// replicas' commits conflict; kept in one part per replica instead, each
// replica writes only its own part (under a key naming Shard) and reads the
// others' with Peek, which does not make its commit fail when they change
// meanwhile. The sum of the parts is then exact, each part only ever
// changed by its replica's own serialised commits.
type Sharded interface {
	// Shard names this replica's part.
	Shard() string
	// PeekGet is Get, not checked at commit.
	PeekGet(bucket string, key []byte) []byte
	// PeekScan is Scan, not checked at commit.
	PeekScan(bucket string, prefix []byte, fn func(k, v []byte) bool)
}

var (
	// ErrClosed is returned by a Store used after Close.
	ErrClosed = errors.New("store closed")
	// ErrReadOnly is returned by writes inside View.
	ErrReadOnly = errors.New("store: write in a read-only transaction")
	// ErrLocked is returned by Open when another live process holds the
	// store's file lock.
	ErrLocked = errors.New("store locked by another process")
	// ErrUnreachable is returned by a store on a server (etcdstore) that
	// does not answer in time, or has no leader to answer with.
	ErrUnreachable = errors.New("etcd unreachable")
	// ErrTooLarge is returned by an Update that needs more operations in
	// one commit than a store on a server (etcdstore) takes.
	ErrTooLarge = errors.New("transaction too large for etcd")
)

// Watcher is a Store that other processes change too: it tells of every
// committed change of a bucket, whoever made it.
type Watcher interface {
	// Watch calls fn for each key of bucket changed after Watch returns, in
	// commit order, from one goroutine: old is the value before (nil when
	// the key was created), new after (nil when deleted). The slices must
	// not be modified. fn must return quickly. stop ends the calls.
	Watch(bucket string, fn func(key, old, new []byte)) (stop func())
}

// Dump copies every key of the named buckets, for tests and debugging:
// bucket -> key -> value.
func Dump(ctx context.Context, s Store, buckets ...string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(buckets))
	err := s.View(ctx, func(tx Tx) error {
		for _, b := range buckets {
			m := map[string]string{}
			if err := tx.Scan(b, nil, nil, func(k, v []byte) bool {
				m[string(k)] = string(v)
				return true
			}); err != nil {
				return err
			}
			out[b] = m
		}
		return nil
	})
	return out, err
}
