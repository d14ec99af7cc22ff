package kmaps

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

func TestSpecsMatchTypes(t *testing.T) {
	specs := Specs()
	cases := []struct {
		name       string
		typ        ebpf.MapType
		key, value uint32
	}{
		{"endpoints", ebpf.Hash, 4, 28},
		{"ipcache", ebpf.LPMTrie, 8, 8},
		{"tunnel", ebpf.Hash, 4, 4},
		{"policy", ebpf.Hash, 12, 24},
		{"ct", ebpf.Hash, 16, 40},
		{"endpoints6", ebpf.Hash, 16, 28},
		{"ipcache6", ebpf.LPMTrie, 20, 8},
		{"tunnel6", ebpf.Hash, 16, 4},
		{"ct6", ebpf.Hash, 40, 40},
	}
	for _, c := range cases {
		s := specs[c.name]
		if s == nil || s.Type != c.typ || s.KeySize != c.key || s.ValueSize != c.value || s.MaxEntries == 0 {
			t.Errorf("%s: spec %+v, want %v key %d value %d", c.name, s, c.typ, c.key, c.value)
		}
	}
}

// node builds a model node with pods, remote entries, tunnels and policy.
func node(t *testing.T) *gen3.Node {
	t.Helper()
	n, err := gen3.NewNode(gen3.NodeConfig{Name: "host1", Mode: gen3.Tunnel, NodeIP: netip.MustParseAddr("172.16.128.1"),
		NodeCIDR: netip.MustParsePrefix("10.0.0.0/24"), ClusterCIDR: netip.MustParsePrefix("10.0.0.0/16"), Slots: 8,
		NICs: []gen3.NIC{{Name: "eth1", MAC: gen3.DeviceMAC("host1", "eth1"), GatewayMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := gen3.NewIdentities()
	for i, app := range []string{"web", "db", "cache"} {
		l := map[string]string{"app": app}
		ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})
		if _, err := n.AddEndpoint(app, ip, gen3.PodMAC(app), ids.Allocate(l), l); err != nil {
			t.Fatal(err)
		}
	}
	for h := 2; h <= 6; h++ {
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(h), 0}), 24)
		nodeIP := netip.AddrFrom4([4]byte{172, 16, 128, byte(h)})
		if err := n.SetTunnel(cidr, nodeIP); err != nil {
			t.Fatal(err)
		}
		if err := n.SetRemote(netip.PrefixFrom(cidr.Addr().Next().Next(), 32), gen3.FirstPodIdentity+gen3.Identity(h), nodeIP); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.SetRemote(netip.MustParsePrefix("10.0.0.0/16"), gen3.IdentityWorld, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	cp, err := gen3.Compile([]gen3.Policy{
		{Name: "web-db", From: map[string]string{"app": "web"}, To: map[string]string{"app": "db"}, Proto: gen3.ProtoTCP, Port: 5432, Allow: true},
		{Name: "any-web", To: map[string]string{"app": "web"}, Proto: gen3.ProtoTCP, Port: 80, Allow: true},
	}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SetPolicy(cp); err != nil {
		t.Fatal(err)
	}
	return n
}

func lookup[K comparable, V comparable](t *testing.T, name string, km *ebpf.Map, k K, want V) {
	t.Helper()
	var got V
	if err := km.Lookup(k, &got); err != nil {
		t.Errorf("%s: kernel lookup %+v: %v", name, k, err)
		return
	}
	if got != want {
		t.Errorf("%s: kernel has %+v for %+v, model %+v", name, got, k, want)
	}
}

// TestSyncToKernel creates the maps in the kernel, syncs a node's model
// maps into them, reads every entry back, and checks the kernel's LPM trie
// against the model's ipcache lookups for random addresses.
func TestSyncToKernel(t *testing.T) {
	km := newMaps(t, Capacity{})
	n := node(t)
	m := n.Maps()
	if err := km.Sync(m); err != nil {
		t.Fatal(err)
	}
	count := func(x *ebpf.Map) int {
		var k, v []byte
		it := x.Iterate()
		c := 0
		for it.Next(&k, &v) {
			c++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got, want := count(km.Endpoints), m.Endpoints.Len(); got != want || want == 0 {
		t.Errorf("endpoints: kernel %d entries, model %d", got, want)
	}
	if got, want := count(km.Policy), m.Policy.Len(); got != want || want == 0 {
		t.Errorf("policy: kernel %d entries, model %d", got, want)
	}
	m.Endpoints.Range(func(k gen3.EndpointKey, v gen3.EndpointInfo) bool {
		lookup(t, "endpoints", km.Endpoints, k, v)
		return true
	})
	m.Tunnel.Range(func(k gen3.TunnelKey, v gen3.TunnelValue) bool { lookup(t, "tunnel", km.Tunnel, k, v); return true })
	m.Policy.Range(func(k gen3.PolicyKey, v gen3.PolicyEntry) bool { lookup(t, "policy", km.Policy, k, v); return true })
	// Longest-prefix match: the kernel trie and the model agree.
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ip := [4]byte{10, 0, byte(r.IntN(8)), byte(r.IntN(8))}
		if r.IntN(10) == 0 {
			ip = [4]byte{172, 16, 128, byte(r.IntN(8))}
		}
		want, wok := m.IPCache.Lookup(ip)
		var got gen3.IPCacheValue
		err := km.IPCache.Lookup(gen3.IPCacheKey{PrefixLen: 32, IP: ip}, &got)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			if wok {
				t.Fatalf("ipcache %v: kernel has no match, model %+v", ip, want)
			}
		case err != nil:
			t.Fatal(err)
		case !wok || got != want:
			t.Fatalf("ipcache %v: kernel %+v, model %+v (found %v)", ip, got, want, wok)
		}
	}
}

// TestReconcile: after the model loses an endpoint, a tunnel, a remote
// and its policy, Reconcile leaves the kernel maps equal to the model's
// (Sync would keep the stale entries), translates endpoints, leaves out
// the ones the translation rejects, and keeps the conntrack map.
func TestReconcile(t *testing.T) {
	km := newMaps(t, Capacity{})
	n := node(t)
	if err := km.Sync(n.Maps()); err != nil {
		t.Fatal(err)
	}
	ct := gen3.CTKey{Src: [4]byte{10, 0, 0, 2}, Dst: [4]byte{10, 0, 0, 3}, Proto: 17}
	if err := km.CT.Put(ct, gen3.CTEntry{Packets: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.RemoveEndpoint("cache"); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteTunnel(netip.MustParsePrefix("10.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteRemote(netip.MustParsePrefix("10.0.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if err := n.SetPolicy(gen3.CompiledPolicy{Enforced: map[gen3.Identity]bool{}}); err != nil {
		t.Fatal(err)
	}
	// The kernel's web is at ifindex 42; db is not plugged.
	web := netip.MustParseAddr("10.0.0.2").As4()
	if err := km.Reconcile(n.Maps(), pluggedAt42(web)); err != nil {
		t.Fatal(err)
	}
	m := n.Maps()
	keys := func(x *ebpf.Map) int {
		var k, v []byte
		c := 0
		for it := x.Iterate(); it.Next(&k, &v); {
			c++
		}
		return c
	}
	info, _ := m.Endpoints.Lookup(gen3.EndpointKey{IP: web})
	info.IfIndex = 42
	lookup(t, "endpoints", km.Endpoints, gen3.EndpointKey{IP: web}, info)
	for _, c := range []struct {
		name      string
		km        *ebpf.Map
		got, want int
	}{
		{"endpoints", km.Endpoints, keys(km.Endpoints), 1},
		{"ipcache", km.IPCache, keys(km.IPCache), m.IPCache.Len()},
		{"tunnel", km.Tunnel, keys(km.Tunnel), m.Tunnel.Len()},
		{"policy", km.Policy, keys(km.Policy), 0},
		{"ct", km.CT, keys(km.CT), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: kernel has %d entries after Reconcile, want %d", c.name, c.got, c.want)
		}
	}
	m.IPCache.Range(func(k gen3.IPCacheKey, v gen3.IPCacheValue) bool { lookup(t, "ipcache", km.IPCache, k, v); return true })
	m.Tunnel.Range(func(k gen3.TunnelKey, v gen3.TunnelValue) bool { lookup(t, "tunnel", km.Tunnel, k, v); return true })
}

// TestNewSized: the capacities given are the kernel maps', the others
// the defaults; a put beyond a small map's capacity fails.
func TestNewSized(t *testing.T) {
	km := newMaps(t, Capacity{Policy: 4, CT: 128})
	specs := Specs()
	for _, c := range []struct {
		name string
		m    *ebpf.Map
		want uint32
	}{{"policy", km.Policy, 4}, {"ct", km.CT, 128}, {"endpoints", km.Endpoints, specs["endpoints"].MaxEntries}, {"tunnel", km.Tunnel, specs["tunnel"].MaxEntries}} {
		if got := c.m.MaxEntries(); got != c.want {
			t.Errorf("%s: %d entries, want %d", c.name, got, c.want)
		}
	}
	for i := range 5 {
		err := km.Policy.Put(gen3.NewPolicyKey(gen3.Identity(256+i), 257, gen3.ProtoUDP, 53), gen3.PolicyEntry{Action: gen3.PolicyAllow})
		if (err != nil) != (i == 4) {
			t.Errorf("policy put %d into a map of 4: %v", i+1, err)
		}
	}
}

// TestExpireCT: entries not seen for longer than the TTL go, fresh ones
// stay.
func TestExpireCT(t *testing.T) {
	km := newMaps(t, Capacity{Policy: 16, CT: 16})
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	now := uint64(ts.Nano())
	fresh, stale := gen3.CTKey{Src: [4]byte{10, 0, 0, 1}, Proto: 17}, gen3.CTKey{Src: [4]byte{10, 0, 0, 2}, Proto: 17}
	if err := km.CT.Put(fresh, gen3.CTEntry{LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if err := km.CT.Put(stale, gen3.CTEntry{LastSeen: now - uint64(2*gen3.CTTimeout)}); err != nil {
		t.Fatal(err)
	}
	n, err := km.ExpireCT(gen3.CTTimeout)
	if err != nil || n != 1 {
		t.Fatalf("ExpireCT: %d deleted, %v; want 1", n, err)
	}
	var v gen3.CTEntry
	if err := km.CT.Lookup(fresh, &v); err != nil {
		t.Errorf("the fresh entry is gone: %v", err)
	}
	if err := km.CT.Lookup(stale, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("the stale entry survived: %v", err)
	}
}

// dump reads a kernel map whole.
func dump[K, V comparable](t *testing.T, x *ebpf.Map) map[K]V {
	t.Helper()
	out := map[K]V{}
	var k K
	var v V
	it := x.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReconcileSequence checks Reconcile against the obvious model: after
// each of a random sequence of changes to a node (pods added and removed,
// remote pods and nodes coming and going; several at once, for the
// batches), the kernel maps hold exactly the model's entries, although
// Reconcile reads the kernel's only the first time.
func TestReconcileSequence(t *testing.T) {
	km := newMaps(t, Capacity{Policy: 1024, CT: 1024})
	n := node(t)
	all := func(k gen3.EndpointKey, v gen3.EndpointInfo) (gen3.EndpointInfo, bool) { return v, true }
	r := rand.New(rand.NewPCG(7, 11))
	local := map[string]bool{}
	remote, tunnel := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	ids := gen3.NewIdentities()
	for step := range 150 {
		for range 1 + r.IntN(4) {
			var err error
			i := r.IntN(40)
			switch r.IntN(3) {
			case 0: // a local pod (the node has 5 lxc slots left)
				i %= 5
				name := fmt.Sprintf("pod%d", i)
				if local[name] {
					if err := n.RemoveEndpoint(name); err != nil {
						t.Fatal(err)
					}
					delete(local, name)
				} else {
					l := map[string]string{"app": name}
					if _, err := n.AddEndpoint(name, netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}), gen3.PodMAC(name), ids.Allocate(l), l); err != nil {
						t.Fatal(err)
					}
					local[name] = true
				}
			case 1: // a remote pod
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 7, byte(10 + i)}), 32)
				if remote[p] {
					err = n.DeleteRemote(p)
				} else {
					err = n.SetRemote(p, gen3.FirstPodIdentity+gen3.Identity(i), netip.AddrFrom4([4]byte{172, 16, 128, byte(i % 5)}))
				}
				if err != nil {
					t.Fatal(err)
				}
				remote[p] = !remote[p]
			default: // a node's tunnel
				cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(10 + i), 0}), 24)
				if tunnel[cidr] {
					err = n.DeleteTunnel(cidr)
				} else {
					err = n.SetTunnel(cidr, netip.AddrFrom4([4]byte{172, 16, 128, byte(10 + i)}))
				}
				if err != nil {
					t.Fatal(err)
				}
				tunnel[cidr] = !tunnel[cidr]
			}
		}
		if err := km.Reconcile(n.Maps(), all); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		m := n.Maps()
		check := func(name string, got, want int) {
			t.Helper()
			if got != want {
				t.Fatalf("step %d: %s: kernel %d entries, model %d", step, name, got, want)
			}
		}
		eps := dump[gen3.EndpointKey, gen3.EndpointInfo](t, km.Endpoints)
		check("endpoints", len(eps), m.Endpoints.Len())
		m.Endpoints.Range(func(k gen3.EndpointKey, v gen3.EndpointInfo) bool {
			if eps[k] != v {
				t.Fatalf("step %d: endpoint %v: kernel %+v, model %+v", step, k.IP, eps[k], v)
			}
			return true
		})
		ipc := dump[gen3.IPCacheKey, gen3.IPCacheValue](t, km.IPCache)
		check("ipcache", len(ipc), m.IPCache.Len())
		m.IPCache.Range(func(k gen3.IPCacheKey, v gen3.IPCacheValue) bool {
			if ipc[k] != v {
				t.Fatalf("step %d: ipcache %v/%d: kernel %+v, model %+v", step, k.IP, k.PrefixLen, ipc[k], v)
			}
			return true
		})
		tun := dump[gen3.TunnelKey, gen3.TunnelValue](t, km.Tunnel)
		check("tunnel", len(tun), m.Tunnel.Len())
		m.Tunnel.Range(func(k gen3.TunnelKey, v gen3.TunnelValue) bool {
			if tun[k] != v {
				t.Fatalf("step %d: tunnel %+v: kernel %+v, model %+v", step, k, tun[k], v)
			}
			return true
		})
		pol := dump[gen3.PolicyKey, gen3.PolicyEntry](t, km.Policy)
		check("policy", len(pol), m.Policy.Len())
	}
}

// pluggedAt42 is a Reconcile translation for a node whose pod at web
// alone is plugged, its lxc at ifindex 42.
func pluggedAt42(web [4]byte) func(gen3.EndpointKey, gen3.EndpointInfo) (gen3.EndpointInfo, bool) {
	return func(k gen3.EndpointKey, v gen3.EndpointInfo) (gen3.EndpointInfo, bool) {
		if k.IP != web {
			return v, false
		}
		v.IfIndex = 42
		return v, true
	}
}

// TestReconcile6: a dual-stack node's IPv6 maps reach the kernel through
// Reconcile as its IPv4 ones do: a plugged pod's IPv6 endpoint entry
// with its IPv4 entry's translation (the real lxc's ifindex), none for a
// pod not plugged, the IPv6 ipcache and tunnel map as the model's; a
// removed pod's IPv6 entries go.
func TestReconcile6(t *testing.T) {
	km := newMaps(t, Capacity{})
	n, err := gen3.NewNode(gen3.NodeConfig{Name: "host1", Mode: gen3.Tunnel, NodeIP: netip.MustParseAddr("172.16.128.1"),
		NodeCIDR: netip.MustParsePrefix("10.0.0.0/24"), ClusterCIDR: netip.MustParsePrefix("10.0.0.0/16"), Slots: 8,
		NodeCIDR6: netip.MustParsePrefix("fd10::/120"), ClusterCIDR6: netip.MustParsePrefix("fd10::/104"),
		NICs: []gen3.NIC{{Name: "eth1", MAC: gen3.DeviceMAC("host1", "eth1"), GatewayMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := gen3.NewIdentities()
	for i, app := range []string{"web", "db"} {
		l := map[string]string{"app": app}
		if _, err := n.AddEndpoint(app, netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)}), gen3.PodMAC(app), ids.Allocate(l), l); err != nil {
			t.Fatal(err)
		}
		if err := n.AddEndpointIPv6(app, netip.AddrFrom16([16]byte{0xfd, 0x10, 15: byte(2 + i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.SetTunnel(netip.MustParsePrefix("fd10::100/120"), netip.MustParseAddr("172.16.128.2")); err != nil {
		t.Fatal(err)
	}
	web4, web6 := netip.MustParseAddr("10.0.0.2").As4(), netip.MustParseAddr("fd10::2").As16()
	if err := km.Reconcile(n.Maps(), pluggedAt42(web4)); err != nil {
		t.Fatal(err)
	}
	m := n.Maps()
	want, _ := m.Endpoints6.Lookup(gen3.EndpointKey6{IP: web6})
	want.IfIndex = 42
	if got := dump[gen3.EndpointKey6, gen3.EndpointInfo](t, km.Endpoints6); len(got) != 1 || got[gen3.EndpointKey6{IP: web6}] != want {
		t.Errorf("IPv6 endpoints in the kernel %+v, want web's alone, %+v", got, want)
	}
	ipc := dump[gen3.IPCacheKey6, gen3.IPCacheValue](t, km.IPCache6)
	if len(ipc) != m.IPCache6.Len() || m.IPCache6.Len() == 0 {
		t.Errorf("the kernel's IPv6 ipcache has %d entries, the model's %d", len(ipc), m.IPCache6.Len())
	}
	m.IPCache6.Range(func(k gen3.IPCacheKey6, v gen3.IPCacheValue) bool {
		lookup(t, "ipcache6", km.IPCache6, k, v)
		return true
	})
	if tun := dump[gen3.TunnelKey6, gen3.TunnelValue](t, km.Tunnel6); len(tun) != 1 || m.Tunnel6.Len() != 1 {
		t.Errorf("IPv6 tunnel map in the kernel %+v, the model's has %d", tun, m.Tunnel6.Len())
	}
	m.Tunnel6.Range(func(k gen3.TunnelKey6, v gen3.TunnelValue) bool { lookup(t, "tunnel6", km.Tunnel6, k, v); return true })

	if err := n.RemoveEndpoint("web"); err != nil {
		t.Fatal(err)
	}
	if err := km.Reconcile(n.Maps(), pluggedAt42(web4)); err != nil {
		t.Fatal(err)
	}
	if got := dump[gen3.EndpointKey6, gen3.EndpointInfo](t, km.Endpoints6); len(got) != 0 {
		t.Errorf("IPv6 endpoints left after web went: %+v", got)
	}
	if _, ok := dump[gen3.IPCacheKey6, gen3.IPCacheValue](t, km.IPCache6)[gen3.IPCacheKey6{PrefixLen: 128, IP: web6}]; ok {
		t.Error("web's IPv6 ipcache entry is left after it went")
	}
}

// TestSyncStopsAtFailure: a put that fails (a policy map of one entry
// given two) ends Sync with the error, naming the put, and nothing after
// it is written (the conntrack map, synced after the policy map, stays
// empty).
func TestSyncStopsAtFailure(t *testing.T) {
	km := newMaps(t, Capacity{Policy: 1})
	m := gen3.NewMaps()
	for i := range 2 {
		if err := m.Policy.Update(gen3.NewPolicyKey(gen3.Identity(256+i), 257, gen3.ProtoUDP, 53), gen3.PolicyEntry{Action: gen3.PolicyAllow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.CT.Update(gen3.CTKey{Src: [4]byte{10, 0, 0, 2}, Dst: [4]byte{10, 0, 0, 3}, Proto: 17}, gen3.CTEntry{Packets: 1}); err != nil {
		t.Fatal(err)
	}
	err := km.Sync(m)
	if err == nil || !strings.Contains(err.Error(), "sync BPF map: put") {
		t.Fatalf("Sync of two policy entries into a map of one: %v, want the failed put", err)
	}
	if ct := dump[gen3.CTKey, gen3.CTEntry](t, km.CT); len(ct) != 0 {
		t.Errorf("Sync went on after the failure: conntrack map %+v", ct)
	}
}
