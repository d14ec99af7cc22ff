package sim

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// conserve fails the test unless the engine's accounting balances.
func conserve(t *testing.T, e *Engine) Counts {
	t.Helper()
	c, err := e.Conservation()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustT returns v, panicking (failing the test) on err; it takes a call's
// two results directly.
func mustT[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pair builds src(endpoint) -- w(wireNode) -- dst(endpoint) with the given
// wire properties on both wires.
func pair(t *testing.T, seed int64, rate int64, delay, proc time.Duration, opts LinkOpts) (*Engine, *endpoint, *wireNode, *endpoint) {
	t.Helper()
	e := New(seed)
	src, dst, w := &endpoint{name: "src"}, &endpoint{name: "dst"}, &wireNode{name: "w"}
	ok(t, e.AddNode(src, 0))
	ok(t, e.AddNode(w, proc))
	ok(t, e.AddNode(dst, proc))
	mustT(e.Connect(datapath.Wire{A: datapath.PortRef{Node: "src"}, B: datapath.PortRef{Node: "w"}, Rate: rate, Delay: delay}, opts))
	mustT(e.Connect(datapath.Wire{A: datapath.PortRef{Node: "w", Port: 1}, B: datapath.PortRef{Node: "dst"}, Rate: rate, Delay: delay}, opts))
	return e, src, w, dst
}

// burst makes src send n frames of size bytes at time at.
func burst(t *testing.T, e *Engine, at time.Duration, n, size int) {
	t.Helper()
	ok(t, e.Do(at, "src", 0, func(now time.Duration, out datapath.Output) {
		b := make([]byte, size)
		for range n {
			out.Send(0, b)
		}
	}))
}

func TestDelayAndSerialisation(t *testing.T) {
	cases := []struct {
		name        string
		rate        int64
		delay, proc time.Duration
		n, size     int
	}{
		{"unlimited", 0, 5 * time.Microsecond, 0, 3, 100},
		{"1G", 1e9, 2 * time.Microsecond, 0, 4, 1500},
		{"10G-proc", 10e9, 500 * time.Nanosecond, 3 * time.Microsecond, 3, 64},
		{"odd-rate-rounds-up", 3e9, 0, 0, 2, 1}, // 8 bits at 3 Gbit/s = 2.67 ns -> 3
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _, _, dst := pair(t, 1, c.rate, c.delay, c.proc, LinkOpts{})
			burst(t, e, 0, c.n, c.size)
			ok(t, e.RunUntilIdle())
			if len(dst.got) != c.n {
				t.Fatalf("delivered %d, want %d", len(dst.got), c.n)
			}
			ser := time.Duration(0)
			if c.rate > 0 {
				bits := int64(c.size) * 8 * int64(time.Second)
				ser = time.Duration(bits / c.rate)
				if bits%c.rate != 0 {
					ser++
				}
			}
			for k, at := range dst.got {
				// First wire: frames leave back to back; the forwarder sees
				// frame k at (k+1)ser + delay + proc and sends it at once;
				// the second wire is idle by then except for its own FIFO.
				first := time.Duration(k+1)*ser + c.delay + c.proc
				// On the second wire frame k starts at max(first_k, end of k-1).
				want := first + ser + c.delay + c.proc
				if k > 0 {
					prevStart := dst.got[k-1] - c.delay - c.proc // end of k-1 on wire 2
					if start := max(first, prevStart); start+ser+c.delay+c.proc != at {
						t.Errorf("frame %d at %v, want %v", k, at, start+ser+c.delay+c.proc)
					}
					continue
				}
				if at != want {
					t.Errorf("frame %d at %v, want %v", k, at, want)
				}
			}
			c2 := conserve(t, e)
			if c2.Delivered != uint64(c.n) || c2.Forwarded != uint64(c.n) || c2.Injected != uint64(2*c.n) {
				t.Errorf("counts %+v", c2)
			}
		})
	}
}

