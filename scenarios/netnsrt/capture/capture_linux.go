package capture

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/userspace"
	"github.com/netbed/netbed/topologies/netns"
)

// Snaplen is how many bytes of each frame the pcap files keep.
const Snaplen = 9216

// DefaultRingBytes is the memory of a namespace's receive ring unless
// Options.RingBytes says otherwise: 1184 slots.
const DefaultRingBytes = 2 << 20

// ringFrameLen is how long a frame a ring's slot holds: a 1500-byte MTU
// with Ethernet, VLAN and VXLAN headers. A longer frame (up to Snaplen)
// comes whole through the socket.
const ringFrameLen = 1600

// Frame is one probe frame seen on one interface.
type Frame struct {
	// Time is when the kernel handled the frame (as the interface sent
	// or received it, not when the capture read it); all namespaces
	// share one clock.
	Time  time.Time
	Netns string // the capture's name (the node)
	Iface string
	Out   bool // sent by this interface (else received)
	Probe uint64
	ARP   bool
	Data  []byte // the frame, VLAN tag restored
}

// Options tune a Capture.
type Options struct {
	// FlowProbe, if set, attributes frames that carry no probe ID (a
	// SYN-ACK, a RST) by their flow; return 0 for none.
	FlowProbe func(f userspace.Flow) uint64
	// OnFrame, if set, is called for every probe frame, from the
	// capture's goroutine.
	OnFrame func(Frame)
	// RingBytes is the memory of each namespace's receive ring
	// (DefaultRingBytes if 0), held from Add to Remove: frames that
	// arrive while its slots are full are lost.
	RingBytes int
}

// Capture records frames in several namespaces.
type Capture struct {
	dir  string
	opts Options
	mu   sync.Mutex
	ns   map[string]*nsCapture
	// frames of probes, by probe ID, in arrival order per namespace.
	probes map[uint64][]Frame
	wg     sync.WaitGroup
	closed bool
	lost   int             // frames the kernel dropped on full rings (Lost)
	adding map[string]bool // names of Adds in progress
}

type nsCapture struct {
	name   string
	handle vnetns.NsHandle
	file   *os.File
	sock   *os.File // the packet socket, waited on through the runtime's poller
	ring   *userspace.RxRing
	buf    *bufio.Writer
	w      *pcapgo.NgWriter
	ifaces map[int]int    // kernel ifindex -> pcapng interface id
	names  map[int]string // kernel ifindex -> name
	count  int
	err    error
	exited chan struct{} // closed when the reader has returned
}

// New returns a capture writing its pcapng files into dir (created).
func New(dir string, opts Options) (*Capture, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture: create %s: %w", dir, err)
	}
	return &Capture{dir: dir, opts: opts, ns: map[string]*nsCapture{}, probes: map[uint64][]Frame{}}, nil
}

// Dir is where the pcapng files are.
func (c *Capture) Dir() string { return c.dir }

// Path returns the pcapng file of the capture named name.
func (c *Capture) Path(name string) string { return filepath.Join(c.dir, name+".pcapng") }

// Add starts capturing every interface of namespace ns (present and
// future) into <dir>/<name>.pcapng.
//
// The socket is opened without holding the capture's lock (setting up a
// ring waits for an RCU grace period): the other captures go on reading,
// and captures may be added side by side.
func (c *Capture) Add(name string, ns vnetns.NsHandle) error {
	if err := c.reserve(name); err != nil {
		return err
	}
	defer func() {
		c.mu.Lock()
		delete(c.adding, name)
		c.mu.Unlock()
	}()
	ringBytes := c.opts.RingBytes
	if ringBytes == 0 {
		ringBytes = DefaultRingBytes
	}
	sock, ring, err := openRing(ns, ringBytes)
	if err != nil {
		return fmt.Errorf("capture %s: %w", name, err)
	}
	abandon := func() {
		_ = ring.Close()
		sock.Close()
	}
	f, err := os.Create(c.Path(name))
	if err != nil {
		abandon()
		return fmt.Errorf("capture %s: %w", name, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	w, err := pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeEthernet, SnapLength: Snaplen,
		TimestampResolution: 9}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "netbed", Comment: "namespace " + name}})
	if err != nil {
		f.Close()
		abandon()
		return fmt.Errorf("capture %s: %w", name, err)
	}
	nc := &nsCapture{name: name, handle: ns, file: f, sock: sock, ring: ring, buf: bw, w: w,
		ifaces: map[int]int{}, names: map[int]string{}, exited: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		f.Close()
		abandon()
		return fmt.Errorf("capture %s: capture closed", name)
	}
	c.ns[name] = nc
	c.wg.Add(1)
	go c.read(nc)
	return nil
}

