package ktrace

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/kernel"
)

// newTracer starts a tracer over r, closed at cleanup.
func newTracer(t testing.TB, r Resolver) *Tracer {
	t.Helper()
	tr, err := New(Options{Resolver: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return tr
}

// bridged is three namespaces: a and b joined through m's bridge br0
// (ports pa, pb); a is 10.99.0.1/24 on eth0, b 10.99.0.2/24.
type bridged struct {
	r       *Namespaces
	a, m, b *tns
}

var (
	addrA = netip.MustParseAddr("10.99.0.1")
	addrB = netip.MustParseAddr("10.99.0.2")
)

func newBridged(t *testing.T) *bridged {
	r := NewNamespaces()
	t.Cleanup(r.Close)
	l := &bridged{r: r, a: newNS(t, r, "a"), m: newNS(t, r, "m"), b: newNS(t, r, "b")}
	veth(t, l.a, "eth0", l.m, "pa")
	veth(t, l.b, "eth0", l.m, "pb")
	l.m.bridge(t, "br0", "pa", "pb")
	l.a.addr(t, "eth0", "10.99.0.1/24")
	l.b.addr(t, "eth0", "10.99.0.2/24")
	l.a.waitUp(t, "eth0")
	l.b.waitUp(t, "eth0")
	l.m.waitUp(t, "pa", "pb", "br0")
	return l
}

// sighting is an event as the tests compare it.
func sighting(e kernel.Event) string {
	dir := "in"
	if e.Out {
		dir = "out"
	}
	if e.Drop != nil {
		dir = "drop " + e.Drop.Reason
	}
	s := fmt.Sprintf("%s/%s %s", e.Node, e.Iface, dir)
	if e.Reply {
		s += " reply"
	}
	if e.Encap {
		s += " encap"
	}
	return s
}

func sightings(evs []kernel.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = sighting(e)
	}
	return out
}

// settle waits until probe's events include want (or 5 s pass) and
// returns them all.
func settle(t *testing.T, tr *Tracer, probe uint64, want int) []kernel.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := tr.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		evs := tr.Events(probe)
		if len(evs) >= want || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBridgePath(t *testing.T) {
	l := newBridged(t)
	tr := newTracer(t, l.r)
	// Warm the neighbour caches: the first request would wait for ARP.
	if !l.a.ping(t, addrB, 7, 1, 2*time.Second) {
		t.Fatal("a cannot ping b before tracing")
	}
	const probe = 42
	if err := tr.Watch(ICMPEcho(addrA, addrB, 7, 2), probe); err != nil {
		t.Fatal(err)
	}
	if !l.a.ping(t, addrB, 7, 2, 2*time.Second) {
		t.Fatal("no reply")
	}
	got := sightings(settle(t, tr, probe, 8))
	t.Logf("events:\n%s", strings.Join(got, "\n"))
}
