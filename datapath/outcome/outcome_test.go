package outcome

import (
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
)

// TestSortByTimeRemapsPrev checks that sorting keeps each record's
// predecessor.
func TestSortByTimeRemapsPrev(t *testing.T) {
	rs := []Record{
		{Ev: datapath.Event{Node: "c", Time: 30}, Prev: 2},
		{Ev: datapath.Event{Node: "a", Time: 10}, Prev: -1},
		{Ev: datapath.Event{Node: "b", Time: 20}, Prev: 1},
	}
	got := SortByTime(rs)
	var order []string
	for _, r := range got {
		order = append(order, r.Ev.Node)
	}
	if !slices.Equal(order, []string{"a", "b", "c"}) || got[0].Prev != -1 || got[1].Prev != 0 || got[2].Prev != 1 {
		t.Errorf("sorted %v with prev %d %d %d", order, got[0].Prev, got[1].Prev, got[2].Prev)
	}
	if p := pathTo(nil, got, 2, 0).Devices(); !slices.Equal(p, []string{"a", "b", "c"}) {
		t.Errorf("path %v", p)
	}
}

// TestDropChoiceIgnoresTiming: a lost probe whose flood copies are
// dropped at two places is reported at the same one, whichever drop
// happened first (on namespaces their order varies from run to run).
func TestDropChoiceIgnoresTiming(t *testing.T) {
	ev := func(at time.Duration, node, dev string, a datapath.Action, r datapath.Reason) datapath.Event {
		return datapath.Event{Time: at, Probe: 1, Node: node, Device: dev, Action: a, Reason: r}
	}
	for _, tor4First := range []bool{false, true} {
		t2, t4 := 30*time.Microsecond, 40*time.Microsecond
		if tor4First {
			t2, t4 = t4, t2
		}
		rs := []Record{
			{Ev: ev(0, "web-1", "eth0", datapath.ActOriginate, ""), Prev: -1},
			{Ev: ev(10*time.Microsecond, "agg1", "agg1", datapath.ActForward, ""), Prev: 0},
			{Ev: ev(t2, "tor2", "tor2", datapath.ActForward, ""), Prev: 1},
			{Ev: ev(t4, "tor4", "tor4", datapath.ActForward, ""), Prev: 1},
			{Ev: ev(t2+5*time.Microsecond, "host1", "eth2", datapath.ActDrop, "bond-backup"), Prev: 2},
			{Ev: ev(t4+5*time.Microsecond, "host3", "eth2", datapath.ActDrop, "bond-backup"), Prev: 3},
		}
		o := Derive(SortByTime(rs), "web-1", nil)
		if o.DropNode != "host1" || o.DropDevice != "eth2" || !slices.Equal(o.Forward.Devices(), []string{"web-1/eth0", "agg1", "tor2"}) {
			t.Errorf("tor4 first %v: dropped at %s/%s after %v, want host1/eth2 after tor2", tor4First, o.DropNode, o.DropDevice, o.Forward.Devices())
		}
	}
}

// TestRealDropBeforeIncidental: a probe lost at a failed node is reported
// there, not at a shorter path's incidental drop of one of its flood
// copies (a bond's backup NIC: core-failure once blamed host1/eth2's
// backup NIC); and a source still waiting for ARP names that rather than a
// copy dropped as not-for-me.
func TestRealDropBeforeIncidental(t *testing.T) {
	ev := func(at time.Duration, node, dev string, a datapath.Action, r datapath.Reason) datapath.Event {
		return datapath.Event{Time: at, Probe: 1, Node: node, Device: dev, Action: a, Reason: r}
	}
	rs := []Record{
		{Ev: ev(0, "web-1", "eth0", datapath.ActOriginate, ""), Prev: -1},
		{Ev: ev(10*time.Microsecond, "tor1", "tor1", datapath.ActForward, ""), Prev: 0},
		{Ev: ev(15*time.Microsecond, "host1", "eth2", datapath.ActDrop, datapath.ReasonBondBackup), Prev: 1},
		{Ev: ev(20*time.Microsecond, "agg1", "agg1", datapath.ActForward, ""), Prev: 1},
		{Ev: ev(30*time.Microsecond, "core1", "core1", datapath.ActDrop, datapath.ReasonNodeDown), Prev: 3},
	}
	o := Derive(SortByTime(rs), "web-1", nil)
	if o.DropNode != "core1" || o.Reason != datapath.ReasonNodeDown {
		t.Errorf("dropped at %s (%s), want core1 (node-down)", o.DropNode, o.Reason)
	}
	pending := []Record{
		{Ev: ev(0, "web-1", "eth0", datapath.ActOriginate, ""), Prev: -1},
		{Ev: ev(10*time.Microsecond, "host1", "br-int", datapath.ActDrop, datapath.ReasonNotForMe), Prev: 0},
	}
	if o := Derive(SortByTime(pending), "web-1", func() bool { return true }); o.Reason != datapath.ReasonNoARP {
		t.Errorf("source waiting for ARP: reported %s at %s, want %s", o.Reason, o.DropNode, datapath.ReasonNoARP)
	}
}
