package kmaps

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/internal/testutil"
)

// lab builds namespaces for kernel tests; the calling goroutine stays
// locked to its thread, which is back in its original namespace whenever
// a lab method returns.
type lab struct {
	t    *testing.T
	orig netns.NsHandle
}

func newLab(t *testing.T) *lab {
	testutil.RequireRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = netns.Set(orig)
		orig.Close()
		runtime.UnlockOSThread()
	})
	return &lab{t: t, orig: orig}
}

func (l *lab) ns() (netns.NsHandle, *netlink.Handle) {
	t := l.t
	t.Helper()
	name := testutil.Name("nbtest-")
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	if err := netns.Set(l.orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close(); _ = netns.DeleteNamed(name) })
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	return ns, h
}

// veth creates a veth pair in a with end name there and peer moved into
// b as peer.
func (l *lab) veth(a *netlink.Handle, name string, bNS netns.NsHandle, b *netlink.Handle, peer string) (netlink.Link, netlink.Link) {
	t := l.t
	t.Helper()
	tmp := testutil.Name("nb")
	if err := a.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: tmp}); err != nil {
		t.Fatalf("create veth %s: %v", name, err)
	}
	p, err := a.LinkByName(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.LinkSetNsFd(p, int(bNS)); err != nil {
		t.Fatal(err)
	}
	if p, err = b.LinkByName(tmp); err != nil {
		t.Fatal(err)
	}
	if err := b.LinkSetName(p, peer); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		h    *netlink.Handle
		name string
	}{{a, name}, {b, peer}} {
		lk, err := x.h.LinkByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.h.LinkSetUp(lk); err != nil {
			t.Fatal(err)
		}
	}
	ea, _ := a.LinkByName(name)
	eb, _ := b.LinkByName(peer)
	return ea, eb
}

// attach puts programs on link's tc ingress, in order.
func (l *lab) attach(h *netlink.Handle, link netlink.Link, progs ...*ebpf.Program) {
	t := l.t
	t.Helper()
	if err := h.QdiscAdd(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}); err != nil {
		t.Fatalf("add clsact to %s: %v", link.Attrs().Name, err)
	}
	for i, pr := range progs {
		if err := h.FilterAdd(&netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index,
			Parent: netlink.HANDLE_MIN_INGRESS, Handle: netlink.MakeHandle(0, uint16(i+1)), Protocol: unix.ETH_P_ALL, Priority: uint16(i + 1)},
			Fd: pr.FD(), Name: fmt.Sprint("bpf", i), DirectAction: true}); err != nil {
			t.Fatalf("attach program %d to %s: %v", i, link.Attrs().Name, err)
		}
	}
}

type kpod struct {
	ns   netns.NsHandle
	h    *netlink.Handle
	ip   net.IP
	eth  netlink.Link
	lxc  netlink.Link
	info gen3.EndpointInfo
}

