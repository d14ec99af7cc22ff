package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/netbed/netbed/controller/store"
)

func TestAddrArithmetic(t *testing.T) {
	tests := []struct {
		a    string
		n    uint64
		want string // "" for overflow
	}{
		{"10.0.0.255", 1, "10.0.1.0"},
		{"10.0.0.0", 65536, "10.1.0.0"},
		{"255.255.255.255", 1, ""},
		{"fd00::ffff:ffff:ffff:ffff", 1, "fd00:0:0:1::"},
		{"::", 5, "::5"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, ""},
	}
	for _, tc := range tests {
		a := netip.MustParseAddr(tc.a)
		got, ok := add(a, tc.n)
		if tc.want == "" {
			if ok {
				t.Errorf("add(%v, %d) = %v, want overflow", a, tc.n, got)
			}
			continue
		}
		if !ok || got.String() != tc.want {
			t.Errorf("add(%v, %d) = %v %v, want %s", a, tc.n, got, ok, tc.want)
			continue
		}
		if d := diff(got, a); d != tc.n {
			t.Errorf("diff(%v, %v) = %d, want %d", got, a, d, tc.n)
		}
	}
	pre := []struct{ p, last string }{{"10.0.0.0/24", "10.0.0.255"}, {"10.0.0.0/31", "10.0.0.1"}, {"fd00::/120", "fd00::ff"}}
	for _, tc := range pre {
		if got := LastAddr(netip.MustParsePrefix(tc.p)); got.String() != tc.last {
			t.Errorf("LastAddr(%s) = %v, want %s", tc.p, got, tc.last)
		}
	}
}

// model is the slow, obvious IPAM: every address of the ranges in a list,
// holders in a map, the cursor walked one address at a time.
type model struct {
	all    []netip.Addr
	holder map[netip.Addr]string
	cursor int // index in all of the last address handed out, -1 none
}

func newModel(p Pool) *model {
	m := &model{holder: map[netip.Addr]string{}, cursor: -1}
	for _, r := range p.Ranges {
		for a := r.Start; ; a = a.Next() {
			m.all = append(m.all, a)
			if a == r.End {
				break
			}
		}
	}
	return m
}

func (m *model) allocate(h string) (netip.Addr, bool) {
	for i := 1; i <= len(m.all); i++ {
		j := (m.cursor + i) % len(m.all)
		if _, held := m.holder[m.all[j]]; !held {
			m.holder[m.all[j]] = h
			m.cursor = j
			return m.all[j], true
		}
	}
	return netip.Addr{}, false
}

func (m *model) free() int {
	n := 0
	for _, a := range m.all {
		if _, held := m.holder[a]; !held {
			n++
		}
	}
	return n
}

