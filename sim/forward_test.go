package sim

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
)

// stripper forwards every frame from port 0, without its first strip
// bytes (as a decapsulating node forwards the inner frame), on each of
// its other ports: by Forward on port 1, by Send on the others.
type stripper struct {
	name  string
	ports []string
	strip int
	got   [][]byte // the frames received (only their addresses are read)
	quiet bool     // keep nothing
}

func (s *stripper) Name() string    { return s.name }
func (s *stripper) Ports() []string { return s.ports }
func (s *stripper) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if !s.quiet {
		s.got = append(s.got, b)
	}
	out.Trace(datapath.Event{Node: s.name, Device: s.name, Kind: datapath.KindSwitch, Action: datapath.ActForward})
	inner := b[s.strip:]
	for q := len(s.ports) - 1; q >= 1; q-- {
		if q == 1 {
			out.Forward(q, inner)
		} else {
			out.Send(q, inner)
		}
	}
}
func (s *stripper) SetPortState(time.Duration, int, bool, datapath.Output) {}

// keeper consumes frames, keeping a copy of each and where it lay.
type keeper struct {
	name   string
	frames [][]byte
	at     []*byte
	quiet  bool // keep nothing
}

func (k *keeper) Name() string    { return k.name }
func (k *keeper) Ports() []string { return []string{"eth0"} }
func (k *keeper) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if !k.quiet {
		k.frames = append(k.frames, bytes.Clone(b))
		k.at = append(k.at, &b[0])
	}
	out.Trace(datapath.Event{Node: k.name, Device: "eth0", Kind: datapath.KindNIC, Action: datapath.ActDeliver})
}
func (k *keeper) SetPortState(time.Duration, int, bool, datapath.Output) {}

// TestForwardTakesTheFrame: a node forwarding the frame it received
// hands the engine's buffer on without a copy, once; an inner frame, a
// second send of the frame and a Forward of a frame the node built are
// copies; buffers keep their size when reused.
func TestForwardTakesTheFrame(t *testing.T) {
	e := New(1)
	e.SetRecord(false)
	s1 := &stripper{name: "s1", ports: []string{"in", "out"}}
	s2 := &stripper{name: "s2", ports: []string{"in", "out", "copy"}, strip: 4}
	src := &endpoint{name: "src"}
	dst, cp := &keeper{name: "dst"}, &keeper{name: "cp"}
	for _, n := range []datapath.Node{src, s1, s2, dst, cp} {
		if err := e.AddNode(n, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []datapath.Wire{
		{A: datapath.PortRef{Node: "src"}, B: datapath.PortRef{Node: "s1"}},
		{A: datapath.PortRef{Node: "s1", Port: 1}, B: datapath.PortRef{Node: "s2"}},
		{A: datapath.PortRef{Node: "s2", Port: 1}, B: datapath.PortRef{Node: "dst"}},
		{A: datapath.PortRef{Node: "s2", Port: 2}, B: datapath.PortRef{Node: "cp"}},
	} {
		if _, err := e.Connect(w, LinkOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	frame := make([]byte, 64)
	for i := range frame {
		frame[i] = byte(i)
	}
	// The source builds its frame in its own buffer and forwards it: a
	// copy (no frame is being received), so it may overwrite the buffer.
	own := bytes.Clone(frame)
	send := func(now time.Duration, out datapath.Output) {
		out.Forward(0, own)
		clear(own)
		copy(own, frame)
	}
	round := func() {
		if err := e.Do(e.Now()+time.Microsecond, "src", 0, send); err != nil {
			t.Fatal(err)
		}
		if err := e.RunUntilIdle(); err != nil {
			t.Fatal(err)
		}
	}
	round()
	if len(dst.frames) != 1 || len(cp.frames) != 1 {
		t.Fatalf("dst got %d frames, cp %d; want 1 each", len(dst.frames), len(cp.frames))
	}
	if !bytes.Equal(dst.frames[0], frame[4:]) || !bytes.Equal(cp.frames[0], frame[4:]) {
		t.Fatalf("dst got %x, cp %x; want %x", dst.frames[0], cp.frames[0], frame[4:])
	}
	if &s1.got[0][0] == &own[0] {
		t.Error("a frame forwarded from outside Receive was not copied")
	}
	// s1 forwarded the buffer it received; s2's inner frame does not
	// start where its buffer starts, so its Forward copied (so did its
	// Send, a second send of the frame).
	if &s2.got[0][0] != &s1.got[0][0] {
		t.Errorf("the forwarded frame was copied: s1 got it at %p, s2 at %p", &s1.got[0][0], &s2.got[0][0])
	}
	if dst.at[0] == &s2.got[0][4] || cp.at[0] == &s2.got[0][4] || cp.at[0] == dst.at[0] {
		t.Error("an inner frame, or a second send of a frame, was not copied")
	}
	if c, err := e.Conservation(); err != nil || c.Forwarded != 2 || c.Delivered != 2 {
		t.Fatalf("counts %+v, %v; want 2 forwarded, 2 delivered", c, err)
	}
	// Steady state: the buffers shortened by the strips are whole again
	// for the next frames, and nothing allocates.
	s1.quiet, s2.quiet, dst.quiet, cp.quiet = true, true, true, true
	if a := mallocsIn(50, round); a != 0 {
		t.Errorf("%d allocations in 50 rounds, want 0", a)
	}
	dst.quiet = false
	long := make([]byte, 1600)
	long[1599] = 7
	frame, own = long, bytes.Clone(long)
	round()
	if got := dst.frames[len(dst.frames)-1]; !bytes.Equal(got, long[4:]) {
		t.Errorf("a full-size frame after the short ones arrived as %d bytes, want %d", len(got), len(long)-4)
	}
	dst.quiet = true
	round()
	if a := mallocsIn(200, round); a != 0 {
		t.Errorf("%d allocations in 200 rounds of full-size frames, want 0 (buffers shortened for good?)", a)
	}
}

// mallocsIn returns the heap allocations made in n calls of f: all of
// them, where testing.AllocsPerRun rounds the mean down (a table
// regrowing every few rounds would pass it). The count is the process's,
// so it takes the least of three tries: an allocation of f's shows in
// every try, a stray one of another goroutine's (a test before this one)
// in one.
func mallocsIn(n int, f func()) uint64 {
	least := ^uint64(0)
	for range 3 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range n {
			f()
		}
		runtime.ReadMemStats(&m1)
		least = min(least, m1.Mallocs-m0.Mallocs)
	}
	return least
}
