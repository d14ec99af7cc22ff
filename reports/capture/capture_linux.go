package capture

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
	"unsafe"

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

// Frame is one probe frame seen on one interface.
type Frame struct {
	Time  time.Time // kernel timestamp; all namespaces share one clock
	Netns string    // the capture's name (the node)
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
}

type nsCapture struct {
	name   string
	handle vnetns.NsHandle
	file   *os.File
	sock   *os.File
	buf    *bufio.Writer
	w      *pcapgo.NgWriter
	ifaces map[int]int    // kernel ifindex -> pcapng interface id
	names  map[int]string // kernel ifindex -> name
	count  int
	err    error
	done   bool // file closed: frames still read are ignored
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
func (c *Capture) Add(name string, ns vnetns.NsHandle) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("capture %s: capture closed", name)
	}
	if _, ok := c.ns[name]; ok {
		return fmt.Errorf("capture %s: already capturing", name)
	}
	var fd int
	err := netns.DoIn(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		for _, o := range [][2]int{{unix.SOL_PACKET, unix.PACKET_AUXDATA}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}} {
			if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
				unix.Close(fd)
				return fmt.Errorf("packet socket option %d: %w", o[1], err)
			}
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("capture %s: %w", name, err)
	}
	f, err := os.Create(c.Path(name))
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("capture %s: %w", name, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	w, err := pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeEthernet, SnapLength: Snaplen,
		TimestampResolution: 9}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "netbed", Comment: "namespace " + name}})
	if err != nil {
		f.Close()
		unix.Close(fd)
		return fmt.Errorf("capture %s: %w", name, err)
	}
	nc := &nsCapture{name: name, handle: ns, file: f, sock: os.NewFile(uintptr(fd), "capture-"+name), buf: bw, w: w,
		ifaces: map[int]int{}, names: map[int]string{}}
	c.ns[name] = nc
	c.wg.Add(1)
	go c.read(nc)
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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

var auxLen = unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))

func (c *Capture) read(nc *nsCapture) {
	defer c.wg.Done()
	rc, err := nc.sock.SyscallConn()
	if err != nil {
		nc.err = err
		return
	}
	buf := make([]byte, Snaplen+4)
	oob := make([]byte, auxLen+unix.CmsgSpace(16)+64)
	dec := NewDecoder()
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf[4:], oob, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			if errors.Is(rerr, unix.EINTR) {
				continue
			}
			nc.err = rerr
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || n < 14 {
			continue
		}
		data, ts := restore(buf, n, oob[:oobn])
		c.record(nc, dec, ll, data, ts)
	}
}

// restore parses the control messages: the timestamp, and a VLAN tag the
// kernel stripped, which it puts back in front of the payload (buf has 4
// bytes of headroom before the frame read at buf[4:]).
func restore(buf []byte, n int, oob []byte) ([]byte, time.Time) {
	data := buf[4 : 4+n]
	ts := time.Now()
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return data, ts
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16:
			t := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			ts = time.Unix(t.Sec, t.Nsec)
		case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && n >= 12 {
				tpid := uint16(unix.ETH_P_8021Q)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = aux.Vlan_tpid
				}
				copy(buf[0:12], buf[4:16])
				buf[12], buf[13] = byte(tpid>>8), byte(tpid)
				buf[14], buf[15] = byte(aux.Vlan_tci>>8), byte(aux.Vlan_tci)
				data = buf[:n+4]
			}
		}
	}
	return data, ts
}

func (c *Capture) record(nc *nsCapture, dec *Decoder, ll *unix.SockaddrLinklayer, data []byte, ts time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc.done {
		return
	}
	id, ok := nc.ifaces[ll.Ifindex]
	if !ok {
		var err error
		id, err = nc.w.AddInterface(pcapgo.NgInterface{Name: nc.ifname(ll.Ifindex), LinkType: layers.LinkTypeEthernet,
			SnapLength: Snaplen, TimestampResolution: 9})
		if err != nil {
			nc.err = err
			return
		}
		nc.ifaces[ll.Ifindex] = id
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data), InterfaceIndex: id}
	if err := nc.w.WritePacket(ci, data); err != nil && nc.err == nil {
		nc.err = err
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
	f := Frame{Time: ts, Netns: nc.name, Iface: nc.ifname(ll.Ifindex), Out: ll.Pkttype == unix.PACKET_OUTGOING,
		Probe: probe, ARP: d.ARP, Data: append([]byte(nil), data...)}
	c.probes[probe] = append(c.probes[probe], f)
	if c.opts.OnFrame != nil {
		c.opts.OnFrame(f)
	}
}

// Frames returns the frames of probe id seen so far, by time. A veth may
// hand a frame to its peer with the sender's timestamp, so a send and its
// receive can carry the same time: then the send comes first.
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

// Remove stops capturing namespace name and closes its file.
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
	nc.sock.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	nc.done = true
	err := nc.err
	if e := nc.w.Flush(); e != nil && err == nil {
		err = e
	}
	if e := nc.buf.Flush(); e != nil && err == nil {
		err = e
	}
	if e := nc.file.Close(); e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("capture %s: %w", nc.name, err)
	}
	return nil
}

// Close stops every capture and flushes the files.
func (c *Capture) Close() error {
	c.mu.Lock()
	all := make([]*nsCapture, 0, len(c.ns))
	for _, nc := range c.ns {
		all = append(all, nc)
	}
	c.ns = map[string]*nsCapture{}
	c.mu.Unlock()
	var errs []error
	for _, nc := range all {
		if err := c.finish(nc); err != nil {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return errors.Join(errs...)
}
