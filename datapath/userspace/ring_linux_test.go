package userspace

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/topologies/netns"
)

// ringSocket opens a packet socket in node with a receive ring for frames
// of up to frameLen bytes (longer ones spilled whole up to spill bytes if
// spill is not 0), bound to every interface.
func ringSocket(t *testing.T, lab *netns.Lab, node string, frameLen, spill int) (int, *RxRing) {
	t.Helper()
	var fd int
	var rg *RxRing
	err := lab.Do(node, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if rg, err = NewRxRing(fd, frameLen, 1<<16); err != nil {
			unix.Close(fd)
			return err
		}
		if spill > 0 {
			if err := rg.Spill(spill); err != nil {
				rg.Close()
				unix.Close(fd)
				return err
			}
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			rg.Close()
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rg.Close(); err != nil {
			t.Error(err)
		}
		unix.Close(fd)
	})
	return fd, rg
}

type ringFrame struct {
	data     []byte
	len      int
	ifindex  int
	outgoing bool
	time     time.Time
}

// collect drains rg until it has handed n frames matching keep.
func collect(t *testing.T, fd int, rg *RxRing, n int, keep func([]byte) bool) []ringFrame {
	t.Helper()
	var out []ringFrame
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 20); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		rg.Drain(64, func(f RxFrame) {
			if keep(f.Data) {
				out = append(out, ringFrame{append([]byte(nil), f.Data...), f.Len(), f.Ifindex(), f.Outgoing(), f.Time()})
			}
		})
	}
	if len(out) < n {
		t.Fatalf("ring handed %d frames, want %d", len(out), n)
	}
	return out
}

// TestRxRing sends frames from a to b and reads them from rings in both:
// the header's direction, interface, length and timestamp, a stripped
// VLAN tag put back, a frame longer than the slots cut (or read whole from
// the socket by a ring that spills), and each send stamped no later than
// its receive and than the send's return.
// Then it sends more frames than the ring holds, in batches each read
// before the next, so that the reading crosses blocks and wraps.
func TestRxRing(t *testing.T) {
	lab, _ := chain(t, 0)
	if err := lab.WaitUp(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	const frameLen = 256
	afd, arg := ringSocket(t, lab, "a", frameLen, 0)
	bfd, brg := ringSocket(t, lab, "b", frameLen, 0)
	sfd, srg := ringSocket(t, lab, "b", frameLen, 2048)
	ifindex := func(node, name string) int {
		h, err := lab.Handle(node)
		if err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	ns, err := lab.NsHandle("a")
	if err != nil {
		t.Fatal(err)
	}
	// Through the qdisc, so that a's ring sees what it sends.
	fd, err := OpenSocket(ns, "eth2", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	long := frame.PushVLAN(nil, append(probeFrame(3, 0), make([]byte, 600)...), 200)
	sent := [][]byte{probeFrame(1, 0), probeFrame(2, 100), long}
	var returned []time.Time
	for _, b := range sent {
		if _, err := unix.Write(fd, b); err != nil {
			t.Fatal(err)
		}
		returned = append(returned, time.Now())
	}
	ours := func(b []byte) bool {
		for _, s := range sent {
			if len(b) >= 12 && bytes.Equal(b[:12], s[:12]) {
				return true
			}
		}
		return false
	}
	outs := collect(t, afd, arg, len(sent), ours)
	ins := collect(t, bfd, brg, len(sent), ours)
	for i, f := range collect(t, sfd, srg, len(sent), ours) {
		if !bytes.Equal(f.data, sent[i]) || f.len != len(sent[i]) {
			t.Errorf("frame %d into b, spilling ring: %x (%d on the wire), sent %x (%d)", i, f.data, f.len, sent[i], len(sent[i]))
		}
	}
	for i, b := range sent {
		want := b
		if len(want) > frameLen {
			want = want[:len(ins[i].data)]
			if len(ins[i].data) < frameLen {
				t.Errorf("frame %d: %d bytes kept of %d, want at least %d", i, len(ins[i].data), len(b), frameLen)
			}
		}
		for _, f := range []struct {
			where   string
			got     ringFrame
			out     bool
			ifindex int
		}{{"out of a", outs[i], true, ifindex("a", "eth2")}, {"into b", ins[i], false, ifindex("b", "eth1")}} {
			if !bytes.Equal(f.got.data, want) || f.got.len != len(b) {
				t.Errorf("frame %d %s: %x (%d on the wire), sent %x (%d)", i, f.where, f.got.data, f.got.len, want, len(b))
			}
			if f.got.outgoing != f.out || f.got.ifindex != f.ifindex {
				t.Errorf("frame %d %s: outgoing %v on ifindex %d, want %v on %d", i, f.where, f.got.outgoing, f.got.ifindex, f.out, f.ifindex)
			}
		}
		if outs[i].time.After(ins[i].time) || outs[i].time.After(returned[i]) {
			t.Errorf("frame %d: stamped %v out of a, %v into b, the send returned at %v", i,
				outs[i].time.Format(time.StampNano), ins[i].time.Format(time.StampNano), returned[i].Format(time.StampNano))
		}
	}

	var next uint64 = 10
	for range 3 * brg.Slots() / 50 {
		first := next
		for range 50 {
			if _, err := unix.Write(fd, probeFrame(next, 0)); err != nil {
				t.Fatal(err)
			}
			next++
		}
		got := collect(t, bfd, brg, 50, ours)
		for i, f := range got {
			if id, _ := ProbeIDOf(f.data); id != first+uint64(i) {
				t.Fatalf("frame %d of a batch: probe %d, want %d", i, id, first+uint64(i))
			}
		}
		collect(t, afd, arg, 50, ours)
	}
}
