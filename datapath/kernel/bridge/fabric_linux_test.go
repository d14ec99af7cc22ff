package bridge

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/kerneltest"
	"github.com/netbed/netbed/datapath/kernel/ovs"
	"github.com/netbed/netbed/internal/announce"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// testPrefix starts every lab, instance namespace and state directory of
// this test process (the leak check in TestMain).
var testPrefix = testutil.Name("nbtest-br")[:13]

func TestMain(m *testing.M) { kerneltest.Main(m, testPrefix) }

var (
	net1 = datapath.NetworkSpec{Name: "net1", Tenant: "t1", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
		Gateway: netip.MustParseAddr("10.1.0.1"), VLAN: 100, VNI: 10100}
	net2 = datapath.NetworkSpec{Name: "net2", Tenant: "t1", Subnet: netip.MustParsePrefix("10.2.0.0/24"),
		Gateway: netip.MustParseAddr("10.2.0.1"), VLAN: 200, VNI: 10200}
)

// bed is a deployed spine-leaf lab (2 spines, 2 leaves, a host on each)
// with gen 2 built on it.
type bed struct {
	t      *testing.T
	topo   *topologies.Topology
	lab    *netns.Lab
	model  *evpn.Fabric
	f      *Fabric
	ports  map[string]kernel.Port
	nsName map[string]string
}

func newBed(t *testing.T) *bed { return newBedWith(t, net1, net2) }

