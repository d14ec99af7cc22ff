package ebpf

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/topologies"
)

// naiveIPCache is the slow obvious model of views over a shared table:
// each view's content worked out from scratch, its own entries over the
// shared ones not owned by it.
type naiveIPCache struct {
	local  []map[netip.Prefix]IPCacheValue
	shared map[netip.Prefix]IPCacheValue
	owner  map[netip.Prefix]int // -1: no owner
}

func (m *naiveIPCache) view(i int) map[netip.Prefix]IPCacheValue {
	out := map[netip.Prefix]IPCacheValue{}
	for p, v := range m.shared {
		if m.owner[p] != i {
			out[p] = v
		}
	}
	for p, v := range m.local[i] {
		out[p] = v
	}
	return out
}

func naiveLookup(view map[netip.Prefix]IPCacheValue, a netip.Addr) (IPCacheValue, bool) {
	for bits := 32; bits >= 0; bits-- {
		p, _ := a.Prefix(bits)
		if v, ok := view[p]; ok {
			return v, true
		}
	}
	return IPCacheValue{}, false
}

// TestIPCacheDifferential checks node views over one shared ipcache
// against the naive model under random writes to both: Len, Lookup of
// every address in the range, and Range's content and order.
func TestIPCacheDifferential(t *testing.T) {
	const views = 4
	rng := rand.New(rand.NewPCG(1, 2))
	shared := NewSharedIPCache(MapSpec{"shared", 0})
	var vs []*IPCache
	m := &naiveIPCache{shared: map[netip.Prefix]IPCacheValue{}, owner: map[netip.Prefix]int{}}
	for range views {
		vs = append(vs, NewIPCache(MapSpec{"view", 0}, shared))
		m.local = append(m.local, map[netip.Prefix]IPCacheValue{})
	}
	// Prefixes within 10.0.0.0/28 at /32, /30 and /28, so that overlays,
	// owners and shorter prefixes collide often.
	randPrefix := func() netip.Prefix {
		bits := []int{32, 32, 32, 30, 28}[rng.IntN(5)]
		p, _ := netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(16))}).Prefix(bits)
		return p
	}
	key := func(p netip.Prefix) IPCacheKey { return IPCacheKey{uint32(p.Bits()), p.Addr().As4()} }
	for step := range 4000 {
		p := randPrefix()
		v := IPCacheValue{Identity: uint32(rng.IntN(1000))}
		i := rng.IntN(views)
		switch op := rng.IntN(4); op {
		case 0:
			if err := vs[i].Update(key(p), v); err != nil {
				t.Fatal(err)
			}
			m.local[i][p] = v
		case 1:
			_, had := m.local[i][p]
			err := vs[i].Delete(key(p))
			if had != (err == nil) || (!had && !errors.Is(err, ErrKeyNotExist)) {
				t.Fatalf("step %d: delete %v from view %d: %v, model had it: %v", step, p, i, err, had)
			}
			delete(m.local[i], p)
		case 2:
			owner := rng.IntN(views+1) - 1
			var o *IPCache
			if owner >= 0 {
				o = vs[owner]
			}
			if err := shared.Set(key(p), v, o); err != nil {
				t.Fatal(err)
			}
			m.shared[p], m.owner[p] = v, owner
		case 3:
			_, had := m.shared[p]
			if err := shared.Delete(key(p)); had != (err == nil) {
				t.Fatalf("step %d: shared delete %v: %v, model had it: %v", step, p, err, had)
			}
			delete(m.shared, p)
			delete(m.owner, p)
		}
		for j, c := range vs {
			want := m.view(j)
			if c.Len() != len(want) {
				t.Fatalf("step %d: view %d Len %d, model %d", step, j, c.Len(), len(want))
			}
			for a := range 17 {
				addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(a)})
				got, gok := c.Lookup(addr.As4())
				w, wok := naiveLookup(want, addr)
				if got != w || gok != wok {
					t.Fatalf("step %d: view %d Lookup %v = %v %v, model %v %v", step, j, addr, got, gok, w, wok)
				}
			}
			if step%97 != 0 {
				continue
			}
			n := 0
			last := IPCacheKey{PrefixLen: 33}
			c.Range(func(k IPCacheKey, v IPCacheValue) bool {
				p := netip.PrefixFrom(netip.AddrFrom4(k.IP), int(k.PrefixLen))
				if w, ok := want[p]; !ok || w != v {
					t.Fatalf("step %d: view %d Range gave %v %v, model %v %v", step, j, p, v, w, ok)
				}
				if k.PrefixLen > last.PrefixLen || (k.PrefixLen == last.PrefixLen && binary.BigEndian.Uint32(k.IP[:]) <= binary.BigEndian.Uint32(last.IP[:])) {
					t.Fatalf("step %d: view %d Range out of order: %v after %v", step, j, k, last)
				}
				last = k
				n++
				return true
			})
			if n != len(want) {
				t.Fatalf("step %d: view %d Range gave %d entries, model %d", step, j, n, len(want))
			}
		}
	}
}

