package bpf

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/ebpf/kmaps"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// The flow every policy benchmark packet belongs to: identity 256 at
// 10.0.0.1 sends UDP to port 9999 of identity 257 at 10.0.0.2.
var (
	benchSrc, benchDst = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	benchKey           = gen3.NewPolicyKey(gen3.FirstPodIdentity, gen3.FirstPodIdentity+1, gen3.ProtoUDP, 9999)
)

// benchIP is the address of a rule's identity: 256 and 257 are the
// flow's ends, the others live in 10.1.0.0/16.
func benchIP(id uint32) netip.Addr {
	switch gen3.Identity(id) {
	case gen3.FirstPodIdentity:
		return benchSrc
	case gen3.FirstPodIdentity + 1:
		return benchDst
	}
	i := id - uint32(gen3.FirstPodIdentity) - 2
	return netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(1 + i%250)})
}

// benchRules returns n distinct allow rules between 64 identities on UDP
// ports; the last is the one the flow matches, no other matches it.
func benchRules(n int) []gen3.PolicyKey {
	r := rand.New(rand.NewPCG(uint64(n), 11))
	seen := map[gen3.PolicyKey]bool{benchKey: true}
	var out []gen3.PolicyKey
	for len(out) < n-1 {
		k := gen3.NewPolicyKey(gen3.FirstPodIdentity+gen3.Identity(r.IntN(64)), gen3.FirstPodIdentity+gen3.Identity(r.IntN(64)),
			gen3.ProtoUDP, uint16(1+r.IntN(9000)))
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return append(out, benchKey)
}

// pair is two namespaces joined by a veth: a0 (10.0.0.1/24) in a, b0
// (10.0.0.2/24) in b, and a UDP socket in a (unconnected, so that the
// port unreachable errors do not fail its writes) to send to
// 10.0.0.2:9999, where nothing listens: each packet ends in b's UDP
// lookup (its ICMP error is rate-limited).
type pair struct {
	name string // b's
	ns   vnetns.NsHandle
	b0   int // ifindex in b
	conn *net.UDPConn
}

func benchPair(b *testing.B) pair {
	b.Helper()
	var names [2]string
	var nss [2]vnetns.NsHandle
	for i := range 2 {
		names[i] = testutil.Name(testPrefix + "-bench-")
		res := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := vnetns.Get()
			if err != nil {
				runtime.UnlockOSThread()
				res <- err
				return
			}
			defer orig.Close()
			nss[i], err = vnetns.NewNamed(names[i])
			if e := vnetns.Set(orig); e != nil {
				res <- errors.Join(err, e)
				return
			}
			runtime.UnlockOSThread()
			res <- err
		}()
		if err := <-res; err != nil {
			b.Fatalf("create namespace: %v", err)
		}
		b.Cleanup(func() { nss[i].Close(); _ = vnetns.DeleteNamed(names[i]) })
	}
	var hs [2]*netlink.Handle
	for i := range 2 {
		h, err := netlink.NewHandleAt(nss[i], unix.NETLINK_ROUTE)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(h.Close)
		hs[i] = h
	}
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	must(hs[0].LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "a0"}, PeerName: "b0", PeerNamespace: netlink.NsFd(nss[1])}))
	for i, x := range []struct {
		dev string
		ip  netip.Addr
	}{{"a0", benchSrc}, {"b0", benchDst}} {
		lk, err := hs[i].LinkByName(x.dev)
		must(err)
		must(hs[i].AddrAdd(lk, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(x.ip, 24))}))
		must(hs[i].LinkSetUp(lk))
		lo, err := hs[i].LinkByName("lo")
		must(err)
		must(hs[i].LinkSetUp(lo))
	}
	b0, err := hs[1].LinkByName("b0")
	must(err)
	var c *net.UDPConn
	must(netns.DoIn(nss[0], func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: benchSrc.AsSlice()})
		return err
	}))
	b.Cleanup(func() { c.Close() })
	return pair{name: names[1], ns: nss[1], b0: b0.Attrs().Index, conn: c}
}

