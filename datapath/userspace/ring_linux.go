package userspace

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RxRing is a TPACKET_V2 receive ring on a packet socket: the kernel
// copies each frame, behind a header (length, timestamp, stripped VLAN
// tag, interface, direction), into a slot of memory shared with the
// process. Reading a frame is a memory access rather than a system call,
// and its timestamp is taken by the kernel as it handles the frame, never
// when the process reads it. An RxRing is not safe for concurrent use.
type RxRing struct {
	fd       int
	spill    []byte // headroom and a frame read from the socket; nil: no Spill
	mem      []byte
	block    int // bytes per block
	fsize    int // bytes per slot
	perBlock int // slots per block (a block may end in a gap)
	frames   int
	off      int // offset of the next slot to read
	slot     int // its index in its block
}

// ringReserve is the headroom asked before each frame (PACKET_RESERVE),
// where a stripped VLAN tag is put back. It also keeps the frame clear of
// the header and address before it, whatever the link header's length.
const ringReserve = 4

// NewRxRing sets up a receive ring of about ringBytes (at least two
// blocks) on fd, a packet socket not yet bound, whose slots hold frames
// of up to frameLen bytes: the kernel truncates longer ones (RxFrame.Len
// says how long they were). If it fails, fd is left without a ring.
func NewRxRing(fd, frameLen, ringBytes int) (*RxRing, error) {
	// Header, address, alignment and reserve take at most 128 bytes
	// before the frame; a slot is whole cache lines, a block a power of
	// two (what the kernel allocates) of at least 64 KiB.
	fsize := (frameLen + 128 + 63) &^ 63
	block := 1 << 16
	for block < fsize {
		block <<= 1
	}
	nblocks := max(ringBytes/block, 2)
	for _, o := range []struct {
		opt, v int
		what   string
	}{{unix.PACKET_VERSION, unix.TPACKET_V2, "version"}, {unix.PACKET_RESERVE, ringReserve, "reserve"}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, o.v); err != nil {
			return nil, fmt.Errorf("receive ring: set %s: %w", o.what, err)
		}
	}
	req := unix.TpacketReq{Block_size: uint32(block), Block_nr: uint32(nblocks), Frame_size: uint32(fsize),
		Frame_nr: uint32(block / fsize * nblocks)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("receive ring: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, block*nblocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		// Unmapped, the ring would swallow every frame: take it down.
		_ = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &unix.TpacketReq{})
		return nil, fmt.Errorf("receive ring: map: %w", err)
	}
	return &RxRing{fd: fd, mem: mem, block: block, fsize: fsize, perBlock: block / fsize, frames: int(req.Frame_nr)}, nil
}

// Spill makes frames longer than the slots come whole, up to max bytes:
// the kernel also queues each on the socket (PACKET_COPY_THRESH), and
// Drain reads it from there. One still comes cut when the socket's
// receive buffer (SO_RCVBUF) is full.
func (rg *RxRing) Spill(max int) error {
	if err := unix.SetsockoptInt(rg.fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return fmt.Errorf("receive ring: set copy threshold: %w", err)
	}
	rg.spill = make([]byte, ringReserve+max)
	return nil
}

// Slots is how many frames the ring holds.
func (rg *RxRing) Slots() int { return rg.frames }

// RxFrame is a frame in a receive ring, valid until the function Drain
// handed it to returns.
type RxFrame struct {
	// Data is the frame as captured (a truncated one is shorter than
	// Len), a VLAN tag the kernel stripped put back in place.
	Data   []byte
	hdr    *unix.Tpacket2Hdr
	tagged bool // a stripped tag was put back
}

// Time is when the kernel handled the frame: the software timestamp it
// gave the frame on the way (as it left, or as it arrived), or else the
// time it put the frame in the ring.
func (f RxFrame) Time() time.Time { return time.Unix(int64(f.hdr.Sec), int64(f.hdr.Nsec)) }

// Len is the frame's length on the wire, a restored VLAN tag included.
func (f RxFrame) Len() int {
	if f.tagged {
		return int(f.hdr.Len) + 4
	}
	return int(f.hdr.Len)
}

// Ifindex is the interface the frame was seen on.
func (f RxFrame) Ifindex() int { return int(f.addr().Ifindex) }

// Outgoing reports whether the interface sent the frame
// (PACKET_OUTGOING) rather than received it.
func (f RxFrame) Outgoing() bool { return f.addr().Pkttype == unix.PACKET_OUTGOING }

func (f RxFrame) addr() *unix.RawSockaddrLinklayer {
	return (*unix.RawSockaddrLinklayer)(unsafe.Add(unsafe.Pointer(f.hdr), unix.SizeofTpacket2Hdr))
}

// Drain hands up to max ready frames to f, in the order the kernel put
// them in the ring, giving each slot back to the kernel after f returns,
// and returns how many it handed.
func (rg *RxRing) Drain(max int, f func(RxFrame)) int {
	n := 0
	for n < max {
		off := rg.off
		hdr := (*unix.Tpacket2Hdr)(unsafe.Pointer(&rg.mem[off]))
		status := atomic.LoadUint32(&hdr.Status)
		if status&unix.TP_STATUS_USER == 0 {
			break
		}
		mac := off + int(hdr.Mac)
		b := rg.mem[mac-ringReserve : mac+int(hdr.Snaplen)] // headroom, then the frame
		if status&unix.TP_STATUS_COPY != 0 && rg.spill != nil {
			// Cut here, whole on the socket.
			if k, _, err := unix.Recvfrom(rg.fd, rg.spill[ringReserve:], unix.MSG_DONTWAIT); err == nil {
				b = rg.spill[:ringReserve+k]
			}
		}
		fr := RxFrame{Data: b[ringReserve:], hdr: hdr}
		if status&unix.TP_STATUS_VLAN_VALID != 0 && len(fr.Data) >= 12 {
			tpid := uint16(unix.ETH_P_8021Q)
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = hdr.Vlan_tpid
			}
			copy(b[0:12], b[ringReserve:ringReserve+12])
			b[12], b[13] = byte(tpid>>8), byte(tpid)
			b[14], b[15] = byte(hdr.Vlan_tci>>8), byte(hdr.Vlan_tci)
			fr.Data, fr.tagged = b, true
		}
		f(fr)
		atomic.StoreUint32(&hdr.Status, unix.TP_STATUS_KERNEL)
		rg.off += rg.fsize
		if rg.slot++; rg.slot == rg.perBlock {
			rg.off += rg.block - rg.perBlock*rg.fsize // the block's gap
			rg.slot = 0
			if rg.off == len(rg.mem) {
				rg.off = 0
			}
		}
		n++
	}
	return n
}

// Close unmaps the ring. The socket stays open: close it after.
func (rg *RxRing) Close() error {
	if rg.mem == nil {
		return nil
	}
	err := unix.Munmap(rg.mem)
	rg.mem = nil
	return err
}
