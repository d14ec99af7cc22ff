package userspace

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// relay is a two-port node that forwards every frame to its other port,
// or drops it when drop is set.
type relay struct {
	name string
	drop bool
	seen int
	down []int
	// kept counts the frames keep accepts, when set.
	keep func([]byte) bool
	kept int
}

func (n *relay) Name() string    { return n.name }
func (n *relay) Ports() []string { return []string{"eth1", "eth2"} }
func (n *relay) Receive(now time.Duration, p int, b []byte, out datapath.Output) {
	n.seen++
	if n.keep != nil && n.keep(b) {
		n.kept++
	}
	if n.drop {
		out.Trace(datapath.Event{Node: n.name, Device: n.name, Kind: datapath.KindSwitch, InPort: n.Ports()[p], Action: datapath.ActDrop, Reason: datapath.ReasonPolicy, Rule: "test:drop"})
		return
	}
	out.Trace(datapath.Event{Node: n.name, Device: n.name, Kind: datapath.KindSwitch, InPort: n.Ports()[p], OutPort: n.Ports()[1-p], Action: datapath.ActForward})
	out.Send(1-p, b)
}
func (n *relay) SetPortState(now time.Duration, p int, up bool, out datapath.Output) {
	if !up {
		n.down = append(n.down, p)
	}
}

