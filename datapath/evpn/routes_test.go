package evpn

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

var (
	vtep1 = netip.MustParseAddr("10.255.0.1")
	vtep2 = netip.MustParseAddr("10.255.0.2")
	macA  = MAC{2, 0, 0, 0, 0, 0xa}
	macB  = MAC{2, 0, 0, 0, 0, 0xb}
	ipA   = netip.MustParseAddr("10.0.1.10")
	ipB   = netip.MustParseAddr("10.0.1.11")
)

func TestRouteValidate(t *testing.T) {
	cases := []struct {
		name string
		r    Route
		ok   bool
	}{
		{"type2-mac-only", Route{Type: MACIP, VNI: 100, MAC: macA, VTEP: vtep1}, true},
		{"type2-with-ip", Route{Type: MACIP, VNI: 100, MAC: macA, IP: ipA, L3VNI: 50001, VTEP: vtep1}, true},
		{"type2-ip-without-l3vni", Route{Type: MACIP, VNI: 100, MAC: macA, IP: ipA, VTEP: vtep1}, false},
		{"type2-zero-mac", Route{Type: MACIP, VNI: 100, VTEP: vtep1}, false},
		{"type2-vni-too-big", Route{Type: MACIP, VNI: 1 << 24, MAC: macA, VTEP: vtep1}, false},
		{"type3", Route{Type: InclusiveMulticast, VNI: 100, VTEP: vtep1}, true},
		{"type3-no-vtep", Route{Type: InclusiveMulticast, VNI: 100}, false},
		{"type5", Route{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), VTEP: vtep1}, true},
		{"type5-no-prefix", Route{Type: IPPrefix, L3VNI: 50001, VTEP: vtep1}, false},
		{"type4-unsupported", Route{Type: 4, VTEP: vtep1}, false},
		{"ipv6-vtep", Route{Type: InclusiveMulticast, VNI: 100, VTEP: netip.MustParseAddr("fd00::1")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.r.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate(%v) = %v, want ok=%v", c.r, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidRoute) {
				t.Errorf("error %v is not ErrInvalidRoute", err)
			}
		})
	}
}

