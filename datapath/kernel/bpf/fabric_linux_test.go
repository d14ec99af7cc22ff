package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
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
	"github.com/netbed/netbed/datapath/frame/inetsum"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/kerneltest"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// testPrefix starts every namespace this process's tests and benchmarks
// create, so that the leak check below sees only its own (a benchmark
// of this package may run in another process at the same time).
var testPrefix = fmt.Sprintf("nbtest-kbpf%d", os.Getpid())

func TestMain(m *testing.M) {
	if os.Getenv(childLabEnv) != "" {
		os.Exit(childBuild())
	}
	kerneltest.Main(m, testPrefix)
}

// rig is a deployed spine-leaf lab (two spines, two leaves, a host under
// each) with the gen 3 model on it and the kernel fabric built.
type rig struct {
	t     *testing.T
	tp    *topologies.Topology
	lab   *netns.Lab
	model *gen3.Fabric
	fab   *Fabric
	state string
	pods  map[string]*pod
}

type pod struct {
	name string
	ns   vnetns.NsHandle
	ip   netip.Addr
	port kernel.Port
}

// newRig deploys the lab and builds the fabric; with hold4789 a UDP
// socket holds port 4789 in host2's namespace first.
func newRig(t *testing.T, mode gen3.Mode, hold4789 bool) *rig {
	return newRigWith(t, gen3.Options{Mode: mode}, hold4789)
}

// newRigWith is newRig with the model's options.
func newRigWith(t *testing.T, opts gen3.Options, hold4789 bool) *rig {
	testutil.RequireRoot(t)
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name(testPrefix + "-"), Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	lab := kerneltest.Lab(t, tp)
	model, err := gen3.New(tp, opts)
	if err != nil {
		t.Fatal(err)
	}
	if hold4789 {
		var c *net.UDPConn
		if err := lab.Do("host2", func() error {
			var err error
			c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: PortVXLAN})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	r := &rig{t: t, tp: tp, lab: lab, model: model, fab: New(Options{}), state: t.TempDir(), pods: map[string]*pod{}}
	err = r.fab.Build(context.Background(), kernel.Env{Lab: lab, Topology: tp, Model: model, StateDir: r.state, Progress: func(s string) { t.Log(s) }})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
			testutil.Unavailable(t, "kernel lacks what gen 3 needs: "+err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.fab.Close() })
	return r
}

// addPod adds a pod to the model on host, creates its namespace with
// eth0 (the model's address as /32, the node's gateway on link) and the
// host end of its veth, and plugs it.
func (r *rig) addPod(name, host string, labels map[string]string) *pod {
	t := r.t
	t.Helper()
	if _, _, err := r.model.AddInstance(datapath.InstanceSpec{Name: name, Host: host, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	ep, _, _ := r.model.Endpoint(name)
	node, _ := r.model.Host(host)
	p := &pod{name: name, ip: ep.IP}
	nsName := testutil.Name(testPrefix + "-pod-")
	// A new namespace, created (and left) on a locked thread.
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
		p.ns, err = vnetns.NewNamed(nsName)
		if e := vnetns.Set(orig); e != nil {
			res <- errors.Join(err, e) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		res <- err
	}()
	if err := <-res; err != nil {
		t.Fatalf("create namespace %s: %v", nsName, err)
	}
	t.Cleanup(func() { p.ns.Close(); _ = vnetns.DeleteNamed(nsName) })
	hh, err := r.lab.Handle(host)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := netlink.NewHandleAt(p.ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ph.Close)
	hostIf, tmp := "lxc-"+name, testutil.Name("nb")
	if err := hh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: tmp, PeerHardwareAddr: ep.MAC}); err != nil {
		t.Fatalf("create veth %s on %s: %v", hostIf, host, err)
	}
	peer, err := hh.LinkByName(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := hh.LinkSetNsFd(peer, int(p.ns)); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eth, err := ph.LinkByName(tmp)
	must(err)
	must(ph.LinkSetName(eth, "eth0"))
	must(ph.LinkSetUp(eth))
	lo, err := ph.LinkByName("lo")
	must(err)
	must(ph.LinkSetUp(lo))
	must(ph.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ep.IP, 32))}))
	gw := node.Gateway()
	must(ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gw, 32)), Scope: netlink.SCOPE_LINK}))
	must(ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()}))
	hl, err := hh.LinkByName(hostIf)
	must(err)
	must(hh.LinkSetUp(hl))
	p.port = kernel.Port{Instance: name, Host: host, HostIf: hostIf, MAC: ep.MAC, IP: netip.PrefixFrom(ep.IP, 32), Gateway: gw, Labels: labels}
	if err := r.fab.Plug(context.Background(), p.port); err != nil {
		t.Fatal(err)
	}
	r.pods[name] = p
	return p
}