// flood sends b.N datagrams and reports, besides ns/op (wall time per
// packet), the sending thread's CPU time per packet (cpu-ns/packet): the
// veth hands each packet to the receiving namespace's stack in the
// sender's softirq, so that time includes b0's tc ingress and netfilter
// INPUT, and not the time other processes took the CPU.
func flood(b *testing.B, c *net.UDPConn) {
	payload := make([]byte, 64)
	dst := &net.UDPAddr{IP: benchDst.AsSlice(), Port: 9999}
	for range 100 { // warm up: ARP, caches
		if _, err := c.WriteToUDP(payload, dst); err != nil {
			b.Fatal(err)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Timespec
	b.ResetTimer()
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &before)
	for range b.N {
		if _, err := c.WriteToUDP(payload, dst); err != nil {
			b.Fatal(err)
		}
	}
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &after)
	b.StopTimer()
	b.ReportMetric(float64(after.Nano()-before.Nano())/float64(b.N), "cpu-ns/packet")
}

// BenchmarkPolicyCost sends real UDP packets from one namespace to
// another over a veth and times them (wall and CPU per packet) with n
// allow rules (10 to 10,000, the flow's own last) enforced either by the
// gen 3 tc BPF policy program on the receiving veth's ingress (TCX; n
// entries in its hash map, at most six lookups per packet) or by an
// iptables INPUT chain of the same n rules in the receiving namespace
// (-s, -d, -p udp --dport; the flow's rule last, as the chain scans in
// order). "none" is the path with neither, for reference. The seed's
// claim is that the first stays flat and the second grows with n.
func BenchmarkPolicyCost(b *testing.B) {
	testutil.RequireRoot(b)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		testutil.Unavailable(b, "iptables-restore not installed")
	}
	b.Run("none", func(b *testing.B) {
		flood(b, benchPair(b).conn)
	})
	for _, n := range []int{10, 100, 1000, 10000} {
		rules := benchRules(n)
		b.Run(fmt.Sprintf("bpf/rules=%d", n), func(b *testing.B) {
			p := benchPair(b)
			km, err := kmaps.New()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = km.Close() })
			m := gen3.NewMaps()
			for id := range uint32(64) {
				ident := uint32(gen3.FirstPodIdentity) + id
				_ = m.IPCache.Update(gen3.IPCacheKey{PrefixLen: 32, IP: benchIP(ident).As4()}, gen3.IPCacheValue{Identity: ident})
			}
			_ = m.Endpoints.Update(gen3.EndpointKey{IP: benchDst.As4()}, gen3.EndpointInfo{Identity: benchKey.DstIdentity, Flags: gen3.EndpointPolicyEnforced})
			var cp gen3.CompiledPolicy
			for _, k := range rules {
				cp.Rules = append(cp.Rules, gen3.PolicyRule{Key: k, Action: gen3.PolicyAllow})
			}
			if _, err := gen3.Install(m.Policy, cp); err != nil {
				b.Fatal(err)
			}
			if err := km.Sync(m); err != nil {
				b.Fatal(err)
			}
			prog, err := kmaps.NewPolicyProgram(km, kmaps.TCActOK)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = prog.Close() })
			var l link.Link
			err = netns.DoIn(p.ns, func() error {
				var err error
				l, err = link.AttachTCX(link.TCXOptions{Interface: p.b0, Program: prog, Attach: ebpf.AttachTCXIngress})
				return err
			})
			if err != nil {
				b.Fatalf("attach the policy program to b0: %v", err)
			}
			b.Cleanup(func() { _ = l.Close() })
			flood(b, p.conn)
			checkVerdicts(b, prog)
			checkOnPath(b, p)
		})
		b.Run(fmt.Sprintf("iptables/rules=%d", n), func(b *testing.B) {
			p := benchPair(b)
			var in strings.Builder
			in.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
			for _, k := range rules {
				fmt.Fprintf(&in, "-A INPUT -s %s/32 -d %s/32 -p udp -m udp --dport %d -j ACCEPT\n",
					benchIP(k.SrcIdentity), benchIP(k.DstIdentity), int(k.DPort[0])<<8|int(k.DPort[1]))
			}
			fmt.Fprintf(&in, "-A INPUT -d %s/32 -j DROP\nCOMMIT\n", benchDst)
			cmd := exec.Command("ip", "netns", "exec", p.name, "iptables-restore")
			cmd.Stdin = strings.NewReader(in.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("iptables-restore of %d rules: %v: %s", n, err, out)
			}
			flood(b, p.conn)
			// Every packet took the flow's rule, the chain's last.
			out, err := exec.Command("ip", "netns", "exec", p.name, "iptables", "-L", "INPUT", "-v", "-x", "-n").Output()
			if err != nil {
				b.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != n+3 || strings.Fields(lines[len(lines)-2])[0] == "0" {
				b.Fatalf("the flow's rule saw no packets or the chain is not %d rules long:\n%s", n, strings.Join(lines[len(lines)-3:], "\n"))
			}
		})
	}
}