func TestIPCacheLimit(t *testing.T) {
	shared := NewSharedIPCache(MapSpec{"shared", 0})
	a := NewIPCache(MapSpec{"a", 2}, shared)
	b := NewIPCache(MapSpec{"b", 2}, shared)
	k := func(last byte) IPCacheKey { return IPCacheKey{32, [4]byte{10, 0, 0, last}} }
	if err := shared.Set(k(1), IPCacheValue{Identity: 1}, a); err != nil {
		t.Fatal(err)
	}
	// a leaves its own shared entry out: two of its own fit.
	for _, last := range []byte{1, 2} {
		if err := a.Update(k(last), IPCacheValue{Identity: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Update(k(3), IPCacheValue{}); !errors.Is(err, ErrMapFull) {
		t.Fatalf("a's third entry: %v, want ErrMapFull", err)
	}
	// b shows the shared entry; writing the same prefix replaces, a new
	// one fills the map.
	if err := b.Update(k(1), IPCacheValue{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(k(2), IPCacheValue{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(k(3), IPCacheValue{}); !errors.Is(err, ErrMapFull) {
		t.Fatalf("b's third entry: %v, want ErrMapFull", err)
	}
	if a.Len() != 2 || b.Len() != 2 {
		t.Fatalf("Len a %d b %d, want 2 and 2", a.Len(), b.Len())
	}
}

// TestPodWritesIPCacheOnce checks that a pod's address goes into the
// fabric's shared ipcache once, not into every node's map, while every
// node's ipcache still counts it and resolves it to its node.
func TestPodWritesIPCacheOnce(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 4})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(topo, Options{Mode: Tunnel, PodsPerNode: 8})
	if err != nil {
		t.Fatal(err)
	}
	hosts := len(f.order)
	own := func() int {
		n := 0
		for _, h := range f.hosts {
			n += h.maps.IPCache.local.Len()
		}
		return n
	}
	// Each node: its node IP and gateway as host, every other node's IP
	// as a remote node.
	for name, h := range f.hosts {
		if got := h.Maps().IPCache.Len(); got != 2+hosts-1 {
			t.Fatalf("%s ipcache %d entries before pods, want %d", name, got, 2+hosts-1)
		}
	}
	before, sharedBefore := own(), f.cluster.ipcache.Len()
	if _, _, err := f.AddInstance(datapath.InstanceSpec{Name: "p1", Host: "host1", Labels: map[string]string{"app": "a"}}); err != nil {
		t.Fatal(err)
	}
	if got := own() - before; got != 1 {
		t.Errorf("node-local ipcache entries grew by %d for one pod, want 1 (host1's endpoint)", got)
	}
	if got := f.cluster.ipcache.Len() - sharedBefore; got != 1 {
		t.Errorf("shared ipcache grew by %d for one pod, want 1", got)
	}
	ep, _, _ := f.Endpoint("p1")
	home := f.hosts["host1"]
	for name, h := range f.hosts {
		if got := h.Maps().IPCache.Len(); got != 2+hosts {
			t.Errorf("%s ipcache %d entries with one pod, want %d", name, got, 2+hosts)
		}
		v, ok := h.Maps().IPCache.Lookup(ep.IP.As4())
		want := IPCacheValue{Identity: uint32(ep.Identity), TunnelEndpoint: home.cfg.NodeIP.As4()}
		if h == home {
			want.TunnelEndpoint = [4]byte{}
		}
		if !ok || v != want {
			t.Errorf("%s ipcache[%v] = %+v %v, want %+v", name, ep.IP, v, ok, want)
		}
	}
	// The tunnel map: every other node's CIDR, kept once.
	for name, h := range f.hosts {
		if got := h.Maps().Tunnel.Len(); got != hosts-1 || len(h.maps.Tunnel.local) != 0 {
			t.Errorf("%s tunnel map %d entries (%d its own), want %d shared", name, got, len(h.maps.Tunnel.local), hosts-1)
		}
	}
	if err := f.RemoveInstance("p1"); err != nil {
		t.Fatal(err)
	}
	for name, h := range f.hosts {
		if got := h.Maps().IPCache.Len(); got != 2+hosts-1 {
			t.Errorf("%s ipcache %d entries after the pod left, want %d", name, got, 2+hosts-1)
		}
	}
	if own() != before || f.cluster.ipcache.Len() != sharedBefore {
		t.Errorf("after the pod left: own entries %d (was %d), shared %d (was %d)", own(), before, f.cluster.ipcache.Len(), sharedBefore)
	}
}

// TestOverlayHashMapDifferential is TestIPCacheDifferential for the
// tunnel map's exact-match twin.
func TestOverlayHashMapDifferential(t *testing.T) {
	const views = 4
	rng := rand.New(rand.NewPCG(3, 4))
	shared := NewSharedHashMap[TunnelKey, TunnelValue](MapSpec{"shared", 0})
	var vs []*OverlayHashMap[TunnelKey, TunnelValue]
	local := make([]map[TunnelKey]TunnelValue, views)
	sharedM, owner := map[TunnelKey]TunnelValue{}, map[TunnelKey]int{}
	for i := range views {
		vs = append(vs, NewOverlayHashMap(MapSpec{"view", 0}, shared))
		local[i] = map[TunnelKey]TunnelValue{}
	}
	for step := range 4000 {
		k := TunnelKey{[4]byte{10, 0, byte(rng.IntN(8)), 0}}
		v := TunnelValue{[4]byte{192, 168, 0, byte(rng.IntN(200))}}
		i := rng.IntN(views)
		switch rng.IntN(4) {
		case 0:
			if err := vs[i].Update(k, v); err != nil {
				t.Fatal(err)
			}
			local[i][k] = v
		case 1:
			_, had := local[i][k]
			if err := vs[i].Delete(k); had != (err == nil) {
				t.Fatalf("step %d: delete %v from view %d: %v, model had it: %v", step, k, i, err, had)
			}
			delete(local[i], k)
		case 2:
			o := rng.IntN(views+1) - 1
			var ov *OverlayHashMap[TunnelKey, TunnelValue]
			if o >= 0 {
				ov = vs[o]
			}
			if err := shared.Set(k, v, ov); err != nil {
				t.Fatal(err)
			}
			sharedM[k], owner[k] = v, o
		case 3:
			_, had := sharedM[k]
			if err := shared.Delete(k); had != (err == nil) {
				t.Fatalf("step %d: shared delete %v: %v, model had it: %v", step, k, err, had)
			}
			delete(sharedM, k)
			delete(owner, k)
		}
		for j, c := range vs {
			want := map[TunnelKey]TunnelValue{}
			for k, v := range sharedM {
				if owner[k] != j {
					want[k] = v
				}
			}
			for k, v := range local[j] {
				want[k] = v
			}
			if c.Len() != len(want) {
				t.Fatalf("step %d: view %d Len %d, model %d", step, j, c.Len(), len(want))
			}
			for b := range 8 {
				k := TunnelKey{[4]byte{10, 0, byte(b), 0}}
				got, gok := c.Lookup(k)
				w, wok := want[k]
				if got != w || gok != wok {
					t.Fatalf("step %d: view %d Lookup %v = %v %v, model %v %v", step, j, k, got, gok, w, wok)
				}
			}
			seen := map[TunnelKey]bool{}
			c.Range(func(k TunnelKey, v TunnelValue) bool {
				if w, ok := want[k]; !ok || w != v || seen[k] {
					t.Fatalf("step %d: view %d Range gave %v %v (again: %v), model %v %v", step, j, k, v, seen[k], w, ok)
				}
				seen[k] = true
				return true
			})
			if len(seen) != len(want) {
				t.Fatalf("step %d: view %d Range gave %d entries, model %d", step, j, len(seen), len(want))
			}
		}
	}
}