// in runs fn in the pod's namespace.
func (p *pod) in(t *testing.T, fn func() error) {
	t.Helper()
	if err := netns.DoIn(p.ns, fn); err != nil {
		t.Fatal(err)
	}
}

// listen opens a UDP socket on the pod's address.
func (p *pod) listen(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	p.in(t, func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: p.ip.AsSlice(), Port: port})
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// udp sends msg from a new socket of src to dst:7777 (where dst
// listens on c) up to tries times and reports whether it arrived.
func udp(t *testing.T, src *pod, dst *pod, c *net.UDPConn, msg string, tries int) bool {
	t.Helper()
	out := src.listen(t, 0)
	buf := make([]byte, 128)
	for range tries {
		if _, err := out.WriteToUDP([]byte(msg), &net.UDPAddr{IP: dst.ip.AsSlice(), Port: 7777}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg && from.IP.Equal(src.ip.AsSlice()) {
				return true
			}
		}
	}
	return false
}

// ping sends ICMP echo requests from src to dst from a raw socket in
// src's namespace until a reply comes (at most tries, a second each).
func ping(t *testing.T, src, dst *pod, tries int) bool {
	t.Helper()
	var c net.PacketConn
	src.in(t, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", src.ip.String())
		return err
	})
	defer c.Close()
	id := uint16(os.Getpid()) ^ uint16(time.Now().UnixNano())
	buf := make([]byte, 1500)
	for seq := range uint16(tries) {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'n', 'b'}
		binary.BigEndian.PutUint16(msg[2:], inetsum.Sum(msg))
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.ip.AsSlice()}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			if n >= 8 && buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id && from.(*net.IPAddr).IP.Equal(dst.ip.AsSlice()) {
				return true
			}
		}
	}
	return false
}

// tcpBulk connects from src to dst and sends n bytes, which dst must
// receive in full within ten seconds: full-size segments cross the
// fabric (through cilium_vxlan, they must fit the underlay's MTU).
func tcpBulk(src, dst *pod, n int) error {
	in := func(p *pod) func(func() error) error {
		return func(fn func() error) error { return netns.DoIn(p.ns, fn) }
	}
	return kerneltest.TCPTransfer(in(src), in(dst), src.ip, dst.ip, n, 10*time.Second)
}

