package netnsrt

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/topologies/netns"
)

// instance is a VM or pod as a namespace with the kernel's IP stack,
// wired to its host node's port by a veth pair.
type instance struct {
	name     string
	netns    string // namespace name under netns.NetnsDir
	ns       vnetns.NsHandle
	host     string
	hostPort int
	ifname   string // host side of the veth
	mac      net.HardwareAddr
	ip       netip.Prefix
	gw       netip.Addr

	mu     sync.Mutex
	closer []func() error // responders
	udp    map[uint16]bool
}

// hostIfname is the host-side interface name for port name p: p itself
// when Linux takes it, else a short stable name derived from it.
func hostIfname(p string) string {
	if p != "" && len(p) <= 15 {
		return p
	}
	h := fnv.New32a()
	h.Write([]byte(p))
	return fmt.Sprintf("nbi%08x", h.Sum32())
}

// AddInstance implements scenarios.Runtime: f.AddInstance (inside Mutate),
// then a namespace for the instance with eth0 (its MAC, address, default
// route via its gateway, IPv6 off), the veth's other end in the host's
// namespace under the host port's name, and the host node reading it.
func (r *Runtime) AddInstance(ctx context.Context, f datapath.Fabric, s datapath.InstanceSpec) (err error) {
	var (
		node     datapath.Node
		w        datapath.Wire
		portName string
	)
	if err := r.Mutate(func() error {
		var err error
		node, w, err = f.AddInstance(s)
		if err != nil {
			return err
		}
		if w.A.Node != s.Name {
			w.A, w.B = w.B, w.A
		}
		hn, ok := r.nodes[w.B.Node]
		if !ok {
			return fmt.Errorf("host %q is not a running node", w.B.Node)
		}
		if ports := hn.Ports(); w.B.Port >= 0 && w.B.Port < len(ports) {
			portName = ports[w.B.Port]
		}
		return nil
	}); err != nil {
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	in := &instance{name: s.Name, netns: r.topo.LabPrefix() + s.Name, host: w.B.Node, hostPort: w.B.Port,
		ifname: hostIfname(portName), mac: s.MAC, ip: s.IP, gw: s.Gateway, udp: map[uint16]bool{}}
	if si, ok := node.(*stack.Instance); ok {
		in.mac, in.ip, in.gw = si.MAC(), si.Addr(), si.Gateway()
	}
	defer func() {
		if err != nil {
			in.destroy()
			_ = r.Mutate(func() error { return f.RemoveInstance(s.Name) })
		}
	}()
	if err := r.realise(in); err != nil {
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if err := r.us.AttachPort(in.host, in.hostPort, in.ifname); err != nil {
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if err := r.cap.Add(in.name, in.ns); err != nil {
		_ = r.us.DetachPort(in.host, in.hostPort)
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	r.mu.Lock()
	r.insts[s.Name] = in
	r.mu.Unlock()
	return nil
}

// RemoveInstance implements scenarios.Runtime.
func (r *Runtime) RemoveInstance(ctx context.Context, f datapath.Fabric, name string) error {
	in, err := r.instance(name)
	if err != nil {
		return err
	}
	if err := r.Mutate(func() error { return f.RemoveInstance(name) }); err != nil {
		return fmt.Errorf("remove instance %q: %w", name, err)
	}
	r.mu.Lock()
	delete(r.insts, name)
	r.mu.Unlock()
	errs := []error{r.us.DetachPort(in.host, in.hostPort), r.cap.Remove(name), in.destroy()}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove instance %q: %w", name, err)
	}
	return nil
}

// realise creates the instance's namespace, veth pair and addresses, and
// starts its responders.
func (r *Runtime) realise(in *instance) error {
	alias := netns.Alias(r.name)
	ns, err := makeNamespace(in.netns)
	if err != nil {
		return err
	}
	in.ns = ns
	ih, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", in.netns, err)
	}
	defer ih.Close()
	// Mark the namespace (lo's alias) so that DestroyAll finds it after a
	// killed run, and turn IPv6 off before eth0 exists.
	lo, err := ih.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", in.netns, err)
	}
	if err := ih.LinkSetAlias(lo, alias); err != nil {
		return fmt.Errorf("mark %s: %w", in.netns, err)
	}
	if err := ih.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up in %s: %w", in.netns, err)
	}
	if err := netns.DoIn(ns, disableIPv6); err != nil {
		return fmt.Errorf("namespace %s: %w", in.netns, err)
	}
	hh, err := r.lab.Handle(in.host)
	if err != nil {
		return err
	}
	// A port slot reused after RemoveInstance: its old veth went with the
	// old namespace, but be sure.
	if old, err := hh.LinkByName(in.ifname); err == nil {
		_ = hh.LinkDel(old)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = in.ifname, 1500
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: stack.Port, PeerHardwareAddr: in.mac, PeerNamespace: netlink.NsFd(ns)}
	if err := hh.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s:%s--%s:%s: %w", in.host, in.ifname, in.name, stack.Port, err)
	}
	hl, err := hh.LinkByName(in.ifname)
	if err != nil {
		return fmt.Errorf("find %s:%s: %w", in.host, in.ifname, err)
	}
	el, err := ih.LinkByName(stack.Port)
	if err != nil {
		return fmt.Errorf("find %s:%s: %w", in.name, stack.Port, err)
	}
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"mark host end", func() error { return hh.LinkSetAlias(hl, alias) }},
		{"mark eth0", func() error { return ih.LinkSetAlias(el, alias) }},
		{"host end up", func() error { return hh.LinkSetUp(hl) }},
		{"address", func() error {
			return ih.AddrAdd(el, &netlink.Addr{IPNet: &net.IPNet{IP: in.ip.Addr().AsSlice(), Mask: net.CIDRMask(in.ip.Bits(), 32)}})
		}},
		{"checksums in software", func() error {
			return netns.DoIn(ns, func() error { return noTxChecksum(stack.Port) })
		}},
		{"eth0 up", func() error { return ih.LinkSetUp(el) }},
		{"default route", func() error {
			if !in.gw.IsValid() {
				return nil
			}
			return ih.RouteAdd(&netlink.Route{LinkIndex: el.Attrs().Index, Gw: in.gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK)})
		}},
	} {
		if err := step.do(); err != nil {
			return fmt.Errorf("instance %s: %s: %w", in.name, step.what, err)
		}
	}
	for _, w := range []struct {
		h    *netlink.Handle
		name string
	}{{hh, in.ifname}, {ih, stack.Port}} {
		if err := waitOperUp(w.h, w.name); err != nil {
			return fmt.Errorf("instance %s: %w", in.name, err)
		}
	}
	return in.startResponders()
}