func TestQueueTailDrop(t *testing.T) {
	cases := []struct {
		q, n int
	}{{1, 5}, {2, 5}, {4, 4}, {3, 10}}
	for _, c := range cases {
		t.Run("", func(t *testing.T) {
			e, _, _, dst := pair(t, 1, 1e9, time.Microsecond, 0, LinkOpts{QueueFrames: c.q})
			burst(t, e, 0, c.n, 1000)
			// A second burst after the queue drained is accepted again.
			burst(t, e, time.Second, 1, 1000)
			ok(t, e.RunUntilIdle())
			want := min(c.q, c.n)
			if len(dst.got) != want+1 {
				t.Errorf("delivered %d, want %d", len(dst.got), want+1)
			}
			cs := conserve(t, e)
			if got := cs.Dropped[datapath.ReasonQueueFull]; got != uint64(c.n-want) {
				t.Errorf("queue-full drops %d, want %d", got, c.n-want)
			}
			drops := 0
			for _, ev := range e.Trace() {
				if ev.Action == datapath.ActDrop && ev.Reason == datapath.ReasonQueueFull && ev.Node == "src" && ev.Kind == KindLink {
					drops++
				}
			}
			if drops != c.n-want {
				t.Errorf("%d queue-full trace events, want %d", drops, c.n-want)
			}
		})
	}
}