// waitFlow polls the fabric's flow events (the readers run on their own)
// for one that match accepts, for up to five seconds.
func waitFlow(t *testing.T, f *Fabric, what string, match func(FlowEvent) bool) FlowEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range f.Flows() {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, e := range f.Flows() {
				all = append(all, e.String())
			}
			t.Fatalf("no flow event for %s; have:\n%s", what, strings.Join(all, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKernelFabricTunnel realises gen 3 (tunnel) on a deployed lab and
// sends real packets: see kernelFabric. A socket holds UDP 4789 on host2,
// so cilium_vxlan must take Cilium's 8472 on both hosts.
func TestKernelFabricTunnel(t *testing.T) { kernelFabric(t, gen3.Tunnel) }

// TestKernelFabricDirect is the same with direct routing: the leaves and
// the spine route the pods' node CIDRs.
func TestKernelFabricDirect(t *testing.T) { kernelFabric(t, gen3.Direct) }

// kernelFabric builds the fabric on one spine, two leaves and a host
// under each, plugs web-1, cache-1 and db-1 on host1 and db-2 on host2,
// and checks with UDP and ICMP echo: pods on one node and across nodes
// (through leaf1, the spine and leaf2, routed in their namespaces) reach
// each other; after a policy applied to the model (web may send UDP 7777
// to db) and Sync, web still reaches both dbs and cache reaches neither,
// each verdict a flow event with the model's rule name on the device it
// ran on; after host1 loses power and gets it back (every link down and
// up, then Sync) both still hold; after Unplug, db-1 is out of its host's
// maps; after Close, no
// program, device, route or pin of the fabric is left.
func kernelFabric(t *testing.T, mode gen3.Mode) {
	r := newRig(t, mode, mode == gen3.Tunnel)
	if mode == gen3.Tunnel && r.fab.VXLANPort() != PortCiliumVXLAN {
		t.Errorf("cilium_vxlan on UDP %d with 4789 taken on host2, want %d", r.fab.VXLANPort(), PortCiliumVXLAN)
	}
	if !r.fab.TCX() {
		t.Log("programs attached as clsact filters: this kernel has no TCX")
	}
	// Pods' MTU: the underlay's 1500 less VXLAN's 50 in tunnel mode, as
	// Cilium sets it; the kernel default with direct routing.
	if want := map[gen3.Mode]int{gen3.Tunnel: 1450, gen3.Direct: 0}[mode]; r.fab.PodMTU() != want {
		t.Errorf("PodMTU %d in %v mode, want %d", r.fab.PodMTU(), mode, want)
	}
	web := r.addPod("web-1", "host1", map[string]string{"app": "web"})
	cache := r.addPod("cache-1", "host1", map[string]string{"app": "cache"})
	db1 := r.addPod("db-1", "host1", map[string]string{"app": "db"})
	db2 := r.addPod("db-2", "host2", map[string]string{"app": "db"})
	c1, c2 := db1.listen(t, 7777), db2.listen(t, 7777)

	t.Run("open", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			src, dst *pod
			conn     *net.UDPConn
		}{{"same node", web, db1, c1}, {"across nodes", web, db2, c2}, {"across nodes, back", db2, web, nil}} {
			if c.conn != nil && !udp(t, c.src, c.dst, c.conn, "hello "+c.name, 5) {
				t.Errorf("%s: UDP %s -> %s never arrived", c.name, c.src.name, c.dst.name)
			}
			if !ping(t, c.src, c.dst, 5) {
				t.Errorf("%s: %s never got an echo reply from %s", c.name, c.src.name, c.dst.name)
			}
		}
		for _, dst := range []*pod{db1, db2} {
			if err := tcpBulk(web, dst, 1<<20); err != nil {
				t.Errorf("TCP, 1 MiB from web-1 to %s: %v", dst.name, err)
			}
		}
		e := waitFlow(t, r.fab, "web-1 -> db-2 before any policy", func(e FlowEvent) bool {
			return e.Src == web.ip && e.Dst == db2.ip && e.Proto == gen3.ProtoUDP
		})
		if e.Verdict != VerdictForwarded || e.Rule != "endpoint:"+db2.ip.String() || e.Node != "host2" || e.SrcName != "web-1" || e.DstName != "db-2" {
			t.Errorf("flow before any policy: %v, want forwarded by endpoint:%v on host2", e, db2.ip)
		}
	})

	t.Run("policy", func(t *testing.T) {
		if err := r.model.ApplyPolicy(gen3.Policy{Name: "web-db", From: map[string]string{"app": "web"}, To: map[string]string{"app": "db"},
			Proto: gen3.ProtoUDP, Port: 7777, Allow: true}); err != nil {
			t.Fatal(err)
		}
		if err := r.fab.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		webEP, _, _ := r.model.Endpoint("web-1")
		cacheEP, _, _ := r.model.Endpoint("cache-1")
		dbEP, _, _ := r.model.Endpoint("db-2")
		allowRule := gen3.RuleName(gen3.NewPolicyKey(webEP.Identity, dbEP.Identity, gen3.ProtoUDP, 7777))
		denyRule := gen3.DefaultDenyRule(cacheEP.Identity, dbEP.Identity)
		overlay := gen3.DevCiliumVXLAN
		if mode == gen3.Direct {
			overlay = r.tp.Interfaces("host2")[0]
		}
		for _, c := range []struct {
			name         string
			src, dst     *pod
			conn         *net.UDPConn
			allowed      bool
			node, dev    string
			rule         string
			srcID, dstID gen3.Identity
		}{
			{"same node, allowed", web, db1, c1, true, "host1", web.port.HostIf, allowRule, webEP.Identity, dbEP.Identity},
			{"across nodes, allowed", web, db2, c2, true, "host2", overlay, allowRule, webEP.Identity, dbEP.Identity},
			{"same node, denied", cache, db1, c1, false, "host1", cache.port.HostIf, denyRule, cacheEP.Identity, dbEP.Identity},
			{"across nodes, denied", cache, db2, c2, false, "host2", overlay, denyRule, cacheEP.Identity, dbEP.Identity},
		} {
			tries := 5
			if !c.allowed {
				tries = 1
			}
			msg := "udp " + c.name
			if got := udp(t, c.src, c.dst, c.conn, msg, tries); got != c.allowed {
				t.Errorf("%s: %s -> %s UDP 7777 arrived %v, want %v", c.name, c.src.name, c.dst.name, got, c.allowed)
			}
			// FlushFlows, then Flows at once: the event is there.
			if err := r.fab.FlushFlows(context.Background()); err != nil {
				t.Fatal(err)
			}
			var e FlowEvent
			for _, x := range r.fab.Flows() {
				if x.Src == c.src.ip && x.Dst == c.dst.ip && x.Proto == gen3.ProtoUDP && x.DPort == 7777 && x.Rule != "endpoint:"+c.dst.ip.String() {
					e = x
				}
			}
			if e.SPort == 0 {
				t.Errorf("%s: flow event without a source port: %v", c.name, e)
			}
			verdict, reason := VerdictForwarded, datapath.ReasonNone
			if !c.allowed {
				verdict, reason = VerdictDropped, datapath.ReasonPolicy
			}
			if e.Verdict != verdict || e.Reason != reason || e.Rule != c.rule || e.Node != c.node || e.Iface != c.dev ||
				e.SrcIdentity != c.srcID || e.DstIdentity != c.dstID || e.SrcName != c.src.name || e.DstName != c.dst.name {
				t.Errorf("%s: flow event %v (reason %q), want %s %q by %s on %s %s, identities %d -> %d", c.name, e, e.Reason, verdict, reason, c.rule, c.node, c.dev, c.srcID, c.dstID)
			}
		}
		// ICMP is not allowed to db: no echo reply, but web may still
		// ping cache (not enforced).
		if ping(t, web, db2, 1) {
			t.Error("web-1 pinged db-2 through a policy that allows only UDP 7777")
		}
		if !ping(t, cache, web, 3) {
			t.Error("cache-1 could not ping web-1, which no policy selects")
		}
	})

	t.Run("spine failure", func(t *testing.T) {
		// spine1 loses power: every leaf's next hop over it loses
		// carrier and is skipped, so the flows that hashed onto it
		// move to spine2 without a Sync (BGP would withdraw; the
		// kernel's ignore_routes_with_linkdown stands in for it).
		setLinks(t, r, "spine1", r.tp.Interfaces("spine1"), false)
		for i := range 4 {
			if !udp(t, web, db2, c2, fmt.Sprint("spine1 down ", i), 5) {
				t.Errorf("web-1 -> db-2 lost with spine1 down (flow %d)", i)
			}
		}
		if !ping(t, db2, web, 5) {
			t.Error("db-2 could not ping web-1 with spine1 down")
		}
		setLinks(t, r, "spine1", r.tp.Interfaces("spine1"), true)
	})

	t.Run("power cycle", func(t *testing.T) {
		// host1 loses power and comes back as the runtime does it:
		// every link of the node down, then up, then Sync (the kernel
		// dropped the routes over them).
		h, err := r.lab.Handle("host1")
		if err != nil {
			t.Fatal(err)
		}
		names := append(r.tp.Interfaces("host1"), web.port.HostIf, cache.port.HostIf, db1.port.HostIf)
		setLinks(t, r, "host1", names, false)
		setLinks(t, r, "host1", names, true)
		if err := r.fab.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		rts, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: podRouteProto}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			t.Fatal(err)
		}
		if len(rts) != 3 {
			t.Errorf("host1 has %d pod routes after the power cycle and Sync, want 3: %v", len(rts), rts)
		}
		if !udp(t, web, db2, c2, "after the power cycle", 5) {
			t.Error("web-1 -> db-2 UDP 7777 lost after host1's power cycle and Sync")
		}
		if !ping(t, db2, web, 5) {
			t.Error("db-2 could not ping web-1 after host1's power cycle and Sync")
		}
	})

	t.Run("unplug", func(t *testing.T) {
		if err := r.fab.Unplug(context.Background(), db1.port); err != nil {
			t.Fatal(err)
		}
		var info gen3.EndpointInfo
		if err := r.fab.hosts["host1"].km.Endpoints.Lookup(gen3.EndpointKey{IP: db1.ip.As4()}, &info); !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.Errorf("db-1's endpoint after Unplug: %+v, %v", info, err)
		}
		if err := r.fab.Unplug(context.Background(), db1.port); err != nil {
			t.Errorf("second Unplug: %v", err)
		}
	})

	t.Run("close", func(t *testing.T) {
		if err := r.fab.Close(); err != nil {
			t.Fatal(err)
		}
		checkClean(t, r)
	})
}