// reserve claims name for an Add in progress, or says why it cannot.
func (c *Capture) reserve(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("capture %s: capture closed", name)
	}
	if _, ok := c.ns[name]; ok || c.adding[name] {
		return fmt.Errorf("capture %s: already capturing", name)
	}
	if c.adding == nil {
		c.adding = map[string]bool{}
	}
	c.adding[name] = true
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openRing opens a packet socket in ns that reads every interface
// through a receive ring of ringBytes. The kernel stamps each frame in
// the ring as it handles it, an outgoing one as it leaves. (A socket read
// with recvmsg is stamped so only while the kernel's timestamp switch is
// on, which the first socket to ask for timestamps turns on some
// milliseconds later; until then a sent frame is stamped when read, after
// its receive in the next namespace.)
func openRing(ns vnetns.NsHandle, ringBytes int) (*os.File, *userspace.RxRing, error) {
	var fd int
	var ring *userspace.RxRing
	err := netns.DoIn(ns, func() (err error) {
		// Opened unhooked (protocol 0), hooked at bind once the ring
		// is in place.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer func() {
			if err != nil {
				if ring != nil {
					_ = ring.Close()
				}
				unix.Close(fd)
			}
		}()
		if ring, err = userspace.NewRxRing(fd, ringFrameLen, ringBytes); err != nil {
			return err
		}
		if err = ring.Spill(Snaplen); err != nil {
			return err
		}
		// Room for long frames waiting on the socket.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			return fmt.Errorf("bind packet socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sock := os.NewFile(uintptr(fd), "capture")
	// Only a socket in the runtime's poller can be waited on, and woken
	// by a read deadline to stop.
	if err := sock.SetReadDeadline(time.Time{}); err != nil {
		_ = ring.Close()
		sock.Close()
		return nil, nil, fmt.Errorf("packet socket not pollable: %w", err)
	}
	return sock, ring, nil
}

// ifname returns the name of ifindex in nc's namespace, looked up once.
func (nc *nsCapture) ifname(ifindex int) string {
	if n, ok := nc.names[ifindex]; ok {
		return n
	}
	name := fmt.Sprintf("if%d", ifindex)
	_ = netns.DoIn(nc.handle, func() error {
		if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
			name = ifi.Name
		}
		return nil
	})
	nc.names[ifindex] = name
	return name
}

// read delivers the frames of nc's ring as they come until finish sets
// a read deadline; then it delivers what the ring holds and returns.
func (c *Capture) read(nc *nsCapture) {
	defer c.wg.Done()
	defer close(nc.exited)
	dec := NewDecoder()
	slots := nc.ring.Slots()
	rc, err := nc.sock.SyscallConn()
	for err == nil {
		// Waits while the ring is empty; returns after a ring's worth
		// of frames so that a flood does not hide the deadline.
		err = rc.Read(func(uintptr) bool { return c.drain(nc, dec, slots) == slots })
	}
	c.drain(nc, dec, slots)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		nc.err = cmp.Or(nc.err, err)
		c.mu.Unlock()
	}
}

// drain delivers up to max frames from nc's ring, a batch at a time
// under c.mu, and returns how many.
func (c *Capture) drain(nc *nsCapture, dec *Decoder, max int) int {
	n := 0
	for n < max {
		c.mu.Lock()
		k := nc.ring.Drain(min(64, max-n), func(f userspace.RxFrame) { c.record(nc, dec, f) })
		c.mu.Unlock()
		if k == 0 {
			break
		}
		n += k
	}
	return n
}

// record writes frame f to nc's file and keeps it if it belongs to a
// probe. c.mu is held.
func (c *Capture) record(nc *nsCapture, dec *Decoder, f userspace.RxFrame) {
	data := f.Data
	if len(data) < 14 {
		return
	}
	if len(data) > Snaplen {
		data = data[:Snaplen]
	}
	ifindex := f.Ifindex()
	id, ok := nc.ifaces[ifindex]
	if !ok {
		var err error
		id, err = nc.w.AddInterface(pcapgo.NgInterface{Name: nc.ifname(ifindex), LinkType: layers.LinkTypeEthernet,
			SnapLength: Snaplen, TimestampResolution: 9})
		if err != nil {
			nc.err = cmp.Or(nc.err, err)
			return
		}
		nc.ifaces[ifindex] = id
	}
	ts := f.Time()
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: max(f.Len(), len(data)), InterfaceIndex: id}
	if err := nc.w.WritePacket(ci, data); err != nil {
		nc.err = cmp.Or(nc.err, err)
	}
	nc.count++
	d := dec.Decode(data)
	probe := d.Probe
	if probe == 0 && d.HasFlow && c.opts.FlowProbe != nil {
		probe = c.opts.FlowProbe(d.Flow)
	}
	if probe == 0 {
		return
	}
	fr := Frame{Time: ts, Netns: nc.name, Iface: nc.ifname(ifindex), Out: f.Outgoing(),
		Probe: probe, ARP: d.ARP, Data: append([]byte(nil), data...)}
	c.probes[probe] = append(c.probes[probe], fr)
	if c.opts.OnFrame != nil {
		c.opts.OnFrame(fr)
	}
}

