package netnsrt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/internal/announce"
	"github.com/netbed/netbed/scenarios"
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
	// ip6 and gw6 make a dual-stack instance: IPv6 on in its namespace
	// (zero: IPv6 stays off).
	ip6 netip.Prefix
	gw6 netip.Addr
	// network and labels are the spec's, for a kernel fabric's port.
	network string
	labels  map[string]string
	// cni is the plugin configuration a pod was attached with (nil for a
	// VM, which the runtime wires itself); inFabric says whether
	// AddInstance has added it to the fabric and its host's datapath.
	cni      []byte
	inFabric bool

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

func (r *Runtime) newInstance(s datapath.InstanceSpec) *instance {
	return &instance{name: s.Name, netns: r.topo.LabPrefix() + s.Name, host: s.Host, hostPort: -1,
		mac: s.MAC, ip: s.IP, gw: s.Gateway, ip6: s.IP6, gw6: s.Gateway6, network: s.Network, labels: s.Labels, udp: map[uint16]bool{}}
}

// podMTU is the MTU an instance's veth takes on this fabric (the kernel
// backend's, or the model netns runs): datapath.PodMTUer's, or 0 for the
// default.
func (r *Runtime) podMTU() int {
	var f any = r.model
	if r.k != nil {
		f = r.k.f
	}
	if m, ok := f.(datapath.PodMTUer); ok {
		return m.PodMTU()
	}
	return 0
}

// AttachPod implements scenarios.PodAttacher: a namespace for the pod,
// then CNI ADD run in the host's namespace, as a kubelet on that host
// would, by the netbed-cni binary found on Options.CNIPath.
func (r *Runtime) AttachPod(ctx context.Context, s datapath.InstanceSpec, conf []byte) (_ datapath.InstanceSpec, err error) {
	r.mu.Lock()
	_, exists := r.insts[s.Name]
	r.mu.Unlock()
	if exists {
		return s, fmt.Errorf("attach pod %q: it exists", s.Name)
	}
	if _, err := r.lab.NsHandle(s.Host); err != nil {
		return s, fmt.Errorf("attach pod %q: host %q: %w", s.Name, s.Host, err)
	}
	in := r.newInstance(s)
	if in.cni, err = r.podConf(conf); err != nil {
		return s, fmt.Errorf("attach pod %q: %w", s.Name, err)
	}
	if err := r.makeInstanceNS(in); err != nil {
		return s, fmt.Errorf("attach pod %q: %w", s.Name, err)
	}
	if err := r.cniAdd(ctx, in); err != nil {
		return s, errors.Join(fmt.Errorf("attach pod %q: %w", s.Name, err), r.destroy(in, false))
	}
	r.mu.Lock()
	r.insts[s.Name] = in
	r.mu.Unlock()
	s.IP, s.MAC, s.Gateway = in.ip, in.mac, in.gw
	s.IP6, s.Gateway6 = in.ip6, in.gw6
	return s, nil
}

// podConf is a pod's CNI configuration for this runtime: a fabric whose
// pods need a smaller MTU (gen 3's VXLAN tunnel: 1450 on a 1500-byte
// host link, as Cilium sets it), the kernel backend's or the model netns
// runs, has it written as the plugin's "mtu" unless the configuration
// names one. Without it a full-size packet, encapsulated, is larger than
// the host's link: iperf3 got nothing through gen 3 on netns.
func (r *Runtime) podConf(conf []byte) ([]byte, error) {
	mtu := r.podMTU()
	if mtu == 0 {
		return conf, nil
	}
	var c map[string]any
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, fmt.Errorf("CNI configuration: %w", err)
	}
	if _, set := c["mtu"]; set {
		return conf, nil
	}
	c["mtu"] = mtu
	return json.Marshal(c)
}

