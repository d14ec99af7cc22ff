package sim

import (
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
)

// TestTraceDoesNotAllocate: a node's trace event costs no allocation,
// with a device-cost function set and recording off (as the engine
// benchmarks run): handed to the cost function by pointer, the event
// used to move to the heap, two to three allocations per packet hop.
func TestTraceDoesNotAllocate(t *testing.T) {
	e := New(1)
	e.SetRecord(false)
	e.SetDeviceCost(func(ev *datapath.Event, _ cost.Where) time.Duration { return time.Duration(len(ev.Device)) })
	w := &wireNode{name: "w"}
	if err := e.AddNode(w, 0); err != nil {
		t.Fatal(err)
	}
	out := e.nodes[0].out
	ev := datapath.Event{Node: "w", Device: "w", Kind: datapath.KindSwitch, Action: datapath.ActForward}
	if n := testing.AllocsPerRun(1000, func() { out.Trace(ev) }); n != 0 {
		t.Errorf("%.1f allocations per traced event, want 0", n)
	}
}