func lossPattern(t *testing.T, seed int64, loss float64, n int) ([]int, Counts) {
	e, _, _, dst := pair(t, seed, 0, time.Microsecond, 0, LinkOpts{Loss: loss})
	ok(t, e.Do(0, "src", 0, func(now time.Duration, out datapath.Output) {
		for i := range n {
			out.Send(0, []byte{byte(i), byte(i >> 8), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		}
	}))
	ok(t, e.RunUntilIdle())
	_ = dst
	var lost []int
	for i, ev := range e.Trace() {
		if ev.Reason == datapath.ReasonLoss {
			lost = append(lost, i)
		}
	}
	return lost, conserve(t, e)
}

func TestLossDeterministicPerSeed(t *testing.T) {
	const n = 2000
	a, ca := lossPattern(t, 7, 0.25, n)
	b, _ := lossPattern(t, 7, 0.25, n)
	c, _ := lossPattern(t, 8, 0.25, n)
	if len(a) == 0 || len(a) >= 2*n {
		t.Fatalf("lost %d of %d frames over two wires at 25%%", len(a), 2*n)
	}
	if uint64(len(a)) != ca.Dropped[datapath.ReasonLoss] {
		t.Errorf("%d loss events, %d counted", len(a), ca.Dropped[datapath.ReasonLoss])
	}
	if !equalInts(a, b) {
		t.Error("same seed gave a different loss pattern")
	}
	if equalInts(a, c) {
		t.Error("different seeds gave the same loss pattern")
	}
	none, _ := lossPattern(t, 7, 0, n)
	if len(none) != 0 {
		t.Errorf("lost %d frames with Loss 0", len(none))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLinkFault(t *testing.T) {
	e, src, w, dst := pair(t, 1, 0, 10*time.Microsecond, 0, LinkOpts{})
	w2 := mustT(e.Wire(datapath.PortRef{Node: "dst"}))
	burst(t, e, 0, 1, 64)                   // delivered at 20µs
	burst(t, e, 15*time.Microsecond, 1, 64) // on wire 2 from 25µs: in flight when it fails
	ok(t, e.SetLinkState(30*time.Microsecond, w2, false))
	burst(t, e, 40*time.Microsecond, 1, 64) // reaches w at 50µs, sent on a down wire
	ok(t, e.SetPortLinkState(60*time.Microsecond, datapath.PortRef{Node: "w", Port: 1}, true))
	burst(t, e, 70*time.Microsecond, 1, 64) // delivered at 90µs
	ok(t, e.RunUntilIdle())
	want := []time.Duration{20 * time.Microsecond, 90 * time.Microsecond}
	if !equalDur(dst.got, want) {
		t.Errorf("delivered at %v, want %v", dst.got, want)
	}
	cs := conserve(t, e)
	if cs.Dropped[datapath.ReasonPortDown] != 2 || cs.Delivered != 2 {
		t.Errorf("counts %+v, want 2 delivered, 2 port-down", cs)
	}
	if got := []string{"1:false@30µs", "1:true@1m0µs"}; len(w.state) != 2 || w.state[0] != got[0] {
		t.Errorf("forwarder port states %v", w.state)
	}
	if len(dst.state) != 2 || len(src.state) != 0 {
		t.Errorf("dst saw %v, src saw %v; want two changes at dst only", dst.state, src.state)
	}
}

func equalDur(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNodeFault(t *testing.T) {
	e, src, _, dst := pair(t, 1, 0, 10*time.Microsecond, 0, LinkOpts{})
	ok(t, e.SetNodeState(5*time.Microsecond, "w", false))
	burst(t, e, 0, 1, 64)                   // reaches w at 10µs: node down
	burst(t, e, 20*time.Microsecond, 1, 64) // same
	ok(t, e.SetNodeState(40*time.Microsecond, "w", true))
	burst(t, e, 50*time.Microsecond, 1, 64)
	ok(t, e.RunUntilIdle())
	if !equalDur(dst.got, []time.Duration{70 * time.Microsecond}) {
		t.Errorf("delivered at %v", dst.got)
	}
	cs := conserve(t, e)
	if cs.Dropped[datapath.ReasonNodeDown] != 2 {
		t.Errorf("node-down drops %d, want 2", cs.Dropped[datapath.ReasonNodeDown])
	}
	want := []string{"0:false@5µs", "0:true@40µs"}
	for _, n := range []*endpoint{src, dst} {
		if len(n.state) != 2 || n.state[0] != want[0] || n.state[1] != want[1] {
			t.Errorf("%s port states %v, want %v", n.name, n.state, want)
		}
	}
	if err := e.SetNodeState(0, "nope", false); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
}

// TestHangNode: a hung node drops what reaches it (node-down) as a
// failed one does, but its neighbours' ports never change state, neither
// when it hangs nor when it comes back.
func TestHangNode(t *testing.T) {
	e, src, _, dst := pair(t, 1, 0, 10*time.Microsecond, 0, LinkOpts{})
	ok(t, e.HangNode(5*time.Microsecond, "w"))
	burst(t, e, 0, 1, 64)                   // reaches w at 10µs: hung
	burst(t, e, 20*time.Microsecond, 1, 64) // same
	ok(t, e.SetNodeState(40*time.Microsecond, "w", true))
	burst(t, e, 50*time.Microsecond, 1, 64)
	ok(t, e.RunUntilIdle())
	if !equalDur(dst.got, []time.Duration{70 * time.Microsecond}) {
		t.Errorf("delivered at %v", dst.got)
	}
	if cs := conserve(t, e); cs.Dropped[datapath.ReasonNodeDown] != 2 {
		t.Errorf("node-down drops %d, want 2", cs.Dropped[datapath.ReasonNodeDown])
	}
	for _, n := range []*endpoint{src, dst} {
		if len(n.state) != 0 {
			t.Errorf("%s saw port states %v; a hung neighbour changes none", n.name, n.state)
		}
	}
	if err := e.HangNode(0, "nope"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
}

func TestConnectErrors(t *testing.T) {
	e := New(1)
	ok(t, e.AddNode(&endpoint{name: "a"}, 0))
	ok(t, e.AddNode(&endpoint{name: "b"}, 0))
	if err := e.AddNode(&endpoint{name: "a"}, 0); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate node: %v", err)
	}
	cases := []struct {
		w    datapath.Wire
		want error
	}{
		{datapath.Wire{A: datapath.PortRef{Node: "a"}, B: datapath.PortRef{Node: "zz"}}, ErrUnknownNode},
		{datapath.Wire{A: datapath.PortRef{Node: "a"}, B: datapath.PortRef{Node: "b", Port: 3}}, ErrBadPort},
	}
	for _, c := range cases {
		if _, err := e.Connect(c.w, LinkOpts{}); !errors.Is(err, c.want) {
			t.Errorf("connect %+v: %v, want %v", c.w, err, c.want)
		}
	}
	mustT(e.Connect(datapath.Wire{A: datapath.PortRef{Node: "a"}, B: datapath.PortRef{Node: "b"}}, LinkOpts{}))
	if _, err := e.Connect(datapath.Wire{A: datapath.PortRef{Node: "a"}, B: datapath.PortRef{Node: "b"}}, LinkOpts{}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("port wired twice: %v", err)
	}
}

func TestEventLimitStopsLoop(t *testing.T) {
	// Two hubs joined twice: a broadcast storm.
	e := New(1)
	ok(t, e.AddNode(newHub("h1", 3), time.Microsecond))
	ok(t, e.AddNode(newHub("h2", 3), time.Microsecond))
	ok(t, e.AddNode(&endpoint{name: "src"}, 0))
	for _, w := range []datapath.Wire{
		{A: datapath.PortRef{Node: "h1", Port: 0}, B: datapath.PortRef{Node: "h2", Port: 0}},
		{A: datapath.PortRef{Node: "h1", Port: 1}, B: datapath.PortRef{Node: "h2", Port: 1}},
		{A: datapath.PortRef{Node: "src"}, B: datapath.PortRef{Node: "h1", Port: 2}},
	} {
		mustT(e.Connect(w, LinkOpts{}))
	}
	burst(t, e, 0, 1, 64)
	e.SetEventLimit(1000)
	if err := e.RunUntilIdle(); !errors.Is(err, ErrEventLimit) {
		t.Fatalf("storm: %v, want ErrEventLimit", err)
	}
	cs := conserve(t, e)
	if cs.InFlight == 0 {
		t.Error("no frames in flight in a storm")
	}
}

// lan builds a learning switch with n stack instances vm1..vmn.
func lan(t *testing.T, seed int64, n int) (*Engine, *lanFabric) {
	t.Helper()
	e := New(seed)
	f := newLAN(n)
	ok(t, e.Load(f, UniformDelay(time.Microsecond), LinkOpts{QueueFrames: 64}))
	for i := 1; i <= n; i++ {
		mustT(e.AddInstance(f, instSpec(i)))
	}
	return e, f
}

func TestProbeResults(t *testing.T) {
	e, _ := lan(t, 1, 3)
	dst := netip4(10, 0, 0, 2)
	ids := map[stack.Proto]uint64{}
	for k, p := range []stack.Proto{stack.ICMP, stack.UDP, stack.TCP} {
		ids[p] = mustT(e.Probe(time.Duration(k)*time.Millisecond, "vm1", stack.ProbeSpec{Proto: p, Dst: dst}))
	}
	closed := mustT(e.Probe(5*time.Millisecond, "vm1", stack.ProbeSpec{Proto: stack.TCP, Dst: dst, DstPort: 9}))
	nobody := mustT(e.Probe(6*time.Millisecond, "vm1", stack.ProbeSpec{Proto: stack.ICMP, Dst: netip4(10, 0, 0, 99)}))
	ok(t, e.RunUntilIdle())
	conserve(t, e)

	wantPath := []string{"vm1/eth0", "sw", "vm2/eth0"}
	for p, id := range ids {
		r := mustT(e.Result(id))
		if !r.Delivered || !r.Replied || r.To != "vm2" {
			t.Fatalf("%v: %+v", p, r)
		}
		if got := r.Forward.Devices(); !equalStr(got, wantPath) {
			t.Errorf("%v forward %v, want %v (ARP and flood copies excluded)", p, got, wantPath)
		}
		if got := r.Return.Devices(); !equalStr(got, []string{"vm2/eth0", "sw", "vm1/eth0"}) {
			t.Errorf("%v return %v", p, got)
		}
		if r.Hops != 2 || r.SwitchHops != 1 {
			t.Errorf("%v hops %d switch hops %d, want 2 and 1", p, r.Hops, r.SwitchHops)
		}
		// Two wires of 1µs and two nodes of 1µs processing each way.
		if r.OneWay != 4*time.Microsecond || r.RTT != 2*r.OneWay {
			t.Errorf("%v one-way %v rtt %v, want 4µs and 8µs", p, r.OneWay, r.RTT)
		}
	}
	r := mustT(e.Result(closed))
	if !r.Replied || r.ReplyKind != stack.ReplyRST {
		t.Errorf("closed port: %+v", r)
	}
	r = mustT(e.Result(nobody))
	if r.Delivered || r.Reason != datapath.ReasonNoARP || r.DropNode != "vm1" {
		t.Errorf("probe to nobody: %+v, want arp-unresolved at vm1", r)
	}
	if _, err := e.Result(12345); !errors.Is(err, ErrUnknownProbe) {
		t.Errorf("unknown probe: %v", err)
	}
}

func TestProbeFloodAndDrop(t *testing.T) {
	// A hub floods the probe to vm3 as well; vm3's not-for-me drop is not on
	// the path. Then the hub fails and the probe's drop is reported there.
	e := New(1)
	ok(t, e.AddNode(newHub("hub", 3), 0))
	for i := 1; i <= 3; i++ {
		s := instSpec(i)
		ok(t, e.AddNode(stack.New(s.Name, s.MAC, s.IP, s.Gateway), 0))
		mustT(e.Connect(datapath.Wire{A: datapath.PortRef{Node: s.Name}, B: datapath.PortRef{Node: "hub", Port: i - 1}, Delay: time.Microsecond}, LinkOpts{}))
	}
	id := mustT(e.Probe(0, "vm1", stack.ProbeSpec{Proto: stack.UDP, Dst: netip4(10, 0, 0, 2)}))
	ok(t, e.SetNodeState(time.Millisecond, "hub", false))
	late := mustT(e.Probe(2*time.Millisecond, "vm1", stack.ProbeSpec{Proto: stack.UDP, Dst: netip4(10, 0, 0, 2)}))
	ok(t, e.RunUntilIdle())
	conserve(t, e)
	r := mustT(e.Result(id))
	if got := r.Forward.Devices(); !equalStr(got, []string{"vm1/eth0", "hub", "vm2/eth0"}) || !r.Replied {
		t.Errorf("forward %v replied %v", got, r.Replied)
	}
	r = mustT(e.Result(late))
	if r.Delivered || r.DropNode != "hub" || r.Reason != datapath.ReasonNodeDown {
		t.Errorf("probe through failed hub: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "dropped at hub/p0: node-down") {
		t.Errorf("summary %q does not name the drop", s)
	}
	if got := r.Forward.Devices(); !equalStr(got, []string{"vm1/eth0"}) {
		t.Errorf("partial path %v, want [vm1/eth0]", got)
	}
}

func TestProbeFromDownInstance(t *testing.T) {
	e, _ := lan(t, 1, 2)
	ok(t, e.SetNodeState(0, "vm1", false))
	id := mustT(e.Probe(time.Millisecond, "vm1", stack.ProbeSpec{Proto: stack.ICMP, Dst: netip4(10, 0, 0, 2)}))
	ok(t, e.RunUntilIdle())
	c := conserve(t, e)
	r := mustT(e.Result(id))
	if r.Delivered || r.DropNode != "vm1" || r.Reason != datapath.ReasonNodeDown {
		t.Errorf("probe from a down instance: %v", r)
	}
	if c.Injected != 0 {
		t.Errorf("a down instance injected %d frames", c.Injected)
	}
}

func TestAllPairsAndInstanceChurn(t *testing.T) {
	e, f := lan(t, 1, 4)
	names := []string{"vm1", "vm2", "vm3", "vm4"}
	m := mustT(e.AllPairs(0, 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.ICMP}))
	if m.Reachable() != 12 {
		t.Errorf("reachable pairs %d, want 12:\n%s", m.Reachable(), m)
	}
	// vm4 leaves; vm5 takes its port.
	ok(t, e.RemoveInstance(f, "vm4"))
	mustT(e.AddInstance(f, instSpec(5)))
	names = []string{"vm1", "vm2", "vm5"}
	m = mustT(e.AllPairs(e.Now(), 10*time.Microsecond, names, stack.ProbeSpec{Proto: stack.TCP, DstPort: 22}))
	if m.Reachable() != 6 {
		t.Errorf("after churn: reachable %d, want 6:\n%s", m.Reachable(), m)
	}
	if err := e.RemoveInstance(f, "vm4"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("remove twice: %v", err)
	}
	conserve(t, e)
}

func equalStr(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// goldenRun is a small scenario with ARP, floods, probes of every kind,
// loss, a link fault and queueing; its trace is the golden file.
func goldenRun(t *testing.T) []byte {
	e, _ := lan(t, 42, 4)
	w := mustT(e.Wire(datapath.PortRef{Node: "vm4"}))
	ok(t, e.SetLinkState(3*time.Millisecond, w, false))
	for k, p := range []stack.Proto{stack.ICMP, stack.UDP, stack.TCP} {
		for i := 1; i <= 4; i++ {
			dst := netip4(10, 0, 0, byte(i%4+1))
			mustT(e.Probe(time.Duration(k)*2*time.Millisecond+time.Duration(i)*time.Microsecond, instSpec(i).Name, stack.ProbeSpec{Proto: p, Dst: dst}))
		}
	}
	ok(t, e.RunUntilIdle())
	conserve(t, e)
	var b bytes.Buffer
	ok(t, e.WriteTrace(&b))
	return b.Bytes()
}

func TestGoldenTrace(t *testing.T) {
	a, b := goldenRun(t), goldenRun(t)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same seed gave different traces")
	}
	path := filepath.Join("testdata", "lan.trace")
	if *update {
		ok(t, os.MkdirAll("testdata", 0o755))
		ok(t, os.WriteFile(path, a, 0o644))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(a, want) {
		t.Errorf("trace differs from %s (run with -update if the change is intended)", path)
	}
}
