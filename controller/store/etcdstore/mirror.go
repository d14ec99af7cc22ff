package etcdstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// mirror is a Store's in-memory copy of its data keys, kept current
// by a watch: transactions read it instead of etcd, and their commit
// compares what they read with etcd's revisions. It is consistent at rev:
// every change up to rev is applied, none after.
type mirror struct {
	mu      sync.RWMutex // guards buckets and rev
	rev     int64
	buckets map[string]*mbucket

	seenMu sync.Mutex
	seen   int64         // rev once the change callbacks ran; what waiters wait for
	seenCh chan struct{} // closed and replaced when seen grows
}

// mbucket is one bucket: its keys in order and their values.
type mbucket struct {
	keys []string
	vals map[string]mval
}

type mval struct {
	v   []byte
	mod int64 // etcd ModRevision
}

func newMirror() *mirror {
	return &mirror{buckets: map[string]*mbucket{}, seenCh: make(chan struct{})}
}

func (m *mirror) get(bucket, key string) (mval, bool) {
	b := m.buckets[bucket]
	if b == nil {
		return mval{}, false
	}
	v, ok := b.vals[key]
	return v, ok
}

// set puts or (v nil) deletes key, returning the value it had.
func (m *mirror) set(bucket, key string, v []byte, mod int64) (old []byte) {
	b := m.buckets[bucket]
	if b == nil {
		if v == nil {
			return nil
		}
		b = &mbucket{vals: map[string]mval{}}
		m.buckets[bucket] = b
	}
	prev, had := b.vals[key]
	switch {
	case v == nil && had:
		delete(b.vals, key)
		if i, ok := slices.BinarySearch(b.keys, key); ok {
			b.keys = slices.Delete(b.keys, i, i+1)
		}
	case v != nil && !had:
		// New keys mostly sort last (time-ordered IDs, rising addresses).
		if n := len(b.keys); n == 0 || b.keys[n-1] < key {
			b.keys = append(b.keys, key)
		} else {
			i, _ := slices.BinarySearch(b.keys, key)
			b.keys = slices.Insert(b.keys, i, key)
		}
		fallthrough
	case v != nil:
		b.vals[key] = mval{v: v, mod: mod}
	}
	return prev.v
}

// scan calls fn for the keys of bucket in [start, end) (end "" = no end),
// in order, until fn returns false.
func (m *mirror) scan(bucket, start, end string, fn func(k string, v mval) bool) {
	b := m.buckets[bucket]
	if b == nil {
		return
	}
	i, _ := slices.BinarySearch(b.keys, start)
	for ; i < len(b.keys); i++ {
		k := b.keys[i]
		if end != "" && k >= end {
			return
		}
		if !fn(k, b.vals[k]) {
			return
		}
	}
}

// reset replaces the contents (after a reload).
// size is the number of keys the mirror holds; the caller holds mu.
func (m *mirror) size() int {
	n := 0
	for _, b := range m.buckets {
		n += len(b.keys)
	}
	return n
}

func (m *mirror) reset(rev int64) {
	m.buckets = map[string]*mbucket{}
	m.rev = rev
}

// publish records that every change up to rev is applied and its callbacks
// ran, waking waiters.
func (m *mirror) publish(rev int64) {
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	if rev <= m.seen {
		return
	}
	m.seen = rev
	close(m.seenCh)
	m.seenCh = make(chan struct{})
}

// wait blocks until the mirror has published rev, or ctx ends; every
// `nudge` while waiting it calls poke (which asks etcd for a progress
// report when no change of ours moves the revision).
func (m *mirror) wait(ctx context.Context, rev int64, nudge time.Duration, poke func()) error {
	t := time.NewTimer(nudge)
	defer t.Stop()
	for {
		m.seenMu.Lock()
		seen, ch := m.seen, m.seenCh
		m.seenMu.Unlock()
		if seen >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			poke()
			t.Reset(nudge)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// prefixEnd returns the least string greater than every string starting
// with p ("" when there is none).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

func splitDataKey(k string) (bucket, key string, ok bool) {
	return strings.Cut(k, "/")
}
