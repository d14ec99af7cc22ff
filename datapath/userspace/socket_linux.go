package userspace

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/topologies/netns"
)

// headroom is kept before each received frame so that a VLAN tag the
// kernel stripped into the packet's metadata can be put back in place
// without copying the payload.
const headroom = 4

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// OpenSocket opens an AF_PACKET socket on interface ifname inside the
// namespace ns (netns.None() for the current one): raw, non-blocking,
// promiscuous, blind to the frames it sends itself (PACKET_IGNORE_OUTGOING),
// with VLAN tags reported in auxiliary data. With bypass it sends straight
// to the driver (PACKET_QDISC_BYPASS): faster, and no frame is lost to the
// noop qdisc a device has until the kernel's link watcher activates it,
// but packet taps (captures) on the interface do not see what it sends.
// The socket stays in ns.
func OpenSocket(ns vnetns.NsHandle, ifname string, bypass bool) (fd int, err error) {
	fd, _, _, err = openSocket(ns, ifname, bypass, 0)
	return fd, err
}

// openSocket is OpenSocket, with a receive ring of ringBytes sized for
// the interface's MTU when ringBytes is not 0 (falling back to none if
// the kernel refuses it). It also returns what the node's kernel holds
// on the interface (see kernelSide).
func openSocket(ns vnetns.NsHandle, ifname string, bypass bool, ringBytes int) (fd int, rg *RxRing, kern kernelSide, err error) {
	open := func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("find interface %q: %w", ifname, err)
		}
		kern = kernelSideOf(ifi)
		// Opened unhooked (protocol 0) and hooked at bind, so that
		// closing it later costs no RCU grace period per socket.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket on %q: %w", ifname, err)
		}
		for _, o := range []struct {
			level, opt, v int
			what          string
		}{
			{unix.SOL_PACKET, unix.PACKET_AUXDATA, 1, "auxdata"},
			{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "ignore outgoing"},
			{unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, boolInt(bypass), "qdisc bypass"},
			{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4 << 20, "receive buffer"},
			{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4 << 20, "send buffer"},
		} {
			if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
				unix.Close(fd)
				return fmt.Errorf("packet socket on %q: set %s: %w", ifname, o.what, err)
			}
		}
		if ringBytes > 0 {
			// An Ethernet header and a VLAN tag around the MTU.
			if rg, err = NewRxRing(fd, ifaceMTU(fd, ifname)+18, ringBytes); err != nil {
				rg = nil
			}
		}
		mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("packet socket on %q: promiscuous: %w", ifname, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("packet socket on %q: bind: %w", ifname, err)
		}
		return nil
	}
	if !ns.IsOpen() {
		err = open()
	} else {
		err = netns.DoIn(ns, open)
	}
	if err != nil && rg != nil {
		_ = rg.Close()
		rg = nil
	}
	return fd, rg, kern, err
}

// ifaceMTU is the MTU of interface ifname (1500 if it cannot be read),
// asked through socket fd.
func ifaceMTU(fd int, ifname string) int {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 1500
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
		return 1500
	}
	return int(ifr.Uint32())
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batch is a set of receive (or send) buffers for recvmmsg (sendmmsg).
type batch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
	oob  []byte
	size int // bytes per buffer, headroom excluded
}

var auxLen = unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))

func newBatch(n, size int, rx bool) *batch {
	b := &batch{msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n), size: size}
	if rx {
		b.oob = make([]byte, n*auxLen)
	}
	mem := make([]byte, n*(size+headroom))
	for i := range b.bufs {
		b.bufs[i] = mem[i*(size+headroom) : (i+1)*(size+headroom) : (i+1)*(size+headroom)]
	}
	return b
}

// recv reads up to len(b.msgs) frames without blocking and returns how
// many it read; EAGAIN gives 0 and no error.
func (b *batch) recv(fd int) (int, error) {
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i][headroom]
		b.iovs[i].SetLen(b.size)
		h := &b.msgs[i].hdr
		*h = unix.Msghdr{Iov: &b.iovs[i], Iovlen: 1}
		h.Control = &b.oob[i*auxLen]
		h.SetControllen(auxLen)
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		if e == unix.EAGAIN || e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(n), nil
}

// frame returns received frame i with any stripped VLAN tag restored.
func (b *batch) frame(i int) []byte {
	m := &b.msgs[i]
	n := min(int(m.n), b.size)
	buf := b.bufs[i]
	if int(m.hdr.Controllen) >= auxLen && n >= 12 {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[i*auxLen]))
		if c.Level == unix.SOL_PACKET && c.Type == unix.PACKET_AUXDATA {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&b.oob[i*auxLen+unix.CmsgLen(0)]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				tpid := uint16(unix.ETH_P_8021Q)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = aux.Vlan_tpid
				}
				copy(buf[0:12], buf[headroom:headroom+12])
				buf[12], buf[13] = byte(tpid>>8), byte(tpid)
				buf[14], buf[15] = byte(aux.Vlan_tci>>8), byte(aux.Vlan_tci)
				return buf[:n+headroom]
			}
		}
	}
	return buf[headroom : headroom+n]
}

// txQueue collects frames for one port and writes them: into its
// transmit ring if it has one, else (or when the ring is full) with
// sendmmsg. Frames leave in the order they were added.
type txQueue struct {
	fd   int
	b    *batch
	n    int // frames in the batch
	lens []int
	ring *txRing
	// batched: a frame went to the batch since the last flush, so the
	// ones after it go there too (the batch is sent after the ring).
	batched bool
	// refused counts the frames the kernel refused since takeRefused
	// (a refused ring send counts one: it does not say how many).
	refused int
}