// waitOperUp waits until the link is operationally up (its qdisc active).
func waitOperUp(h *netlink.Handle, name string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not operationally up after 5s (state %s)", name, l.Attrs().OperState)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startResponders listens on the TCP ports a stack.Instance answers
// SYN-ACK on, and echoes UDP on port 7, like the simulated instance.
func (in *instance) startResponders() error {
	for _, p := range stack.DefaultOpenPorts {
		var l net.Listener
		err := netns.DoIn(in.ns, func() error {
			var err error
			l, err = net.Listen("tcp4", netip.AddrPortFrom(in.ip.Addr(), p).String())
			return err
		})
		if err != nil {
			return fmt.Errorf("instance %s: listen on tcp %d: %w", in.name, p, err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		in.closer = append(in.closer, l.Close)
	}
	return in.ensureUDP(7)
}

// ensureUDP starts a UDP echo responder on port (below
// stack.EphemeralBase, as the simulated instance answers).
func (in *instance) ensureUDP(port uint16) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.udp[port] || port >= stack.EphemeralBase {
		return nil
	}
	var c net.PacketConn
	err := netns.DoIn(in.ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", netip.AddrPortFrom(in.ip.Addr(), port).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("instance %s: listen on udp %d: %w", in.name, port, err)
	}
	in.udp[port] = true
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo(buf[:n], from)
		}
	}()
	in.closer = append(in.closer, c.Close)
	return nil
}

// destroy stops the responders and removes the namespace (its eth0 and so
// the veth pair go with it).
func (in *instance) destroy() error {
	in.mu.Lock()
	cl := in.closer
	in.closer = nil
	in.mu.Unlock()
	for _, c := range cl {
		c()
	}
	if in.ns.IsOpen() {
		in.ns.Close()
		in.ns = vnetns.None()
	}
	return removeNamespace(in.netns)
}

// makeNamespace creates a named namespace under netns.NetnsDir, as `ip
// netns add` does, on a thread of its own, and returns it open.
func makeNamespace(name string) (vnetns.NsHandle, error) {
	path := filepath.Join(netns.NetnsDir, name)
	type result struct {
		ns  vnetns.NsHandle
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("open current namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := func() (vnetns.NsHandle, error) {
			if err := os.MkdirAll(netns.NetnsDir, 0o755); err != nil {
				return vnetns.None(), err
			}
			f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
			if err != nil {
				return vnetns.None(), fmt.Errorf("create namespace %s: %w", name, err)
			}
			f.Close()
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				os.Remove(path)
				return vnetns.None(), fmt.Errorf("create namespace %s: unshare: %w", name, err)
			}
			self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				os.Remove(path)
				return vnetns.None(), fmt.Errorf("create namespace %s: bind mount: %w", name, err)
			}
			return vnetns.GetFromPath(path)
		}()
		if serr := vnetns.Set(orig); serr != nil {
			// Leave the thread locked: it dies with this goroutine.
			res <- result{ns, errors.Join(err, fmt.Errorf("leave namespace: %w", serr))}
			return
		}
		runtime.UnlockOSThread()
		res <- result{ns, err}
	}()
	out := <-res
	return out.ns, out.err
}

// removeNamespace unmounts and deletes a named namespace.
func removeNamespace(name string) error {
	path := filepath.Join(netns.NetnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove namespace %s: %w", name, err)
	}
	return nil
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with its union holding a pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// noTxChecksum turns transmit checksum offload off on ifname in the
// current namespace (ethtool -K ifname tx off). The kernel would leave the
// UDP and TCP checksums of its packets for the device to fill in; the
// userspace datapath forwards frames as they are, so the receiving kernel
// would see bad checksums and drop them.
func noTxChecksum(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM, data: 0}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("ethtool -K %s tx off: %w", ifname, e)
	}
	return nil
}
