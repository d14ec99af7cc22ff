package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/stack"
)

// TestProbeTable stores probes with engine-picked and caller-chosen IDs
// (inside the blocks, far beyond them, zero-padded gaps) and every kind of
// destination, and reads each back exactly.
func TestProbeTable(t *testing.T) {
	dsts := []netip.Addr{
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("::ffff:10.1.2.3"), // IPv4-mapped: stays IPv6
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("fe80::1%eth0"), // zone: kept in the map
		{},                                  // invalid: kept in the map
	}
	ids := []uint64{1, 2, 3, probeChunk, probeChunk + 1, 3*probeChunk + 7, 1 << 40, 5, probeChunk - 1}
	var tab probeTable
	want := map[uint64]probeInfo{}
	for k, id := range ids {
		if tab.has(id) {
			t.Fatalf("id %d present before add", id)
		}
		p := probeInfo{spec: stack.ProbeSpec{Proto: stack.Proto(1 + k%3), Dst: dsts[k%len(dsts)], DstPort: uint16(k * 1000), ID: id},
			at: time.Duration(k) * time.Microsecond}
		tab.add(int32(k), p)
		want[id] = p
	}
	for id, p := range want {
		if !tab.has(id) {
			t.Fatalf("id %d missing", id)
		}
		var got stack.ProbeSpec
		var at time.Duration
		if r := tab.rec(id); r != nil {
			got, at = r.spec(id), r.at
		} else {
			got, at = tab.sparse[id].spec, tab.sparse[id].at
		}
		if got != p.spec || at != p.at {
			t.Errorf("id %d: got %+v at %v, want %+v at %v", id, got, at, p.spec, p.at)
		}
	}
	for _, id := range []uint64{0, 4, 6, probeChunk + 2, 3 * probeChunk, 1<<40 + 1} {
		if tab.has(id) {
			t.Errorf("id %d present, never added", id)
		}
	}
}