// AddInstance implements scenarios.Runtime: f.AddInstance (inside Mutate),
// then, for a VM, a namespace for the instance with eth0 (its MAC,
// address, default route via its gateway, IPv6 off) and the veth's other
// end in the host's namespace under the host port's name; a pod that
// AttachPod wired keeps the plugin's veth. Then the host node reads it.
func (r *Runtime) AddInstance(ctx context.Context, f datapath.Fabric, s datapath.InstanceSpec) (err error) {
	r.mu.Lock()
	in := r.insts[s.Name]
	r.mu.Unlock()
	if in != nil && in.inFabric {
		return fmt.Errorf("add instance %q: it exists", s.Name)
	}
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
	pod := in != nil
	if !pod {
		in = r.newInstance(s)
		in.ifname = hostIfname(portName)
		if si, ok := node.(*stack.Instance); ok {
			in.mac, in.ip, in.gw = si.MAC(), si.Addr(), si.Gateway()
		}
	}
	in.host, in.hostPort = w.B.Node, w.B.Port
	defer func() {
		if err != nil {
			if !pod {
				_ = r.destroy(in, false)
			}
			_ = r.Mutate(func() error { return f.RemoveInstance(s.Name) })
		}
	}()
	if !pod {
		if err := r.makeInstanceNS(in); err != nil {
			return fmt.Errorf("add instance %q: %w", s.Name, err)
		}
		if err := r.wireVeth(in); err != nil {
			return fmt.Errorf("add instance %q: %w", s.Name, err)
		}
	}
	if err := r.finish(in); err != nil {
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if err := r.attach(ctx, in); err != nil {
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	if err := r.cap.Add(in.name, in.ns); err != nil {
		_ = r.detach(ctx, in)
		return fmt.Errorf("add instance %q: %w", s.Name, err)
	}
	r.mu.Lock()
	in.inFabric = true
	r.insts[s.Name] = in
	hung := r.hung[in.host]
	r.mu.Unlock()
	if hung && r.k != nil {
		// Its host hangs: the new veth is silenced as its others are.
		if err := r.silenceLinks(in.host, []string{in.ifname}); err != nil {
			return fmt.Errorf("add instance %q on %s, which hangs: %w", s.Name, in.host, err)
		}
	}
	return nil
}

// RemoveInstance implements scenarios.Runtime; for a pod it runs CNI DEL.
func (r *Runtime) RemoveInstance(ctx context.Context, f datapath.Fabric, name string) error {
	in, err := r.instance(name)
	if err != nil {
		return err
	}
	var errs []error
	if in.inFabric {
		if err := r.Mutate(func() error { return f.RemoveInstance(name) }); err != nil {
			return fmt.Errorf("remove instance %q: %w", name, err)
		}
		errs = append(errs, r.detach(ctx, in), r.cap.Remove(name))
	}
	r.mu.Lock()
	delete(r.insts, name)
	r.mu.Unlock()
	errs = append(errs, r.destroy(in, true))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove instance %q: %w", name, err)
	}
	return nil
}

// makeInstanceNS creates the instance's namespace, marked (lo's alias) so
// that DestroyAll finds it after a killed run, with IPv6 off before any
// interface exists.
func (r *Runtime) makeInstanceNS(in *instance) error {
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
	lo, err := ih.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", in.netns, err)
	}
	if err := ih.LinkSetAlias(lo, netns.Alias(r.name)); err != nil {
		return fmt.Errorf("mark %s: %w", in.netns, err)
	}
	if err := ih.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up in %s: %w", in.netns, err)
	}
	if err := netns.DoIn(ns, disableIPv6); err != nil {
		return fmt.Errorf("namespace %s: %w", in.netns, err)
	}
	return nil
}

// handles returns netlink handles in in's host's namespace (the lab's:
// not to be closed) and in in's own (to be closed).
func (r *Runtime) handles(in *instance) (host, inst *netlink.Handle, err error) {
	if host, err = r.lab.Handle(in.host); err != nil {
		return nil, nil, err
	}
	if inst, err = netlink.NewHandleAt(in.ns); err != nil {
		return nil, nil, fmt.Errorf("netlink in %s: %w", in.netns, err)
	}
	return host, inst, nil
}

// wireVeth does for a VM what the CNI plugin does for a pod: the veth
// pair, eth0's address and the default route via the gateway.
func (r *Runtime) wireVeth(in *instance) error {
	hh, ih, err := r.handles(in)
	if err != nil {
		return err
	}
	defer ih.Close()
	// A port slot reused after RemoveInstance: its old veth went with the
	// old namespace, but be sure.
	if old, err := hh.LinkByName(in.ifname); err == nil {
		_ = hh.LinkDel(old)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = in.ifname, 1500
	if m := r.podMTU(); m > 0 {
		attrs.MTU = m
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: stack.Port, PeerHardwareAddr: in.mac, PeerNamespace: netlink.NsFd(in.ns)}
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
		{"host end up", func() error { return hh.LinkSetUp(hl) }},
		{"address", func() error {
			return ih.AddrAdd(el, &netlink.Addr{IPNet: &net.IPNet{IP: in.ip.Addr().AsSlice(), Mask: net.CIDRMask(in.ip.Bits(), 32)}})
		}},
		{"IPv6", func() error { return in.enableIPv6(ih, el) }},
		{"eth0 up", func() error { return ih.LinkSetUp(el) }},
		{"default route", func() error {
			if !in.gw.IsValid() {
				return nil
			}
			return ih.RouteAdd(&netlink.Route{LinkIndex: el.Attrs().Index, Gw: in.gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK)})
		}},
		{"IPv6 default route", func() error {
			if !in.ip6.IsValid() || !in.gw6.IsValid() {
				return nil
			}
			return ih.RouteAdd(&netlink.Route{LinkIndex: el.Attrs().Index, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
				Gw: in.gw6.AsSlice(), Flags: int(netlink.FLAG_ONLINK)})
		}},
	} {
		if err := step.do(); err != nil {
			return fmt.Errorf("instance %s: %s: %w", in.name, step.what, err)
		}
	}
	return nil
}