// chain deploys a -- r1 -- ... -- rN -- b with every link's interfaces
// named eth1 (towards a) and eth2 (towards b).
func chain(t testing.TB, relays int) (*netns.Lab, []string) {
	t.Helper()
	testutil.RequireRoot(t)
	tp := &topologies.Topology{Name: testutil.Name("nbtest-us")}
	names := []string{"a"}
	for i := range relays {
		names = append(names, "r"+string(rune('1'+i)))
	}
	names = append(names, "b")
	for _, n := range names {
		tp.Nodes = append(tp.Nodes, &topologies.Node{Name: n, Role: topologies.RoleToR})
	}
	for i := 0; i+1 < len(names); i++ {
		tp.Links = append(tp.Links, &topologies.Link{A: topologies.Endpoint{Node: names[i], Iface: "eth2"}, B: topologies.Endpoint{Node: names[i+1], Iface: "eth1"}})
	}
	opt := &netns.Options{StateRoot: t.TempDir()}
	t.Cleanup(func() {
		if _, err := netns.Destroy(tp.Name, opt); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	lab, _, err := netns.Deploy(context.Background(), tp, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	return lab, names
}

// endpoint is a test socket on a lab interface.
type endpoint struct{ fd int }

func open(t testing.TB, lab *netns.Lab, node, ifname string) endpoint {
	t.Helper()
	ns, err := lab.NsHandle(node)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := OpenSocket(ns, ifname, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return endpoint{fd}
}

func (e endpoint) send(t testing.TB, b []byte) {
	t.Helper()
	if _, err := unix.Write(e.fd, b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// recv waits up to timeout for a frame whose payload tail matches want.
func (e endpoint) recv(t testing.TB, match func([]byte) bool, timeout time.Duration) []byte {
	t.Helper()
	bt := newBatch(8, 2048, true)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 20); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		n, err := bt.recv(e.fd)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if b := bt.frame(i); match(b) {
				return append([]byte(nil), b...)
			}
		}
	}
	return nil
}

func probeFrame(id uint64, vid uint16) []byte {
	var pl [8]byte
	binary.BigEndian.PutUint64(pl[:], id)
	b := frame.UDP(frame.IPv4{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: mustAddr("10.0.0.1"), Dst: mustAddr("10.0.0.2")}, 40000, 7, pl[:])
	if vid != 0 {
		b = frame.PushVLAN(nil, b, vid)
	}
	return b
}

func start(t testing.TB, lab *netns.Lab, names []string, relays []*relay) *Runtime {
	t.Helper()
	r := New(Options{})
	t.Cleanup(func() { r.Close() })
	for i, n := range relays {
		ns, err := lab.NsHandle(names[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNode(n, ns, n.Ports()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(relays); i++ {
		if err := r.Connect(datapath.Wire{A: datapath.PortRef{Node: relays[i].name, Port: 1}, B: datapath.PortRef{Node: relays[i+1].name, Port: 0}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// TestRelayChain sends probe frames (untagged and VLAN-tagged) through two
// relays and checks that they arrive intact, that the trace follows the
// frame from one node to the next, that frames from outside carry their
// key, that frames to outside are logged, and that a failed node drops.
func TestRelayChain(t *testing.T) {
	lab, names := chain(t, 2)
	relays := []*relay{{name: "r1"}, {name: "r2"}}
	r := start(t, lab, names, relays)
	a, b := open(t, lab, "a", "eth2"), open(t, lab, "b", "eth1")
	cases := []struct {
		name string
		id   uint64
		vid  uint16
	}{{"untagged", 7, 0}, {"tagged", 8, 100}, {"tagged-again", 9, 4094}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := probeFrame(c.id, c.vid)
			a.send(t, want)
			got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, want) }, 2*time.Second)
			if got == nil {
				t.Fatalf("frame %d (VLAN %d) did not arrive intact", c.id, c.vid)
			}
			var recs []Record
			var idx []int32
			for i, rec := range r.Trace() {
				if rec.Probe == c.id {
					recs = append(recs, rec)
					idx = append(idx, int32(i))
				}
			}
			if len(recs) != 2 || recs[0].Node != "r1" || recs[1].Node != "r2" {
				t.Fatalf("trace of probe %d: %+v", c.id, recs)
			}
			if recs[0].From == nil || recs[0].From.Node != "r1" || recs[0].From.Port != 0 || recs[0].Prev != -1 {
				t.Errorf("first record: From %+v Prev %d; want the key of r1 port 0 and no predecessor", recs[0].From, recs[0].Prev)
			}
			if recs[1].Prev != idx[0] || recs[1].From != nil {
				t.Errorf("second record: Prev %d From %+v; want %d (lineage across the veth)", recs[1].Prev, recs[1].From, idx[0])
			}
			var eg []Egress
			for _, e := range r.Egress() {
				if e.Probe == c.id {
					eg = append(eg, e)
				}
			}
			if len(eg) != 1 || eg[0].Node != "r2" || eg[0].Port != 1 || eg[0].Head != idx[1] {
				t.Errorf("egress of probe %d: %+v; want one from r2 port 1 after record %d", c.id, eg, idx[1])
			}
		})
	}
	t.Run("mutate", func(t *testing.T) {
		if err := r.Mutate(func() error { relays[1].drop = true; return nil }); err != nil {
			t.Fatal(err)
		}
		a.send(t, probeFrame(20, 0))
		if got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, probeFrame(20, 0)) }, 300*time.Millisecond); got != nil {
			t.Fatal("frame passed a relay told to drop")
		}
		r.Mutate(func() error { relays[1].drop = false; return nil })
		if r.Stats().Drops[string(datapath.ReasonPolicy)] == 0 {
			t.Error("policy drop not counted")
		}
	})
	t.Run("node-down", func(t *testing.T) {
		if err := r.SetNodeState("r2", false); err != nil {
			t.Fatal(err)
		}
		if err := r.Mutate(func() error {
			if len(relays[0].down) != 1 || relays[0].down[0] != 1 {
				t.Errorf("r1 ports told down: %v, want [1]", relays[0].down)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		a.send(t, probeFrame(30, 0))
		if got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, probeFrame(30, 0)) }, 300*time.Millisecond); got != nil {
			t.Fatal("frame crossed a failed node")
		}
		found := false
		for _, rec := range r.Trace() {
			if rec.Probe == 30 && rec.Node == "r2" && rec.Reason == datapath.ReasonNodeDown {
				found = true
			}
		}
		if !found {
			t.Error("no node-down drop traced at r2")
		}
		r.SetNodeState("r2", true)
		a.send(t, probeFrame(31, 0))
		if got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, probeFrame(31, 0)) }, 2*time.Second); got == nil {
			t.Fatal("frame lost after the node came back")
		}
	})
	t.Run("node-hung", func(t *testing.T) {
		told := func() (n int) {
			r.Mutate(func() error { n = len(relays[0].down); return nil })
			return n
		}
		before := told()
		if err := r.HangNode("r2"); err != nil {
			t.Fatal(err)
		}
		a.send(t, probeFrame(40, 0))
		if got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, probeFrame(40, 0)) }, 300*time.Millisecond); got != nil {
			t.Fatal("frame crossed a hung node")
		}
		found := false
		for _, rec := range r.Trace() {
			if rec.Probe == 40 && rec.Node == "r2" && rec.Reason == datapath.ReasonNodeDown {
				found = true
			}
		}
		if !found {
			t.Error("no node-down drop traced at the hung r2")
		}
		if err := r.SetNodeState("r2", true); err != nil {
			t.Fatal(err)
		}
		if n := told(); n != before {
			t.Errorf("r2's neighbours were told of %d port changes while it hung; want none", n-before)
		}
		a.send(t, probeFrame(41, 0))
		if got := b.recv(t, func(f []byte) bool { return bytes.Equal(f, probeFrame(41, 0)) }, 2*time.Second); got == nil {
			t.Fatal("frame lost after the hung node came back")
		}
	})
}

