package ebpf

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

var cluster6 = netip.MustParsePrefix("fd10::/104")

// newEnv6 is newEnv with an IPv6 cluster CIDR: a dual-stack cluster.
func newEnv6(t *testing.T) *env {
	t.Helper()
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Mode: Tunnel, PodsPerNode: 16, ClusterCIDR6: cluster6})
	if err != nil {
		t.Fatal(err)
	}
	v := &env{f: f, e: sim.New(1)}
	v.tf = tapFabric{f, &v.log}
	if err := v.e.Load(v.tf, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	v.e.SetEventLimit(1_000_000)
	return v
}

func (v *env) ip6(t *testing.T, name string) netip.Addr {
	t.Helper()
	in, ok := v.f.Instance(name)
	if !ok || !in.Addr6().IsValid() {
		t.Fatalf("pod %q has no IPv6 address", name)
	}
	return in.Addr6().Addr()
}

// probeTo is probe to an address of the destination's family.
func (v *env) probeTo(t *testing.T, from string, dst netip.Addr, proto stack.Proto, port uint16) sim.Result {
	t.Helper()
	id, err := v.e.Probe(v.e.Now()+time.Millisecond, from, stack.ProbeSpec{Proto: proto, Dst: dst, DstPort: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.RunUntilIdle(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Conservation(); err != nil {
		t.Fatal(err)
	}
	r, err := v.e.Result(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// anySpine is the path's devices with every spine called "spine".
func anySpine(p datapath.Path) string {
	devs := p.Devices()
	for i, d := range devs {
		if strings.HasPrefix(d, "spine") {
			devs[i] = "spine"
		}
	}
	return strings.Join(devs, " ")
}

// ndpFor returns the neighbour solicitations for ip and the
// advertisements of it in the log.
func ndpFor(log []capture, ip netip.Addr) []capture {
	var out []capture
	ps := frame.NewParser()
	for _, c := range log {
		p, err := ps.Parse(c.b)
		if err != nil || !p.Has(layers.LayerTypeICMPv6) {
			continue
		}
		if nd, ok := frame.ParseNDP(p.ICMP6.TypeCode.Type(), p.ICMP6.Payload); ok && nd.Target == ip {
			out = append(out, c)
		}
	}
	return out
}

// TestDualStackPaths: every pod of a dual-stack cluster gets an IPv6
// address from its node's IPv6 CIDR (the second address on, the first
// being cilium_host's gateway); an IPv6 probe crosses the same devices
// as the IPv4 one between the same pods (same node, same leaf, across
// the spine in VXLAN); the pods resolve only their gateway, answered by
// bpf_lxc with cilium_host's MAC, never each other.
func TestDualStackPaths(t *testing.T) {
	v := newEnv6(t)
	v.pod(t, "a", "host1", map[string]string{"app": "a"})
	v.pod(t, "b", "host1", map[string]string{"app": "b"})
	v.pod(t, "c", "host2", map[string]string{"app": "c"})
	v.pod(t, "d", "host3", map[string]string{"app": "d"})
	h1, _ := v.f.Host("host1")
	h3, _ := v.f.Host("host3")
	if got, want := h1.Config().NodeCIDR6.String(), "fd10::/120"; got != want {
		t.Errorf("host1 IPv6 node CIDR %s, want %s", got, want)
	}
	if got, want := h3.Config().NodeCIDR6.String(), "fd10::200/120"; got != want {
		t.Errorf("host3 IPv6 node CIDR %s, want %s", got, want)
	}
	if got, want := v.ip6(t, "a").String(), "fd10::2"; got != want {
		t.Errorf("pod a IPv6 %s, want %s (the gateway is fd10::1)", got, want)
	}
	if got, want := v.ip6(t, "b").String(), "fd10::3"; got != want {
		t.Errorf("pod b IPv6 %s, want %s", got, want)
	}
	if in, _ := v.f.Instance("a"); in.Gateway6() != h1.Gateway6() || in.Addr6().Bits() != 128 {
		t.Errorf("pod a: %v via %v, want a /128 via %v", in.Addr6(), in.Gateway6(), h1.Gateway6())
	}
	for _, to := range []string{"b", "c", "d"} {
		for _, c := range []struct {
			proto stack.Proto
			port  uint16
		}{{stack.ICMP, 0}, {stack.TCP, 80}, {stack.UDP, 7}} {
			r4 := v.probeTo(t, "a", v.ip(t, to), c.proto, c.port)
			r6 := v.probeTo(t, "a", v.ip6(t, to), c.proto, c.port)
			if !r6.Delivered || !r6.Replied {
				t.Fatalf("a -> %s %s over IPv6 not answered: %s", to, c.proto, render(r6))
			}
			// ECMP may pick another spine for the other flow.
			if r4.Hops != r6.Hops || r4.SwitchHops != r6.SwitchHops || anySpine(r4.Forward) != anySpine(r6.Forward) {
				t.Errorf("a -> %s %s: IPv4 %d hops %v, IPv6 %d hops %v", to, c.proto, r4.Hops, r4.Forward.Devices(), r6.Hops, r6.Forward.Devices())
			}
		}
	}
	for _, p := range []string{"a", "b", "c", "d"} {
		if nds := ndpFor(v.log, v.ip6(t, p)); len(nds) != 0 {
			t.Errorf("%d neighbour discovery frames for %s's address, first on %s/%s", len(nds), p, nds[0].node, nds[0].port)
		}
	}
	if nds := ndpFor(v.log, h1.Gateway6()); len(nds) == 0 {
		t.Error("pod a never resolved its IPv6 gateway")
	}
	// The maps: host1 knows d's IPv6 address (identity, tunnel endpoint)
	// and host3's IPv6 node CIDR (tunnel); its endpoints map has a and b.
	m := h1.Maps()
	dID, _ := v.f.Identities().Lookup(map[string]string{"app": "d"})
	if e, ok := m.IPCache6.Lookup(v.ip6(t, "d").As16()); !ok || Identity(e.Identity) != dID || e.TunnelEndpoint != h3.Config().NodeIP.As4() {
		t.Errorf("host1 ipcache6 for d: %+v %v, want identity %d via %v", e, ok, dID, h3.Config().NodeIP)
	}
	if tv, ok := m.Tunnel6.Lookup(TunnelKey6{h3.Config().NodeCIDR6.Addr().As16()}); !ok || tv.NodeIP != h3.Config().NodeIP.As4() {
		t.Errorf("host1 tunnel6 for %v: %+v %v", h3.Config().NodeCIDR6, tv, ok)
	}
	if m.Endpoints6.Len() != 2 || m.Tunnel6.Len() != 3 {
		t.Errorf("host1: %d IPv6 endpoints (want 2), %d IPv6 tunnels (want 3)", m.Endpoints6.Len(), m.Tunnel6.Len())
	}
	// Removing a pod removes its IPv6 entries everywhere.
	if err := v.f.RemoveInstance("d"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.IPCache6.Lookup(netip.MustParseAddr("fd10::202").As16()); ok {
		t.Error("host1 still has d's IPv6 address in its ipcache")
	}
	if h3.Maps().Endpoints6.Len() != 0 {
		t.Errorf("host3 has %d IPv6 endpoints after d left", h3.Maps().Endpoints6.Len())
	}
}

// TestDualStackPolicy: policy is per identity, so every verdict over
// IPv6 is the IPv4 one, by the same rule; ingress and egress, tunnel
// identity from the VNI, egress identity of the destination from the
// IPv6 ipcache; replies pass by the IPv6 conntrack.
func TestDualStackPolicy(t *testing.T) {
	web, db, client := map[string]string{"app": "web"}, map[string]string{"app": "db"}, map[string]string{"app": "client"}
	v := newEnv6(t)
	v.pod(t, "web", "host1", web)
	v.pod(t, "db", "host3", db).SetOpenPorts(5432)
	v.pod(t, "client", "host2", client)
	v.pod(t, "web2", "host3", web)
	for _, p := range []Policy{
		{Name: "web-to-db", From: web, To: db, Proto: ProtoTCP, Port: 5432, Allow: true},
		{Name: "any-to-web", To: web, Proto: ProtoTCP, Port: 80, Allow: true},
		{Name: "icmp-web", From: client, To: web, Proto: ProtoICMP, Allow: true},
		{Name: "no-client-web", From: client, To: web, Proto: ProtoTCP, Port: 80},
	} {
		if err := v.f.ApplyPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	// client may reach only web, by egress policy too.
	cid, _ := v.f.Identities().Lookup(client)
	wid, _ := v.f.Identities().Lookup(web)
	if err := v.f.SetCompiledRules([]PolicyRule{{Key: NewEgressKey(cid, wid, ProtoAny, 0), Action: PolicyAllow, Name: "client-egress-web"}},
		nil, map[Identity]bool{cid: true}); err != nil {
		t.Fatal(err)
	}
	pods := []string{"web", "db", "client", "web2"}
	allowed := 0
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			for _, c := range []struct {
				proto stack.Proto
				port  uint16
			}{{stack.ICMP, 0}, {stack.TCP, 80}, {stack.TCP, 5432}, {stack.UDP, 7}} {
				r4 := v.probeTo(t, from, v.ip(t, to), c.proto, c.port)
				r6 := v.probeTo(t, from, v.ip6(t, to), c.proto, c.port)
				if r4.Delivered != r6.Delivered || r4.Replied != r6.Replied || r4.Reason != r6.Reason || r4.Rule != r6.Rule || r4.DropNode != r6.DropNode {
					t.Errorf("%s -> %s %s/%d: IPv4 delivered=%v replied=%v %s %q at %s, IPv6 delivered=%v replied=%v %s %q at %s",
						from, to, c.proto, c.port, r4.Delivered, r4.Replied, r4.Reason, r4.Rule, r4.DropNode, r6.Delivered, r6.Replied, r6.Reason, r6.Rule, r6.DropNode)
				}
				if r6.Replied {
					allowed++
				}
			}
		}
	}
	// Both directions of the checks answer something and deny something.
	if allowed == 0 || allowed == 4*3*4 {
		t.Errorf("%d of %d pairs allowed: the policies should split them", allowed, 4*3*4)
	}
	h1, _ := v.f.Host("host1")
	if h1.Maps().CT6.Len() == 0 {
		t.Error("host1 tracked no IPv6 flow")
	}
}

// TestDualStackOptions: dual stack's options and addresses are checked,
// and an IPv4-only cluster refuses an IPv6 address with ErrNoIPv6.
func TestDualStackOptions(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 1, Leaves: 1, HostsPerLeaf: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts Options
		want string
		is   error
	}{
		{Options{ClusterCIDR6: netip.MustParsePrefix("10.1.0.0/16")}, "IPv6 cluster CIDR 10.1.0.0/16: must be IPv6", nil},
		{Options{ClusterCIDR6: cluster6, NodeMaskBits6: 127}, "IPv6 node mask /127: must lie between the IPv6 cluster CIDR's /104 and /126", nil},
		{Options{ClusterCIDR6: netip.MustParsePrefix("fd10::/119")}, "IPv6 cluster CIDR fd10::/119 has room for 2 node CIDRs of /120, not 4 hosts", nil},
		{Options{Mode: Direct, ClusterCIDR6: cluster6}, "use tunnel mode (ebpf) for dual stack", datapath.ErrNoIPv6},
	} {
		_, err := New(topo, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
	v4, err := New(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v4.AddInstance(datapath.InstanceSpec{Name: "p", Host: "host1", IP6: netip.MustParsePrefix("fd10::5/128")}); !errors.Is(err, datapath.ErrNoIPv6) {
		t.Errorf("IPv6 address on an IPv4-only cluster: %v, want ErrNoIPv6", err)
	}
	if v4.PodCIDRs6() != nil {
		t.Errorf("IPv4-only cluster has IPv6 pod CIDRs %v", v4.PodCIDRs6())
	}
	f, err := New(topo, Options{ClusterCIDR6: cluster6})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec datapath.InstanceSpec
		is   error
	}{
		{datapath.InstanceSpec{Name: "out", Host: "host1", IP6: netip.MustParsePrefix("fd10::105/128")}, ErrOutsideNodeCIDR},
		{datapath.InstanceSpec{Name: "gw", Host: "host1", IP6: netip.MustParsePrefix("fd10::1/128")}, ErrReservedAddr},
	} {
		if _, _, err := f.AddInstance(c.spec); !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", c.spec.Name, err, c.is)
		}
		if _, ok := f.Instance(c.spec.Name); ok {
			t.Errorf("%s was added", c.spec.Name)
		}
		if h, _ := f.Host("host1"); h.Maps().Endpoints.Len() != 0 {
			t.Errorf("%s left an IPv4 endpoint behind", c.spec.Name)
		}
	}
	if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: "gw6", Host: "host1", Gateway6: netip.MustParseAddr("fd10::9")}); err == nil || !strings.Contains(err.Error(), "leave Gateway6 empty") {
		t.Errorf("wrong IPv6 gateway: %v", err)
	}
	if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: "p", Host: "host2", IP6: netip.MustParsePrefix("fd10::1ff/128")}); err != nil {
		t.Errorf("last address of the node CIDR (IPv6 has no broadcast): %v", err)
	}
	if got := f.PodCIDRs6()["host4"].String(); got != "fd10::300/120" {
		t.Errorf("host4 IPv6 pod CIDR %s", got)
	}
}

// TestLPMTrie6: the IPv6 ipcache twin against a scan of every prefix for
// the longest that holds the address.
func TestLPMTrie6(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	tr := NewLPMTrie6[int](MapSpec{"t", 0})
	model := map[netip.Prefix]int{}
	base := netip.MustParseAddr("fd10::").As16()
	randAddr := func() netip.Addr {
		a := base
		for i := 12; i < 16; i++ {
			a[i] = byte(r.IntN(4))
		}
		return netip.AddrFrom16(a)
	}
	for i := range 400 {
		p := netip.PrefixFrom(randAddr(), 96+r.IntN(33)).Masked()
		if r.IntN(4) == 0 {
			if _, ok := model[p]; ok {
				if err := tr.Delete(ipcacheKey6(p)); err != nil {
					t.Fatal(err)
				}
				delete(model, p)
			} else if err := tr.Delete(ipcacheKey6(p)); !errors.Is(err, ErrKeyNotExist) {
				t.Fatalf("delete absent %v: %v", p, err)
			}
			continue
		}
		if err := tr.Update(ipcacheKey6(p), i); err != nil {
			t.Fatal(err)
		}
		model[p] = i
	}
	if tr.Len() != len(model) {
		t.Fatalf("len %d, model %d", tr.Len(), len(model))
	}
	for range 2000 {
		a := randAddr()
		want, wantOK, best := 0, false, -1
		for p, v := range model {
			if p.Contains(a) && p.Bits() > best {
				want, wantOK, best = v, true, p.Bits()
			}
		}
		got, ok := tr.Lookup(a.As16())
		if ok != wantOK || got != want {
			t.Fatalf("lookup %v: %d %v, want %d %v", a, got, ok, want, wantOK)
		}
	}
	var lens []int
	tr.Range(func(k IPCacheKey6, _ int) bool { lens = append(lens, int(k.PrefixLen)); return true })
	if len(lens) != len(model) || !slices.IsSortedFunc(lens, func(a, b int) int { return b - a }) {
		t.Errorf("range gave %d prefixes (want %d), longest first: %v", len(lens), len(model), lens)
	}
	if err := tr.Update(IPCacheKey6{PrefixLen: 129}, 0); err == nil {
		t.Error("a /129 key was accepted")
	}
}

// TestCIDRIdentities: prefixes outside the cluster get CIDR identities
// in every node's ipcache, IPv4 and IPv6 alike; the longest prefix
// holding an address decides its identity, and the egress check of
// bpf_lxc allows or denies by it over either family; a new set replaces
// the old one.
func TestCIDRIdentities(t *testing.T) {
	v := newEnv6(t)
	v.pod(t, "a", "host1", map[string]string{"app": "a"})
	v.pod(t, "b", "host3", map[string]string{"app": "b"})
	p4, p6, p6in := netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("2001:db8:100::/48"), netip.MustParsePrefix("2001:db8:100:1::/64")
	cids := CIDRIdentities([]netip.Prefix{p6in, p6, p4})
	if cids[p4] != FirstCIDRIdentity || cids[p6] != FirstCIDRIdentity+1 || cids[p6in] != FirstCIDRIdentity+2 {
		t.Fatalf("CIDR identities %v: IPv4 first, then shorter first", cids)
	}
	if err := v.f.SetCIDRIdentities(cids); err != nil {
		t.Fatal(err)
	}
	aid, _ := v.f.Identities().Lookup(map[string]string{"app": "a"})
	if err := v.f.SetCompiledRules([]PolicyRule{
		{Key: NewEgressKey(aid, cids[p4], ProtoTCP, 443), Action: PolicyAllow, Name: "to-v4-block"},
		{Key: NewEgressKey(aid, cids[p6], ProtoTCP, 443), Action: PolicyAllow, Name: "to-v6-block"},
	}, nil, map[Identity]bool{aid: true}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"host1", "host4"} {
		n, _ := v.f.Host(h)
		if e, ok := n.Maps().IPCache.Lookup(netip.MustParseAddr("192.168.7.7").As4()); !ok || Identity(e.Identity) != cids[p4] {
			t.Errorf("%s ipcache for 192.168.7.7: %+v %v, want %d", h, e, ok, cids[p4])
		}
		if e, ok := n.Maps().IPCache6.Lookup(netip.MustParseAddr("2001:db8:100:1::5").As16()); !ok || Identity(e.Identity) != cids[p6in] {
			t.Errorf("%s ipcache6 for 2001:db8:100:1::5: %+v %v, want %d (the longer prefix)", h, e, ok, cids[p6in])
		}
	}
	for _, c := range []struct {
		dst  string
		deny string // the egress rule that drops it; "" when it leaves
	}{
		{"192.168.7.7", ""},
		{"10.99.0.1", EgressDefaultDenyRule(aid, IdentityWorld)},
		{"2001:db8:100::5", ""},
		{"2001:db8:100:1::5", EgressDefaultDenyRule(aid, cids[p6in])},
		{"2001:db9::1", EgressDefaultDenyRule(aid, IdentityWorld)},
	} {
		r := v.probeTo(t, "a", netip.MustParseAddr(c.dst), stack.TCP, 443)
		policyDrop := r.Reason == datapath.ReasonPolicy && r.DropNode == "host1"
		if c.deny != "" && (!policyDrop || r.Rule != c.deny) {
			t.Errorf("a -> %s: %s %q at %s, want dropped by %q", c.dst, r.Reason, r.Rule, r.DropNode, c.deny)
		}
		if c.deny == "" && policyDrop {
			t.Errorf("a -> %s: dropped by %q, want it to leave bpf_lxc", c.dst, r.Rule)
		}
	}
	// Pods keep their own identities inside a CIDR that holds them.
	if err := v.f.SetCIDRIdentities(map[netip.Prefix]Identity{netip.MustParsePrefix("fd10::/104"): FirstCIDRIdentity}); err != nil {
		t.Fatal(err)
	}
	n, _ := v.f.Host("host1")
	bid, _ := v.f.Identities().Lookup(map[string]string{"app": "b"})
	if e, _ := n.Maps().IPCache6.Lookup(v.ip6(t, "b").As16()); Identity(e.Identity) != bid {
		t.Errorf("pod b resolves to %d, want its identity %d", e.Identity, bid)
	}
	if _, ok := n.Maps().IPCache6.Lookup(netip.MustParseAddr("2001:db8:100::5").As16()); ok {
		t.Error("the replaced set's IPv6 prefixes are still in the ipcache")
	}
	if _, ok := n.Maps().IPCache.Lookup(netip.MustParseAddr("192.168.7.7").As4()); ok {
		t.Error("the replaced set's IPv4 prefix is still in the ipcache")
	}
	if err := v.f.SetCIDRIdentities(map[netip.Prefix]Identity{p4: 300}); err == nil {
		t.Error("a pod identity was taken as a CIDR identity")
	}
}
