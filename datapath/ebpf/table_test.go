package ebpf

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestTableDifferential drives a table-backed HashMap (the conntrack
// map) and a Go map with the same random inserts, updates, in-place
// counts and deletes over a small key space, so that runs collide, wrap
// around the array and shift back on delete, and checks after every
// step that both hold the same entries, and that a full map refuses
// only new keys.
func TestTableDifferential(t *testing.T) {
	for _, max := range []int{0, 40} {
		rng := rand.New(rand.NewPCG(1, uint64(max)))
		m := NewHashMap[CTKey, CTEntry](MapSpec{"ct", max})
		if m.t == nil {
			t.Fatal("the conntrack map is not table-backed")
		}
		model := map[CTKey]CTEntry{}
		key := func() CTKey {
			// 64 keys: a few bytes of each field vary.
			i := rng.IntN(64)
			return CTKey{Src: [4]byte{10, 0, 0, byte(i & 7)}, Dst: [4]byte{10, 0, 1, byte(i >> 3 & 3)}, SPort: [2]byte{0, byte(i >> 5)}, Proto: 1}
		}
		for step := range 20000 {
			k := key()
			switch op := rng.IntN(10); {
			case op < 4:
				v := CTEntry{Packets: uint64(step), Identity: uint32(rng.Uint32())}
				_, had := model[k]
				err := m.Update(k, v)
				switch {
				case max > 0 && !had && len(model) >= max:
					if !errors.Is(err, ErrMapFull) {
						t.Fatalf("step %d: update of a new key into a full map: %v, want ErrMapFull", step, err)
					}
				case err != nil:
					t.Fatalf("step %d: update: %v", step, err)
				default:
					model[k] = v
				}
			case op < 6:
				_, had := model[k]
				err := m.Delete(k)
				if had != (err == nil) || !had && !errors.Is(err, ErrKeyNotExist) {
					t.Fatalf("step %d: delete %v: %v, present %v", step, k, err, had)
				}
				delete(model, k)
			case op < 8:
				p := m.ref(k)
				want, had := model[k]
				if had != (p != nil) {
					t.Fatalf("step %d: ref %v: %v, present %v", step, k, p, had)
				}
				if p != nil {
					p.Packets++
					want.Packets++
					model[k] = want
				}
			default:
				if rng.IntN(500) == 0 {
					m.Clear()
					clear(model)
				}
			}
			if m.Len() != len(model) {
				t.Fatalf("step %d: %d entries, model %d", step, m.Len(), len(model))
			}
			for mk, mv := range model {
				if v, ok := m.Lookup(mk); !ok || v != mv {
					t.Fatalf("step %d: lookup %v = %v, %v; model %v", step, mk, v, ok, mv)
				}
			}
			n := 0
			m.Range(func(k CTKey, v CTEntry) bool {
				if model[k] != v {
					t.Fatalf("step %d: range gave %v = %v, model %v", step, k, v, model[k])
				}
				n++
				return true
			})
			if n != len(model) {
				t.Fatalf("step %d: range gave %d entries, model %d", step, n, len(model))
			}
		}
	}
}