// TestCloseLeavesNothing checks that Close stops every node goroutine.
func TestCloseLeavesNothing(t *testing.T) {
	lab, names := chain(t, 2)
	before := runtime.NumGoroutine()
	r := New(Options{})
	relays := []*relay{{name: "r1"}, {name: "r2"}}
	for i, n := range relays {
		ns, _ := lab.NsHandle(names[i+1])
		if err := r.AddNode(n, ns, n.Ports()); err != nil {
			t.Fatal(err)
		}
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("no node goroutine started")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
	if err := r.AddNode(&relay{name: "r3"}, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("AddNode after Close: %v, want ErrClosed", err)
	}
}

// TestLinkDelay wires r1 to r2 with a delay: frames cross that wire no
// sooner than the delay (a lower bound, whatever the machine's load), and
// frames keep their order.
func TestLinkDelay(t *testing.T) {
	lab, names := chain(t, 2)
	relays := []*relay{{name: "r1"}, {name: "r2"}}
	r := New(Options{})
	t.Cleanup(func() { r.Close() })
	for i, n := range relays {
		ns, err := lab.NsHandle(names[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNode(n, ns, n.Ports()); err != nil {
			t.Fatal(err)
		}
	}
	const delay = 30 * time.Millisecond
	if err := r.Connect(datapath.Wire{A: datapath.PortRef{Node: "r1", Port: 1}, B: datapath.PortRef{Node: "r2", Port: 0}, Delay: delay}); err != nil {
		t.Fatal(err)
	}
	a, b := open(t, lab, "a", "eth2"), open(t, lab, "b", "eth1")
	ids := []uint64{101, 102, 103}
	for _, id := range ids {
		a.send(t, probeFrame(id, 0))
	}
	seen := map[uint64]bool{}
	b.recv(t, func(f []byte) bool {
		for _, id := range ids {
			if bytes.Equal(f, probeFrame(id, 0)) {
				seen[id] = true
			}
		}
		return len(seen) == len(ids)
	}, 2*time.Second)
	if len(seen) != len(ids) {
		t.Fatalf("frames lost on a delayed link: got %v of %v", seen, ids)
	}
	var last time.Duration
	for _, id := range ids {
		recs, _ := r.TraceOf(id)
		if len(recs) != 2 {
			t.Fatalf("probe %d: %d records", id, len(recs))
		}
		if d := recs[1].Time - recs[0].Time; d < delay {
			t.Errorf("probe %d crossed the %v link in %v", id, delay, d)
		}
		if recs[1].Time < last {
			t.Errorf("probe %d overtook the one before it", id)
		}
		last = recs[1].Time
	}
}

// TestMutateNests checks that a Mutate started from another goroutine
// while the nodes are paused runs at once (a driver whose lock is the
// runtime's pause, called inside a Mutate), and that the nodes stay
// paused until the last one ends.
func TestMutateNests(t *testing.T) {
	r := New(Options{})
	defer r.Close()
	done := make(chan struct{})
	err := r.Mutate(func() error {
		inner := make(chan error, 1)
		go func() {
			inner <- r.Mutate(func() error {
				if r.gate.TryRLock() {
					r.gate.RUnlock()
					t.Error("nodes not paused inside the nested Mutate")
				}
				close(done)
				return nil
			})
		}()
		select {
		case err := <-inner:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("nested Mutate blocked")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if !r.gate.TryRLock() {
		t.Fatal("nodes still paused after the last Mutate")
	}
	r.gate.RUnlock()
}

// TestKernelFramesLeftAlone: two nodes run by the datapath whose kernels
// talk TCP to each other over the veth between them (as BGP speakers in
// the nodes' namespaces do), on /31 addresses, while probes cross both
// nodes. The kernels' frames (ARP for their addresses, segments to their
// MACs) reach neither node: nothing of them is forwarded, traced or
// counted as a drop, and the probes still pass.
func TestKernelFramesLeftAlone(t *testing.T) {
	lab, names := chain(t, 2)
	kernel := func(b []byte) bool {
		if isARP(b) {
			return len(b) >= 42 && b[38] == 169 && b[39] == 254
		}
		return len(b) >= 34 && b[12] == 8 && b[13] == 0 && b[23] == 6 // TCP
	}
	relays := []*relay{{name: "r1", keep: kernel}, {name: "r2", keep: kernel}}
	// The addresses are there before the ports open, as the netns
	// runtime puts them.
	for _, e := range []struct{ node, ifname, addr string }{{"r1", "eth2", "169.254.0.0"}, {"r2", "eth1", "169.254.0.1"}} {
		h, err := lab.Handle(e.node)
		if err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName(e.ifname)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(e.addr).To4(), Mask: net.CIDRMask(31, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, lab, names, relays)
	a, b := open(t, lab, "a", "eth2"), open(t, lab, "b", "eth1")
	var ln net.Listener
	if err := lab.Do("r2", func() (err error) { ln, err = net.Listen("tcp4", "169.254.0.1:1790"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		echoed <- err
	}()
	var conn net.Conn
	if err := lab.Do("r1", func() (err error) { conn, err = net.DialTimeout("tcp4", "169.254.0.1:1790", 5*time.Second); return err }); err != nil {
		t.Fatalf("TCP between the nodes' kernels: %v", err)
	}
	msg := bytes.Repeat([]byte("keepalive"), 1000)
	for i := range 5 {
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %v", i, err)
		}
		want := probeFrame(uint64(100+i), 0)
		a.send(t, want)
		if b.recv(t, func(f []byte) bool { return bytes.Equal(f, want) }, 2*time.Second) == nil {
			t.Fatalf("probe %d lost while the kernels talk", 100+i)
		}
	}
	conn.Close()
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	r.Mutate(func() error {
		for _, n := range relays {
			if n.kept > 0 {
				t.Errorf("%s was handed %d of its kernel's frames", n.name, n.kept)
			}
		}
		return nil
	})
	s := r.Stats()
	if s.Kernel == 0 {
		t.Error("no frame counted as the kernels'")
	}
	if len(s.Drops) > 0 || s.SendErrors > 0 {
		t.Errorf("drops %v, send errors %d; want none", s.Drops, s.SendErrors)
	}
	for _, rec := range r.Trace() {
		if rec.Probe < 100 || rec.Probe > 104 {
			t.Errorf("trace record of a frame that is no probe: %+v", rec)
		}
	}
	t.Logf("%d frames left to the kernels", s.Kernel)
}

// TestCarrierLostUnseen: the far end of r1's eth2 goes down in b's
// namespace and nobody tells the runtime, as when a neighbour loses
// power before the node's netlink watch hears of it. What r1 then
// forwards the kernel refuses; those frames count as lost with the
// link (port-down), not as unexplained send errors. With and without
// the transmit ring, which the kernel refuses differently.
func TestCarrierLostUnseen(t *testing.T) {
	for _, ring := range []bool{false, true} {
		t.Run(map[bool]string{false: "sendmmsg", true: "tx-ring"}[ring], func(t *testing.T) {
			lab, names := chain(t, 1)
			r1 := &relay{name: "r1"}
			r := New(Options{TxRing: ring})
			t.Cleanup(func() { r.Close() })
			ns, err := lab.NsHandle(names[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddNode(r1, ns, r1.Ports()); err != nil {
				t.Fatal(err)
			}
			bns, err := lab.NsHandle("b")
			if err != nil {
				t.Fatal(err)
			}
			h, err := netlink.NewHandleAt(bns)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			l, err := h.LinkByName("eth1")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetDown(l); err != nil {
				t.Fatal(err)
			}
			a := open(t, lab, "a", "eth2")
			const sent = 20
			for i := range sent {
				a.send(t, probeFrame(uint64(100+i), 0))
			}
			// Every frame r1 reads is refused: wait until it has read
			// them all and one refusal is counted.
			var st Stats
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if st = r.Stats(); st.Frames >= sent && st.Drops[string(datapath.ReasonPortDown)]+st.SendErrors > 0 {
					break
				}
			}
			if st.SendErrors != 0 {
				t.Errorf("%d send errors on a port whose link is down; want them counted as port-down", st.SendErrors)
			}
			if st.Drops[string(datapath.ReasonPortDown)] == 0 {
				t.Errorf("no port-down drop after %d frames forwarded onto a link without carrier (stats %+v)", sent, st)
			}
		})
	}
}
