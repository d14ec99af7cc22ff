package scenarios

import (
	"net/netip"
	"testing"
	"time"
)

// clockRuntime is a Runtime that follows its leaves' speakers
// (BGPEventClock): at is, by leaf, when it last received a change of
// the VTEP's routes.
type clockRuntime struct {
	Runtime
	at map[string]time.Duration
}

func (c clockRuntime) LastBGPChange(node string, _ netip.Addr) (time.Duration, bool) {
	at, ok := c.at[node]
	return at, ok
}

// TestEventTimedConvergence: a leaf's convergence is the last other
// running leaf's report of the change, from the fault, where the runtime
// follows the speakers; the polled figure otherwise, and whenever one
// leaf reported nothing since the fault.
func TestEventTimedConvergence(t *testing.T) {
	vtep := netip.MustParseAddr("10.255.1.1")
	ss := []BGPSpeaker{{Node: "spine1", Running: true}, {Node: "leaf1", Leaf: true}, {Node: "leaf2", Leaf: true, Running: true},
		{Node: "leaf3", Leaf: true, Running: true}, {Node: "leaf4", Leaf: true}}
	const start, polled = 10 * time.Second, 80 * time.Millisecond
	for _, c := range []struct {
		name string
		rt   Runtime
		want time.Duration
	}{
		{"the last report", clockRuntime{at: map[string]time.Duration{"leaf2": start + 12*time.Millisecond, "leaf3": start + 31*time.Millisecond}}, 31 * time.Millisecond},
		{"no clock", nil, polled},
		{"a leaf never reported", clockRuntime{at: map[string]time.Duration{"leaf2": start + 12*time.Millisecond}}, polled},
		{"a leaf reported only before the fault", clockRuntime{at: map[string]time.Duration{"leaf2": start + 12*time.Millisecond, "leaf3": start - time.Second}}, polled},
		{"a report after the poll saw it", clockRuntime{at: map[string]time.Duration{"leaf2": start + 12*time.Millisecond, "leaf3": start + 90*time.Millisecond}}, polled},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &FabricBackend{rt: c.rt}
			if got := b.eventTimed(ss, "leaf1", vtep, start, polled); got != c.want {
				t.Errorf("convergence %v, want %v", got, c.want)
			}
		})
	}
}
