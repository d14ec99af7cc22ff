package ipam

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"

	"github.com/netbed/netbed/controller/store"
)

// Buckets the global IPAM keeps in the store.
const (
	// BucketAddrs maps pool ID, 0x00, address bytes to the holder.
	BucketAddrs = "ipam.addrs"
	// BucketPools maps pool ID to its cursor (last address handed out) and
	// the count of in-range addresses held.
	BucketPools = "ipam.pools"
)

// Pool is one subnet's allocation state in the store, addressed by ID.
// Addresses are handed out from Ranges; Reserve also accepts any address of
// Prefix.
type Pool struct {
	ID     string
	Prefix netip.Prefix
	Ranges []Range
}

// Size is how many addresses the ranges hold (saturating).
func (p Pool) Size() uint64 {
	var n uint64
	for _, r := range p.Ranges {
		s := r.Size()
		if n+s < n {
			return ^uint64(0)
		}
		n += s
	}
	return n
}

func (p Pool) rangeNames() []string {
	out := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		out[i] = r.String()
	}
	return out
}

func (p Pool) inRanges(a netip.Addr) bool {
	for _, r := range p.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

func addrKey(pool string, a netip.Addr) []byte {
	k := make([]byte, 0, len(pool)+1+16)
	k = append(k, pool...)
	k = append(k, 0)
	return append(k, a.AsSlice()...)
}

func addrPrefix(pool string) []byte {
	return append([]byte(pool), 0)
}

func addrFromKey(pool string, k []byte) (netip.Addr, bool) {
	return netip.AddrFromSlice(k[len(pool)+1:])
}

type poolMeta struct {
	cursor netip.Addr
	used   int64 // this shard's part: negative when it released more than it took
}

// A pool's state is one key, the pool's ID, in a store with one writer. In
// a store several replicas write at once (store.Sharded) each replica keeps
// its own part, ID 0x00 replica: its cursor, which starts at a point of the
// ranges of its own so that replicas hand out addresses from different
// places, and its count of addresses taken less those released; the pool's
// count is the sum of the parts.
func metaKey(id, shard string) []byte {
	if shard == "" {
		return []byte(id)
	}
	return []byte(id + "\x00" + shard)
}

func shardOf(tx store.Tx) (store.Sharded, string) {
	if s, ok := tx.(store.Sharded); ok {
		return s, s.Shard()
	}
	return nil, ""
}

func decodeMeta(v []byte) poolMeta {
	if len(v) < 8 {
		return poolMeta{}
	}
	m := poolMeta{used: int64(binary.BigEndian.Uint64(v[:8]))}
	m.cursor, _ = netip.AddrFromSlice(v[8:])
	return m
}

// loadMeta reads this writer's part of pool id.
func loadMeta(tx store.Tx, id string) poolMeta {
	_, shard := shardOf(tx)
	return decodeMeta(tx.Get(BucketPools, metaKey(id, shard)))
}

func saveMeta(tx store.Tx, id string, m poolMeta) error {
	_, shard := shardOf(tx)
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 24), uint64(m.used))
	if m.cursor.IsValid() {
		v = append(v, m.cursor.AsSlice()...)
	}
	return tx.Put(BucketPools, metaKey(id, shard), v)
}

// used returns how many addresses of pool id's ranges are held, given
// this writer's part own: the other parts are peeked at.
func usedWith(tx store.Tx, id string, own poolMeta) uint64 {
	total := own.used
	if sh, shard := shardOf(tx); sh != nil {
		mine := string(metaKey(id, shard))
		if v := sh.PeekGet(BucketPools, []byte(id)); v != nil {
			total += decodeMeta(v).used
		}
		sh.PeekScan(BucketPools, []byte(id+"\x00"), func(k, v []byte) bool {
			if string(k) != mine {
				total += decodeMeta(v).used
			}
			return true
		})
	}
	return uint64(max(total, 0))
}

// startCursor is where a shard's cursor starts: a point of p's ranges
// chosen by the shard's name, so that replicas allocate apart.
func startCursor(p Pool, shard string) netip.Addr {
	size := p.Size()
	if shard == "" || size == 0 {
		return netip.Addr{}
	}
	h := fnv.New64a()
	h.Write([]byte(shard))
	off := h.Sum64() % size
	for _, r := range p.Ranges {
		if off < r.Size() {
			a, _ := add(r.Start, off)
			return a
		}
		off -= r.Size()
	}
	return netip.Addr{}
}

// Holder returns who holds a in pool, or "" when nobody does.
func Holder(tx store.Tx, pool string, a netip.Addr) string {
	return string(tx.Get(BucketAddrs, addrKey(pool, a)))
}

// Used returns how many addresses of the pool's ranges are held.
func Used(tx store.Tx, p Pool) uint64 { return usedWith(tx, p.ID, loadMeta(tx, p.ID)) }

// HasRoom reports whether at least n addresses of p's ranges are free (in
// a store.Sharded, as far as the other replicas' parts last showed).
func HasRoom(tx store.Tx, p Pool, n int) bool {
	size := p.Size()
	used := Used(tx, p)
	return used <= size && size-used >= uint64(n)
}

