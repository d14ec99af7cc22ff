package kmaps

import (
	"errors"
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

// TestSameNodePodsKernel realises seed Fig. 16 in the kernel: a node
// namespace with two pod namespaces, each pod's eth0 a veth whose host end
// lxcN carries bpf_lxc on tc ingress. A UDP exchange between the pods must
// work with no bridge in the node, and the pods' neighbour tables must
// hold only the gateway (at cilium_host's MAC), never the other pod.
func TestSameNodePodsKernel(t *testing.T) {
	testutil.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	defer func() { _ = netns.Set(orig) }()

	newNS := func() (netns.NsHandle, *netlink.Handle) {
		t.Helper()
		name := testutil.Name("nbtest-")
		ns, err := netns.NewNamed(name)
		if err != nil {
			t.Fatalf("create namespace %s: %v", name, err)
		}
		if err := netns.Set(orig); err != nil {
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
	nodeNS, node := newNS()
	_ = nodeNS
	km, err := New()
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			testutil.Unavailable(t, "cannot create BPF maps: "+err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = km.Close() })
	gw := net.IPv4(10, 0, 0, 1).To4()
	prog, err := NewFromContainerProgram(km, hostMAC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prog.Close() })
	// The policy check runs first on the same hook and hands allowed
	// traffic on to bpf_lxc (TC_ACT_UNSPEC).
	policy, err := NewPolicyProgram(km, TCActUnspec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = policy.Close() })

	type pod struct {
		ns   netns.NsHandle
		h    *netlink.Handle
		ip   net.IP
		eth  netlink.Link
		lxc  netlink.Link
		info gen3.EndpointInfo
	}
	var pods []*pod
	for i := range 2 {
		p := &pod{ip: net.IPv4(10, 0, 0, byte(2+i)).To4()}
		p.ns, p.h = newNS()
		lxcName, tmp := fmt.Sprintf("lxc%d", i+1), fmt.Sprintf("nbtmp%d", i+1)
		if err := node.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: lxcName}, PeerName: tmp}); err != nil {
			t.Fatalf("create veth %s: %v", lxcName, err)
		}
		peer, err := node.LinkByName(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.LinkSetNsFd(peer, int(p.ns)); err != nil {
			t.Fatal(err)
		}
		eth, err := p.h.LinkByName(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.h.LinkSetName(eth, "eth0"); err != nil {
			t.Fatal(err)
		}
		if err := p.h.LinkSetUp(eth); err != nil {
			t.Fatal(err)
		}
		if p.eth, err = p.h.LinkByName("eth0"); err != nil {
			t.Fatal(err)
		}
		if err := p.h.AddrAdd(p.eth, &netlink.Addr{IPNet: &net.IPNet{IP: p.ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
		idx := p.eth.Attrs().Index
		if err := p.h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
			t.Fatal(err)
		}
		if err := p.h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: gw}); err != nil {
			t.Fatal(err)
		}
		if p.lxc, err = node.LinkByName(lxcName); err != nil {
			t.Fatal(err)
		}
		if err := node.LinkSetUp(p.lxc); err != nil {
			t.Fatal(err)
		}
		if err := node.QdiscAdd(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.lxc.Attrs().Index,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}); err != nil {
			t.Fatalf("add clsact to %s: %v", lxcName, err)
		}
		for prio, pr := range []*ebpf.Program{policy, prog} {
			if err := node.FilterAdd(&netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: p.lxc.Attrs().Index,
				Parent: netlink.HANDLE_MIN_INGRESS, Handle: netlink.MakeHandle(0, uint16(prio+1)), Protocol: unix.ETH_P_ALL, Priority: uint16(prio + 1)},
				Fd: pr.FD(), Name: fmt.Sprint("bpf", prio), DirectAction: true}); err != nil {
				t.Fatalf("attach program %d to %s: %v", prio, lxcName, err)
			}
		}
		info := gen3.EndpointInfo{IfIndex: uint32(p.lxc.Attrs().Index), Identity: uint32(gen3.FirstPodIdentity) + uint32(i),
			LxcID: uint16(i + 1), MAC: [6]byte(p.eth.Attrs().HardwareAddr), NodeMAC: [6]byte(p.lxc.Attrs().HardwareAddr)}
		if err := km.Endpoints.Put(gen3.EndpointKey{IP: [4]byte(p.ip)}, info); err != nil {
			t.Fatal(err)
		}
		if err := km.IPCache.Put(gen3.IPCacheKey{PrefixLen: 32, IP: [4]byte(p.ip)}, gen3.IPCacheValue{Identity: info.Identity}); err != nil {
			t.Fatal(err)
		}
		p.info = info
		pods = append(pods, p)
	}

	// Sockets belong to the namespace of the thread that opens them.
	listen := func(p *pod, port int) net.PacketConn {
		t.Helper()
		if err := netns.Set(p.ns); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = netns.Set(orig) }()
		c, err := net.ListenPacket("udp4", fmt.Sprintf("%s:%d", p.ip, port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := listen(pods[0], 0), listen(pods[1], 7777)
	// send sends msg up to tries times, each with a deadline to arrive
	// (the first datagram waits in the kernel for ARP), and returns its
	// source once it does, nil if it never does.
	send := func(from, to net.PacketConn, dst net.Addr, msg string, tries int) net.Addr {
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
	exchange := func(from, to net.PacketConn, dst net.Addr, msg string) net.Addr {
		t.Helper()
		src := send(from, to, dst, msg, 5)
		if src == nil {
			t.Fatalf("%q never arrived", msg)
		}
		return src
	}
	src := exchange(c1, c2, &net.UDPAddr{IP: pods[1].ip, Port: 7777}, "ping")
	if !src.(*net.UDPAddr).IP.Equal(pods[0].ip) {
		t.Errorf("ping came from %v, want %v", src, pods[0].ip)
	}
	exchange(c2, c1, src, "pong")

	// Policy: pod2 enforces ingress. An allow entry for pod1's identity
	// to UDP 7777 lets the datagram through; without it the policy
	// program drops it before bpf_lxc redirects.
	to2 := &net.UDPAddr{IP: pods[1].ip, Port: 7777}
	enforced := pods[1].info
	enforced.Flags = gen3.EndpointPolicyEnforced
	if err := km.Endpoints.Put(gen3.EndpointKey{IP: [4]byte(pods[1].ip)}, enforced); err != nil {
		t.Fatal(err)
	}
	allow := gen3.NewPolicyKey(gen3.Identity(pods[0].info.Identity), gen3.Identity(enforced.Identity), gen3.ProtoUDP, 7777)
	if err := km.Policy.Put(allow, gen3.PolicyEntry{Action: gen3.PolicyAllow}); err != nil {
		t.Fatal(err)
	}
	exchange(c1, c2, to2, "allowed")
	if err := km.Policy.Delete(allow); err != nil {
		t.Fatal(err)
	}
	if got := send(c1, c2, to2, "denied", 2); got != nil {
		t.Errorf("a datagram to the enforced pod arrived without an allow entry")
	}
	exchange(c2, c1, src, "pod2 is not enforced on the way out")

	links, err := node.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "bridge" {
			t.Errorf("node has a bridge %s", l.Attrs().Name)
		}
	}
	for i, p := range pods {
		other := pods[1-i].ip
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
}
