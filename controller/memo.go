package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/netbed/netbed/controller/store"
)

// memo remembers the decoding of records that are read on every port
// create (networks and subnets): an entry is used only when the stored
// bytes are still exactly those it was decoded from, so it is never stale.
// Callers must not modify the slices inside a returned value.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]memoEntry[T]
}

type memoEntry[T any] struct {
	raw []byte
	v   T
}

// maxMemo bounds a memo; past it, the memo starts over.
const maxMemo = 4096

func (c *memo[T]) get(tx store.Tx, bucket string, id []byte) (T, bool, error) {
	var zero T
	raw := tx.Get(bucket, id)
	if raw == nil {
		return zero, false, nil
	}
	c.mu.Lock()
	e, ok := c.m[string(id)]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.v, true, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return zero, true, fmt.Errorf("decode %s/%s: %w", bucket, id, err)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxMemo {
		c.m = map[string]memoEntry[T]{}
	}
	c.m[string(id)] = memoEntry[T]{raw: bytes.Clone(raw), v: v}
	c.mu.Unlock()
	return v, true, nil
}

// indexed loads the records of bucket whose IDs the index bucket lists
// under prefix (keys prefix+ID), in index order.
func (c *memo[T]) indexed(tx store.Tx, index string, prefix []byte, bucket string) ([]T, error) {
	var ids []string
	if err := tx.Scan(index, prefix, nil, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	}); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		v, _, err := c.get(tx, bucket, []byte(id))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

var (
	networkMemo memo[Network]
	subnetMemo  memo[Subnet]
)
