package ktrace

import (
	"testing"

	"github.com/netbed/netbed/datapath/kernel"
)

// TestFinishedProbeDiscarded: events of a probe are kept while a key of
// it is watched or until it is taken; once it is both taken and
// unwatched, late ones are dropped (the bookkeeping of Watch, Take and
// Unwatch without the kernel maps).
func TestFinishedProbeDiscarded(t *testing.T) {
	tr := &Tracer{events: map[uint64][]kernel.Event{}, watched: map[uint64]int{}, taken: map[uint64]bool{}}
	ev := kernel.Event{Node: "a"}
	tr.watched[1] = 1
	tr.store(1, ev)
	if got := len(tr.Take(1)); got != 1 {
		t.Fatalf("took %d events, want 1", got)
	}
	tr.store(1, ev) // after Take, before Unwatch: kept
	tr.unwatched(1) // taken and unwatched: forgotten
	if got := len(tr.events[1]); got != 0 {
		t.Fatalf("%d events kept after Take and Unwatch", got)
	}
	tr.store(1, ev) // late: discarded
	if got := len(tr.Events(1)); got != 0 {
		t.Fatalf("%d late events kept", got)
	}
	// Unwatched but not yet taken (Unwatch, then Sync and Take): kept.
	tr.watched[2] = 1
	tr.unwatched(2)
	tr.store(2, ev)
	if got := len(tr.Take(2)); got != 1 {
		t.Fatalf("took %d events of an unwatched probe, want 1", got)
	}
}
