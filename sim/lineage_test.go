package sim

import (
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
)

// vswitch is a node with several devices inside: a bridge that floods to
// a tap (port 1) and, through a patch port and a NIC, to port 2.
type vswitch struct{}

func (vswitch) Name() string                                           { return "host" }
func (vswitch) Ports() []string                                        { return []string{"in", "tap", "nic"} }
func (vswitch) SetPortState(time.Duration, int, bool, datapath.Output) {}
func (vswitch) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	dev := func(d string, a datapath.Action) {
		out.Trace(datapath.Event{Node: "host", Device: d, Kind: datapath.KindBridge, Action: a})
	}
	dev("br", datapath.ActFlood)
	dev("tap1", datapath.ActForward)
	out.Send(1, b)
	dev("patch", datapath.ActForward)
	dev("nic", datapath.ActForward)
	out.Send(2, b)
}

func TestFloodLineage(t *testing.T) {
	e := New(1)
	for _, n := range []datapath.Node{&endpoint{name: "src"}, vswitch{}, &endpoint{name: "d1"}, &endpoint{name: "d2"}} {
		ok(t, e.AddNode(n, 0))
	}
	for _, w := range []datapath.Wire{
		{A: datapath.PortRef{Node: "src"}, B: datapath.PortRef{Node: "host", Port: 0}},
		{A: datapath.PortRef{Node: "host", Port: 1}, B: datapath.PortRef{Node: "d1"}},
		{A: datapath.PortRef{Node: "host", Port: 2}, B: datapath.PortRef{Node: "d2"}},
	} {
		mustT(e.Connect(w, LinkOpts{}))
	}
	ok(t, e.Do(0, "src", 9, func(now time.Duration, out datapath.Output) {
		out.Trace(datapath.Event{Node: "src", Device: "eth0", Kind: datapath.KindNIC, Action: datapath.ActOriginate})
		out.Send(0, make([]byte, 60))
	}))
	ok(t, e.RunUntilIdle())
	conserve(t, e)
	want := map[string][]string{
		"d1": {"src/eth0", "host/br", "host/tap1", "d1/eth0"},
		"d2": {"src/eth0", "host/br", "host/patch", "host/nic", "d2/eth0"},
	}
	seen := 0
	for i := range e.trace {
		ev := e.trace[i].ev
		if ev.Action != datapath.ActDeliver {
			continue
		}
		seen++
		if ev.Probe != 9 {
			t.Errorf("deliver at %s carries probe %d, want 9", ev.Node, ev.Probe)
		}
		if got := e.pathTo(int64(i)).Devices(); !equalStr(got, want[ev.Node]) {
			t.Errorf("path to %s = %v, want %v", ev.Node, got, want[ev.Node])
		}
	}
	if seen != 2 {
		t.Errorf("%d deliveries, want 2", seen)
	}
}

// TestResetTraceKeepsLineageSafe resets the trace while a packet waits for
// ARP (its saved lineage points into the forgotten trace), then lets the
// ARP resolve: the path stops at the reset instead of reading stale events.
func TestResetTraceKeepsLineageSafe(t *testing.T) {
	e, f := New(1), newLAN(3)
	ok(t, e.Load(f, UniformDelay(time.Microsecond), LinkOpts{}))
	for i := 1; i <= 2; i++ {
		mustT(e.AddInstance(f, instSpec(i)))
	}
	id := mustT(e.Probe(0, "vm1", stack.ProbeSpec{Proto: stack.ICMP, Dst: netip4(10, 0, 0, 3)}))
	ok(t, e.RunUntilIdle()) // 10.0.0.3 does not exist yet: the probe waits
	e.ResetTrace()
	s := instSpec(3)
	mustT(e.AddInstance(f, s))
	nd, _ := e.Node("vm3")
	ok(t, e.Do(e.Now(), "vm3", 0, nd.(*stack.Instance).Announce))
	// vm1 has no entry for vm3, so the announcement does not resolve the
	// queued probe; a second probe re-asks and both go out.
	id2 := mustT(e.Probe(e.Now()+time.Millisecond, "vm1", stack.ProbeSpec{Proto: stack.ICMP, Dst: netip4(10, 0, 0, 3)}))
	ok(t, e.RunUntilIdle())
	conserve(t, e)
	r1, r2 := mustT(e.Result(id)), mustT(e.Result(id2))
	if !r2.Replied || !equalStr(r2.Forward.Devices(), []string{"vm1/eth0", "sw", "vm3/eth0"}) {
		t.Errorf("second probe: %+v", r2)
	}
	// The first probe was released after the reset; its path is what is
	// left of it, starting after the forgotten part.
	if !r1.Replied || len(r1.Forward) == 0 || r1.Forward[len(r1.Forward)-1].Node != "vm3" {
		t.Errorf("first probe after reset: %+v", r1)
	}
}

// TestRecordFilter keeps only probe traffic in the trace: the results stay
// the same and the background (probe 0) frames are left out.
func TestRecordFilter(t *testing.T) {
	run := func(filter bool) (Result, int, int) {
		e, _ := lan(t, 1, 3)
		if filter {
			e.SetRecordFilter(func(p uint64) bool { return p != 0 })
		}
		nd, _ := e.Node("vm3")
		ok(t, e.Do(0, "vm3", 0, nd.(*stack.Instance).Announce)) // background
		id := mustT(e.ProbeTo(time.Millisecond, "vm1", "vm2", stack.ProbeSpec{Proto: stack.UDP}))
		ok(t, e.RunUntilIdle())
		conserve(t, e)
		zero := 0
		for _, ev := range e.Trace() {
			if ev.Probe == 0 {
				zero++
			}
		}
		return mustT(e.Result(id)), len(e.Trace()), zero
	}
	all, nAll, zAll := run(false)
	some, nSome, zSome := run(true)
	if zAll == 0 || zSome != 0 || nSome != nAll-zAll {
		t.Errorf("events: %d (%d background) unfiltered, %d (%d background) filtered", nAll, zAll, nSome, zSome)
	}
	if all.String() != some.String() || !some.Replied {
		t.Errorf("results differ:\n%v\n%v", all, some)
	}
}