// pod creates a pod namespace wired to the node by lxcName, addressed
// ip/32 (or, for an IPv6 ip, ip/128 without duplicate address detection)
// with gw on link and the default route via it, with progs on the lxc's
// tc ingress and its entries in km's maps of ip's family (endpoints,
// ipcache).
func (l *lab) pod(node *netlink.Handle, km *Maps, lxcName string, ip, gw net.IP, id gen3.Identity, progs ...*ebpf.Program) *kpod {
	t := l.t
	t.Helper()
	v4 := ip.To4() != nil
	p, bits, flags, dflt := &kpod{ip: ip.To4()}, 32, 0, (*net.IPNet)(nil)
	if !v4 {
		p.ip, bits, flags = ip.To16(), 128, unix.IFA_F_NODAD
		dflt = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	p.ns, p.h = l.ns()
	p.lxc, p.eth = l.veth(node, lxcName, p.ns, p.h, "eth0")
	if !v4 {
		l.sysctl(p.ns, "net/ipv6/conf/eth0/disable_ipv6", "0")
	}
	if err := p.h.AddrAdd(p.eth, &netlink.Addr{IPNet: &net.IPNet{IP: p.ip, Mask: net.CIDRMask(bits, bits)}, Flags: flags}); err != nil {
		t.Fatal(err)
	}
	idx := p.eth.Attrs().Index
	if err := p.h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(bits, bits)}, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	if err := p.h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: dflt, Gw: gw}); err != nil {
		t.Fatal(err)
	}
	l.attach(node, p.lxc, progs...)
	p.info = gen3.EndpointInfo{IfIndex: uint32(p.lxc.Attrs().Index), Identity: uint32(id),
		MAC: [6]byte(p.eth.Attrs().HardwareAddr), NodeMAC: [6]byte(p.lxc.Attrs().HardwareAddr)}
	p.put(t, km, p.info)
	ipc := gen3.IPCacheValue{Identity: uint32(id)}
	var err error
	if v4 {
		err = km.IPCache.Put(gen3.IPCacheKey{PrefixLen: 32, IP: [4]byte(p.ip)}, ipc)
	} else {
		err = km.IPCache6.Put(gen3.IPCacheKey6{PrefixLen: 128, IP: [16]byte(p.ip)}, ipc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// put writes info as p's entry in km's endpoints map of p's family.
func (p *kpod) put(t *testing.T, km *Maps, info gen3.EndpointInfo) {
	t.Helper()
	var err error
	if len(p.ip) == net.IPv4len {
		err = km.Endpoints.Put(gen3.EndpointKey{IP: [4]byte(p.ip)}, info)
	} else {
		err = km.Endpoints6.Put(gen3.EndpointKey6{IP: [16]byte(p.ip)}, info)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// listen opens a UDP socket in the pod's namespace, on its address.
func (l *lab) listen(p *kpod, port int) net.PacketConn {
	t := l.t
	t.Helper()
	if err := netns.Set(p.ns); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = netns.Set(l.orig) }()
	c, err := net.ListenPacket("udp", net.JoinHostPort(p.ip.String(), fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send sends msg up to tries times, each with a deadline to arrive (the
// first datagram waits in the kernel for ARP), and returns its source once
// it does, nil if it never does.
func send(t *testing.T, from, to net.PacketConn, dst net.Addr, msg string, tries int) net.Addr {
	t.Helper()
	buf := make([]byte, 64)
	for range tries {
		if _, err := from.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		_ = to.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, src, err := to.ReadFrom(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg {
				return src
			}
		}
	}
	return nil
}

func exchange(t *testing.T, from, to net.PacketConn, dst net.Addr, msg string) net.Addr {
	t.Helper()
	src := send(t, from, to, dst, msg, 5)
	if src == nil {
		t.Fatalf("%q never arrived", msg)
	}
	return src
}

// load fails the test on err and closes p at the end.
func (l *lab) load(p *ebpf.Program, err error) *ebpf.Program {
	l.t.Helper()
	return loader(l.t)(p, err)
}

// checkNeighbours fails unless the pod resolved the gateway to
// cilium_host's MAC and has no entry for other.
func checkNeighbours(t *testing.T, p *kpod, gw, other net.IP) {
	t.Helper()
	neigh, err := p.h.NeighList(p.eth.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	sawGW := false
	for _, n := range neigh {
		if n.IP.Equal(other) {
			t.Errorf("pod %v has a neighbour entry for the other pod %v", p.ip, other)
		}
		if n.IP.Equal(gw) {
			sawGW = true
			if n.HardwareAddr.String() != hostMAC.String() {
				t.Errorf("pod %v resolved the gateway to %v, want cilium_host's %v", p.ip, n.HardwareAddr, hostMAC)
			}
		}
	}
	if !sawGW {
		t.Errorf("pod %v never resolved the gateway: %v", p.ip, neigh)
	}
}

// policyChecks enforces ingress on dst (km holds its node's maps; c2
// listens on dst:7777; both pods of one family) and checks, each time on a new flow from src: no
// allow entry, dropped; an allow entry for src's identity to UDP 7777,
// delivered; and, without the entry, a reply to a flow dst started
// passes by conntrack while a new flow is still dropped.
func policyChecks(t *testing.T, l *lab, src, dst *kpod, km *Maps, c2 net.PacketConn) {
	t.Helper()
	to2 := &net.UDPAddr{IP: dst.ip, Port: 7777}
	enforced := dst.info
	enforced.Flags = gen3.EndpointPolicyEnforced
	dst.put(t, km, enforced)
	if got := send(t, l.listen(src, 0), c2, to2, "denied", 1); got != nil {
		t.Errorf("a datagram to the enforced pod arrived without an allow entry")
	}
	allow := gen3.NewPolicyKey(gen3.Identity(src.info.Identity), gen3.Identity(enforced.Identity), gen3.ProtoUDP, 7777)
	if err := km.Policy.Put(allow, gen3.PolicyEntry{Action: gen3.PolicyAllow}); err != nil {
		t.Fatal(err)
	}
	exchange(t, l.listen(src, 0), c2, to2, "allowed")
	if err := km.Policy.Delete(allow); err != nil {
		t.Fatal(err)
	}
	c := l.listen(src, 0)
	// dst starts a flow to src (src does not enforce), and src's answer
	// on that flow gets in by conntrack.
	exchange(t, c2, c, c.LocalAddr(), "dst starts a flow")
	exchange(t, c, c2, to2, "reply by conntrack")
	if got := send(t, l.listen(src, 0), c2, to2, "a new flow, denied", 1); got != nil {
		t.Errorf("a new flow to the enforced pod arrived without an allow entry")
	}
}

// TestSameNodePodsKernel realises seed Fig. 16 in the kernel: a node
// namespace with two pod namespaces, each pod's eth0 a veth whose host end
// lxcN carries the policy program and bpf_lxc on tc ingress. UDP between
// the pods must work with no bridge in the node; the pods' neighbour
// tables hold only the gateway (at cilium_host's MAC), never the other
// pod; an enforced pod admits only what the policy map allows.
func TestSameNodePodsKernel(t *testing.T) {
	l := newLab(t)
	_, node := l.ns()
	km := testMaps(t)
	gw := net.IPv4(10, 0, 0, 1).To4()
	prog := l.load(NewFromContainerProgram(km, LxcConfig{HostMAC: hostMAC}))
	// The policy check runs first on the same hook and hands allowed
	// traffic on to bpf_lxc (TC_ACT_UNSPEC).
	policy := l.load(NewPolicyProgram(km, TCActUnspec))
	pods := []*kpod{
		l.pod(node, km, "lxc1", net.IPv4(10, 0, 0, 2), gw, gen3.FirstPodIdentity, policy, prog),
		l.pod(node, km, "lxc2", net.IPv4(10, 0, 0, 3), gw, gen3.FirstPodIdentity+1, policy, prog),
	}
	c1, c2 := l.listen(pods[0], 0), l.listen(pods[1], 7777)
	to2 := &net.UDPAddr{IP: pods[1].ip, Port: 7777}
	src := exchange(t, c1, c2, to2, "ping")
	if !src.(*net.UDPAddr).IP.Equal(pods[0].ip) {
		t.Errorf("ping came from %v, want %v", src, pods[0].ip)
	}
	exchange(t, c2, c1, src, "pong")

	policyChecks(t, l, pods[0], pods[1], km, c2)

	links, err := node.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range links {
		if lk.Type() == "bridge" {
			t.Errorf("node has a bridge %s", lk.Attrs().Name)
		}
	}
	checkNeighbours(t, pods[0], gw, pods[1].ip)
	checkNeighbours(t, pods[1], gw, pods[0].ip)
}

// TestCrossNodeTunnelKernel connects two node namespaces by an underlay
// veth, gives each a cilium_vxlan device in external (flow-based) mode with
// bpf_overlay on its tc ingress, and one pod each: bpf_lxc finds the
// remote node CIDR in the tunnel map, sets the tunnel key (remote node IP,
// source identity as VNI) and redirects to cilium_vxlan; the other node
// decapsulates and bpf_overlay redirects to the pod's lxc. UDP must flow
// both ways, and neither pod ever resolves the other.
func TestCrossNodeTunnelKernel(t *testing.T) { crossNode(t, gen3.Tunnel) }

// TestCrossNodeDirectKernel is the same in direct-routing mode: bpf_lxc
// hands the packet to the node's stack, which routes the remote node CIDR
// over the underlay (the leaf's job in the fabric, BGP-learnt in the real
// thing); bpf_host on the receiving NIC redirects it to the pod's lxc.
func TestCrossNodeDirectKernel(t *testing.T) { crossNode(t, gen3.Direct) }

// sysctl writes a sysctl in a namespace.
func (l *lab) sysctl(ns netns.NsHandle, path, value string) {
	t := l.t
	t.Helper()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = netns.Set(l.orig) }()
	if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// vxlan creates the node's cilium_vxlan (flow-based, port 4789) and
// sets it up.
func (l *lab) vxlan(h *netlink.Handle) netlink.Link {
	t := l.t
	t.Helper()
	if err := h.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: gen3.DevCiliumVXLAN}, FlowBased: true, Port: 4789}); err != nil {
		testutil.Unavailable(t, "cannot create a flow-based VXLAN device: "+err.Error())
	}
	vx, err := h.LinkByName(gen3.DevCiliumVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(vx); err != nil {
		t.Fatal(err)
	}
	return vx
}

// xnode is a node of the cross-node tests.
type xnode struct {
	ns     netns.NsHandle
	h      *netlink.Handle
	uplink netlink.Link // eth1, to the other node
	ip     net.IP       // the node's underlay address, 172.16.0.x/24
	gw     net.IP       // its pod's gateway
	podIP  net.IP
	cidr   net.IP // the node's IPv6 pod CIDR, /120
	km     *Maps
	pod    *kpod
}

// twoNodes creates two node namespaces joined by an underlay veth
// (eth1, 172.16.0.1 and .2/24), each with its maps; with noIPv6 the
// namespaces have IPv6 off first.
func (l *lab) twoNodes(noIPv6 bool) []*xnode {
	t := l.t
	t.Helper()
	nodes := []*xnode{{}, {}}
	for _, n := range nodes {
		n.ns, n.h = l.ns()
		if noIPv6 {
			l.sysctl(n.ns, "net/ipv6/conf/all/disable_ipv6", "1")
			l.sysctl(n.ns, "net/ipv6/conf/default/disable_ipv6", "1")
		}
	}
	nodes[0].uplink, nodes[1].uplink = l.veth(nodes[0].h, "eth1", nodes[1].ns, nodes[1].h, "eth1")
	for i, n := range nodes {
		n.ip = net.IPv4(172, 16, 0, byte(1+i)).To4()
		if err := n.h.AddrAdd(n.uplink, &netlink.Addr{IPNet: &net.IPNet{IP: n.ip, Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		n.km = testMaps(t)
	}
	return nodes
}

func crossNode(t *testing.T, mode gen3.Mode) {
	l := newLab(t)
	nodes := l.twoNodes(false)
	for i, n := range nodes {
		n.gw, n.podIP = net.IPv4(10, 0, byte(1+i), 1).To4(), net.IPv4(10, 0, byte(1+i), 2).To4()
	}
	for i, n := range nodes {
		cfg := LxcConfig{HostMAC: hostMAC, NodeMaskBits: 24}
		if mode == gen3.Tunnel {
			vx := l.vxlan(n.h)
			cfg.VXLANIfIndex = vx.Attrs().Index
			l.attach(n.h, vx, l.load(NewPolicyProgram(n.km, TCActUnspec)), l.load(NewOverlayProgram(n.km)))
		} else {
			l.attach(n.h, n.uplink, l.load(NewPolicyProgram(n.km, TCActUnspec)), l.load(NewHostProgram(n.km)))
			l.sysctl(n.ns, "net/ipv4/ip_forward", "1")
		}
		lxc := l.load(NewFromContainerProgram(n.km, cfg))
		n.pod = l.pod(n.h, n.km, "lxc1", n.podIP, n.gw, gen3.FirstPodIdentity+gen3.Identity(i), lxc)
		if mode == gen3.Direct {
			// The node's own route to its pod, for the stack's reverse
			// path check on what the pod sends.
			if err := n.h.RouteAdd(&netlink.Route{LinkIndex: n.pod.lxc.Attrs().Index, Dst: &net.IPNet{IP: n.podIP, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, n := range nodes {
		o := nodes[1-i]
		cidr := [4]byte(o.podIP)
		cidr[3] = 0
		if mode == gen3.Tunnel {
			if err := n.km.Tunnel.Put(gen3.TunnelKey{IP: cidr}, gen3.TunnelValue{NodeIP: [4]byte(o.ip)}); err != nil {
				t.Fatal(err)
			}
		} else if err := n.h.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IP(cidr[:]), Mask: net.CIDRMask(24, 32)}, Gw: o.ip}); err != nil {
			t.Fatal(err)
		}
		if err := n.km.IPCache.Put(gen3.IPCacheKey{PrefixLen: 32, IP: [4]byte(o.podIP)},
			gen3.IPCacheValue{Identity: o.pod.info.Identity, TunnelEndpoint: [4]byte(o.ip)}); err != nil {
			t.Fatal(err)
		}
	}
	c1, c2 := l.listen(nodes[0].pod, 0), l.listen(nodes[1].pod, 7777)
	src := exchange(t, c1, c2, &net.UDPAddr{IP: nodes[1].podIP, Port: 7777}, "across nodes")
	if !src.(*net.UDPAddr).IP.Equal(nodes[0].podIP) {
		t.Errorf("datagram came from %v, want %v", src, nodes[0].podIP)
	}
	exchange(t, c2, c1, src, "and back")

	// Policy on the receiving node, before delivery.
	policyChecks(t, l, nodes[0].pod, nodes[1].pod, nodes[1].km, c2)

	checkNeighbours(t, nodes[0].pod, nodes[0].gw, nodes[1].podIP)
	checkNeighbours(t, nodes[1].pod, nodes[1].gw, nodes[0].podIP)
	// Delivery to the pod was BPF's: the node's stack never resolved its
	// own pod on the lxc.
	for _, n := range nodes {
		neigh, err := n.h.NeighList(n.pod.lxc.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range neigh {
			if e.IP.Equal(n.podIP) {
				t.Errorf("node stack resolved its pod %v on %s: delivery bypassed BPF", n.podIP, n.pod.lxc.Attrs().Name)
			}
		}
	}
}