// checkOnPath sends one datagram to the flow's port and one to a port no
// rule allows, each to a socket listening in b: only the first may
// arrive, so the program did sit on the packets' path.
func checkOnPath(b *testing.B, p pair) {
	b.Helper()
	for _, c := range []struct {
		port int
		want bool
	}{{9999, true}, {9998, false}} {
		var l *net.UDPConn
		if err := netns.DoIn(p.ns, func() error {
			var err error
			l, err = net.ListenUDP("udp4", &net.UDPAddr{IP: benchDst.AsSlice(), Port: c.port})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		got := false
		for range 3 {
			if _, err := p.conn.WriteToUDP([]byte("probe"), &net.UDPAddr{IP: benchDst.AsSlice(), Port: c.port}); err != nil {
				b.Fatal(err)
			}
			_ = l.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			buf := make([]byte, 16)
			if n, _, err := l.ReadFromUDP(buf); err == nil && string(buf[:n]) == "probe" {
				got = true
				break
			}
			if !c.want {
				break
			}
		}
		l.Close()
		if got != c.want {
			b.Fatalf("a datagram to udp/%d arrived %v, want %v: the policy program is not on b0's path", c.port, got, c.want)
		}
	}
}

// checkVerdicts runs the policy program on the flow's packet (allowed)
// and on one from an identity no rule admits (dropped): the benchmark
// timed the allow path with the policy enforced.
func checkVerdicts(b *testing.B, prog *ebpf.Program) {
	b.Helper()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		src  netip.Addr
		want uint32
	}{{benchSrc, kmaps.TCActOK}, {netip.MustParseAddr("192.0.2.1"), kmaps.TCActShot}} {
		f := frame.UDP(frame.IPv4{SrcMAC: mac, DstMAC: mac, Src: c.src, Dst: benchDst}, 40000, 9999, make([]byte, 64))
		got, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			b.Fatal(err)
		}
		if got != c.want {
			b.Fatalf("policy verdict %d for %v -> %v udp/9999, want %d", got, c.src, benchDst, c.want)
		}
	}
}

// BenchmarkLabStart measures starting gen 3 (tunnel) on kernel devices:
// deploying a spine-leaf lab of two spines, four leaves and eight hosts
// (the shipped spine-failure topology, 14 nodes) and building the fabric
// (routes on the leaves and spines; per host the maps, ring buffer and
// four programs loaded, cilium_host/cilium_net and cilium_vxlan created,
// TCX attached). Then, untimed by ns/op, one Sync after 64 pods joined
// the model (every host's ipcache reconciled). Metrics: deploy-ms,
// build-ms, sync-ms.
func BenchmarkLabStart(b *testing.B) {
	testutil.RequireRoot(b)
	var deploy, build, sync time.Duration
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name(testPrefix + "-"), Spines: 2, Leaves: 4, HostsPerLeaf: 2})
		if err != nil {
			b.Fatal(err)
		}
		model, err := gen3.New(tp, gen3.Options{Mode: gen3.Tunnel})
		if err != nil {
			b.Fatal(err)
		}
		opt := &netns.Options{StateRoot: b.TempDir()}
		b.StartTimer()
		start := time.Now()
		lab, _, err := netns.Deploy(ctx, tp, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.WaitUp(ctx, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		deploy += time.Since(start)
		start = time.Now()
		f := New(Options{})
		if err := f.Build(ctx, kernel.Env{Lab: lab, Topology: tp, Model: model, StateDir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
		build += time.Since(start)
		b.StopTimer()
		for i := range 64 {
			host := fmt.Sprint("host", 1+i%8)
			if _, _, err := model.AddInstance(datapath.InstanceSpec{Name: fmt.Sprint("pod-", i), Host: host,
				Labels: map[string]string{"app": fmt.Sprint("a", i%4)}}); err != nil {
				b.Fatal(err)
			}
		}
		start = time.Now()
		if err := f.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		sync += time.Since(start)
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		lab.Close()
		if _, err := netns.Destroy(tp.Name, opt); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(deploy.Milliseconds())/n, "deploy-ms")
	b.ReportMetric(float64(build.Milliseconds())/n, "build-ms")
	b.ReportMetric(float64(sync.Microseconds())/n/1000, "sync-ms")
}
