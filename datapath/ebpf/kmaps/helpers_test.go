package kmaps

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/netbed/netbed/internal/testutil"
)

// testMaps creates the kernel maps with the default capacities, closed
// when t ends.
func testMaps(t testing.TB) *Maps {
	t.Helper()
	return newMaps(t, Capacity{})
}

// newMaps creates a node's maps with capacities c for t, closed when t
// ends; it skips t (or fails it, NETBED_REQUIRE_PRIVILEGED=1) without
// root or BPF maps.
func newMaps(t testing.TB, c Capacity) *Maps {
	t.Helper()
	testutil.RequireRoot(t)
	km, err := NewSized(c)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) {
			testutil.Unavailable(t, "cannot create BPF maps: "+err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = km.Close() })
	return km
}

// testEvents creates a flow-record ring buffer and its reader, both
// closed when t ends.
func testEvents(t testing.TB) (*ebpf.Map, *ringbuf.Reader) {
	t.Helper()
	events, err := NewEvents(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.Close() })
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	return events, rd
}

// loader returns what takes a New*Program's results: it fails t on the
// error and closes the program when t ends.
func loader(t testing.TB) func(*ebpf.Program, error) *ebpf.Program {
	return func(p *ebpf.Program, err error) *ebpf.Program {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
}