// Allocate hands out the next free address of p after its cursor (wrapping
// around), recorded as held by holder. It returns an *ExhaustedError when p
// has none left.
func Allocate(tx store.Tx, p Pool, holder string) (netip.Addr, error) {
	if holder == "" {
		return netip.Addr{}, fmt.Errorf("allocate in pool %s: empty holder", p.ID)
	}
	m := loadMeta(tx, p.ID)
	if usedWith(tx, p.ID, m) >= p.Size() {
		return netip.Addr{}, &ExhaustedError{Pools: p.rangeNames()}
	}
	if !m.cursor.IsValid() {
		_, shard := shardOf(tx)
		m.cursor = startCursor(p, shard)
	}
	a, ok := nextFree(tx, p, m.cursor)
	if !ok {
		return netip.Addr{}, &ExhaustedError{Pools: p.rangeNames()}
	}
	if err := tx.Put(BucketAddrs, addrKey(p.ID, a), []byte(holder)); err != nil {
		return netip.Addr{}, err
	}
	m.cursor = a
	m.used++
	return a, saveMeta(tx, p.ID, m)
}

// AllocateN hands out n addresses of p to holder, all or none (the caller's
// transaction is rolled back on error).
func AllocateN(tx store.Tx, p Pool, holder string, n int) ([]netip.Addr, error) {
	if !HasRoom(tx, p, n) {
		return nil, &ExhaustedError{Pools: p.rangeNames(), Wanted: n}
	}
	out := make([]netip.Addr, 0, n)
	for range n {
		a, err := Allocate(tx, p, holder)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Reserve records a specific address of p.Prefix as held by holder. It fails
// with ErrAddressInUse when someone (even holder) already holds it.
func Reserve(tx store.Tx, p Pool, a netip.Addr, holder string) error {
	if holder == "" {
		return fmt.Errorf("reserve %v in pool %s: empty holder", a, p.ID)
	}
	if !a.IsValid() || !p.Prefix.Contains(a) {
		return fmt.Errorf("reserve %v: %w %v", a, ErrOutOfRange, p.Prefix)
	}
	k := addrKey(p.ID, a)
	if h := tx.Get(BucketAddrs, k); h != nil {
		return fmt.Errorf("reserve %v: %w (held by %s)", a, ErrAddressInUse, h)
	}
	if err := tx.Put(BucketAddrs, k, []byte(holder)); err != nil {
		return err
	}
	if p.inRanges(a) {
		m := loadMeta(tx, p.ID)
		m.used++
		return saveMeta(tx, p.ID, m)
	}
	return nil
}

// Release frees a in p. When holder is not empty it must be a's holder.
func Release(tx store.Tx, p Pool, a netip.Addr, holder string) error {
	k := addrKey(p.ID, a)
	h := tx.Get(BucketAddrs, k)
	if h == nil {
		return fmt.Errorf("release %v: %w in %v", a, ErrNotAllocated, p.Prefix)
	}
	if holder != "" && string(h) != holder {
		return fmt.Errorf("release %v: %w (held by %s, not %s)", a, ErrNotHolder, h, holder)
	}
	if err := tx.Delete(BucketAddrs, k); err != nil {
		return err
	}
	if p.inRanges(a) {
		m := loadMeta(tx, p.ID)
		if sh, _ := shardOf(tx); sh != nil || m.used > 0 {
			m.used-- // a part may go below zero; the sum does not
		}
		return saveMeta(tx, p.ID, m)
	}
	return nil
}

// ForEach calls fn for every held address of pool id in address order.
func ForEach(tx store.Tx, id string, fn func(a netip.Addr, holder string) bool) error {
	return tx.Scan(BucketAddrs, addrPrefix(id), nil, func(k, v []byte) bool {
		a, ok := addrFromKey(id, k)
		if !ok {
			return true
		}
		return fn(a, string(v))
	})
}

// DropPool forgets every address and the cursor of pool id.
func DropPool(tx store.Tx, id string) error {
	var keys [][]byte
	if err := tx.Scan(BucketAddrs, addrPrefix(id), nil, func(k, _ []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		return true
	}); err != nil {
		return err
	}
	parts := [][]byte{[]byte(id)} // the pool's state, and each replica's part
	if err := tx.Scan(BucketPools, []byte(id+"\x00"), nil, func(k, _ []byte) bool {
		parts = append(parts, append([]byte(nil), k...))
		return true
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Delete(BucketAddrs, k); err != nil {
			return err
		}
	}
	for _, k := range parts {
		if err := tx.Delete(BucketPools, k); err != nil {
			return err
		}
	}
	return nil
}

// nextFree finds the first free address after cursor, wrapping around the
// ranges once.
func nextFree(tx store.Tx, p Pool, cursor netip.Addr) (netip.Addr, bool) {
	ci := -1
	if cursor.IsValid() {
		for i, r := range p.Ranges {
			if r.Contains(cursor) {
				ci = i
				break
			}
		}
	}
	if ci < 0 {
		for _, r := range p.Ranges {
			if a, ok := firstFree(tx, p.ID, r.Start, r.End); ok {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	r := p.Ranges[ci]
	if cursor.Compare(r.End) < 0 {
		if a, ok := firstFree(tx, p.ID, cursor.Next(), r.End); ok {
			return a, true
		}
	}
	n := len(p.Ranges)
	for j := 1; j < n; j++ {
		o := p.Ranges[(ci+j)%n]
		if a, ok := firstFree(tx, p.ID, o.Start, o.End); ok {
			return a, true
		}
	}
	return firstFree(tx, p.ID, r.Start, cursor)
}

// firstFree returns the lowest address in [lo, hi] without a holder, walking
// the held keys in order from lo.
func firstFree(tx store.Tx, pool string, lo, hi netip.Addr) (netip.Addr, bool) {
	cand, past := lo, false
	_ = tx.Scan(BucketAddrs, addrPrefix(pool), addrKey(pool, lo), func(k, _ []byte) bool {
		a, ok := addrFromKey(pool, k)
		if !ok || a != cand {
			return false
		}
		if cand == hi {
			past = true
			return false
		}
		cand = cand.Next()
		return true
	})
	return cand, !past
}