// newBedWith is newBed with networks nets instead of net1 and net2.
func newBedWith(t *testing.T, nets ...datapath.NetworkSpec) *bed {
	t.Helper()
	testutil.RequireRoot(t)
	if err := ovs.Available(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name(testPrefix), Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	lab := kerneltest.Lab(t, topo)
	// IPv6 off everywhere, as the runtime leaves the lab's namespaces:
	// the fabric turns it on where a dual-stack network needs it.
	for _, n := range lab.Nodes() {
		for _, c := range []string{"all", "default"} {
			if err := kernel.Sysctl(lab, n, "net/ipv6/conf/"+c+"/disable_ipv6", "1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	m, err := evpn.New(topo, evpn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if err := m.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	state := kerneltest.ShortDir(t, testPrefix)
	b := &bed{t: t, topo: topo, lab: lab, model: m, f: New(Options{}), ports: map[string]kernel.Port{}, nsName: map[string]string{}}
	t.Cleanup(func() {
		if err := b.f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := b.f.Build(ctx, kernel.Env{Lab: lab, Topology: topo, Model: m, StateDir: state, Progress: func(s string) { t.Log(s) }}); err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func macOf(inst string) net.HardwareAddr {
	h := 0
	for _, c := range inst {
		h = h*31 + int(c)
	}
	return net.HardwareAddr{0x02, 0xbb, 0, byte(h >> 16), byte(h >> 8), byte(h)}
}

// addInstance adds inst to the model on host, creates its namespace and
// veth as the runtime does, plugs it, syncs, and announces it.
func (b *bed) addInstance(inst, host string, n datapath.NetworkSpec, ip string) {
	t := b.t
	t.Helper()
	p := kernel.Port{Instance: inst, Host: host, HostIf: "tap-" + inst, MAC: macOf(inst),
		IP: netip.PrefixFrom(netip.MustParseAddr(ip), n.Subnet.Bits()), Gateway: n.Gateway, Network: n.Name}
	if _, ok := b.nsName[inst]; !ok {
		ns := testPrefix + "-" + inst + "-" + b.topo.Name[len(testPrefix):]
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		b.nsName[inst] = ns
	}
	b.place(p)
}

// place wires p as the runtime does and plugs it into the model, the
// fabric and the kernel.
func (b *bed) place(p kernel.Port) {
	t := b.t
	t.Helper()
	n, _ := b.model.Network(p.Network)
	spec := datapath.InstanceSpec{Name: p.Instance, Host: p.Host, Network: p.Network, IP: p.IP, MAC: p.MAC}
	if n.Subnet6.IsValid() {
		spec.IP6, spec.Gateway6 = ip6Of(n, p.IP.Addr()), n.Gateway6
	}
	if _, _, err := b.model.AddInstance(spec); err != nil {
		t.Fatal(err)
	}
	ns := b.nsName[p.Instance]
	hostNS, err := b.lab.NetnsName(p.Host)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "link", "add", "eth0", "netns", ns, "address", p.MAC.String(), "type", "veth", "peer", "name", p.HostIf, "netns", hostNS)
	run(t, "ip", "-n", hostNS, "link", "set", p.HostIf, "up")
	run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	run(t, "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off")
	run(t, "ip", "-n", ns, "addr", "add", p.IP.String(), "dev", "eth0")
	run(t, "ip", "-n", ns, "route", "add", "default", "via", p.Gateway.String())
	if spec.IP6.IsValid() {
		// As the runtime turns a dual-stack instance's IPv6 on: no DAD,
		// no router solicitations.
		for _, kv := range [][2]string{{"accept_dad", "0"}, {"router_solicitations", "0"}, {"disable_ipv6", "0"}} {
			run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0."+kv[0]+"="+kv[1])
		}
		run(t, "ip", "-n", ns, "-6", "addr", "add", spec.IP6.String(), "dev", "eth0", "nodad")
		run(t, "ip", "-n", ns, "-6", "route", "add", "default", "via", spec.Gateway6.String())
	}
	ctx := context.Background()
	plugged := p
	if strings.HasPrefix(p.Instance, "pod") {
		plugged.Network = "" // as the CNI plugin's pods arrive
	}
	if err := b.f.Plug(ctx, plugged); err != nil {
		t.Fatal(err)
	}
	if err := b.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b.ports[p.Instance] = p
	if err := announce.SendIn(filepath.Join(netns.NetnsDir, ns), "eth0", frame.GratuitousARP(p.MAC, p.IP.Addr())); err != nil {
		t.Fatal(err)
	}
}

// ip6Of is a dual-stack instance's IPv6 address on n: its IPv4
// address's last byte as the host part of n's IPv6 subnet.
func ip6Of(n datapath.NetworkSpec, ip4 netip.Addr) netip.Prefix {
	a := n.Subnet6.Addr().As16()
	a[15] = ip4.As4()[3]
	return netip.PrefixFrom(netip.AddrFrom16(a), n.Subnet6.Bits())
}

// move drifts inst to host: off its old host, the model's instance
// removed and added again there (same MAC and IP), plugged, synced.
func (b *bed) move(inst, host string) {
	t := b.t
	t.Helper()
	p := b.ports[inst]
	if err := b.f.Unplug(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := b.model.RemoveInstance(inst); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", b.nsName[inst], "link", "del", "eth0")
	p.Host = host
	b.place(p)
}

// ping sends echo requests from one instance to another until one is
// answered (its reply's TTL) or within is over (-1).
func (b *bed) ping(from, to string, within time.Duration) int {
	dst := b.ports[to].IP.Addr()
	deadline := time.Now().Add(within)
	for seq := uint16(1); ; seq++ {
		ttl, err := echo(b.nsName[from], dst, seq, 300*time.Millisecond)
		if err == nil {
			return ttl
		}
		if time.Now().After(deadline) {
			b.t.Logf("ping %s -> %s: %v", from, to, err)
			return -1
		}
	}
}

// ping6 is ping over IPv6 (the reply's hop limit).
func (b *bed) ping6(from, to string, within time.Duration) int {
	n, _ := b.model.Network(b.ports[to].Network)
	dst := ip6Of(n, b.ports[to].IP.Addr()).Addr()
	deadline := time.Now().Add(within)
	for seq := uint16(1); ; seq++ {
		hl, err := echo(b.nsName[from], dst, seq, 300*time.Millisecond)
		if err == nil {
			return hl
		}
		if time.Now().After(deadline) {
			b.t.Logf("ping6 %s -> %s: %v", from, to, err)
			return -1
		}
	}
}

// echo sends one echo request (ICMP or ICMPv6, by dst's family) from
// namespace ns to dst and returns its reply's TTL or hop limit.
func echo(ns string, dst netip.Addr, seq uint16, wait time.Duration) (int, error) {
	return kerneltest.Echo(kerneltest.In(ns), dst, 0x6272, seq, wait)
}

// nsRun runs a command in node's namespace (a lab node or an instance).
func (b *bed) nsRun(node string, args ...string) string {
	b.t.Helper()
	ns, ok := b.nsName[node]
	if !ok {
		var err error
		if ns, err = b.lab.NetnsName(node); err != nil {
			b.t.Fatal(err)
		}
	}
	return run(b.t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// hasLine reports whether some line of out holds every one of words.
func hasLine(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, w := range words {
			if !strings.Contains(l, w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestEVPN(t *testing.T) {
	b := newBed(t)
	b.addInstance("vm1", "host1", net1, "10.1.0.11")
	b.addInstance("vm2", "host2", net1, "10.1.0.12")
	b.addInstance("vm3", "host2", net2, "10.2.0.13")
	lo1, _ := b.model.Loopback("leaf1")
	lo2, _ := b.model.Loopback("leaf2")
	vx, br := VXLANName(net1.VNI), BridgeName(net1.VNI)

	t.Run("leaf tables are the model's", func(t *testing.T) {
		fdb := b.nsRun("leaf1", "bridge", "fdb", "show", "dev", vx)
		mac := b.ports["vm2"].MAC.String()
		if !hasLine(fdb, mac, "dst "+lo2.String(), "self") {
			t.Errorf("leaf1 %s: no entry for vm2 (%s) to leaf2's VTEP %v:\n%s", vx, mac, lo2, fdb)
		}
		if !hasLine(fdb, mac, "master "+br, "extern_learn") {
			t.Errorf("leaf1 %s: no extern_learn bridge entry for vm2 (%s):\n%s", vx, mac, fdb)
		}
		if !hasLine(fdb, "00:00:00:00:00:00", "dst "+lo2.String()) {
			t.Errorf("leaf1 %s: no flood entry to leaf2 (type 3):\n%s", vx, fdb)
		}
		// vm1's binding on leaf1's access port: a static entry, so that
		// frames for it are never flooded to the leaf's other hosts.
		acc := b.nsRun("leaf1", "bridge", "fdb", "show", "br", br)
		if !hasLine(acc, b.ports["vm1"].MAC.String(), "static") {
			t.Errorf("leaf1 %s: no static entry for vm1's binding (%s):\n%s", br, b.ports["vm1"].MAC, acc)
		}
		neigh := b.nsRun("leaf1", "ip", "neigh", "show", "dev", br)
		if !hasLine(neigh, "10.1.0.12", mac, "extern_learn") {
			t.Errorf("leaf1 %s: no extern_learn neighbour for vm2:\n%s", br, neigh)
		}
		routes := b.nsRun("leaf1", "ip", "route", "show", "table", strconv.Itoa(int(evpnL3VNI(t, b))))
		if !hasLine(routes, "10.2.0.13", "via "+lo2.String(), BridgeName(evpnL3VNI(t, b))) {
			t.Errorf("leaf1: no host route to vm3 over the L3 VNI:\n%s", routes)
		}
	})
	t.Run("same subnet across leaves", func(t *testing.T) {
		if ttl := b.ping("vm1", "vm2", 5*time.Second); ttl != 64 {
			t.Fatalf("vm1 -> vm2 (net1, other leaf): reply TTL %d, want 64 (bridged over VXLAN)", ttl)
		}
	})
	t.Run("across subnets at the anycast gateway", func(t *testing.T) {
		// Symmetric IRB: routed by the ingress leaf and by the egress
		// leaf, each way.
		if ttl := b.ping("vm1", "vm3", 5*time.Second); ttl != 62 {
			t.Fatalf("vm1 (net1) -> vm3 (net2): reply TTL %d, want 62", ttl)
		}
	})
	t.Run("host paths from the hosts' vswitches", func(t *testing.T) {
		// After the pings above taught the MAC tables: the devices the
		// model's hosts have (veth end, br-int, patch pair, br-bond,
		// NIC) on each host, from OVS's own trace; none of the leaves.
		for _, tc := range []struct{ from, to string }{{"vm1", "vm2"}, {"vm1", "vm3"}} {
			path, err := b.f.ProbePath(context.Background(), b.ports[tc.from], b.ports[tc.to])
			if err != nil {
				t.Fatal(err)
			}
			src, dst := b.ports[tc.from], b.ports[tc.to]
			want := []string{tc.from + "/eth0",
				src.Host + "/" + src.HostIf, src.Host + "/" + ovs.DevBrInt, src.Host + "/" + ovs.DevPatchInt, src.Host + "/" + ovs.DevPatchBond,
				src.Host + "/" + ovs.DevBrBond, src.Host + "/eth1",
				dst.Host + "/eth1", dst.Host + "/" + ovs.DevBrBond, dst.Host + "/" + ovs.DevPatchBond, dst.Host + "/" + ovs.DevPatchInt,
				dst.Host + "/" + ovs.DevBrInt, dst.Host + "/" + dst.HostIf,
				tc.to + "/eth0"}
			if got := path.Devices(); !slices.Equal(got, want) {
				t.Errorf("%s -> %s: path %v, want %v", tc.from, tc.to, got, want)
			}
			if h := path.Hops(); h != len(want)-1 {
				t.Errorf("%s -> %s: %d hops, want %d", tc.from, tc.to, h, len(want)-1)
			}
		}
	})
	t.Run("ARP answered by the leaf", func(t *testing.T) {
		// vm2 is gone from the wire: an answer for its address can come
		// only from leaf1's bridge, from the neighbour entry Sync put there.
		b.nsRun("vm2", "ip", "link", "set", "eth0", "down")
		defer b.nsRun("vm2", "ip", "link", "set", "eth0", "up")
		b.nsRun("vm1", "ip", "neigh", "flush", "dev", "eth0")
		echo(b.nsName["vm1"], b.ports["vm2"].IP.Addr(), 1, 500*time.Millisecond)
		deadline := time.Now().Add(3 * time.Second)
		for {
			out := b.nsRun("vm1", "ip", "neigh", "show", "10.1.0.12")
			if hasLine(out, b.ports["vm2"].MAC.String()) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vm1 has no ARP answer for vm2 while vm2 is down: %q", out)
			}
			echo(b.nsName["vm1"], b.ports["vm2"].IP.Addr(), 2, 200*time.Millisecond)
		}
	})
	t.Run("pod plugged with no network named", func(t *testing.T) {
		b.addInstance("pod1", "host1", net2, "10.2.0.21")
		// Routed once, by leaf1, between its two subnets.
		if ttl := b.ping("vm1", "pod1", 5*time.Second); ttl != 63 {
			t.Fatalf("vm1 (net1) -> pod1 (net2, same leaf): reply TTL %d, want 63", ttl)
		}
	})
	t.Run("moved MAC reaches its new leaf", func(t *testing.T) {
		b.move("vm2", "host1")
		mac := b.ports["vm2"].MAC.String()
		// leaf2 has no instance of net1 left: it no longer carries the
		// VNI, and routes to vm2 over the L3 VNI to leaf1.
		if out := b.nsRun("leaf2", "ip", "-d", "link", "show"); strings.Contains(out, vx+":") {
			t.Errorf("leaf2 still carries %s with no instance of net1 left:\n%s", vx, out)
		}
		routes := b.nsRun("leaf2", "ip", "route", "show", "table", strconv.Itoa(int(evpnL3VNI(t, b))))
		if !hasLine(routes, "10.1.0.12", "via "+lo1.String()) {
			t.Errorf("leaf2: no host route to vm2 through leaf1's VTEP %v:\n%s", lo1, routes)
		}
		if fdb := b.nsRun("leaf1", "bridge", "fdb", "show", "dev", vx); hasLine(fdb, mac, "dst") {
			t.Errorf("leaf1 %s still sends vm2 (now local) over VXLAN:\n%s", vx, fdb)
		}
		if ttl := b.ping("vm3", "vm2", 5*time.Second); ttl != 62 {
			t.Errorf("vm3 -> vm2 on its new leaf: reply TTL %d, want 62", ttl)
		}
		if ttl := b.ping("vm1", "vm2", 5*time.Second); ttl != 64 {
			t.Errorf("vm1 -> vm2, now on the same leaf: reply TTL %d, want 64", ttl)
		}
	})
}

var (
	dual1 = datapath.NetworkSpec{Name: "dual1", Tenant: "t1", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
		Gateway: netip.MustParseAddr("10.1.0.1"), Subnet6: netip.MustParsePrefix("fd00:1::/64"),
		Gateway6: netip.MustParseAddr("fd00:1::1"), VLAN: 100, VNI: 10100}
	dual2 = datapath.NetworkSpec{Name: "dual2", Tenant: "t1", Subnet: netip.MustParsePrefix("10.2.0.0/24"),
		Gateway: netip.MustParseAddr("10.2.0.1"), Subnet6: netip.MustParsePrefix("fd00:2::/64"),
		Gateway6: netip.MustParseAddr("fd00:2::1"), VLAN: 200, VNI: 10200}
)

// TestEVPNDualStack: a leaf's kernel tables carry the IPv6 side of its
// tables as zebra programs them: the anycast gateway's IPv6 address on
// each dual-stack network's bridge, the remote hosts' type-2 MAC/IPv6
// bindings as extern_learn neighbours there (which the bridge answers
// neighbour solicitations from), /128 host routes in the tenant's table
// through the remote VTEP's IPv4-mapped address on link over the L3 VNI
// bridge, that address a neighbour with the VTEP's router MAC, and an
// unreachable IPv6 default. IPv6 is then bridged across leaves and routed
// between subnets as IPv4 is.
func TestEVPNDualStack(t *testing.T) {
	b := newBedWith(t, dual1, dual2)
	b.addInstance("vm1", "host1", dual1, "10.1.0.11")
	b.addInstance("vm2", "host2", dual1, "10.1.0.12")
	b.addInstance("vm3", "host2", dual2, "10.2.0.13")
	lo2, _ := b.model.Loopback("leaf2")
	l3 := evpnL3VNI(t, b)
	vx, br, brL3 := VXLANName(dual1.VNI), BridgeName(dual1.VNI), BridgeName(l3)
	vm2MAC := b.ports["vm2"].MAC.String()
	ml2, _ := b.model.Leaf("leaf2")
	rmac2 := ml2.State().RouterMAC.HardwareAddr().String()

	t.Run("leaf tables are the model's", func(t *testing.T) {
		if out := b.nsRun("leaf1", "ip", "-6", "addr", "show", "dev", br); !hasLine(out, "inet6 fd00:1::1/64") {
			t.Errorf("leaf1 %s: no anycast gateway fd00:1::1/64:\n%s", br, out)
		}
		if fdb := b.nsRun("leaf1", "bridge", "fdb", "show", "dev", vx); !hasLine(fdb, vm2MAC, "dst "+lo2.String(), "self") {
			t.Errorf("leaf1 %s: no entry for vm2 (%s) to leaf2's VTEP %v:\n%s", vx, vm2MAC, lo2, fdb)
		}
		if neigh := b.nsRun("leaf1", "ip", "-6", "neigh", "show", "dev", br); !hasLine(neigh, "fd00:1::c ", vm2MAC, "extern_learn") {
			t.Errorf("leaf1 %s: no extern_learn IPv6 neighbour for vm2:\n%s", br, neigh)
		}
		if neigh := b.nsRun("leaf1", "ip", "-6", "neigh", "show", "dev", brL3); !hasLine(neigh, "::ffff:"+lo2.String()+" ", rmac2, "extern_learn") {
			t.Errorf("leaf1 %s: no extern_learn neighbour ::ffff:%v with leaf2's router MAC %s:\n%s", brL3, lo2, rmac2, neigh)
		}
		routes := b.nsRun("leaf1", "ip", "-6", "route", "show", "table", strconv.Itoa(int(l3)))
		if !hasLine(routes, "fd00:2::d ", "via ::ffff:"+lo2.String(), brL3, "onlink") {
			t.Errorf("leaf1: no /128 host route to vm3 over the L3 VNI:\n%s", routes)
		}
		if !hasLine(routes, "unreachable default") {
			t.Errorf("leaf1: no unreachable IPv6 default in table %d:\n%s", l3, routes)
		}
		if rules := b.nsRun("leaf1", "ip", "-6", "rule", "show"); !hasLine(rules, "iif "+brL3, "lookup "+strconv.Itoa(int(l3))) {
			t.Errorf("leaf1: no IPv6 rule from %s to table %d:\n%s", brL3, l3, rules)
		}
	})
	t.Run("same subnet across leaves", func(t *testing.T) {
		if hl := b.ping6("vm1", "vm2", 5*time.Second); hl != 64 {
			t.Fatalf("vm1 -> vm2 (dual1, other leaf): reply hop limit %d, want 64 (bridged over VXLAN)", hl)
		}
	})
	t.Run("across subnets at the anycast gateway", func(t *testing.T) {
		if hl := b.ping6("vm1", "vm3", 5*time.Second); hl != 62 {
			t.Fatalf("vm1 (dual1) -> vm3 (dual2): reply hop limit %d, want 62 (routed by both leaves)", hl)
		}
	})
	t.Run("neighbour solicitation answered by the leaf", func(t *testing.T) {
		// vm2 is gone from the wire: an advertisement for its address can
		// come only from leaf1's bridge, from the neighbour entry Sync put
		// there.
		b.nsRun("vm2", "ip", "link", "set", "eth0", "down")
		defer b.nsRun("vm2", "ip", "link", "set", "eth0", "up")
		b.nsRun("vm1", "ip", "-6", "neigh", "flush", "dev", "eth0")
		dst := ip6Of(dual1, b.ports["vm2"].IP.Addr()).Addr()
		deadline := time.Now().Add(3 * time.Second)
		for seq := uint16(1); ; seq++ {
			echo(b.nsName["vm1"], dst, seq, 200*time.Millisecond)
			out := b.nsRun("vm1", "ip", "-6", "neigh", "show", dst.String())
			if hasLine(out, vm2MAC) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vm1 has no neighbour advertisement for vm2 while vm2 is down: %q", out)
			}
		}
	})
	t.Run("close leaves no IPv6 rule", func(t *testing.T) {
		if err := b.f.Close(); err != nil {
			t.Fatal(err)
		}
		if rules := b.nsRun("leaf1", "ip", "-6", "rule", "show"); strings.Contains(rules, strconv.Itoa(RulePriority)+":") {
			t.Errorf("leaf1: IPv6 rules after Close:\n%s", rules)
		}
	})
}

func evpnL3VNI(t *testing.T, b *bed) uint32 {
	v, ok := b.model.L3VNI("t1")
	if !ok {
		t.Fatal("tenant t1 has no L3 VNI")
	}
	return v
}

// TestClose: Close stops the vswitches and leaves no device, rule,
// route or address of the fabric behind.
func TestClose(t *testing.T) {
	b := newBed(t)
	b.addInstance("vm1", "host1", net1, "10.1.0.11")
	b.addInstance("vm3", "host2", net2, "10.2.0.13")
	if err := b.f.Close(); err != nil {
		t.Fatal(err)
	}
	if left := kerneltest.Processes(filepath.Base(b.f.env.StateDir)); len(left) > 0 {
		t.Errorf("daemons left: %v", left)
	}
	lo1, _ := b.model.Loopback("leaf1")
	for _, c := range []struct {
		node string
		args []string
		bad  []string
	}{
		{"leaf1", []string{"ip", "link", "show"}, []string{DevAccess, PrefixVXLAN, BridgeName(net1.VNI), "a"}},
		{"leaf1", []string{"ip", "rule", "show"}, []string{strconv.Itoa(RulePriority) + ":"}},
		{"leaf1", []string{"ip", "addr", "show", "dev", "lo"}, []string{lo1.String()}},
		{"spine1", []string{"ip", "route", "show"}, []string{"10.255."}},
		{"host1", []string{"ip", "link", "show"}, []string{ovs.DevBrInt, ovs.DevBrBond}},
	} {
		out := b.nsRun(c.node, c.args...)
		for _, l := range strings.Split(out, "\n") {
			for _, w := range c.bad {
				name := l
				if i := strings.Index(l, ": "); i >= 0 && c.args[1] == "link" {
					name = strings.Fields(l[i+2:])[0]
					if !strings.HasPrefix(name, w) || (w == "a" && !strings.Contains(name, "v")) {
						continue
					}
				} else if c.args[1] == "link" || !strings.Contains(l, w) {
					continue
				}
				t.Errorf("%s: %s after Close: %s", c.node, strings.Join(c.args, " "), strings.TrimSpace(l))
			}
		}
	}
}

// remove takes inst off its host and out of the model, and syncs.
func (b *bed) remove(inst string) {
	t := b.t
	t.Helper()
	if err := b.f.Unplug(context.Background(), b.ports[inst]); err != nil {
		t.Fatal(err)
	}
	if err := b.model.RemoveInstance(inst); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", b.nsName[inst], "link", "del", "eth0")
	delete(b.ports, inst)
	if err := b.f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedInstanceLeavesNoEntry: an instance gone from the model
// leaves no bridge entry for its MAC on any leaf: neither the remote
// leaf's extern_learn entry towards its VXLAN device nor its own leaf's
// static entry on the access port (the bridge reports its entries with
// the master's index, not with NTF_MASTER: read as not the fabric's,
// they were set again at every sync and never removed).
func TestRemovedInstanceLeavesNoEntry(t *testing.T) {
	b := newBed(t)
	b.addInstance("vm1", "host1", net1, "10.1.0.11")
	b.addInstance("vm2", "host2", net1, "10.1.0.12")
	b.addInstance("vm4", "host2", net1, "10.1.0.14")
	mac := b.ports["vm2"].MAC.String()
	for _, leaf := range []string{"leaf1", "leaf2"} {
		if fdb := b.nsRun(leaf, "bridge", "fdb", "show", "br", BridgeName(net1.VNI)); !hasLine(fdb, mac) {
			t.Fatalf("%s: no entry for vm2 (%s) before its removal:\n%s", leaf, mac, fdb)
		}
	}
	b.remove("vm2")
	for _, leaf := range []string{"leaf1", "leaf2"} {
		if fdb := b.nsRun(leaf, "bridge", "fdb", "show", "br", BridgeName(net1.VNI)); hasLine(fdb, mac) {
			t.Errorf("%s: vm2 (%s) removed, its entries stay:\n%s", leaf, mac, fdb)
		}
	}
	if neigh := b.nsRun("leaf1", "ip", "neigh", "show", "dev", BridgeName(net1.VNI)); hasLine(neigh, "10.1.0.12 ") {
		t.Errorf("leaf1: vm2 removed, its neighbour stays:\n%s", neigh)
	}
	if ttl := b.ping("vm1", "vm4", 5*time.Second); ttl != 64 {
		t.Errorf("vm1 -> vm4 after vm2's removal: reply TTL %d, want 64", ttl)
	}
}

// tables is what Sync wrote to the lab's leaves and spines, a line an
// entry, sorted: each leaf's FDB entries of ours (extern_learn, static,
// to a VTEP), extern_learn neighbours, tenant routes and rules, and every
// router's underlay routes.
func (b *bed) tables() []string {
	b.t.Helper()
	var out []string
	add := func(node, text string, keep func(string) bool) {
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" && (keep == nil || keep(l)) {
				out = append(out, node+": "+l)
			}
		}
	}
	ours := func(words ...string) func(string) bool {
		return func(l string) bool {
			return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) })
		}
	}
	for _, n := range b.topo.Nodes {
		switch n.Role {
		case topologies.RoleLeaf:
			add(n.Name, b.nsRun(n.Name, "bridge", "fdb", "show"), ours("extern_learn", "static", " dst "))
			add(n.Name, b.nsRun(n.Name, "ip", "neigh", "show", "nud", "all"), ours("extern_learn"))
			add(n.Name, b.nsRun(n.Name, "ip", "-6", "neigh", "show", "nud", "all"), ours("extern_learn"))
			add(n.Name, b.nsRun(n.Name, "ip", "route", "show", "table", "all", "proto", strconv.Itoa(int(tenantProto))), nil)
			add(n.Name, b.nsRun(n.Name, "ip", "-6", "route", "show", "table", "all", "proto", strconv.Itoa(int(tenantProto))), nil)
			add(n.Name, b.nsRun(n.Name, "ip", "rule", "show"), nil)
			add(n.Name, b.nsRun(n.Name, "ip", "-6", "rule", "show"), nil)
			fallthrough
		case topologies.RoleSpine:
			add(n.Name, b.nsRun(n.Name, "ip", "route", "show", "proto", strconv.Itoa(int(underlayProto))), nil)
		}
	}
	slices.Sort(out)
	return out
}

// TestSyncWritesTheChange: Sync writes only where the model changed
// since the last Sync (written), and leaves the kernel's tables as a
// Resync, which reads them all back first, makes them: after each
// change of a sequence (dual-stack instances on both leaves in two
// networks, one moved to the other leaf, one removed with the last of
// its network on a leaf) the tables are compared.
func TestSyncWritesTheChange(t *testing.T) {
	b := newBedWith(t, dual1, dual2)
	ctx := context.Background()
	check := func(step string) {
		t.Helper()
		delta := b.tables()
		if err := b.f.Resync(ctx); err != nil {
			t.Fatalf("after %s: resync: %v", step, err)
		}
		full := b.tables()
		for _, l := range delta {
			if !slices.Contains(full, l) {
				t.Errorf("after %s: Sync left %q, which Resync removed", step, l)
			}
		}
		for _, l := range full {
			if !slices.Contains(delta, l) {
				t.Errorf("after %s: Sync did not write %q, which Resync did", step, l)
			}
		}
	}
	b.addInstance("vm1", "host1", dual1, "10.1.0.11")
	b.addInstance("vm2", "host2", dual1, "10.1.0.12")
	check("two instances of dual1")
	b.addInstance("vm3", "host2", dual2, "10.2.0.13")
	b.addInstance("vm4", "host1", dual2, "10.2.0.14")
	check("two instances of dual2")
	b.move("vm2", "host1")
	check("vm2 moved to leaf1")
	b.remove("vm3")
	check("vm3 removed")
	b.remove("vm4")
	check("vm4 removed: dual2 on no leaf")
	if ttl := b.ping("vm1", "vm2", 5*time.Second); ttl != 64 {
		t.Errorf("vm1 -> vm2 after the changes: reply TTL %d, want 64", ttl)
	}
}
