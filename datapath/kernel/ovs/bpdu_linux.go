package ovs

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel"
)

// RSTPHelloTime is Open vSwitch's RSTP hello time (fixed there): a
// designated port sends a BPDU every HelloTime, and so does a root port
// while its tcWhile runs.
const RSTPHelloTime = 2 * time.Second

// tcQuiet is how long a port whose last BPDU carried the topology change
// flag must have been silent for its topology change to be over: its
// tcWhile (HelloTime + 1 s, 802.1D-2004 17.19.44) still running would
// have sent the next BPDU within HelloTime; one more HelloTime covers a
// vswitch late on a loaded machine. A designated port proves the end
// sooner: its next BPDU, without the flag.
const tcQuiet = 2 * RSTPHelloTime

// bpduWatch follows the switches' spanning tree from the BPDUs they
// exchange: per switch port, the last BPDU it received, which its link's
// other end sent, and whether that BPDU signalled a topology change (the
// TC flag, or a TCN BPDU). While a bridge's tcWhile runs on a port, each
// BPDU it sends there carries TC and every bridge receiving one flushes
// its MAC table: a table just taught by a probe is empty again.
//
// Open vSwitch shows neither tcWhile nor the flushes (rstp/show and the
// rstp_status columns give roles and states only), so the watch reads the
// BPDUs themselves, received in each switch's namespace on a packet
// socket.
type bpduWatch struct {
	mu    sync.Mutex
	last  map[portKey]bpduSeen
	socks []bpduSock
	done  chan struct{}
	wg    sync.WaitGroup
}

type portKey struct{ node, iface string }

type bpduSeen struct {
	at time.Time
	tc bool
}

type bpduSock struct {
	node  string
	fd    int
	names map[int]string // ifindex: name, the node's interfaces
}

// bpduFilter accepts frames to the bridge group address 01:80:c2:00:00:00
// (classic BPF: the first 4 bytes, then the next 2).
var bpduFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: 0x0180c200},
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 4},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: 0},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
}

// watchBPDUs opens a packet socket in each of nodes' namespaces, before
// their switches start, and reads the BPDUs they receive until close.
func watchBPDUs(lab kernel.Lab, nodes []string) (*bpduWatch, error) {
	w := &bpduWatch{last: map[portKey]bpduSeen{}, done: make(chan struct{})}
	for _, node := range nodes {
		s, err := openBPDUSock(lab, node)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("watch BPDUs on %s: %w", node, err)
		}
		w.socks = append(w.socks, s)
	}
	for _, s := range w.socks {
		w.wg.Add(1)
		go w.read(s)
	}
	return w, nil
}

func openBPDUSock(lab kernel.Lab, node string) (bpduSock, error) {
	s := bpduSock{node: node, fd: -1, names: map[int]string{}}
	h, err := lab.Handle(node)
	if err != nil {
		return s, err
	}
	links, err := h.LinkList()
	if err != nil {
		return s, err
	}
	for _, l := range links {
		s.names[l.Attrs().Index] = l.Attrs().Name
	}
	err = lab.Do(node, func() error {
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		prog := unix.SockFprog{Len: uint16(len(bpduFilter)), Filter: &bpduFilter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(fd)
			return fmt.Errorf("attach filter: %w", err)
		}
		// A read gives up every 100 ms to see whether close was called.
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("receive timeout: %w", err)
		}
		s.fd = fd
		return nil
	})
	return s, err
}

func htons(v uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&v))
	return uint16(b[0])<<8 | uint16(b[1])
}

func (w *bpduWatch) read(s bpduSock) {
	defer w.wg.Done()
	buf := make([]byte, 256)
	for {
		select {
		case <-w.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		tc, ok := bpduTC(buf[:n])
		if !ok {
			continue
		}
		name := s.names[ll.Ifindex]
		if name == "" {
			continue
		}
		w.mu.Lock()
		w.last[portKey{s.node, name}] = bpduSeen{at: time.Now(), tc: tc}
		w.mu.Unlock()
	}
}

// bpduTC parses an Ethernet frame as a BPDU (802.2 LLC 42 42 03,
// protocol identifier 0): ok is false for anything else; tc is set for a
// topology change notification BPDU and for a configuration or RST BPDU
// with the Topology Change flag.
func bpduTC(frame []byte) (tc, ok bool) {
	const (
		typeConfig = 0x00
		typeRST    = 0x02
		typeTCN    = 0x80
		flagTC     = 0x01
	)
	if len(frame) < 21 || frame[14] != 0x42 || frame[15] != 0x42 || frame[16] != 0x03 || frame[17] != 0 || frame[18] != 0 {
		return false, false
	}
	switch frame[20] {
	case typeTCN:
		return true, true
	case typeConfig, typeRST:
		if len(frame) < 22 {
			return false, false
		}
		return frame[21]&flagTC != 0, true
	}
	return false, false
}

// changing returns the ports (of watched, "node:iface") on which a
// topology change may still be running at now: the last BPDU received
// there carried TC and is less than quiet old. Sorted.
func (w *bpduWatch) changing(now time.Time, quiet time.Duration, watched []portKey) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range watched {
		if s, ok := w.last[p]; ok && s.tc && now.Sub(s.at) < quiet {
			out = append(out, p.node+":"+p.iface)
		}
	}
	sort.Strings(out)
	return out
}

func (w *bpduWatch) close() {
	if w == nil {
		return
	}
	select {
	case <-w.done:
		return
	default:
	}
	close(w.done)
	w.wg.Wait()
	for _, s := range w.socks {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
	}
}