// setLinks sets node's links names down or up, as the runtime fails and
// restores a node; up, it waits until each has carrier. (Lab.WaitUp
// would wait for cilium_vxlan too, whose state stays "unknown": vxlan
// devices report no carrier.)
func setLinks(t *testing.T, r *rig, node string, names []string, up bool) {
	t.Helper()
	h, err := r.lab.Handle(node)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		lk, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if up {
			err = h.LinkSetUp(lk)
		} else {
			err = h.LinkSetDown(lk)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !up {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, name := range names {
		for {
			lk, err := h.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if lk.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s still %v", node, name, lk.Attrs().OperState)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// checkClean fails for anything of the fabric left on the lab's nodes:
// a TCX program or tc filter on any link, a cilium_* device, an address
// or a route it added; and for anything in its state directory.
func checkClean(t *testing.T, r *rig) {
	t.Helper()
	for _, node := range r.lab.Nodes() {
		h, err := r.lab.Handle(node)
		if err != nil {
			t.Fatal(err)
		}
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, lk := range links {
			name := lk.Attrs().Name
			if strings.HasPrefix(name, "cilium_") {
				t.Errorf("%s: device %s left after Close", node, name)
			}
			err := r.lab.Do(node, func() error {
				for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
					res, err := link.QueryPrograms(link.QueryOptions{Target: lk.Attrs().Index, Attach: at})
					if err != nil {
						return err
					}
					if len(res.Programs) > 0 {
						t.Errorf("%s %s: %d TCX programs left after Close", node, name, len(res.Programs))
					}
				}
				return nil
			})
			if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
				t.Errorf("%s %s: query TCX: %v", node, name, err)
			}
			for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
				if fs, err := h.FilterList(lk, parent); err == nil && len(fs) > 0 {
					t.Errorf("%s %s: tc filters left after Close: %v", node, name, fs)
				}
			}
			addrs, _ := h.AddrList(lk, netlink.FAMILY_V4)
			for _, a := range addrs {
				if !a.IP.IsLoopback() {
					t.Errorf("%s %s: address %v left after Close", node, name, a.IPNet)
				}
			}
		}
		for _, proto := range []netlink.RouteProtocol{routeProto, podRouteProto} {
			rts, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
			if err != nil {
				t.Fatal(err)
			}
			for _, rt := range rts {
				t.Errorf("%s: route %v left after Close", node, rt)
			}
		}
	}
	ents, err := os.ReadDir(r.state)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("state directory holds %s after Close", e.Name())
	}
}