// finish readies a wired instance: both veth ends marked, checksums in
// software, both ends operationally up, the responders listening.
func (r *Runtime) finish(in *instance) error {
	alias := netns.Alias(r.name)
	hh, ih, err := r.handles(in)
	if err != nil {
		return err
	}
	defer ih.Close()
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"mark host end", func() error { return setAlias(hh, in.ifname, alias) }},
		{"mark eth0", func() error { return setAlias(ih, stack.Port, alias) }},
		{"checksums in software", func() error {
			return netns.DoIn(in.ns, func() error { return noTxChecksum(stack.Port) })
		}},
		{"neighbour resolution", func() error {
			return netns.DoIn(in.ns, func() error { return resolveWithinProbe(stack.Port) })
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

func setAlias(h *netlink.Handle, name, alias string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	return h.LinkSetAlias(l, alias)
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

// addrs are the instance's addresses: IPv4, and IPv6 when dual-stack.
func (in *instance) addrs() []netip.Addr {
	if in.ip6.IsValid() {
		return []netip.Addr{in.ip.Addr(), in.ip6.Addr()}
	}
	return []netip.Addr{in.ip.Addr()}
}

// enableIPv6 turns IPv6 on for eth0 of a dual-stack instance (the
// namespace starts with it off) and gives it its address, quietly: no
// duplicate address detection, router solicitations or autoconfiguration,
// so that the only IPv6 on the wire is what a probe makes (and the
// kernel's MLD reports for the groups it joins).
func (in *instance) enableIPv6(ih *netlink.Handle, el netlink.Link) error {
	if !in.ip6.IsValid() {
		return nil
	}
	err := netns.DoIn(in.ns, func() error {
		for _, kv := range [][2]string{{"accept_dad", "0"}, {"router_solicitations", "0"}, {"accept_ra", "0"},
			{"autoconf", "0"}, {"disable_ipv6", "0"}} {
			p := "/proc/sys/net/ipv6/conf/" + stack.Port + "/" + kv[0]
			if err := os.WriteFile(p, []byte(kv[1]), 0o644); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ih.AddrAdd(el, &netlink.Addr{IPNet: &net.IPNet{IP: in.ip6.Addr().AsSlice(), Mask: net.CIDRMask(in.ip6.Bits(), 128)},
		Flags: unix.IFA_F_NODAD})
}

// startResponders listens on the TCP ports a stack.Instance answers
// SYN-ACK on, and echoes UDP on port 7, like the simulated instance, on
// each of its addresses.
func (in *instance) startResponders() error {
	for _, p := range stack.DefaultOpenPorts {
		for _, a := range in.addrs() {
			if err := in.listenTCP(a, p); err != nil {
				return err
			}
		}
	}
	return in.ensureUDP(7)
}

// listenTCP accepts (and closes) connections to a:p.
func (in *instance) listenTCP(a netip.Addr, p uint16) error {
	var l net.Listener
	err := netns.DoIn(in.ns, func() error {
		var err error
		l, err = net.Listen("tcp", netip.AddrPortFrom(a, p).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("instance %s: listen on tcp %v: %w", in.name, netip.AddrPortFrom(a, p), err)
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
	return nil
}

// ensureUDP starts a UDP echo responder on port (below
// stack.EphemeralBase, as the simulated instance answers).
func (in *instance) ensureUDP(port uint16) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.udp[port] || port >= stack.EphemeralBase {
		return nil
	}
	for _, a := range in.addrs() {
		var c net.PacketConn
		err := netns.DoIn(in.ns, func() error {
			var err error
			c, err = net.ListenPacket("udp", netip.AddrPortFrom(a, port).String())
			return err
		})
		if err != nil {
			return fmt.Errorf("instance %s: listen on udp %v: %w", in.name, netip.AddrPortFrom(a, port), err)
		}
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
	}
	in.udp[port] = true
	return nil
}

// destroy stops the responders, runs CNI DEL for a pod when del is set
// (at Close the lab goes anyway, and the controller may be gone), and
// removes the namespace (its eth0 and so the veth pair go with it).
func (r *Runtime) destroy(in *instance, del bool) error {
	in.mu.Lock()
	cl := in.closer
	in.closer = nil
	in.mu.Unlock()
	for _, c := range cl {
		c()
	}
	var errs []error
	if del && in.cni != nil {
		errs = append(errs, r.cniDel(in))
	}
	if in.ns.IsOpen() {
		in.ns.Close()
		in.ns = vnetns.None()
	}
	return errors.Join(append(errs, removeNamespace(in.netns))...)
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
// Neighbour resolution on an instance's eth0: a request every
// ResolveRetrans, ResolveTries times.
const (
	ResolveRetrans = 100 * time.Millisecond
	ResolveTries   = 20
)

// resolveWithinProbe makes ifname's neighbour resolution (in the calling
// thread's namespace) ask every ResolveRetrans for ResolveTries times, 2 s
// in all: the runner's probe timeout. Linux asks three times, a second
// apart, and drops what waited when the third goes unanswered; a probe
// sent in the third second of an earlier probe's failing resolution (to
// a host behind a leaf that failed, then was restored) waited for no
// request of its own and was dropped with it (NEIGH_FAILED), where sim's
// stack asks again for every packet queued. Now a resolution ends with
// the probe that started it, and the next probe starts its own.
func resolveWithinProbe(ifname string) error {
	dir := "/proc/sys/net/ipv4/neigh/" + ifname + "/"
	for name, v := range map[string]int{"retrans_time_ms": int(ResolveRetrans / time.Millisecond), "mcast_solicit": ResolveTries} {
		if err := os.WriteFile(dir+name, []byte(strconv.Itoa(v)), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", dir+name, err)
		}
	}
	return nil
}

// forgetFailedResolutions removes the neighbour entries of in's eth0 that
// an earlier probe left resolving or failed (INCOMPLETE, FAILED), so that
// the next probe starts a resolution of its own, as sim's stack asks
// again for every packet queued: queued behind an earlier resolution, it
// would be dropped with it (NEIGH_FAILED) once that one gave up, however
// soon after the destination came back (a leaf's restore).
func (in *instance) forgetFailedResolutions() error {
	h, err := netlink.NewHandleAt(in.ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", in.netns, err)
	}
	defer h.Close()
	l, err := h.LinkByName(stack.Port)
	if err != nil {
		return fmt.Errorf("%s: %w", in.name, err)
	}
	ns, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("%s: neighbours: %w", in.name, err)
	}
	for _, n := range ns {
		if n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
			if err := h.NeighDel(&n); err != nil {
				return fmt.Errorf("%s: forget %v: %w", in.name, n.IP, err)
			}
		}
	}
	return nil
}

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

// Announce implements scenarios.Runtime: real frames leave the
// instance's eth0 into its veth, from a packet socket in its namespace:
// the gratuitous ARP and unsolicited neighbour advertisement its kernel
// sends when told it moved (arping -U for a pod, as CNI plugins do after
// configuring the address), and for a migrated VM the hypervisor's RARP
// rounds, the later ones from a goroutine that stops when the instance
// goes. On the kernel backend a migrated VM's announcements meet no
// switch's cached flows (kernelFabric.forgetFlows).
func (r *Runtime) Announce(ctx context.Context, name string, migrated bool) error {
	in, err := r.instance(name)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	if migrated && r.k != nil {
		if err := r.k.forgetFlows(ctx); err != nil {
			return fmt.Errorf("announce %s: %w", name, err)
		}
	}
	path := filepath.Join(netns.NetnsDir, in.netns)
	frames := [][]byte{frame.GratuitousARP(in.mac, in.ip.Addr()), frame.UnsolicitedNA(in.mac, frame.LinkLocal(in.mac))}
	if in.ip6.IsValid() {
		frames = append(frames, frame.UnsolicitedNA(in.mac, in.ip6.Addr()))
	}
	if err := announce.SendIn(path, stack.Port, frames...); err != nil {
		return fmt.Errorf("instance %s: %w", name, err)
	}
	if !migrated {
		return nil
	}
	rarp := frame.RARPAnnounce(in.mac)
	if err := announce.SendIn(path, stack.Port, rarp); err != nil {
		return fmt.Errorf("instance %s: %w", name, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for _, at := range scenarios.MigrationAnnounce[1:] {
			t := time.NewTimer(time.Until(start.Add(at)))
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			// The instance may be going: a failed round is not reported.
			_ = announce.SendIn(path, stack.Port, rarp)
		}
	}()
	in.mu.Lock()
	in.closer = append(in.closer, func() error { close(stop); <-done; return nil })
	in.mu.Unlock()
	return nil
}