// Frames returns the frames of probe id seen so far, by time. A send and
// its receive can carry the same time (a frame keeps a software timestamp
// it already had): then the send comes first.
func (c *Capture) Frames(id uint64) []Frame {
	c.mu.Lock()
	out := append([]Frame(nil), c.probes[id]...)
	c.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Out && !out[j].Out
	})
	return out
}

// Hop is one interface a probe frame crossed, with when.
type Hop struct {
	Netns, Iface string
	Out          bool
	Time         time.Time
	// Since is the time since the probe's first frame.
	Since time.Duration
}

// Hops returns every interface crossing of probe id in time order: the
// per-hop timestamps of its frames (request and answer).
func (c *Capture) Hops(id uint64) []Hop {
	fs := c.Frames(id)
	out := make([]Hop, 0, len(fs))
	for _, f := range fs {
		if f.ARP {
			continue
		}
		h := Hop{Netns: f.Netns, Iface: f.Iface, Out: f.Out, Time: f.Time}
		if len(out) > 0 {
			h.Since = f.Time.Sub(out[0].Time)
		}
		out = append(out, h)
	}
	return out
}

// OneWay is the time from the probe's first frame leaving interface
// fromIface in namespace from to its first frame arriving on toIface in
// namespace to.
func (c *Capture) OneWay(id uint64, from, fromIface, to, toIface string) (time.Duration, bool) {
	var t0 time.Time
	for _, f := range c.Frames(id) {
		switch {
		case t0.IsZero() && f.Out && f.Netns == from && f.Iface == fromIface && !f.ARP:
			t0 = f.Time
		case !t0.IsZero() && !f.Out && f.Netns == to && f.Iface == toIface && !f.ARP:
			return f.Time.Sub(t0), true
		}
	}
	return 0, false
}

// Count returns how many frames were written for capture name.
func (c *Capture) Count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc, ok := c.ns[name]; ok {
		return nc.count
	}
	return 0
}

// Remove stops capturing namespace name, once every frame its ring holds
// is recorded, and closes its file.
func (c *Capture) Remove(name string) error {
	c.mu.Lock()
	nc, ok := c.ns[name]
	delete(c.ns, name)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.finish(nc)
}

func (c *Capture) finish(nc *nsCapture) error {
	// A past deadline wakes the reader, which delivers what the ring
	// holds and returns (Add checked that the socket takes deadlines).
	_ = nc.sock.SetReadDeadline(time.Now())
	<-nc.exited
	drops := nc.drops()
	c.mu.Lock()
	c.lost += drops
	readErr := nc.err
	c.mu.Unlock()
	// The reader is gone and nothing else touches nc: it closes without
	// the lock (a socket with a ring waits for an RCU grace period). All
	// are done, in order; the first error is reported. The ring is
	// unmapped before the socket is closed: the mapping holds it open.
	errs := []error{readErr, nc.ring.Close(), nc.sock.Close(), nc.w.Flush(), nc.buf.Flush(), nc.file.Close()}
	if err := cmp.Or(errs...); err != nil {
		return fmt.Errorf("capture %s: %w", nc.name, err)
	}
	return nil
}

// drops reads the kernel's count of frames lost to a full ring since the
// last read.
func (nc *nsCapture) drops() int {
	n := 0
	if rc, err := nc.sock.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { n = int(userspace.SocketDrops(int(fd))) })
	}
	return n
}

// Lost returns how many frames the kernel dropped because a namespace's
// ring was full, since the capture started: frames that are in no pcap
// file and that no result saw.
func (c *Capture) Lost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nc := range c.ns {
		c.lost += nc.drops()
	}
	return c.lost
}

// Close stops every capture, once every frame their rings hold is
// recorded, and flushes the files.
func (c *Capture) Close() error {
	c.mu.Lock()
	c.closed = true
	all := slices.Collect(maps.Values(c.ns))
	c.ns = map[string]*nsCapture{}
	c.mu.Unlock()
	// Side by side: closing a socket with a ring waits for an RCU grace
	// period, which concurrent closes share.
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, nc := range all {
		wg.Go(func() { errs[i] = c.finish(nc) })
	}
	wg.Wait()
	c.wg.Wait()
	return errors.Join(errs...)
}
