package l2

import (
	"math/rand/v2"
	"testing"
	"time"
)

// model is the obvious slow MAC table: a list of entries scanned in full.
type model struct {
	es     []Entry
	ageing time.Duration
	max    int
}

func (m *model) live(e Entry, now time.Duration) bool {
	return m.ageing == 0 || now-e.Seen < m.ageing
}

func (m *model) find(vlan uint16, mac [6]byte) int {
	for i, e := range m.es {
		if e.VLAN == vlan && e.MAC == mac {
			return i
		}
	}
	return -1
}

func (m *model) remove(i int) { m.es = append(m.es[:i], m.es[i+1:]...) }

func (m *model) learn(now time.Duration, vlan uint16, mac [6]byte, port int) (bool, bool) {
	i := m.find(vlan, mac)
	if i >= 0 && m.live(m.es[i], now) {
		moved := m.es[i].Port != port
		m.es[i].Port, m.es[i].Seen = port, now
		return moved, true
	}
	if m.max > 0 && m.count(now) >= m.max {
		return false, false
	}
	if i >= 0 {
		m.remove(i)
	}
	m.es = append(m.es, Entry{VLAN: vlan, MAC: mac, Port: port, Seen: now})
	return false, true
}

func (m *model) lookup(now time.Duration, vlan uint16, mac [6]byte) (int, bool) {
	i := m.find(vlan, mac)
	if i < 0 || !m.live(m.es[i], now) {
		return -1, false
	}
	return m.es[i].Port, true
}

func (m *model) count(now time.Duration) int {
	n := 0
	for _, e := range m.es {
		if m.live(e, now) {
			n++
		}
	}
	return n
}

func (m *model) flush(keep func(Entry) bool) {
	out := m.es[:0]
	for _, e := range m.es {
		if keep(e) {
			out = append(out, e)
		}
	}
	m.es = out
}

// TestDifferential runs random operation sequences against Table and the
// slow model and compares every answer.
func TestDifferential(t *testing.T) {
	cases := []struct {
		name   string
		ageing time.Duration
		max    int
	}{
		{"ageing-unbounded", 10 * time.Second, 0},
		{"no-ageing", 0, 0},
		{"ageing-capped", 5 * time.Second, 8},
		{"no-ageing-capped", 0, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 50; seed++ {
				r := rand.New(rand.NewPCG(seed, 7))
				tb := New(c.ageing, c.max)
				m := &model{ageing: c.ageing, max: c.max}
				var now time.Duration
				mac := func() [6]byte { return [6]byte{2, 0, 0, 0, 0, byte(r.IntN(6))} }
				vlan := func() uint16 { return uint16(1 + r.IntN(3)) }
				for step := 0; step < 400; step++ {
					switch op := r.IntN(10); op {
					case 0, 1, 2:
						v, a, p := vlan(), mac(), r.IntN(4)
						mv1, ok1 := tb.Learn(now, v, a, p)
						mv2, ok2 := m.learn(now, v, a, p)
						if mv1 != mv2 || ok1 != ok2 {
							t.Fatalf("seed %d step %d learn(%d,%x,%d): table (%v,%v) model (%v,%v)", seed, step, v, a, p, mv1, ok1, mv2, ok2)
						}
					case 3, 4, 5:
						v, a := vlan(), mac()
						p1, ok1 := tb.Lookup(now, v, a)
						p2, ok2 := m.lookup(now, v, a)
						if p1 != p2 || ok1 != ok2 {
							t.Fatalf("seed %d step %d lookup(%d,%x): table (%d,%v) model (%d,%v)", seed, step, v, a, p1, ok1, p2, ok2)
						}
					case 6:
						p := r.IntN(4)
						tb.FlushPort(p)
						m.flush(func(e Entry) bool { return e.Port != p })
					case 7:
						v := vlan()
						tb.FlushVLAN(v)
						m.flush(func(e Entry) bool { return e.VLAN != v })
					case 8:
						if r.IntN(2) == 0 {
							p, v := r.IntN(4), vlan()
							tb.FlushPortVLAN(p, v)
							m.flush(func(e Entry) bool { return e.Port != p || e.VLAN != v })
							break
						}
						now += time.Duration(r.IntN(4000)) * time.Millisecond
					case 9:
						if got, want := tb.Count(now), m.count(now); got != want {
							t.Fatalf("seed %d step %d count: table %d model %d", seed, step, got, want)
						}
						es := tb.Entries(now)
						if len(es) != m.count(now) {
							t.Fatalf("seed %d step %d entries: %d, model %d live", seed, step, len(es), m.count(now))
						}
						for _, e := range es {
							if p, ok := m.lookup(now, e.VLAN, e.MAC); !ok || p != e.Port {
								t.Fatalf("seed %d step %d entry %+v not in model (port %d ok %v)", seed, step, e, p, ok)
							}
						}
					}
				}
			}
		})
	}
}

