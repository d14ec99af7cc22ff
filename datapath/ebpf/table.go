package ebpf

import "math/bits"

// table is the store of a HashMap whose key type has a hash function
// here (hasherOf): open addressing with linear probing over one array of
// slots, each holding its key and value side by side (a lookup touches
// one slot, where a Go map reads a control word and then the slot), and
// backward-shift deletion, so no tombstones. It keeps at most 3/4 of its
// slots full and doubles when an insert would pass that.
//
// The conntrack map is the one that needs it: every new flow inserts,
// and on the simulator's all-pairs runs its lookups and inserts were a
// fifth of the CPU time with a Go map.
type table[K comparable, V any] struct {
	slots []slot[K, V]
	n     int
	hash  func(K) uint64
}

type slot[K comparable, V any] struct {
	k    K
	v    V
	used bool
}

const tableMinSlots = 8

// home returns k's first slot (len(t.slots) is a power of two).
func (t *table[K, V]) home(k K) int {
	return int(t.hash(k) & uint64(len(t.slots)-1))
}

// ref returns the value slot of k, nil if k is absent. The pointer is
// good until the next insert or delete.
func (t *table[K, V]) ref(k K) *V {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			return nil
		}
		if s.k == k {
			return &s.v
		}
	}
}

// put inserts or replaces k; full reports that k is new and the table
// already holds limit entries (0: no limit), in which case nothing
// changed.
func (t *table[K, V]) put(k K, v V, limit int) (full bool) {
	if len(t.slots) == 0 {
		t.slots = make([]slot[K, V], tableMinSlots)
	}
	mask := len(t.slots) - 1
	i := t.home(k)
	for ; t.slots[i].used; i = (i + 1) & mask {
		if t.slots[i].k == k {
			t.slots[i].v = v
			return false
		}
	}
	if limit > 0 && t.n >= limit {
		return true
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
		mask = len(t.slots) - 1
		for i = t.home(k); t.slots[i].used; i = (i + 1) & mask {
		}
	}
	t.slots[i] = slot[K, V]{k: k, v: v, used: true}
	t.n++
	return false
}

func (t *table[K, V]) grow() {
	old := t.slots
	t.slots = make([]slot[K, V], 2*len(old))
	mask := len(t.slots) - 1
	for j := range old {
		if !old[j].used {
			continue
		}
		i := t.home(old[j].k)
		for t.slots[i].used {
			i = (i + 1) & mask
		}
		t.slots[i] = old[j]
	}
}

// del removes k and reports whether it was there. The entries after it
// in its run move back to where a lookup finds them without it.
func (t *table[K, V]) del(k K) bool {
	if t.n == 0 {
		return false
	}
	mask := len(t.slots) - 1
	i := t.home(k)
	for ; ; i = (i + 1) & mask {
		if !t.slots[i].used {
			return false
		}
		if t.slots[i].k == k {
			break
		}
	}
	// Backward shift: an entry at j may fill the hole at i when its home
	// is not cyclically within (i, j].
	for j := (i + 1) & mask; t.slots[j].used; j = (j + 1) & mask {
		h := t.home(t.slots[j].k)
		if (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot[K, V]{}
	t.n--
	return true
}

func (t *table[K, V]) clear() {
	clear(t.slots)
	t.n = 0
}

// each calls fn for every entry in slot order until fn returns false; fn
// must not change the table.
func (t *table[K, V]) each(fn func(K, V) bool) {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && !fn(s.k, s.v) {
			return
		}
	}
}

// mix64 is a multiply-fold of two words (wyhash's mixing step).
func mix64(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
	return hi ^ lo
}

func le32(b [4]byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24
}

func hashCTKey(k CTKey) uint64 {
	return mix64(le32(k.Src)|le32(k.Dst)<<32,
		uint64(k.SPort[0])|uint64(k.SPort[1])<<8|uint64(k.DPort[0])<<16|uint64(k.DPort[1])<<24|uint64(k.Proto)<<32)
}

// hasherOf returns the hash function of the key types stored in a table,
// nil for the others (a Go map holds those).
func hasherOf[K comparable]() func(K) uint64 {
	var k K
	switch any(k).(type) {
	case CTKey:
		return any(hashCTKey).(func(K) uint64)
	}
	return nil
}
