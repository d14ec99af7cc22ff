package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/internal/testutil"
)

// testNS is a named network namespace made for one test.
type testNS struct {
	name string
	h    netns.NsHandle
}

func (n *testNS) path() string { return "/var/run/netns/" + n.name }

// newNS creates a namespace with a random nbtest- name on a locked thread
// and removes it when the test ends.
func newNS(t testing.TB) *testNS {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	name := testutil.Name("nbtest-")
	h, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the test's netns: %v", err)
	}
	n := &testNS{name: name, h: h}
	t.Cleanup(func() {
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if lo, err := n.handle(t).LinkByName("lo"); err == nil {
		_ = n.handle(t).LinkSetUp(lo)
	}
	return n
}

func (n *testNS) handle(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// in runs fn with the calling thread in n: sockets it opens and processes
// it starts (a plugin run by libcni) live in n.
func (n *testNS) in(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to the test's netns: %v", err))
		}
	}()
	fn()
}

// addrAdd puts a on link in n, creating a bridge named link when asked.
func (n *testNS) addrAdd(t *testing.T, link string, a netip.Prefix, bridge bool) {
	t.Helper()
	h := n.handle(t)
	if bridge {
		la := netlink.NewLinkAttrs()
		la.Name = link
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			t.Fatalf("bridge %s in %s: %v", link, n.name, err)
		}
	}
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: ipNet(a)}
	if a.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatalf("address %v on %s in %s: %v", a, link, n.name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// podAddrs lists the global addresses of ifName in n (nil when it is gone).
func (n *testNS) podAddrs(t *testing.T, ifName string) []netip.Prefix {
	t.Helper()
	h := n.handle(t)
	l, err := h.LinkByName(ifName)
	if err != nil {
		return nil
	}
	as, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP)
		if ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out
}

func (n *testNS) hasLink(t *testing.T, name string) bool {
	_, err := n.handle(t).LinkByName(name)
	return err == nil
}

// udpExchange sends a datagram from a socket bound to from in src to an
// echo socket on to in dst and waits for the echo: real packets both ways.
func udpExchange(t *testing.T, src *testNS, from netip.Addr, dst *testNS, to netip.Addr) {
	t.Helper()
	var srv, cli net.PacketConn
	var err error
	dst.in(t, func() { srv, err = net.ListenPacket("udp", netip.AddrPortFrom(to, 0).String()) })
	if err != nil {
		t.Fatalf("listen in %s on %v: %v", dst.name, to, err)
	}
	defer srv.Close()
	src.in(t, func() { cli, err = net.ListenPacket("udp", netip.AddrPortFrom(from, 0).String()) })
	if err != nil {
		t.Fatalf("listen in %s on %v: %v", src.name, from, err)
	}
	defer cli.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo(buf[:n], addr)
		}
	}()
	msg := []byte("netbed " + to.String())
	buf := make([]byte, 1500)
	// Retry a few times: the first datagram may wait on ARP.
	for attempt := 0; attempt < 20; attempt++ {
		if _, err := cli.WriteTo(msg, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, uint16(srv.LocalAddr().(*net.UDPAddr).Port)))); err != nil {
			t.Fatalf("send %v -> %v: %v", from, to, err)
		}
		_ = cli.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, _, err := cli.ReadFrom(buf)
		if err == nil && string(buf[:n]) == string(msg) {
			return
		}
	}
	t.Fatalf("no UDP echo %v (%s) <-> %v (%s)", from, src.name, to, dst.name)
}

type cniRun struct {
	cfg  *libcni.CNIConfig
	conf *libcni.PluginConfig
}

func newCNIRun(t testing.TB, confBytes []byte) *cniRun {
	t.Helper()
	conf, err := libcni.ConfFromBytes(confBytes)
	if err != nil {
		t.Fatal(err)
	}
	return &cniRun{cfg: libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(pluginBinary(t))}, t.TempDir(), nil), conf: conf}
}

func rt(cid string, pod *testNS, cniArgs ...[2]string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: cid, NetNS: pod.path(), IfName: "eth0", Args: append([][2]string{{"IgnoreUnknown", "1"}}, cniArgs...)}
}

func TestLibCNIEVPNPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	rc := startController(t, "10.30.0.0/24")
	// Dual stack: the network gets an IPv6 subnet too.
	if _, err := rc.svc.CreateSubnet(context.Background(), controller.SubnetRequest{Network: "blue", CIDR: netip.MustParsePrefix("fd00:30::/64")}); err != nil {
		t.Fatal(err)
	}
	gw := netip.MustParsePrefix("10.30.0.1/24")   // the subnets' gateways,
	gw6 := netip.MustParsePrefix("fd00:30::1/64") // held here by the test host
	hostA, hostB := newNS(t), newNS(t)
	podA, podB, podC := newNS(t), newNS(t), newNS(t)
	// host-a has its br-int; host-b's is created by the plugin.
	hostA.addrAdd(t, "br-int", gw, true)
	hostA.addrAdd(t, "br-int", gw6, false)

	mk := func(host string, create bool) []byte {
		return confJSON(t, "1.1.0", map[string]any{"controllerURL": rc.unixURL, "host": host, "createBridge": create, "mtu": 1450})
	}
	onA, onB := newCNIRun(t, mk("host-a", false)), newCNIRun(t, mk("host-b", true))
	ctx := context.Background()
	identity := [2]string{"NETBED_IDENTITY", "db-0"}

	// ADD on host-a: the address comes from the controller.
	var res1 *types100.Result
	hostA.in(t, func() {
		r, err := onA.cfg.AddNetwork(ctx, onA.conf, rt("c1", podA, identity))
		if err != nil {
			t.Fatalf("ADD on host-a: %v", err)
		}
		if res1, err = types100.NewResultFromResult(r); err != nil {
			t.Fatal(err)
		}
	})
	port := rc.settled(t, "id:db-0")
	if len(port.IPs) != 2 || len(res1.IPs) != 2 || len(res1.Routes) != 2 {
		t.Fatalf("dual stack: port %v, result IPs %v routes %v; want one address and one default route per family", port.IPs, res1.IPs, res1.Routes)
	}
	var podIP, podIP6 netip.Addr
	var want []netip.Prefix
	for i, ip := range port.IPs {
		if ip.Address.Is4() {
			podIP = ip.Address
		} else {
			podIP6 = ip.Address
		}
		want = append(want, netip.PrefixFrom(ip.Address, ip.Prefix.Bits()))
		if got := res1.IPs[i].Address.String(); got != want[i].String() {
			t.Fatalf("result address %s, controller gave %v", got, want[i])
		}
	}
	if got := podA.podAddrs(t, "eth0"); !sameSet(got, want) {
		t.Fatalf("eth0 in the pod has %v, want %v", got, want)
	}
	hostIf := res1.Interfaces[0].Name
	if !strings.HasPrefix(hostIf, "tap") || !hostA.hasLink(t, hostIf) {
		t.Fatalf("host side %q missing on host-a", hostIf)
	}
	udpExchange(t, hostA, gw.Addr(), podA, podIP)
	udpExchange(t, podA, podIP, hostA, gw.Addr())
	udpExchange(t, hostA, gw6.Addr(), podA, podIP6)

	// CHECK and STATUS.
	hostA.in(t, func() {
		if err := onA.cfg.CheckNetwork(ctx, onA.conf, rt("c1", podA, identity)); err != nil {
			t.Errorf("CHECK: %v", err)
		}
		list, err := libcni.ConfListFromConf(onA.conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := onA.cfg.GetStatusNetworkList(ctx, list); err != nil {
			t.Errorf("STATUS: %v", err)
		}
	})
	// CHECK notices a pod whose address was removed.
	if l, err := podA.handle(t).LinkByName("eth0"); err == nil {
		_ = podA.handle(t).AddrDel(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(podIP, 24))})
	}
	hostA.in(t, func() {
		if err := onA.cfg.CheckNetwork(ctx, onA.conf, rt("c1", podA, identity)); err == nil {
			t.Errorf("CHECK passed with the pod's address removed")
		}
	})

	// DEL on host-a: veth gone, port kept (stateful identity).
	hostA.in(t, func() {
		if err := onA.cfg.DelNetwork(ctx, onA.conf, rt("c1", podA, identity)); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	})
	if hostA.hasLink(t, hostIf) || podA.hasLink(t, "eth0") {
		t.Fatalf("DEL left links: host %v pod %v", hostA.hasLink(t, hostIf), podA.hasLink(t, "eth0"))
	}

	// Drift: the same identity comes up on host-b and keeps its address;
	// the CNC moves the leaf configuration from leaf1 to leaf2.
	hostB.in(t, func() {
		if _, err := onB.cfg.AddNetwork(ctx, onB.conf, rt("c2", podB, identity)); err != nil {
			t.Fatalf("ADD on host-b: %v", err)
		}
	})
	moved := rc.settled(t, "id:db-0")
	if moved.Host != "host-b" || moved.IPs[0].Address != podIP {
		t.Fatalf("after drift: host %s address %v, want host-b %v", moved.Host, moved.IPs[0].Address, podIP)
	}
	if got := podB.podAddrs(t, "eth0"); !sameSet(got, want) {
		t.Fatalf("eth0 on host-b's pod has %v, want %v", got, want)
	}
	if rc.drv.Leaf("leaf1").HasEntry(port.ID) || !rc.drv.Leaf("leaf2").HasEntry(port.ID) {
		t.Errorf("leaf config after drift: leaf1 %+v leaf2 %+v", rc.drv.Leaf("leaf1"), rc.drv.Leaf("leaf2"))
	}
	hostB.addrAdd(t, "br-int", gw, false)
	udpExchange(t, hostB, gw.Addr(), podB, podIP)

	// Once exactly as a runtime invokes it: environment and stdin.
	env := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c3", "CNI_NETNS": podC.path(), "CNI_IFNAME": "eth0",
		"CNI_PATH": filepath.Dir(pluginBinary(t)), "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1"}
	var out []byte
	var ok bool
	hostB.in(t, func() { out, ok = runPlugin(t, env, mk("host-b", true)) })
	if !ok {
		t.Fatalf("raw ADD failed: %s", out)
	}
	var raw types100.Result
	if err := json.Unmarshal(out, &raw); err != nil || len(raw.IPs) != 2 {
		t.Fatalf("raw ADD result %q: %v", out, err)
	}
	var webIP netip.Addr
	for _, ipc := range raw.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap().Is4() {
			webIP = a.Unmap()
		}
	}
	if !webIP.IsValid() || webIP == podIP {
		t.Fatalf("second pod got the first pod's address %v", podIP)
	}
	udpExchange(t, podC, webIP, podB, podIP) // pod to pod across br-int
	env["CNI_COMMAND"] = "DEL"
	hostB.in(t, func() { out, ok = runPlugin(t, env, mk("host-b", true)) })
	if !ok {
		t.Fatalf("raw DEL failed: %s", out)
	}
	if _, err := rc.svc.GetPort(ctx, "pod:shop:web-1"); !errors.Is(err, controller.ErrNotFound) {
		t.Errorf("plain pod's port after raw DEL: %v, want not found", err)
	}
	// DEL for an unknown container and for a vanished namespace succeed.
	hostB.in(t, func() {
		unknown := &libcni.RuntimeConf{ContainerID: "never", NetNS: "/var/run/netns/nbtest-gone", IfName: "eth0"}
		if err := onB.cfg.DelNetwork(ctx, onB.conf, unknown); err != nil {
			t.Errorf("DEL of an unknown container: %v", err)
		}
	})
}

func TestLibCNIEBPFPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	host, pod := newNS(t), newNS(t)
	cidr := netip.MustParsePrefix("10.244.5.0/24")
	gw := netip.MustParseAddr("10.244.5.1")
	host.addrAdd(t, "lo", netip.PrefixFrom(gw, 32), false) // the node's router address
	conf := confJSON(t, "1.1.0", map[string]any{"mode": "ebpf", "controllerURL": nil, "network": nil, "host": "node-1",
		"nodeCIDR": cidr.String(), "dataDir": t.TempDir()})
	run := newCNIRun(t, conf)
	ctx := context.Background()
	var res *types100.Result
	host.in(t, func() {
		r, err := run.cfg.AddNetwork(ctx, run.conf, rt("c1", pod))
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		if res, err = types100.NewResultFromResult(r); err != nil {
			t.Fatal(err)
		}
	})
	podIP, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
	podIP = podIP.Unmap()
	if !cidr.Contains(podIP) || podIP == gw {
		t.Fatalf("pod address %v outside node CIDR %v or the gateway", podIP, cidr)
	}
	lxc := res.Interfaces[0].Name
	if !strings.HasPrefix(lxc, "lxc") || !host.hasLink(t, lxc) {
		t.Fatalf("host side %q missing", lxc)
	}
	udpExchange(t, host, gw, pod, podIP)
	host.in(t, func() {
		if err := run.cfg.CheckNetwork(ctx, run.conf, rt("c1", pod)); err != nil {
			t.Errorf("CHECK: %v", err)
		}
		if err := run.cfg.DelNetwork(ctx, run.conf, rt("c1", pod)); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	})
	if host.hasLink(t, lxc) || pod.hasLink(t, "eth0") {
		t.Errorf("DEL left links")
	}
}

func sameSet(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
