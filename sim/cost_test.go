package sim

import (
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
)

// TestDeviceCost runs a flood through a vswitch whose devices each cost
// their own time, over wires of 1 ms: every device finishes when the one
// before it on the path did, plus the wire, plus its own cost; the
// flood's second branch starts from the bridge again, not after the
// first branch's tap; frames leave when the node's last device is done.
func TestDeviceCost(t *testing.T) {
	us := time.Microsecond
	costs := map[string]time.Duration{"src/eth0": 10 * us, "host/br": 1 * us, "host/tap1": 2 * us,
		"host/patch": 3 * us, "host/nic": 4 * us, "d1/eth0": 100 * us, "d2/eth0": 200 * us}
	e := New(1)
	e.SetDeviceCost(func(ev *datapath.Event, _ cost.Where) time.Duration {
		return costs[ev.Node+"/"+ev.Device]
	})
	d1, d2 := &endpoint{name: "d1"}, &endpoint{name: "d2"}
	for _, n := range []datapath.Node{&endpoint{name: "src"}, vswitch{}, d1, d2} {
		ok(t, e.AddNode(n, 0))
	}
	wire := time.Millisecond
	for _, w := range []datapath.Wire{
		{A: datapath.PortRef{Node: "src"}, B: datapath.PortRef{Node: "host", Port: 0}, Delay: wire},
		{A: datapath.PortRef{Node: "host", Port: 1}, B: datapath.PortRef{Node: "d1"}, Delay: wire},
		{A: datapath.PortRef{Node: "host", Port: 2}, B: datapath.PortRef{Node: "d2"}, Delay: wire},
	} {
		mustT(e.Connect(w, LinkOpts{}))
	}
	ok(t, e.Do(0, "src", 9, func(now time.Duration, out datapath.Output) {
		out.Trace(datapath.Event{Node: "src", Device: "eth0", Kind: datapath.KindNIC, Action: datapath.ActOriginate})
		out.Send(0, make([]byte, 60))
	}))
	ok(t, e.RunUntilIdle())
	conserve(t, e)
	want := map[string]time.Duration{
		"src/eth0":   10 * us,
		"host/br":    10*us + wire + 1*us,
		"host/tap1":  10*us + wire + 3*us,
		"d1/eth0":    10*us + wire + 3*us + wire + 100*us,
		"host/patch": 10*us + wire + 4*us, // from br, not after tap1
		"host/nic":   10*us + wire + 8*us,
		"d2/eth0":    10*us + wire + 8*us + wire + 200*us,
	}
	for _, ev := range e.Trace() {
		k := ev.Node + "/" + ev.Device
		if ev.Time != want[k] {
			t.Errorf("%s at %v, want %v", k, ev.Time, want[k])
		}
	}
	// The nodes received when the frame got there: the wire after the
	// sender's last device.
	if len(d1.got) != 1 || d1.got[0] != 10*us+wire+3*us+wire {
		t.Errorf("d1 received at %v, want [%v]", d1.got, 10*us+wire+3*us+wire)
	}
	if len(d2.got) != 1 || d2.got[0] != 10*us+wire+8*us+wire {
		t.Errorf("d2 received at %v, want [%v]", d2.got, 10*us+wire+8*us+wire)
	}
}
