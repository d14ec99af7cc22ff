package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies"
)

// reflector is the in-memory twin of the leaves' BGP speakers and their
// route reflectors: it keeps what every leaf exported and, on deliver,
// hands it to every other leaf's Import, in export order. A leaf whose
// session is down neither sends nor receives; its peers withdraw what it
// had sent.
type reflector struct {
	f       *Fabric
	queue   []exported
	rib     map[string]map[key]Route // by originating leaf
	down    map[string]bool
	exports int
}

type exported struct {
	leaf string
	u    Update
}

type leafExporter struct {
	rr   *reflector
	leaf string
}

func (e leafExporter) Export(u Update) {
	e.rr.queue = append(e.rr.queue, exported{e.leaf, u})
	e.rr.exports++
}

func newReflector(f *Fabric) *reflector {
	rr := &reflector{f: f, rib: map[string]map[key]Route{}, down: map[string]bool{}}
	for _, n := range f.Leaves() {
		rr.rib[n] = map[key]Route{}
		l, _ := f.Leaf(n)
		l.SetExporter(leafExporter{rr, n})
	}
	return rr
}

func (rr *reflector) deliver(t *testing.T) {
	t.Helper()
	for len(rr.queue) > 0 {
		x := rr.queue[0]
		rr.queue = rr.queue[1:]
		if rr.down[x.leaf] {
			continue
		}
		var adds, gone []Route
		if x.u.Op == OpAdd {
			rr.rib[x.leaf][x.u.Route.key()] = x.u.Route
			adds = []Route{x.u.Route}
		} else {
			delete(rr.rib[x.leaf], x.u.Route.key())
			gone = []Route{x.u.Route}
		}
		rr.each(x.leaf, func(l *Leaf) {
			if err := l.Import(adds, gone); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// each calls f with every live leaf but from.
func (rr *reflector) each(from string, f func(*Leaf)) {
	for _, n := range rr.f.Leaves() {
		if n != from && !rr.down[n] {
			l, _ := rr.f.Leaf(n)
			f(l)
		}
	}
}

// fail drops leaf's session: its peers withdraw everything it sent, and
// the leaf forgets what it had learnt (it lost power).
func (rr *reflector) fail(t *testing.T, leaf string) {
	t.Helper()
	rr.deliver(t)
	rr.down[leaf] = true
	gone := slices.Collect(mapValues(rr.rib[leaf]))
	clear(rr.rib[leaf])
	rr.each(leaf, func(l *Leaf) {
		if err := l.Import(nil, gone); err != nil {
			t.Fatal(err)
		}
	})
	l, _ := rr.f.Leaf(leaf)
	l.Forget()
}

// restore brings leaf's session back: it learns every route the others
// sent (what it re-advertises arrives with the next deliver).
func (rr *reflector) restore(t *testing.T, leaf string) {
	t.Helper()
	rr.down[leaf] = false
	l, _ := rr.f.Leaf(leaf)
	for _, n := range rr.f.Leaves() {
		if n != leaf && !rr.down[n] {
			if err := l.Import(slices.Collect(mapValues(rr.rib[n])), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestLeafTablesMatchShared runs the same fabric twice, once with the
// shared route table and once with a table per leaf fed only through
// exporters and imports (the reflector twin above stands for BGP). After
// attaching instances, a drift, a leaf failure and its restore, every
// live leaf's own table holds exactly the routes of the shared table,
// every leaf's forwarding tables have the same sizes, and the same
// instance pairs reach each other.
func TestLeafTablesMatchShared(t *testing.T) {
	defs := []instDef{
		{"i1", "host1", "red1", "10.0.1.11/24"},
		{"i2", "host3", "red1", "10.0.1.12/24"},
		{"i3", "host5", "red2", "10.0.2.13/24"},
		{"i4", "host8", "red2", "10.0.2.14/24"},
		{"i5", "host2", "red2", "10.0.2.15/24"},
		{"b1", "host4", "blue1", "10.0.1.21/24"},
		{"b2", "host6", "blue1", "10.0.1.22/24"},
	}
	names := []string{"i1", "i2", "i3", "i4", "i5", "b1", "b2"}
	p := topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 2}
	shared := newTestbed(t, p, defs, nil)
	var rr *reflector
	own := newTestbedWith(t, p, Options{LeafTables: true}, func(f *Fabric) { rr = newReflector(f) }, defs, nil)
	if own.f.Table() != nil || own.f.FailureDetection() != 0 {
		t.Fatalf("LeafTables: shared table %v, failure detection %v; want none and 0", own.f.Table(), own.f.FailureDetection())
	}
	// Before delivery a leaf knows only its own routes: it learns
	// nothing it was not sent.
	l2, _ := own.f.Leaf("leaf2")
	for _, r := range l2.Table().Routes() {
		if r.VTEP != l2.VTEP() {
			t.Fatalf("leaf2 holds %s before anything was delivered", r)
		}
	}
	rr.deliver(t)
	exports := rr.exports

	same := func(t *testing.T, when string, skip ...string) {
		t.Helper()
		want := shared.f.Table().Routes()
		for _, n := range own.f.Leaves() {
			if slices.Contains(skip, n) {
				continue
			}
			l, _ := own.f.Leaf(n)
			if got := l.Table().Routes(); !slices.Equal(got, want) {
				t.Errorf("%s: %s's table:\n%s\nshared table:\n%s", when, n, routeList(got), routeList(want))
			}
			ls, _ := shared.f.Leaf(n)
			if got, w := l.Tables(), ls.Tables(); got != w {
				t.Errorf("%s: %s's tables %+v, with the shared table %+v", when, n, got, w)
			}
		}
		if got, w := own.f.Capacity().Routes, shared.f.Capacity().Routes; got != w {
			t.Errorf("%s: routes %+v, with the shared table %+v", when, got, w)
		}
		ms, err := shared.e.AllPairs(shared.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
		if err != nil {
			t.Fatal(err)
		}
		mo, err := own.e.AllPairs(own.e.Now()+time.Millisecond, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP})
		if err != nil {
			t.Fatal(err)
		}
		if ms.String() != mo.String() {
			t.Errorf("%s: reachability with leaf tables:\n%s\nwith the shared table:\n%s", when, mo, ms)
		}
	}
	same(t, "attached")
	if rr.exports != exports {
		t.Errorf("imports were exported again: %d exports after delivery, %d before", rr.exports, exports)
	}

	// Drift: i1 leaves host1 (leaf1) for host6 (leaf3), keeping its
	// identity.
	for _, tb := range []*testbed{shared, own} {
		if err := tb.e.RemoveInstance(tb.f, "i1"); err != nil {
			t.Fatal(err)
		}
		d := defs[0]
		d.host = "host6"
		if _, err := tb.e.AddInstance(tb.f, d.spec(1)); err != nil {
			t.Fatal(err)
		}
	}
	rr.deliver(t)
	same(t, "after the drift")
	if n, _ := own.f.InstanceLeaf("i1"); n != "leaf3" {
		t.Errorf("i1 is advertised by %q after the drift, want leaf3", n)
	}

	// leaf1 fails: with leaf tables only the reflector tells the others.
	shared.f.NodeStateChanged("leaf1", false)
	rr.fail(t, "leaf1")
	own.f.NodeStateChanged("leaf1", false)
	rr.deliver(t)
	same(t, "leaf1 failed", "leaf1")
	l1, _ := own.f.Leaf("leaf1")
	if got := l1.Table().Routes(); len(got) != 0 {
		t.Errorf("failed leaf1 still holds %d routes", len(got))
	}

	shared.f.NodeStateChanged("leaf1", true)
	rr.restore(t, "leaf1")
	own.f.NodeStateChanged("leaf1", true)
	rr.deliver(t)
	same(t, "leaf1 restored")
	shared.conserve(t)
	own.conserve(t)
}

func routeList(rs []Route) string {
	var s string
	for _, r := range rs {
		s += fmt.Sprintf("  %s\n", r)
	}
	return s
}

// TestImportSkipsOwnRoutes: a leaf's speaker also reports the leaf's own
// originations among its best paths; Import leaves them to the leaf, and
// a late withdrawal of a MAC that moved away does not remove the newer
// route.
func TestImportSkipsOwnRoutes(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{LeafTables: true})
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := f.Leaf("leaf1")
	l2, _ := f.Leaf("leaf2")
	mine := Route{Type: InclusiveMulticast, VNI: 10, VTEP: l1.VTEP()}
	if err := l1.Import([]Route{mine}, nil); err != nil {
		t.Fatal(err)
	}
	if len(l1.Table().Routes()) != 0 {
		t.Errorf("leaf1 imported its own route: %v", l1.Table().Routes())
	}
	mac := MAC{2, 0, 0, 0, 0, 1}
	old := Route{Type: MACIP, VNI: 10, MAC: mac, VTEP: l2.VTEP()}
	moved := Route{Type: MACIP, VNI: 10, MAC: mac, VTEP: netip.MustParseAddr("10.255.9.9")}
	if err := l1.Import([]Route{old}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l1.Import([]Route{moved}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l1.Import(nil, []Route{old}); err != nil {
		t.Fatal(err)
	}
	if r, ok := l1.Table().Lookup(10, mac, moved.IP); !ok || r.VTEP != moved.VTEP {
		t.Errorf("after a late withdrawal from the MAC's old VTEP: %v %v; want %s", r, ok, moved)
	}
	if n := l1.Forget(); n != 1 || len(l1.Table().Routes()) != 0 {
		t.Errorf("Forget removed %d, %d left; want 1, 0", n, len(l1.Table().Routes()))
	}
}