func TestRouteTableOps(t *testing.T) {
	a1 := Route{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ipA, VTEP: vtep1}
	a2 := a1
	a2.VTEP = vtep2 // moved
	b1 := Route{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macB, IP: ipB, VTEP: vtep1}
	i1 := Route{Type: InclusiveMulticast, VNI: 100, VTEP: vtep1}
	i2 := Route{Type: InclusiveMulticast, VNI: 100, VTEP: vtep2}
	p1 := Route{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.7.9/24"), VTEP: vtep2}

	type step struct {
		op      Op
		r       Route
		wantErr error
		// wantUpdates are the updates the subscriber must see.
		wantUpdates []Update
	}
	cases := []struct {
		name       string
		steps      []step
		wantCounts Counts
		wantMoves  int
	}{
		{"add-all-types", []step{
			{OpAdd, a1, nil, []Update{{OpAdd, a1}}},
			{OpAdd, i1, nil, []Update{{OpAdd, i1}}},
			{OpAdd, i2, nil, []Update{{OpAdd, i2}}},
			{OpAdd, p1, nil, []Update{{OpAdd, Route{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.7.0/24"), VTEP: vtep2}}}},
		}, Counts{MACIP: 1, InclusiveMulticast: 2, IPPrefix: 1}, 0},
		{"re-add-is-silent", []step{
			{OpAdd, a1, nil, []Update{{OpAdd, a1}}},
			{OpAdd, a1, nil, nil},
		}, Counts{MACIP: 1}, 0},
		{"move-replaces", []step{
			{OpAdd, a1, nil, []Update{{OpAdd, a1}}},
			{OpAdd, a2, nil, []Update{{OpWithdraw, a1}, {OpAdd, a2}}},
		}, Counts{MACIP: 1}, 1},
		{"late-withdraw-after-move-keeps-new", []step{
			{OpAdd, a1, nil, []Update{{OpAdd, a1}}},
			{OpAdd, a2, nil, []Update{{OpWithdraw, a1}, {OpAdd, a2}}},
			{OpWithdraw, a1, ErrNotFound, nil},
		}, Counts{MACIP: 1}, 1},
		{"withdraw", []step{
			{OpAdd, a1, nil, []Update{{OpAdd, a1}}},
			{OpAdd, b1, nil, []Update{{OpAdd, b1}}},
			{OpWithdraw, a1, nil, []Update{{OpWithdraw, a1}}},
		}, Counts{MACIP: 1}, 0},
		{"withdraw-unknown", []step{
			{OpWithdraw, i1, ErrNotFound, nil},
		}, Counts{}, 0},
		{"invalid-add", []step{
			{OpAdd, Route{Type: MACIP, VNI: 100, VTEP: vtep1}, ErrInvalidRoute, nil},
		}, Counts{}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := NewRouteTable()
			var got []Update
			cancel := tb.Subscribe(func(u Update) { got = append(got, u) })
			defer cancel()
			for i, s := range c.steps {
				got = nil
				var err error
				if s.op == OpAdd {
					err = tb.Add(s.r)
				} else {
					err = tb.Withdraw(s.r)
				}
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
				if len(got) != len(s.wantUpdates) {
					t.Fatalf("step %d: updates %v, want %v", i, got, s.wantUpdates)
				}
				for j := range got {
					if got[j] != s.wantUpdates[j] {
						t.Errorf("step %d update %d = %v, want %v", i, j, got[j], s.wantUpdates[j])
					}
				}
			}
			if g := tb.Counts(); g != c.wantCounts {
				t.Errorf("Counts = %+v, want %+v", g, c.wantCounts)
			}
			if g := tb.Moves(); g != c.wantMoves {
				t.Errorf("Moves = %d, want %d", g, c.wantMoves)
			}
			total := 0
			for _, cc := range tb.CountsByVTEP() {
				total += cc.Total()
			}
			if total != c.wantCounts.Total() || len(tb.Routes()) != total {
				t.Errorf("per-VTEP total %d, routes %d, want %d", total, len(tb.Routes()), c.wantCounts.Total())
			}
		})
	}
}

func TestRouteTableImportAndWithdrawVTEP(t *testing.T) {
	tb := NewRouteTable()
	routes := []Route{
		{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ipA, VTEP: vtep1},
		{Type: MACIP, VNI: 200, MAC: macB, VTEP: vtep2},
		{Type: InclusiveMulticast, VNI: 100, VTEP: vtep2},
		{Type: IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), VTEP: vtep2},
		{Type: IPPrefix, L3VNI: 50002, Prefix: netip.MustParsePrefix("0.0.0.0/0"), VTEP: vtep2},
	}
	for _, r := range routes {
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		vni  uint32
		want []Route
	}{
		{100, []Route{routes[0], routes[2]}},
		{200, []Route{routes[1]}},
		{50001, []Route{routes[0], routes[3]}},
		{50002, []Route{routes[4]}},
		{999, nil},
	}
	for _, c := range cases {
		got := tb.Import(c.vni)
		if len(got) != len(c.want) {
			t.Fatalf("Import(%d) = %v, want %v", c.vni, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Import(%d)[%d] = %v, want %v", c.vni, i, got[i], c.want[i])
			}
		}
	}
	var withdrawn int
	tb.Subscribe(func(u Update) {
		if u.Op == OpWithdraw {
			withdrawn++
		}
	})
	if n := tb.WithdrawVTEP(vtep2); n != 4 || withdrawn != 4 {
		t.Errorf("WithdrawVTEP = %d (notified %d), want 4", n, withdrawn)
	}
	if c := tb.Counts(); c != (Counts{MACIP: 1}) {
		t.Errorf("after WithdrawVTEP: %+v", c)
	}
}

// FuzzRouteTable applies operations decoded from the input and checks the
// table's indexes and counts against its route list after each one.
func FuzzRouteTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 2, 2, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tb := NewRouteTable()
		updates := 0
		tb.Subscribe(func(Update) { updates++ })
		vteps := []netip.Addr{vtep1, vtep2}
		for i := 0; i+3 < len(b); i += 4 {
			op, typ, a, v := b[i], b[i+1], b[i+2], b[i+3]
			// An L3 VNI that is also an L2 VNI (100) too: Import(100)
			// holds such a route once.
			r := Route{VTEP: vteps[v%2], VNI: 100 + uint32(a%3), L3VNI: []uint32{50001, 50002, 100}[(v/2)%3]}
			switch typ % 3 {
			case 0:
				r.Type, r.MAC = MACIP, MAC{2, 0, 0, 0, 0, a % 5}
				if a%2 == 0 {
					r.IP = netip.AddrFrom4([4]byte{10, 0, 0, a % 7})
				}
			case 1:
				r.Type = InclusiveMulticast
			default:
				r.Type, r.Prefix = IPPrefix, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, a, 0, 0}), 16)
			}
			switch {
			case op == 255:
				tb.WithdrawVTEP(r.VTEP)
			case op%3 == 2:
				_ = tb.Withdraw(r)
			default:
				_ = tb.Add(r)
			}
			rs := tb.Routes()
			// Import against a scan of every route.
			for _, vni := range []uint32{100, 101, 102, 50001, 50002} {
				var want []Route
				for _, r := range rs {
					if r.VNI == vni || (r.L3VNI == vni && (r.Type == IPPrefix || r.IP.IsValid())) {
						want = append(want, r)
					}
				}
				slices.SortFunc(want, compareRoutes)
				if got := tb.Import(vni); !slices.Equal(got, want) {
					t.Fatalf("Import(%d) = %v, want %v", vni, got, want)
				}
			}
			c := tb.Counts()
			if c.Total() != len(rs) {
				t.Fatalf("counts %+v for %d routes", c, len(rs))
			}
			n := 0
			seen := map[macKey]bool{}
			for _, r := range rs {
				if r.Type != MACIP {
					continue
				}
				mk := macKey{r.VNI, r.MAC}
				if !seen[mk] {
					seen[mk] = true
					n += len(tb.LookupMAC(r.VNI, r.MAC))
				}
				if got, ok := tb.Lookup(r.VNI, r.MAC, r.IP); !ok || got != r {
					t.Fatalf("Lookup(%v) = %v %v", r, got, ok)
				}
			}
			if n != c.MACIP {
				t.Fatalf("LookupMAC finds %d type-2 routes, table has %d", n, c.MACIP)
			}
		}
	})
}

// TestRouteTableSubscribers: subscribers hear each change in the order
// they subscribed; one that cancels (itself or another) while being told
// is not told again, and the others still hear that change.
func TestRouteTableSubscribers(t *testing.T) {
	tb := NewRouteTable()
	var heard []string
	var cancelB, cancelC func()
	tb.Subscribe(func(Update) { heard = append(heard, "a") })
	cancelB = tb.Subscribe(func(Update) {
		heard = append(heard, "b")
		cancelB()
		cancelC()
	})
	cancelC = tb.Subscribe(func(Update) { heard = append(heard, "c") })
	tb.Subscribe(func(Update) { heard = append(heard, "d") })
	for _, ip := range []netip.Addr{ipA, ipB} {
		if err := tb.Add(Route{Type: MACIP, VNI: 100, L3VNI: 50001, MAC: macA, IP: ip, VTEP: vtep1}); err != nil {
			t.Fatal(err)
		}
	}
	cancelB() // again: no effect
	if want := []string{"a", "b", "d", "a", "d"}; !slices.Equal(heard, want) {
		t.Errorf("heard %v, want %v", heard, want)
	}
}