func TestAgeingAndFlush(t *testing.T) {
	a := [6]byte{2, 0, 0, 0, 0, 1}
	b := [6]byte{2, 0, 0, 0, 0, 2}
	cases := []struct {
		name   string
		ops    func(tb *Table)
		at     time.Duration
		vlan   uint16
		mac    [6]byte
		want   int
		wantOK bool
	}{
		{"fresh", func(tb *Table) { tb.Learn(0, 10, a, 3) }, 299 * time.Second, 10, a, 3, true},
		{"aged", func(tb *Table) { tb.Learn(0, 10, a, 3) }, 300 * time.Second, 10, a, -1, false},
		{"refreshed", func(tb *Table) { tb.Learn(0, 10, a, 3); tb.Learn(200*time.Second, 10, a, 3) }, 450 * time.Second, 10, a, 3, true},
		{"other-vlan", func(tb *Table) { tb.Learn(0, 10, a, 3) }, 0, 11, a, -1, false},
		{"moved", func(tb *Table) { tb.Learn(0, 10, a, 3); tb.Learn(1, 10, a, 4) }, 2, 10, a, 4, true},
		{"flush-port", func(tb *Table) { tb.Learn(0, 10, a, 3); tb.Learn(0, 10, b, 4); tb.FlushPort(3) }, 1, 10, a, -1, false},
		{"flush-port-keeps-others", func(tb *Table) { tb.Learn(0, 10, a, 3); tb.Learn(0, 10, b, 4); tb.FlushPort(3) }, 1, 10, b, 4, true},
		{"flush-vlan", func(tb *Table) { tb.Learn(0, 10, a, 3); tb.Learn(0, 20, a, 3); tb.FlushVLAN(10) }, 1, 20, a, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := New(DefaultAgeing, 0)
			c.ops(tb)
			p, ok := tb.Lookup(c.at, c.vlan, c.mac)
			if p != c.want || ok != c.wantOK {
				t.Errorf("lookup = (%d, %v), want (%d, %v)", p, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestCapacityRefuses(t *testing.T) {
	tb := New(time.Second, 2)
	for i := range 3 {
		tb.Learn(0, 1, [6]byte{2, 0, 0, 0, 0, byte(i)}, i)
	}
	if tb.Len() != 2 || tb.Refused != 1 {
		t.Fatalf("len %d refused %d, want 2 and 1", tb.Len(), tb.Refused)
	}
	// Once the old entries age out, a new address fits again.
	if _, ok := tb.Learn(2*time.Second, 1, [6]byte{2, 0, 0, 0, 0, 9}, 5); !ok || tb.Len() != 1 {
		t.Fatalf("learn after ageing: ok %v len %d", ok, tb.Len())
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb := New(DefaultAgeing, 0)
	mac := [6]byte{2, 0, 0, 0, 0, 1}
	tb.Learn(0, 5, mac, 1)
	n := testing.AllocsPerRun(1000, func() {
		tb.Learn(time.Second, 5, mac, 1)
		if _, ok := tb.Lookup(time.Second, 5, mac); !ok {
			panic("lost entry")
		}
	})
	if n != 0 {
		t.Errorf("learn+lookup allocates %v times", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := New(DefaultAgeing, 0)
	for i := range 4096 {
		tb.Learn(0, uint16(i%64), [6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}, i%48)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Lookup(time.Second, uint16(i%64), [6]byte{2, 0, 0, 0, byte(i >> 8 & 15), byte(i)})
		i++
	}
}
