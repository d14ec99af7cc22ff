package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/btree"
)

// Memory is a Store held in the process's memory: Bolt's in-memory twin,
// for a controller that lives and dies with its process on sim (netbed
// plan spawns tens of thousands of ports through the controller, where a
// bbolt commit per call was a third of the run's CPU). It keeps the
// Store contract but durability: an Update is atomic and isolated (one
// writer at a time, and no View meanwhile), and nothing survives the
// process. Close only refuses later calls; Reopen hands out the same
// data again, as reopening Bolt's file does after a controller restart.
type Memory struct {
	d *memData
	// closed is this handle's: a Reopen makes a new handle on the same
	// data.
	closed bool
}

// memData is a Memory's buckets, each an ordered tree of keys. An Update
// writes them in place and keeps an undo log, replayed backwards when it
// fails.
type memData struct {
	mu      sync.RWMutex
	buckets map[string]*btree.BTreeG[memItem]
}

type memItem struct {
	k string
	v []byte
}

func memLess(a, b memItem) bool { return a.k < b.k }

// memUndo undoes one write: it puts old back (had) or deletes key.
type memUndo struct {
	bucket string
	old    memItem
	had    bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{d: &memData{buckets: map[string]*btree.BTreeG[memItem]{}}}
}

// Reopen returns a new open handle on m's data (m itself may be closed).
func (m *Memory) Reopen() *Memory { return &Memory{d: m.d} }

// Update runs fn in a read-write transaction; see Store. Updates run one
// at a time, each committed on its own.
func (m *Memory) Update(ctx context.Context, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	tx := &memTx{d: m.d, rw: true}
	err := memCall(fn, tx)
	if err != nil {
		for i := len(tx.undo) - 1; i >= 0; i-- {
			u := tx.undo[i]
			b := m.d.buckets[u.bucket]
			if u.had {
				b.ReplaceOrInsert(u.old)
			} else {
				b.Delete(u.old)
			}
		}
	}
	for b, t := range m.d.buckets {
		if t.Len() == 0 {
			delete(m.d.buckets, b) // as if never created
		}
	}
	return err
}

// View runs fn in a read-only snapshot; see Store.
func (m *Memory) View(ctx context.Context, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.d.mu.RLock()
	defer m.d.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return memCall(fn, &memTx{d: m.d})
}

// Close makes later Updates and Views of this handle fail with
// ErrClosed; see Reopen.
func (m *Memory) Close() error {
	m.d.mu.Lock()
	m.closed = true
	m.d.mu.Unlock()
	return nil
}

func memCall(fn func(Tx) error, tx Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store update panicked: %v", p)
		}
	}()
	return fn(tx)
}

// memTx reads and writes the buckets in place; a read-write one logs
// how to undo its writes.
type memTx struct {
	d    *memData
	rw   bool
	undo []memUndo
}

func (t *memTx) Get(bucket string, key []byte) []byte {
	b := t.d.buckets[bucket]
	if b == nil {
		return nil
	}
	it, ok := b.Get(memItem{k: string(key)})
	if !ok {
		return nil
	}
	return it.v
}

func (t *memTx) Put(bucket string, key, value []byte) error {
	if !t.rw {
		return ErrReadOnly
	}
	if len(key) == 0 {
		return fmt.Errorf("put %q: empty key", bucket)
	}
	b := t.d.buckets[bucket]
	if b == nil {
		b = btree.NewG(32, memLess)
		t.d.buckets[bucket] = b
	}
	// The caller's slices are its own again once Put returns.
	old, had := b.ReplaceOrInsert(memItem{k: string(key), v: append([]byte{}, value...)})
	if !had {
		old.k = string(key)
	}
	t.undo = append(t.undo, memUndo{bucket: bucket, old: old, had: had})
	return nil
}

func (t *memTx) Delete(bucket string, key []byte) error {
	if !t.rw {
		return ErrReadOnly
	}
	b := t.d.buckets[bucket]
	if b == nil {
		return nil
	}
	if old, had := b.Delete(memItem{k: string(key)}); had {
		t.undo = append(t.undo, memUndo{bucket: bucket, old: old, had: true})
	}
	return nil
}

// Scan walks the bucket as it was when the scan began: in a read-write
// transaction it walks a clone (copy-on-write, O(1)), so that fn may
// write to the bucket meanwhile.
func (t *memTx) Scan(bucket string, prefix, from []byte, fn func(k, v []byte) bool) error {
	b := t.d.buckets[bucket]
	if b == nil {
		return nil
	}
	if t.rw {
		b = b.Clone()
	}
	start := prefix
	if bytes.Compare(from, prefix) > 0 {
		start = from
	}
	p := string(prefix)
	b.AscendGreaterOrEqual(memItem{k: string(start)}, func(it memItem) bool {
		if !strings.HasPrefix(it.k, p) {
			return false
		}
		return fn([]byte(it.k), it.v)
	})
	return nil
}
