package ktrace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies/netns"
)

// newTracer starts a tracer over r, closed at cleanup.
func newTracer(t testing.TB, r Resolver) *Tracer {
	t.Helper()
	tr, err := New(Options{Resolver: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return tr
}

// bridged is three namespaces: a and b joined through m's bridge br0
// (ports pa, pb); a is 10.99.0.1/24 on eth0, b 10.99.0.2/24.
type bridged struct {
	r       *Namespaces
	a, m, b *tns
}

var (
	addrA = netip.MustParseAddr("10.99.0.1")
	addrB = netip.MustParseAddr("10.99.0.2")
)

func newBridged(t *testing.T) *bridged {
	r := NewNamespaces()
	t.Cleanup(r.Close)
	l := &bridged{r: r, a: newNS(t, r, "a"), m: newNS(t, r, "m"), b: newNS(t, r, "b")}
	veth(t, l.a, "eth0", l.m, "pa")
	veth(t, l.b, "eth0", l.m, "pb")
	l.m.bridge(t, "br0", "pa", "pb")
	l.a.addr(t, "eth0", "10.99.0.1/24")
	l.b.addr(t, "eth0", "10.99.0.2/24")
	l.a.waitUp(t, "eth0")
	l.b.waitUp(t, "eth0")
	l.m.waitUp(t, "pa", "pb", "br0")
	return l
}

// sighting is an event as the tests compare it.
func sighting(e kernel.Event) string {
	dir := "in"
	if e.Out {
		dir = "out"
	}
	if e.Drop != nil {
		dir = "drop " + e.Drop.Reason
	}
	s := fmt.Sprintf("%s/%s %s", e.Node, e.Iface, dir)
	if e.Reply {
		s += " reply"
	}
	if e.Encap {
		s += " encap"
	}
	if e.TCPFlags != 0 {
		s += fmt.Sprintf(" tcp=%#02x", e.TCPFlags)
	}
	return s
}

func sightings(evs []kernel.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = sighting(e)
	}
	return out
}

// settle waits until probe's events include want (or 5 s pass) and
// returns them all.
func settle(t *testing.T, tr *Tracer, probe uint64, want int) []kernel.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := tr.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		evs := tr.Events(probe)
		if len(evs) >= want || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBridgePath(t *testing.T) {
	l := newBridged(t)
	tr := newTracer(t, l.r)
	// Warm the neighbour caches: the first request would wait for ARP.
	if !l.a.ping(t, addrB, 7, 1, 2*time.Second) {
		t.Fatal("a cannot ping b before tracing")
	}
	const probe = 42
	if err := tr.Watch(ICMPEcho(addrA, addrB, 7, 2), probe); err != nil {
		t.Fatal(err)
	}
	if !l.a.ping(t, addrB, 7, 2, 2*time.Second) {
		t.Fatal("no reply")
	}
	// The reply reaches the raw socket (a clone); icmp_rcv then frees the
	// original as NO_SOCKET, because no ping socket has that identifier.
	want := []string{
		"a/eth0 out", "m/pa in", "m/pb out", "b/eth0 in",
		"b/eth0 out reply", "m/pb in reply", "m/pa out reply", "a/eth0 in reply",
		"a/eth0 drop NO_SOCKET reply",
	}
	expect(t, settle(t, tr, probe, len(want)), want)
	// Another key's traffic is not reported under this probe, and an
	// unwatched key reports nothing more.
	if err := tr.Unwatch(ICMPEcho(addrA, addrB, 7, 2)); err != nil {
		t.Fatal(err)
	}
	tr.Take(probe)
	if !l.a.ping(t, addrB, 7, 2, 2*time.Second) {
		t.Fatal("no reply")
	}
	if err := tr.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if evs := tr.Events(probe); len(evs) != 0 {
		t.Errorf("after Unwatch, %d events:\n%s", len(evs), strings.Join(sightings(evs), "\n"))
	}
}

// expect fails t unless evs are want, in order.
func expect(t *testing.T, evs []kernel.Event, want []string) {
	t.Helper()
	got := sightings(evs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// dropOf returns the one drop among evs that is not the prober's own
// NO_SOCKET after the reply, failing t otherwise.
func dropOf(t *testing.T, evs []kernel.Event) kernel.Drop {
	t.Helper()
	var drops []kernel.Drop
	for _, e := range evs {
		if e.Drop != nil {
			drops = append(drops, *e.Drop)
		}
	}
	if len(drops) != 1 {
		t.Fatalf("%d drops in:\n%s", len(drops), strings.Join(sightings(evs), "\n"))
	}
	return drops[0]
}

func TestNetfilterDrop(t *testing.T) {
	l := newBridged(t)
	// New namespaces call iptables for bridged IPv4 (br_netfilter is
	// built in, bridge-nf-call-iptables defaults to 1): the bridge's
	// forwarding passes through FORWARD.
	l.m.run(t, "iptables", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")
	tr := newTracer(t, l.r)
	const probe = 43
	if err := tr.Watch(ICMPEcho(addrA, addrB, 9, 1), probe); err != nil {
		t.Fatal(err)
	}
	if l.a.ping(t, addrB, 9, 1, 500*time.Millisecond) {
		t.Fatal("a reply through a DROP rule")
	}
	// br_netfilter runs the IPv4 FORWARD hook once the bridge has
	// chosen the output port: the packet is on pb when it is dropped.
	want := []string{"a/eth0 out", "m/pa in", "m/pb drop NETFILTER_DROP"}
	evs := settle(t, tr, probe, len(want))
	expect(t, evs, want)
	d := dropOf(t, evs)
	if d.Func == "" {
		t.Errorf("drop %+v: no kernel function", d)
	}
	t.Logf("dropped in %s", d.Func)
}

func TestNeighFailed(t *testing.T) {
	l := newBridged(t)
	// One ARP request, 100 ms for its answer, then the queued packet is
	// freed.
	l.a.sysctl(t, "net/ipv4/neigh/eth0/mcast_solicit", "1")
	l.a.sysctl(t, "net/ipv4/neigh/eth0/retrans_time_ms", "100")
	tr := newTracer(t, l.r)
	nobody := netip.MustParseAddr("10.99.0.77")
	const probe = 44
	if err := tr.Watch(ICMPEcho(addrA, nobody, 11, 1), probe); err != nil {
		t.Fatal(err)
	}
	if l.a.ping(t, nobody, 11, 1, 500*time.Millisecond) {
		t.Fatal("a reply from an address nobody holds")
	}
	// The request waits in eth0's neighbour queue (it was never sent);
	// when resolution fails the kernel first answers itself with an ICMP
	// host unreachable over lo (quoting the request: a reply), then frees
	// the request as NEIGH_FAILED.
	want := []string{"a/lo out reply", "a/eth0 drop NEIGH_FAILED", "a/lo in reply"}
	evs := settle(t, tr, probe, len(want))
	expect(t, evs, want)
	t.Logf("dropped in %s", dropOf(t, evs).Func)
}

// TestVXLANInner: a ping between two VXLAN devices, over IPv4 and over
// IPv6 (on the same IPv4 underlay), is matched on the inner headers on
// the underlay veth too.
func TestVXLANInner(t *testing.T) {
	for _, fam := range []struct {
		name   string
		prefix string // the inner addresses: prefix + node number
		bits   int
		probe  uint64
	}{{"ipv4", "10.98.0.", 24, 45}, {"ipv6", "fd98::", 64, 64}} {
		t.Run(fam.name, func(t *testing.T) {
			r := NewNamespaces()
			t.Cleanup(r.Close)
			u1, u2 := newNS(t, r, "u1"), newNS(t, r, "u2")
			veth(t, u1, "ul", u2, "ul")
			v6 := fam.name == "ipv6"
			for i, n := range []*tns{u1, u2} {
				n.addr(t, "ul", fmt.Sprintf("192.168.77.%d/24", i+1))
				peer := net.ParseIP(fmt.Sprintf("192.168.77.%d", 2-i))
				vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vx0"}, VxlanId: 42, Group: peer,
					VtepDevIndex: n.link(t, "ul").Attrs().Index, Port: 4789}
				if err := n.h.LinkAdd(vx); err != nil {
					t.Fatalf("%s: create vx0: %v", n.node, err)
				}
				inner := fmt.Sprintf("%s%d/%d", fam.prefix, i+1, fam.bits)
				if v6 {
					n.ipv6(t, "vx0", inner)
				} else {
					n.addr(t, "vx0", inner)
				}
				n.up(t, "vx0")
				n.waitUp(t, "ul")
			}
			tr := newTracer(t, r)
			src, dst := netip.MustParseAddr(fam.prefix+"1"), netip.MustParseAddr(fam.prefix+"2")
			ping := u1.ping
			if !ping(t, dst, 5, 1, 2*time.Second) {
				t.Fatal("u1 cannot ping u2 over vx0 before tracing")
			}
			if err := tr.Watch(ICMPEcho(src, dst, 5, 2), fam.probe); err != nil {
				t.Fatal(err)
			}
			if !ping(t, dst, 5, 2, 2*time.Second) {
				t.Fatal("no reply")
			}
			want := []string{
				"u1/vx0 out", "u1/ul out encap", "u2/ul in encap", "u2/vx0 in",
				"u2/vx0 out reply", "u2/ul out reply encap", "u1/ul in reply encap", "u1/vx0 in reply",
				"u1/vx0 drop NO_SOCKET reply",
			}
			expect(t, settle(t, tr, fam.probe, len(want)), want)
		})
	}
}

// TestPortsAndQuotes: TCP and UDP keys match on ports, the answer on the
// swapped ports, and an ICMP error on the header it quotes.
func TestPortsAndQuotes(t *testing.T) {
	l := newBridged(t)
	tr := newTracer(t, l.r)
	if !l.a.ping(t, addrB, 1, 1, 2*time.Second) {
		t.Fatal("a cannot ping b")
	}
	portsAndQuotes(t, l, tr, addrA, addrB, 46)
}

// portsAndQuotes sends a UDP datagram (probe first) and a TCP SYN (probe
// first+1) from a's src to port 9 on b's dst, where nothing listens, and
// wants the path of each and of its answer: for UDP an ICMP (or ICMPv6)
// port unreachable quoting the datagram, sent before b frees the
// datagram; for TCP a RST from port 9 to the prober's port.
func portsAndQuotes(t *testing.T, l *bridged, tr *Tracer, src, dst netip.Addr, first uint64) {
	for _, c := range []struct {
		name     string
		typ      int
		proto    uint8
		probe    uint64
		syn, rst string // the flags of the request and of the answer
	}{
		{"udp", unix.SOCK_DGRAM, ProtoUDP, first, "", ""},
		{"tcp", unix.SOCK_STREAM, ProtoTCP, first + 1, " tcp=0x02", " tcp=0x14"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sport := uint16(40000 + c.probe)
			if err := tr.Watch(Flow(c.proto, src, sport, dst, 9), c.probe); err != nil {
				t.Fatal(err)
			}
			l.a.send(t, c.typ, src, sport, dst, 9)
			want := []string{
				"a/eth0 out" + c.syn, "m/pa in" + c.syn, "m/pb out" + c.syn, "b/eth0 in" + c.syn,
				"b/eth0 out reply" + c.rst, "b/eth0 drop NO_SOCKET" + c.syn,
				"m/pb in reply" + c.rst, "m/pa out reply" + c.rst, "a/eth0 in reply" + c.rst,
			}
			expect(t, settle(t, tr, c.probe, len(want)), want)
		})
	}
}

// TestIPv6: IPv6 probes are matched as IPv4 ones are: an ICMPv6 echo and
// its reply, TCP and UDP on their ports, an ICMPv6 error on the header it
// quotes, and IPv6 inside VXLAN over an IPv4 underlay. Neighbour
// discovery (ICMPv6 too) is never a probe's.
func TestIPv6(t *testing.T) {
	l := newBridged(t)
	a6, b6 := netip.MustParseAddr("fd99::1"), netip.MustParseAddr("fd99::2")
	l.a.ipv6(t, "eth0", "fd99::1/64")
	l.b.ipv6(t, "eth0", "fd99::2/64")
	tr := newTracer(t, l.r)
	// Warm the neighbour caches: the first request would wait for ND.
	if !l.a.ping(t, b6, 7, 1, 2*time.Second) {
		t.Fatal("a cannot ping b over IPv6 before tracing")
	}
	t.Run("icmpv6", func(t *testing.T) {
		const probe = 60
		if err := tr.Watch(ICMPEcho(a6, b6, 7, 2), probe); err != nil {
			t.Fatal(err)
		}
		defer tr.Unwatch(ICMPEcho(a6, b6, 7, 2))
		if !l.a.ping(t, b6, 7, 2, 2*time.Second) {
			t.Fatal("no reply")
		}
		// As over IPv4: the reply reaches the raw socket (a clone), and
		// the original is freed as NO_SOCKET (no ping socket).
		want := []string{
			"a/eth0 out", "m/pa in", "m/pb out", "b/eth0 in",
			"b/eth0 out reply", "m/pb in reply", "m/pa out reply", "a/eth0 in reply",
			"a/eth0 drop NO_SOCKET reply",
		}
		expect(t, settle(t, tr, probe, len(want)), want)
	})
	t.Run("ipv6", func(t *testing.T) { portsAndQuotes(t, l, tr, a6, b6, 61) })
	// The IPv4 key with the same ports sees nothing of the IPv6 flow.
	t.Run("family", func(t *testing.T) {
		const probe = 63
		if err := tr.Watch(Flow(ProtoUDP, addrA, 40063, addrB, 9), probe); err != nil {
			t.Fatal(err)
		}
		l.a.send(t, unix.SOCK_DGRAM, a6, 40063, b6, 9)
		if !l.a.ping(t, b6, 7, 3, 2*time.Second) {
			t.Fatal("no reply")
		}
		if err := tr.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if evs := tr.Events(probe); len(evs) != 0 {
			t.Errorf("an IPv4 key matched IPv6 packets:\n%s", strings.Join(sightings(evs), "\n"))
		}
	})
}

// TestCloseLeavesNothing: after Close no program, link or map of the
// tracer is left in the kernel.
func TestCloseLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var progs []ebpf.ProgramID
	for _, p := range tr.progs {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		progs = append(progs, id)
	}
	var links []link.ID
	for _, l := range tr.links {
		info, err := l.Info()
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, info.ID)
	}
	var maps []ebpf.MapID
	for _, m := range []*ebpf.Map{tr.m.keys, tr.m.gate, tr.m.lost, tr.m.events} {
		info, err := m.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		maps = append(maps, id)
	}
	if len(progs) != len(hooks) || len(links) != len(hooks) {
		t.Fatalf("%d programs, %d links, want %d of each", len(progs), len(links), len(hooks))
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Watch(ICMPEcho(addrA, addrB, 1, 1), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
	if err := tr.Sync(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
	// The kernel frees programs and maps once their last reference is
	// gone, after an RCU grace period: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := live(progs, links, maps)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close: %s", strings.Join(left, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Keep the tracer's file descriptors from the garbage collector,
	// which would close what Close forgot.
	runtime.KeepAlive(tr)
}

// live names those of the objects that still exist.
func live(progs []ebpf.ProgramID, links []link.ID, maps []ebpf.MapID) []string {
	var left []string
	for _, id := range progs {
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			p.Close()
			left = append(left, fmt.Sprintf("program %d", id))
		}
	}
	it := new(link.Iterator)
	for it.Next() {
		if slices.Contains(links, it.ID) {
			left = append(left, fmt.Sprintf("link %d", it.ID))
		}
	}
	it.Close()
	for _, id := range maps {
		if m, err := ebpf.NewMapFromID(id); err == nil {
			m.Close()
			left = append(left, fmt.Sprintf("map %d", id))
		}
	}
	return left
}

// TestLocalOutputDrop: a packet dropped in the sender's OUTPUT hook has no
// device yet; the drop is placed in its socket's namespace.
func TestLocalOutputDrop(t *testing.T) {
	l := newBridged(t)
	l.a.run(t, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "DROP")
	tr := newTracer(t, l.r)
	const probe = 48
	if err := tr.Watch(Flow(ProtoUDP, addrA, 40048, addrB, 9), probe); err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := netns.DoIn(l.a.ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: addrA.As4(), Port: 40048})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte("probe"), 0, &unix.SockaddrInet4{Addr: addrB.As4(), Port: 9}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("send through an OUTPUT DROP: %v, want EPERM", err)
	}
	expect(t, settle(t, tr, probe, 1), []string{"a/ drop NETFILTER_DROP"})
}
