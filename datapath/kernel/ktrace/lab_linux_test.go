package ktrace

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel/kerneltest"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies/netns"
)

// tns is a test namespace: its random name (for ip netns exec), the node
// name events carry, a handle, and netlink in it.
type tns struct {
	node string
	name string
	ns   vnetns.NsHandle
	h    *netlink.Handle
}

// newNS creates a named namespace with lo up, removed at cleanup, and
// names it node in r.
func newNS(t testing.TB, r *Namespaces, node string) *tns {
	t.Helper()
	testutil.RequireRoot(t)
	name := testutil.Name("nbtest-")
	var ns vnetns.NsHandle
	errc := make(chan error, 1)
	go func() {
		// NewNamed moves the thread into the new namespace: the
		// goroutine ends with it locked, so the thread ends too.
		runtime.LockOSThread()
		var err error
		ns, err = vnetns.NewNamed(name)
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() { ns.Close(); _ = vnetns.DeleteNamed(name) })
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	if r != nil {
		if err := r.Add(node, ns); err != nil {
			t.Fatal(err)
		}
	}
	return &tns{node: node, name: name, ns: ns, h: h}
}

// veth joins a's interface an to b's interface bn, both up.
func veth(t testing.TB, a *tns, an string, b *tns, bn string) {
	t.Helper()
	tmp := testutil.Name("nb")
	if err := a.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an}, PeerName: tmp}); err != nil {
		t.Fatalf("create veth %s in %s: %v", an, a.node, err)
	}
	p, err := a.h.LinkByName(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.h.LinkSetNsFd(p, int(b.ns)); err != nil {
		t.Fatal(err)
	}
	if p, err = b.h.LinkByName(tmp); err != nil {
		t.Fatal(err)
	}
	if err := b.h.LinkSetName(p, bn); err != nil {
		t.Fatal(err)
	}
	a.up(t, an)
	b.up(t, bn)
}

func (n *tns) link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %s: %v", n.node, name, err)
	}
	return l
}

func (n *tns) up(t testing.TB, name string) {
	t.Helper()
	if err := n.h.LinkSetUp(n.link(t, name)); err != nil {
		t.Fatalf("%s: set %s up: %v", n.node, name, err)
	}
}

func (n *tns) addr(t testing.TB, name, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.h.AddrAdd(n.link(t, name), a); err != nil {
		t.Fatalf("%s: address %s on %s: %v", n.node, cidr, name, err)
	}
}

// bridge creates br in n with ports.
func (n *tns) bridge(t testing.TB, br string, ports ...string) {
	t.Helper()
	if err := n.h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
		t.Fatalf("%s: create bridge %s: %v", n.node, br, err)
	}
	b := n.link(t, br)
	for _, p := range ports {
		if err := n.h.LinkSetMaster(n.link(t, p), b); err != nil {
			t.Fatalf("%s: %s into %s: %v", n.node, p, br, err)
		}
	}
	n.up(t, br)
}

// run runs a command inside n (ip netns exec).
func (n *tns) run(t testing.TB, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		testutil.Unavailable(t, fmt.Sprintf("needs %s", args[0]))
	}
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %v: %s", n.node, args, err, out)
	}
}

// waitUp waits until name is operationally up (a veth gets its carrier a
// moment after both ends are up; a frame sent before is lost).
func (n *tns) waitUp(t testing.TB, names ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, name := range names {
		for n.link(t, name).Attrs().OperState != netlink.OperUp {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s not up", n.node, name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// ping sends one echo request (ICMP or ICMPv6, by dst's family) with id
// and seq from a raw socket in n and reports whether the reply came
// within timeout.
func (n *tns) ping(t testing.TB, dst netip.Addr, id, seq uint16, timeout time.Duration) bool {
	t.Helper()
	_, err := kerneltest.Echo(func(fn func() error) error { return netns.DoIn(n.ns, fn) }, dst, id, seq, timeout)
	return err == nil
}

// send sends one UDP datagram, or one TCP SYN (a non-blocking connect),
// from n's address and port sport to dst:dport.
func (n *tns) send(t testing.TB, typ int, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) {
	t.Helper()
	var fd int
	if err := netns.DoIn(n.ns, func() error {
		var err error
		family := unix.AF_INET
		if src.Is6() {
			family = unix.AF_INET6
		}
		fd, err = unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, sockaddr(src, sport))
	}); err != nil {
		t.Fatalf("%s: socket: %v", n.node, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	to := sockaddr(dst, dport)
	var err error
	if typ == unix.SOCK_DGRAM {
		err = unix.Sendto(fd, []byte("probe"), 0, to)
	} else if err = unix.Connect(fd, to); errors.Is(err, unix.EINPROGRESS) {
		err = nil
	}
	if err != nil {
		t.Fatalf("%s: send to %v:%d: %v", n.node, dst, dport, err)
	}
}

// sockaddr is a:port as a socket address of a's family.
func sockaddr(a netip.Addr, port uint16) unix.Sockaddr {
	if a.Is6() {
		return &unix.SockaddrInet6{Addr: a.As16(), Port: int(port)}
	}
	return &unix.SockaddrInet4{Addr: a.As4(), Port: int(port)}
}

// ipv6 turns IPv6 on for dev in n and gives it cidr without duplicate
// address detection (the address is usable at once).
func (n *tns) ipv6(t testing.TB, dev, cidr string) {
	t.Helper()
	n.sysctl(t, "net/ipv6/conf/"+dev+"/accept_dad", "0")
	n.sysctl(t, "net/ipv6/conf/"+dev+"/disable_ipv6", "0")
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := n.h.AddrAdd(n.link(t, dev), a); err != nil {
		t.Fatalf("%s: address %s on %s: %v", n.node, cidr, dev, err)
	}
}

// sysctl writes value to /proc/sys/key from inside n (net sysctls are the
// writing thread's namespace's).
func (n *tns) sysctl(t testing.TB, key, value string) {
	t.Helper()
	if err := netns.DoIn(n.ns, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0)
	}); err != nil {
		t.Fatalf("%s: sysctl %s=%s: %v", n.node, key, value, err)
	}
}
