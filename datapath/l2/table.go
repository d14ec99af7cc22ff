package l2

import (
	"sort"
	"time"
)

// DefaultAgeing is the usual hardware and Linux bridge ageing time.
const DefaultAgeing = 300 * time.Second

// key packs a 12-bit VLAN ID and a 48-bit MAC into one word, so a lookup
// hashes a fixed-size integer and never allocates.
type key uint64

func mkKey(vlan uint16, mac [6]byte) key {
	return key(uint64(vlan&0x0fff)<<48 | uint64(mac[0])<<40 | uint64(mac[1])<<32 |
		uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5]))
}

func (k key) vlan() uint16 { return uint16(k >> 48) }

func (k key) mac() [6]byte {
	return [6]byte{byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
}

type slot struct {
	port int32
	seen time.Duration
}

// Entry is one learned address, as reported by Entries.
type Entry struct {
	VLAN uint16
	MAC  [6]byte
	Port int
	Seen time.Duration // when the address was last learned
}

// Table is a MAC table. An entry lives while now-Seen < the ageing time;
// expired entries are removed when a lookup or learn meets them, or by
// Expire. A Table is not safe for concurrent use.
//
// The map gives each address an index into slots, so that learning an
// address already known (every frame of a flow) rewrites its slot with
// one map lookup and no map write.
type Table struct {
	m      map[key]int32
	slots  []slot
	free   []int32 // indices of unused slots
	ageing time.Duration
	max    int
	// Refused counts learns rejected because the table was full.
	Refused uint64
	// Moves counts learns that moved an address to another port.
	Moves uint64
}

// New returns a table whose entries age out after ageing (0: never) and that
// holds at most max entries (0: no limit). A full table learns nothing new,
// as hardware does: unknown addresses keep being flooded.
func New(ageing time.Duration, max int) *Table {
	return &Table{m: make(map[key]int32), ageing: ageing, max: max}
}

// add stores a new entry for k.
func (t *Table) add(k key, s slot) {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.slots[i] = s
	} else {
		i = int32(len(t.slots))
		t.slots = append(t.slots, s)
	}
	t.m[k] = i
}

// remove deletes k, whose slot is i.
func (t *Table) remove(k key, i int32) {
	delete(t.m, k)
	t.free = append(t.free, i)
}

// Ageing returns the table's ageing time.
func (t *Table) Ageing() time.Duration { return t.ageing }

func (t *Table) live(s slot, now time.Duration) bool {
	return t.ageing == 0 || now-s.seen < t.ageing
}

// Learn records that mac was seen on port in vlan at now. It reports whether
// the address moved from another port and whether it is in the table
// afterwards (false when the table is full).
func (t *Table) Learn(now time.Duration, vlan uint16, mac [6]byte, port int) (moved, ok bool) {
	k := mkKey(vlan, mac)
	i, found := t.m[k]
	if found {
		if s := &t.slots[i]; t.live(*s, now) {
			moved = s.port != int32(port)
			if moved {
				t.Moves++
			}
			*s = slot{port: int32(port), seen: now}
			return moved, true
		}
		// Expired: learned afresh, as if it were new.
	}
	if t.max > 0 && len(t.m) >= t.max {
		t.Expire(now) // removes k too, if it was there
		found = false
		if len(t.m) >= t.max {
			t.Refused++
			return false, false
		}
	}
	if found {
		t.slots[i] = slot{port: int32(port), seen: now}
	} else {
		t.add(k, slot{port: int32(port), seen: now})
	}
	return false, true
}

// Lookup returns the port mac was learned on in vlan, if the entry is live.
func (t *Table) Lookup(now time.Duration, vlan uint16, mac [6]byte) (port int, ok bool) {
	k := mkKey(vlan, mac)
	i, found := t.m[k]
	if !found {
		return -1, false
	}
	if s := t.slots[i]; t.live(s, now) {
		return int(s.port), true
	}
	t.remove(k, i)
	return -1, false
}

// Forget removes one entry and reports whether it was there.
func (t *Table) Forget(vlan uint16, mac [6]byte) bool {
	k := mkKey(vlan, mac)
	i, ok := t.m[k]
	if ok {
		t.remove(k, i)
	}
	return ok
}

// FlushPort removes every entry on port and returns how many it removed.
func (t *Table) FlushPort(port int) int {
	n := 0
	for k, i := range t.m {
		if t.slots[i].port == int32(port) {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// FlushVLAN removes every entry in vlan and returns how many it removed.
func (t *Table) FlushVLAN(vlan uint16) int {
	n := 0
	for k, i := range t.m {
		if k.vlan() == vlan&0x0fff {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// FlushPortVLAN removes the entries on port in vlan and returns how many.
func (t *Table) FlushPortVLAN(port int, vlan uint16) int {
	n := 0
	for k, i := range t.m {
		if t.slots[i].port == int32(port) && k.vlan() == vlan&0x0fff {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// Flush removes every entry and returns how many it removed.
func (t *Table) Flush() int {
	n := len(t.m)
	clear(t.m)
	t.slots, t.free = t.slots[:0], t.free[:0]
	return n
}

// Expire removes the entries that have aged out at now and returns how many.
func (t *Table) Expire(now time.Duration) int {
	if t.ageing == 0 {
		return 0
	}
	n := 0
	for k, i := range t.m {
		if !t.live(t.slots[i], now) {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// Len returns the number of entries held, expired ones not yet removed
// included: the memory the table uses.
func (t *Table) Len() int { return len(t.m) }

// Count returns the number of live entries at now, for capacity reports.
func (t *Table) Count(now time.Duration) int {
	if t.ageing == 0 {
		return len(t.m)
	}
	n := 0
	for _, i := range t.m {
		if t.live(t.slots[i], now) {
			n++
		}
	}
	return n
}

// Entries returns the live entries at now, sorted by VLAN then MAC.
func (t *Table) Entries(now time.Duration) []Entry {
	out := make([]Entry, 0, len(t.m))
	keys := make([]key, 0, len(t.m))
	for k, i := range t.m {
		if t.live(t.slots[i], now) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		s := t.slots[t.m[k]]
		out = append(out, Entry{VLAN: k.vlan(), MAC: k.mac(), Port: int(s.port), Seen: s.seen})
	}
	return out
}