func TestGlobalAgainstModel(t *testing.T) {
	pools := []Pool{
		{ID: "v4", Prefix: netip.MustParsePrefix("10.0.0.0/26"), Ranges: []Range{
			{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.20")},
			{netip.MustParseAddr("10.0.0.40"), netip.MustParseAddr("10.0.0.62")},
		}},
		{ID: "v6", Prefix: netip.MustParsePrefix("fd00::/120"), Ranges: []Range{
			{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::30")},
		}},
	}
	for _, p := range pools {
		t.Run(p.ID, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "s.db"), store.BoltOptions{NoSync: true, NoBatch: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			m := newModel(p)
			rng := rand.New(rand.NewPCG(1, uint64(len(p.ID))))
			holders := []string{"a", "b", "c"}
			for step := range 3000 {
				h := holders[rng.IntN(len(holders))]
				switch op := rng.IntN(10); {
				case op < 4: // allocate one
					var got netip.Addr
					err := st.Update(ctx, func(tx store.Tx) (err error) {
						got, err = Allocate(tx, p, h)
						return err
					})
					want, ok := m.allocate(h)
					if ok != (err == nil) || (ok && got != want) {
						t.Fatalf("step %d allocate: got %v %v, model %v %v", step, got, err, want, ok)
					}
					if !ok && !errors.Is(err, ErrPoolExhausted) {
						t.Fatalf("step %d: exhausted pool gave %v", step, err)
					}
				case op < 5: // batch of n, all or none
					n := 1 + rng.IntN(6)
					var got []netip.Addr
					err := st.Update(ctx, func(tx store.Tx) (err error) {
						got, err = AllocateN(tx, p, h, n)
						return err
					})
					if m.free() < n {
						if !errors.Is(err, ErrPoolExhausted) {
							t.Fatalf("step %d batch %d with %d free: %v", step, n, m.free(), err)
						}
						continue
					}
					if err != nil || len(got) != n {
						t.Fatalf("step %d batch %d: %v %v", step, n, got, err)
					}
					for _, a := range got {
						want, _ := m.allocate(h)
						if a != want {
							t.Fatalf("step %d batch: got %v, model %v", step, a, want)
						}
					}
				case op < 6: // reserve a random address of the prefix
					a := m.all[rng.IntN(len(m.all))]
					err := st.Update(ctx, func(tx store.Tx) error { return Reserve(tx, p, a, h) })
					_, held := m.holder[a]
					if held != errors.Is(err, ErrAddressInUse) || (!held && err != nil) {
						t.Fatalf("step %d reserve %v (held %v): %v", step, a, held, err)
					}
					if !held {
						m.holder[a] = h
					}
				default: // release a random address, as a random holder
					a := m.all[rng.IntN(len(m.all))]
					err := st.Update(ctx, func(tx store.Tx) error { return Release(tx, p, a, h) })
					cur, held := m.holder[a]
					switch {
					case !held:
						if !errors.Is(err, ErrNotAllocated) {
							t.Fatalf("step %d release free %v: %v", step, a, err)
						}
					case cur != h:
						if !errors.Is(err, ErrNotHolder) {
							t.Fatalf("step %d release %v of %s as %s: %v", step, a, cur, h, err)
						}
					default:
						if err != nil {
							t.Fatalf("step %d release %v: %v", step, a, err)
						}
						delete(m.holder, a)
					}
				}
			}
			// The store holds exactly the model's holders.
			got := map[netip.Addr]string{}
			var used uint64
			if err := st.View(ctx, func(tx store.Tx) error {
				used = Used(tx, p)
				return ForEach(tx, p.ID, func(a netip.Addr, h string) bool { got[a] = h; return true })
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(m.holder) {
				t.Fatalf("store holds %d addresses, model %d", len(got), len(m.holder))
			}
			for a, h := range m.holder {
				if got[a] != h {
					t.Errorf("%v held by %q in store, %q in model", a, got[a], h)
				}
			}
			if int(used) != len(m.all)-m.free() {
				t.Errorf("pool counter %d, model %d", used, len(m.all)-m.free())
			}
		})
	}
}

func TestExhaustedErrorNamesWhere(t *testing.T) {
	err := error(&ExhaustedError{Label: "prod-env", Network: "n1", Pools: []string{"10.0.0.2-10.0.0.9"}, Wanted: 5})
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatal("ExhaustedError does not match ErrPoolExhausted")
	}
	for _, s := range []string{"prod-env", "n1", "10.0.0.2-10.0.0.9", "5 addresses"} {
		if !contains(err.Error(), s) {
			t.Errorf("%q does not name %q", err, s)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestNodePoolAgainstModel drives a NodePool and a map with the same
// random operations.
func TestNodePoolAgainstModel(t *testing.T) {
	for _, cidr := range []string{"10.0.3.0/25", "10.9.0.0/22", "fd00:1::/121"} {
		t.Run(cidr, func(t *testing.T) {
			pre := netip.MustParsePrefix(cidr)
			p, err := NewNodePool(pre)
			if err != nil {
				t.Fatal(err)
			}
			if p.Gateway() != pre.Addr().Next() {
				t.Errorf("gateway %v, want the first address after %v", p.Gateway(), pre.Addr())
			}
			held := map[netip.Addr]bool{}
			// The model's free set: every address but network, gateway and IPv4 broadcast.
			var all []netip.Addr
			for a := pre.Addr().Next().Next(); pre.Contains(a); a = a.Next() {
				all = append(all, a)
			}
			if pre.Addr().Is4() {
				all = all[:len(all)-1]
			}
			if p.Size() != len(all) {
				t.Fatalf("size %d, model %d", p.Size(), len(all))
			}
			rng := rand.New(rand.NewPCG(7, 7))
			for step := range 20000 {
				if rng.IntN(3) > 0 {
					a, err := p.Allocate()
					if len(held) == len(all) {
						if !errors.Is(err, ErrPoolExhausted) {
							t.Fatalf("step %d: full pool gave %v %v", step, a, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("step %d: %v with %d of %d held", step, err, len(held), len(all))
					}
					if held[a] || !pre.Contains(a) || a == p.Gateway() || a == pre.Addr() || (pre.Addr().Is4() && a == LastAddr(pre)) {
						t.Fatalf("step %d: allocated %v (held %v) outside the free set", step, a, held[a])
					}
					held[a] = true
				} else {
					a := all[rng.IntN(len(all))]
					err := p.Release(a)
					if held[a] != (err == nil) {
						t.Fatalf("step %d: release %v (held %v): %v", step, a, held[a], err)
					}
					delete(held, a)
				}
				if p.Used() != len(held) {
					t.Fatalf("step %d: used %d, model %d", step, p.Used(), len(held))
				}
			}
			// Round trip through JSON keeps every holder.
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var q NodePool
			if err := json.Unmarshal(b, &q); err != nil {
				t.Fatal(err)
			}
			for _, a := range all {
				if q.InUse(a) != held[a] {
					t.Errorf("after reload %v in use %v, model %v", a, q.InUse(a), held[a])
				}
			}
		})
	}
}

func TestLocalCarvesNodeCIDRs(t *testing.T) {
	cluster := netip.MustParsePrefix("10.0.0.0/16")
	l, err := NewLocal(cluster, 24)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []string{"node-a", "node-b", "node-c"}
	cidrs := map[string]netip.Prefix{}
	for _, n := range nodes {
		c, err := l.AssignNode(n)
		if err != nil {
			t.Fatal(err)
		}
		if c.Bits() != 24 || !cluster.Contains(c.Addr()) {
			t.Errorf("node %s got %v, not a /24 of %v", n, c, cluster)
		}
		for o, oc := range cidrs {
			if oc.Overlaps(c) {
				t.Errorf("nodes %s and %s share %v / %v", n, o, c, oc)
			}
		}
		cidrs[n] = c
		again, _ := l.AssignNode(n)
		if again != c {
			t.Errorf("assigning %s again gave %v, first %v", n, again, c)
		}
	}
	for _, n := range nodes {
		pool, _ := l.Node(n)
		if pool.Gateway() != cidrs[n].Addr().Next() {
			t.Errorf("node %s gateway %v, want first address of %v", n, pool.Gateway(), cidrs[n])
		}
		for range pool.Size() {
			a, err := l.Allocate(n)
			if err != nil {
				t.Fatalf("node %s: %v", n, err)
			}
			if !cidrs[n].Contains(a) {
				t.Fatalf("node %s allocated %v outside its %v", n, a, cidrs[n])
			}
		}
		if _, err := l.Allocate(n); !errors.Is(err, ErrPoolExhausted) {
			t.Errorf("node %s full: %v, want ErrPoolExhausted (never borrowing from another node)", n, err)
		}
	}
	if _, err := l.Allocate("node-z"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
	b, _ := json.Marshal(l)
	var l2 Local
	if err := json.Unmarshal(b, &l2); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		c, _ := l2.AssignNode(n)
		if c != cidrs[n] {
			t.Errorf("reloaded node %s CIDR %v, want %v", n, c, cidrs[n])
		}
	}
	// All 256 node CIDRs, then exhaustion.
	small, _ := NewLocal(netip.MustParsePrefix("10.1.0.0/22"), 24)
	for i := range 4 {
		if _, err := small.AssignNode(string(rune('a' + i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := small.AssignNode("e"); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("fifth node in a /22 of /24s: %v", err)
	}
}

func TestLocalRejectsBadShapes(t *testing.T) {
	tests := []struct {
		cluster string
		nodeLen int
	}{
		{"10.0.0.0/16", 8},  // node prefix shorter than the cluster's
		{"10.0.0.0/16", 31}, // node CIDR too small
		{"10.0.0.0/8", 30},  // too many nodes
		{"fd00::/48", 64},   // node CIDR too large for a bitmap
	}
	for _, tc := range tests {
		if _, err := NewLocal(netip.MustParsePrefix(tc.cluster), tc.nodeLen); err == nil {
			t.Errorf("NewLocal(%s, /%d) accepted", tc.cluster, tc.nodeLen)
		}
	}
}

func FuzzNodePoolUnmarshal(f *testing.F) {
	p, _ := NewNodePool(netip.MustParsePrefix("10.0.0.0/28"))
	_, _ = p.Allocate()
	b, _ := json.Marshal(p)
	f.Add(b)
	f.Add([]byte(`{"cidr":"10.0.0.0/30","cursor":3,"bitmap":[15]}`))
	f.Add([]byte(`{"cidr":"10.0.0.0/8","bitmap":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var q NodePool
		if err := json.Unmarshal(b, &q); err != nil {
			return
		}
		// A loaded pool never hands out a reserved or foreign address.
		for range 8 {
			a, err := q.Allocate()
			if err != nil {
				break
			}
			if !q.CIDR().Contains(a) || a == q.Gateway() || a == q.CIDR().Addr() {
				t.Fatalf("loaded pool %s handed out %v", b, a)
			}
		}
	})
}

func TestLocalPersistedInStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "local.db")
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewLocal(netip.MustParsePrefix("10.244.0.0/16"), 24)
	held := map[netip.Addr]bool{}
	for _, n := range []string{"n1", "n2"} {
		if _, err := l.AssignNode(n); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			a, err := l.Allocate(n)
			if err != nil {
				t.Fatal(err)
			}
			held[a] = true
		}
	}
	if err := SaveLocal(ctx, st, "cluster-1", l); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok, err := LoadLocal(ctx, st, "other"); ok || err != nil {
		t.Errorf("load of a name never saved: %v %v", ok, err)
	}
	got, ok, err := LoadLocal(ctx, st, "cluster-1")
	if !ok || err != nil {
		t.Fatalf("load: %v %v", ok, err)
	}
	for _, n := range []string{"n1", "n2"} {
		p, err := got.Node(n)
		if err != nil {
			t.Fatal(err)
		}
		// New allocations avoid everything held before the save.
		for range 20 {
			a, err := p.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			if held[a] {
				t.Fatalf("node %s handed out %v again after reload", n, a)
			}
		}
	}
}
