package netnsrt

import (
	"reflect"
	"testing"
	"time"

	"github.com/netbed/netbed/reports/capture"
)

// The kernel path of a probe is walked back from where it ended, link by
// link and node by node, so that a flood copy sent elsewhere, and the
// answer's frames, stay off it.
func TestWalkBack(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	fr := func(us int, node, iface string, out bool) capture.Frame {
		return capture.Frame{Time: at(us), Netns: node, Iface: iface, Out: out}
	}
	links := map[[2]string][2]string{
		{"a", "eth0"}: {"h1", "p1"}, {"h1", "p1"}: {"a", "eth0"},
		{"h1", "up"}: {"leaf", "e1"}, {"leaf", "e1"}: {"h1", "up"},
		{"leaf", "e2"}: {"h2", "up"}, {"h2", "up"}: {"leaf", "e2"},
		{"leaf", "e3"}: {"h3", "up"}, {"h3", "up"}: {"leaf", "e3"},
		{"h2", "p1"}: {"b", "eth0"}, {"b", "eth0"}: {"h2", "p1"},
	}
	peerOf := func(n, i string) (string, string, bool) {
		p, ok := links[[2]string{n, i}]
		return p[0], p[1], ok
	}
	isSwitch := func(n string) bool { return n == "leaf" }
	frames := []capture.Frame{
		fr(0, "a", "eth0", true),
		fr(1, "h1", "p1", false),
		fr(2, "h1", "up", true),
		fr(3, "leaf", "e1", false),
		fr(4, "leaf", "e3", true), // a flood copy towards h3
		fr(5, "leaf", "e2", true),
		fr(6, "h3", "up", false),
		fr(7, "h2", "up", false),
		fr(8, "h2", "p1", true),
		fr(9, "b", "eth0", false),
	}
	path := walkBack(frames, 0, 9, peerOf, isSwitch)
	want := []string{"a/eth0", "h1/p1", "h1/up", "leaf/e1", "leaf/e2", "h2/up", "h2/p1", "b/eth0"}
	if got := path.Devices(); !reflect.DeepEqual(got, want) {
		t.Fatalf("path %v, want %v", got, want)
	}
	if path.Hops() != 7 || path.SwitchHops() != 1 {
		t.Errorf("hops %d, switch hops %d; want 7 and 1", path.Hops(), path.SwitchHops())
	}
	if path[len(path)-1].Time != 9*time.Microsecond {
		t.Errorf("last device at %v, want 9µs", path[len(path)-1].Time)
	}
	// Lost at the leaf: the path stops where it was last seen.
	if got := walkBack(frames, 0, 3, peerOf, isSwitch).Devices(); !reflect.DeepEqual(got, want[:4]) {
		t.Errorf("path to the leaf %v, want %v", got, want[:4])
	}
	// A capture that missed h1's send: what is known, from the break.
	gap := append(append([]capture.Frame{}, frames[:2]...), frames[3:]...)
	if got := walkBack(gap, 0, 8, peerOf, isSwitch).Devices(); !reflect.DeepEqual(got, want[3:]) {
		t.Errorf("path across a gap %v, want %v", got, want[3:])
	}
}
