package userspace

import (
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/topologies/netns"
)

// txRing is a TPACKET_V2 transmit ring on a packet socket of its own
// (bound to the interface with protocol 0, so it receives nothing): a
// frame is copied into a slot shared with the kernel, and one send()
// transmits every slot marked since the last. The kernel builds each
// skb on the slot's pages instead of copying the frame again, and
// hands the slot back (TP_STATUS_AVAILABLE) once the skb is freed.
type txRing struct {
	fd      int
	mem     []byte
	fsize   int // bytes per slot
	perBlk  int // slots per block
	block   int
	frames  int
	next    int // index of the next slot to fill
	pending int // slots marked since the last send
}

// txDataOff is where a TPACKET_V2 transmit slot's frame starts, as the
// kernel reads it without PACKET_TX_HAS_OFF: TPACKET2_HDRLEN (the
// aligned header and a sockaddr_ll) minus the sockaddr_ll.
const txDataOff = (unix.SizeofTpacket2Hdr + 15) &^ 15

// openTxRing opens a transmit-only packet socket on ifname in ns with a
// ring of about ringBytes whose slots hold a frame of the interface's MTU
// with an Ethernet header and a VLAN tag.
func openTxRing(ns vnetns.NsHandle, ifname string, bypass bool, ringBytes int) (*txRing, error) {
	var t *txRing
	open := func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("find interface %q: %w", ifname, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("transmit socket on %q: %w", ifname, err)
		}
		t, err = newTxRing(fd, ifaceMTU(fd, ifname)+18, ringBytes, bypass)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("transmit ring on %q: %w", ifname, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifi.Index}); err != nil {
			t.close()
			return fmt.Errorf("transmit socket on %q: bind: %w", ifname, err)
		}
		return nil
	}
	var err error
	if !ns.IsOpen() {
		err = open()
	} else {
		err = netns.DoIn(ns, open)
	}
	return t, err
}

func newTxRing(fd, frameLen, ringBytes int, bypass bool) (*txRing, error) {
	for _, o := range []struct {
		opt, v int
		what   string
	}{{unix.PACKET_VERSION, unix.TPACKET_V2, "version"}, {unix.PACKET_QDISC_BYPASS, boolInt(bypass), "qdisc bypass"},
		// A frame the kernel cannot send is marked and skipped, not a
		// stop for the slots after it.
		{unix.PACKET_LOSS, 1, "loss"}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, o.v); err != nil {
			return nil, fmt.Errorf("set %s: %w", o.what, err)
		}
	}
	// Blocks of a page or two (order-0/1 allocations, cheap to find
	// where larger ones would make the kernel compact memory).
	fsize := (txDataOff + frameLen + 63) &^ 63
	block := unix.Getpagesize()
	for block < fsize {
		block <<= 1
	}
	nblocks := max(ringBytes/block, 1)
	req := unix.TpacketReq{Block_size: uint32(block), Block_nr: uint32(nblocks), Frame_size: uint32(fsize),
		Frame_nr: uint32(block / fsize * nblocks)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, block*nblocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	return &txRing{fd: fd, mem: mem, fsize: fsize, perBlk: block / fsize, block: block, frames: int(req.Frame_nr)}, nil
}

func (t *txRing) slot(i int) []byte {
	off := i/t.perBlk*t.block + i%t.perBlk*t.fsize
	return t.mem[off : off+t.fsize]
}

// add marks frame for the next send; false when it does not fit a slot
// or the next slot is still the kernel's (a frame in flight).
func (t *txRing) add(frame []byte) bool {
	if txDataOff+len(frame) > t.fsize {
		return false
	}
	s := t.slot(t.next)
	hdr := (*unix.Tpacket2Hdr)(unsafe.Pointer(&s[0]))
	if st := atomic.LoadUint32(&hdr.Status); st != unix.TP_STATUS_AVAILABLE && st != unix.TP_STATUS_WRONG_FORMAT {
		return false
	}
	copy(s[txDataOff:], frame)
	hdr.Len, hdr.Snaplen = uint32(len(frame)), uint32(len(frame))
	atomic.StoreUint32(&hdr.Status, unix.TP_STATUS_SEND_REQUEST)
	if t.next++; t.next == t.frames {
		t.next = 0
	}
	t.pending++
	return true
}

// send transmits the marked slots.
func (t *txRing) send() error {
	if t.pending == 0 {
		return nil
	}
	t.pending = 0
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(t.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

func (t *txRing) close() {
	if t.mem != nil {
		_ = unix.Munmap(t.mem)
		t.mem = nil
	}
	closeFD(t.fd)
}