// takeRefused returns the frames refused since its last call.
func (q *txQueue) takeRefused() int {
	n := q.refused
	q.refused = 0
	return n
}

func newTxQueue(fd, n, size int) *txQueue {
	return &txQueue{fd: fd, b: newBatch(n, size, false), lens: make([]int, n)}
}

// pending is how many frames wait for flush.
func (q *txQueue) pending() int {
	if q.ring != nil {
		return q.n + q.ring.pending
	}
	return q.n
}

// add queues frame, sending first what waits when there is no room; it
// reports false for a frame too large for the buffers.
func (q *txQueue) add(frame []byte) (bool, error) {
	if len(frame) > q.b.size {
		return false, nil
	}
	var err error
	if q.ring != nil && !q.batched {
		if q.ring.add(frame) {
			return true, nil
		}
		// The next slot is in flight: send what is marked, which the
		// kernel usually completes before it returns, and try again.
		err = q.ring.send()
		if err != nil {
			q.refused++
		}
		if q.ring.add(frame) {
			return true, err
		}
		q.batched = true
	}
	if q.n == len(q.b.msgs) {
		err = errors.Join(err, q.flush())
		q.batched = q.ring != nil
	}
	q.lens[q.n] = copy(q.b.bufs[q.n], frame)
	q.n++
	return true, err
}

// flush writes the queued frames: the ring's, then the batch's; it
// returns the first error and drops what the kernel refused.
func (q *txQueue) flush() error {
	var first error
	if q.ring != nil {
		if first = q.ring.send(); first != nil {
			q.refused++
		}
		q.batched = false
	}
	done := 0
	for done < q.n {
		for i := done; i < q.n; i++ {
			q.b.iovs[i].Base = &q.b.bufs[i][0]
			q.b.iovs[i].SetLen(q.lens[i])
			q.b.msgs[i].hdr = unix.Msghdr{Iov: &q.b.iovs[i], Iovlen: 1}
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.b.msgs[done])), uintptr(q.n-done), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			if e == unix.EINTR {
				continue
			}
			if first == nil {
				first = e
			}
			q.refused++
			done++ // skip the frame the kernel refused
			continue
		}
		done += int(n)
	}
	q.n = 0
	return first
}

// poller waits on a node's sockets, a wake-up eventfd and a timer (for
// frames held back by link delay).
type poller struct {
	ep, ev, tm int
	events     []unix.EpollEvent
	armed      atomic.Int64 // CLOCK_MONOTONIC ns the timer is set for, 0 if none
}

const (
	wakeToken  = ^uint64(0)
	timerToken = ^uint64(0) - 1
)

func newPoller() (*poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	ev, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	tm, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		unix.Close(ev)
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	p := &poller{ep: ep, ev: ev, tm: tm, events: make([]unix.EpollEvent, 64)}
	if err := p.add(ev, wakeToken); err != nil {
		p.close()
		return nil, err
	}
	if err := p.add(tm, timerToken); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// monoNow is CLOCK_MONOTONIC in ns, the timer's clock.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// arm sets the timer to fire at the monotonic time at (ns); 0 disarms it.
func (p *poller) arm(at int64) {
	if p.armed.Swap(at) == at {
		return
	}
	var spec unix.ItimerSpec
	if at > 0 {
		spec.Value = unix.NsecToTimespec(at)
	}
	_ = unix.TimerfdSettime(p.tm, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func setToken(e *unix.EpollEvent, tok uint64) {
	e.Fd, e.Pad = int32(uint32(tok)), int32(uint32(tok>>32))
}

func token(e *unix.EpollEvent) uint64 { return uint64(uint32(e.Fd)) | uint64(uint32(e.Pad))<<32 }

func (p *poller) add(fd int, tok uint64) error {
	e := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&e, tok)
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &e); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	return nil
}

func (p *poller) remove(fd int) {
	_ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

// wait blocks until a socket is readable or wake is called and returns
// the ready tokens (wakeToken included when woken).
func (p *poller) wait(toks []uint64) ([]uint64, error) {
	n, err := unix.EpollWait(p.ep, p.events, -1)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return toks[:0], nil
		}
		return toks[:0], err
	}
	toks = toks[:0]
	for i := range n {
		t := token(&p.events[i])
		switch t {
		case wakeToken:
			var buf [8]byte
			_, _ = unix.Read(p.ev, buf[:])
		case timerToken:
			var buf [8]byte
			_, _ = unix.Read(p.tm, buf[:])
			p.armed.Store(0)
		}
		toks = append(toks, t)
	}
	return toks, nil
}

func (p *poller) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(p.ev, one[:])
}

func (p *poller) close() {
	unix.Close(p.tm)
	unix.Close(p.ev)
	unix.Close(p.ep)
}

func closeFD(fd int) { unix.Close(fd) }

func gettid() int { return unix.Gettid() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clearSocketError reads (and so clears) a socket's pending error.
func clearSocketError(fd int) { _, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR) }

// SocketDrops returns how many frames the kernel dropped on packet socket
// fd, its ring or its buffer being full, since the last call (reading
// PACKET_STATISTICS resets it); 0 if it cannot tell.
func SocketDrops(fd int) uint64 {
	st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return uint64(st.Drops)
}
