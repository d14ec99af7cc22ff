package kmaps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

func size(v any) uint32 { return uint32(binary.Size(v)) }

// Specs returns the kernel specs of the node maps: hash maps for
// endpoints, tunnel, policy and conntrack, an LPM trie for the ipcache.
// Key and value sizes come from the Go types, so the model and the kernel
// agree byte for byte.
func Specs() map[string]*ebpf.MapSpec {
	m := gen3.NewMaps()
	// Hash maps allocate entries on demand (BPF_F_NO_PREALLOC): the
	// policy and conntrack maps are large, and a node uses a fraction.
	hash := func(name string, max int, k, v any) *ebpf.MapSpec {
		return &ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: size(k), ValueSize: size(v), MaxEntries: uint32(max),
			Flags: unix.BPF_F_NO_PREALLOC}
	}
	return map[string]*ebpf.MapSpec{
		"endpoints": hash(m.Endpoints.Spec().Name, m.Endpoints.Spec().MaxEntries, gen3.EndpointKey{}, gen3.EndpointInfo{}),
		"ipcache": {Name: m.IPCache.Spec().Name, Type: ebpf.LPMTrie, KeySize: size(gen3.IPCacheKey{}), ValueSize: size(gen3.IPCacheValue{}),
			MaxEntries: uint32(m.IPCache.Spec().MaxEntries), Flags: unix.BPF_F_NO_PREALLOC},
		"tunnel": hash(m.Tunnel.Spec().Name, m.Tunnel.Spec().MaxEntries, gen3.TunnelKey{}, gen3.TunnelValue{}),
		"policy": hash(m.Policy.Spec().Name, m.Policy.Spec().MaxEntries, gen3.PolicyKey{}, gen3.PolicyEntry{}),
		"ct":     hash(m.CT.Spec().Name, m.CT.Spec().MaxEntries, gen3.CTKey{}, gen3.CTEntry{}),

		"endpoints6": hash(m.Endpoints6.Spec().Name, m.Endpoints6.Spec().MaxEntries, gen3.EndpointKey6{}, gen3.EndpointInfo{}),
		"ipcache6": {Name: m.IPCache6.Spec().Name, Type: ebpf.LPMTrie, KeySize: size(gen3.IPCacheKey6{}), ValueSize: size(gen3.IPCacheValue{}),
			MaxEntries: uint32(m.IPCache6.Spec().MaxEntries), Flags: unix.BPF_F_NO_PREALLOC},
		"tunnel6": hash(m.Tunnel6.Spec().Name, m.Tunnel6.Spec().MaxEntries, gen3.TunnelKey6{}, gen3.TunnelValue{}),
		"ct6":     hash(m.CT6.Spec().Name, m.CT6.Spec().MaxEntries, gen3.CTKey6{}, gen3.CTEntry{}),
	}
}

// Maps are a node's maps in the kernel: IPv4's, the IPv6 twins (the
// names ending in 6, as the model keeps them), and the one policy map
// keyed by identities that serves both families.
type Maps struct {
	Endpoints, IPCache, Tunnel, Policy, CT *ebpf.Map
	Endpoints6, IPCache6, Tunnel6, CT6     *ebpf.Map
	// written is what the last Reconcile left in the maps it owns
	// (nil: not known; the next Reconcile reads the kernel's).
	written *written
}

// written is the content of the maps Reconcile owns, as it last wrote
// them: the programs only read those maps, so that a Reconcile needs to
// write only what changed since, and to read nothing.
type written struct {
	eps map[gen3.EndpointKey]gen3.EndpointInfo
	ipc map[gen3.IPCacheKey]gen3.IPCacheValue
	tun map[gen3.TunnelKey]gen3.TunnelValue
	pol map[gen3.PolicyKey]gen3.PolicyEntry

	eps6 map[gen3.EndpointKey6]gen3.EndpointInfo
	ipc6 map[gen3.IPCacheKey6]gen3.IPCacheValue
	tun6 map[gen3.TunnelKey6]gen3.TunnelValue
}

// Capacity overrides the maps' sizes; a zero field keeps Specs' (the
// model's, Cilium's defaults). A hash map's bucket array is allocated and
// zeroed when it is created, even without preallocated entries: the
// default policy (1M entries) and conntrack (512k) maps take about 25 MB
// and 200 ms to create on a small machine, so a lab of many nodes wants
// smaller ones. The model's maps keep their capacity: a kernel map that
// overflows fails the Sync that fills it. CT sizes the IPv6 conntrack
// map too.
type Capacity struct {
	Endpoints, IPCache, Tunnel, Policy, CT int
}

// New creates the maps in the kernel (unpinned; they live until Close).
func New() (*Maps, error) { return NewSized(Capacity{}) }

// NewSized is New with the capacities c overrides.
func NewSized(c Capacity) (*Maps, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("create BPF maps: lift the memlock limit: %w", err)
	}
	specs := Specs()
	for name, n := range map[string]int{"endpoints": c.Endpoints, "ipcache": c.IPCache, "tunnel": c.Tunnel, "policy": c.Policy, "ct": c.CT,
		"endpoints6": c.Endpoints, "ipcache6": c.IPCache, "tunnel6": c.Tunnel, "ct6": c.CT} {
		if n > 0 {
			specs[name].MaxEntries = uint32(n)
		}
	}
	km := &Maps{}
	for _, x := range []struct {
		name string
		dst  **ebpf.Map
	}{{"endpoints", &km.Endpoints}, {"ipcache", &km.IPCache}, {"tunnel", &km.Tunnel}, {"policy", &km.Policy}, {"ct", &km.CT},
		{"endpoints6", &km.Endpoints6}, {"ipcache6", &km.IPCache6}, {"tunnel6", &km.Tunnel6}, {"ct6", &km.CT6}} {
		m, err := ebpf.NewMap(specs[x.name])
		if err != nil {
			km.Close()
			return nil, fmt.Errorf("create BPF map %s: %w", specs[x.name].Name, err)
		}
		*x.dst = m
	}
	return km, nil
}

// Close releases the maps.
func (km *Maps) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{km.Endpoints, km.IPCache, km.Tunnel, km.Policy, km.CT, km.Endpoints6, km.IPCache6, km.Tunnel6, km.CT6} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Sync writes every entry of the model maps into the kernel maps (the
// agent's job after it compiles endpoints and policy). It adds and
// replaces; entries only in the kernel stay.
func (km *Maps) Sync(m *gen3.Maps) error {
	km.written = nil // the kernel's are now more than Reconcile wrote
	var err error
	// After the first failure put writes nothing more: each Range
	// that follows stops at once.
	put := func(km *ebpf.Map, k, v any) bool {
		if err != nil {
			return false
		}
		if e := km.Put(k, v); e != nil {
			err = fmt.Errorf("sync BPF map: put %+v: %w", k, e)
			return false
		}
		return true
	}
	m.Endpoints.Range(func(k gen3.EndpointKey, v gen3.EndpointInfo) bool { return put(km.Endpoints, k, v) })
	m.IPCache.Range(func(k gen3.IPCacheKey, v gen3.IPCacheValue) bool { return put(km.IPCache, k, v) })
	m.Tunnel.Range(func(k gen3.TunnelKey, v gen3.TunnelValue) bool { return put(km.Tunnel, k, v) })
	m.Policy.Range(func(k gen3.PolicyKey, v gen3.PolicyEntry) bool { return put(km.Policy, k, v) })
	m.CT.Range(func(k gen3.CTKey, v gen3.CTEntry) bool { return put(km.CT, k, v) })
	m.Endpoints6.Range(func(k gen3.EndpointKey6, v gen3.EndpointInfo) bool { return put(km.Endpoints6, k, v) })
	m.IPCache6.Range(func(k gen3.IPCacheKey6, v gen3.IPCacheValue) bool { return put(km.IPCache6, k, v) })
	m.Tunnel6.Range(func(k gen3.TunnelKey6, v gen3.TunnelValue) bool { return put(km.Tunnel6, k, v) })
	m.CT6.Range(func(k gen3.CTKey6, v gen3.CTEntry) bool { return put(km.CT6, k, v) })
	return err
}

// Reconcile makes the kernel maps hold exactly the model's entries
// (endpoints, ipcache, tunnel, policy): it writes what is missing or
// different and deletes what the model no longer has, as the agent does
// after a change. endpoint translates a model endpoint entry for this
// kernel (the lxc device's real ifindex and MAC); false leaves the
// endpoint out (its device is not there yet). An IPv6 endpoint entry
// is the same endpoint's IPv4 entry in the model (AddEndpointIPv6), so
// it takes that entry's translation, found by the model's ifindex, and
// is left out with it. The conntrack maps are the programs' own and
// stay as they are.
//
// Reconcile compares the model with what it last wrote, not with the
// kernel (read only at the first Reconcile, after a Sync, or after a
// failed one): nothing but Maps writes those maps. A spawn changes a
// few entries, so a node's reconcile after it costs a few syscalls,
// however many pods the cluster has. Changes go to the kernel in batches
// (BPF_MAP_UPDATE_BATCH, BPF_MAP_DELETE_BATCH) where the map type and
// the kernel support them, one syscall per entry otherwise.
func (km *Maps) Reconcile(m *gen3.Maps, endpoint func(gen3.EndpointKey, gen3.EndpointInfo) (gen3.EndpointInfo, bool)) error {
	eps := map[gen3.EndpointKey]gen3.EndpointInfo{}
	byIfIndex := map[uint32]gen3.EndpointInfo{}
	m.Endpoints.Range(func(k gen3.EndpointKey, v gen3.EndpointInfo) bool {
		if kv, ok := endpoint(k, v); ok {
			eps[k] = kv
			byIfIndex[v.IfIndex] = kv
		}
		return true
	})
	eps6 := map[gen3.EndpointKey6]gen3.EndpointInfo{}
	m.Endpoints6.Range(func(k gen3.EndpointKey6, v gen3.EndpointInfo) bool {
		if kv, ok := byIfIndex[v.IfIndex]; ok {
			kv.Flags, kv.Identity = v.Flags, v.Identity
			eps6[k] = kv
		}
		return true
	})
	ipc6 := map[gen3.IPCacheKey6]gen3.IPCacheValue{}
	m.IPCache6.Range(func(k gen3.IPCacheKey6, v gen3.IPCacheValue) bool { ipc6[k] = v; return true })
	tun6 := map[gen3.TunnelKey6]gen3.TunnelValue{}
	m.Tunnel6.Range(func(k gen3.TunnelKey6, v gen3.TunnelValue) bool { tun6[k] = v; return true })
	ipc := map[gen3.IPCacheKey]gen3.IPCacheValue{}
	m.IPCache.Range(func(k gen3.IPCacheKey, v gen3.IPCacheValue) bool { ipc[k] = v; return true })
	tun := map[gen3.TunnelKey]gen3.TunnelValue{}
	m.Tunnel.Range(func(k gen3.TunnelKey, v gen3.TunnelValue) bool { tun[k] = v; return true })
	pol := map[gen3.PolicyKey]gen3.PolicyEntry{}
	m.Policy.Range(func(k gen3.PolicyKey, v gen3.PolicyEntry) bool { pol[k] = v; return true })
	w := km.written
	if w == nil {
		w = &written{}
	}
	km.written = nil
	err := errors.Join(reconcile(km.Endpoints, w.eps, eps), reconcile(km.IPCache, w.ipc, ipc),
		reconcile(km.Tunnel, w.tun, tun), reconcile(km.Policy, w.pol, pol),
		reconcile(km.Endpoints6, w.eps6, eps6), reconcile(km.IPCache6, w.ipc6, ipc6), reconcile(km.Tunnel6, w.tun6, tun6))
	if err == nil {
		km.written = &written{eps: eps, ipc: ipc, tun: tun, pol: pol, eps6: eps6, ipc6: ipc6, tun6: tun6}
	}
	return err
}

// reconcile makes the kernel map hold exactly want, given that it holds
// have (nil: read it from the kernel).
func reconcile[K, V comparable](km *ebpf.Map, have, want map[K]V) error {
	if have == nil {
		have = map[K]V{}
		var k K
		var v V
		it := km.Iterate()
		for it.Next(&k, &v) {
			have[k] = v
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("reconcile BPF map %s: read: %w", km.String(), err)
		}
	}
	var del []K
	for k := range have {
		if _, ok := want[k]; !ok {
			del = append(del, k)
		}
	}
	var putK []K
	var putV []V
	for k, v := range want {
		if hv, ok := have[k]; ok && hv == v {
			continue
		}
		putK, putV = append(putK, k), append(putV, v)
	}
	// An LPM trie has no batch operations.
	batch := km.Type() != ebpf.LPMTrie
	if batch && len(del) > 1 {
		// A batch stops at its first failure (a key already gone):
		// the rest go one by one, with a precise error.
		n, err := km.BatchDelete(del, nil)
		if err == nil {
			n = len(del)
		}
		del = del[n:]
	}
	for _, k := range del {
		if err := km.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("reconcile BPF map %s: delete %+v: %w", km.String(), k, err)
		}
	}
	if batch && len(putK) > 1 {
		n, err := km.BatchUpdate(putK, putV, nil)
		if err == nil {
			n = len(putK)
		}
		putK, putV = putK[n:], putV[n:]
	}
	for i, k := range putK {
		if err := km.Put(k, putV[i]); err != nil {
			return fmt.Errorf("reconcile BPF map %s: put %+v: %w", km.String(), k, err)
		}
	}
	return nil
}

// ExpireCT deletes the conntrack entries (both families) the programs
// have not refreshed for ttl (their LastSeen is bpf_ktime_get_ns,
// CLOCK_MONOTONIC), as the agent's conntrack GC does, and returns how
// many it deleted.
func (km *Maps) ExpireCT(ttl time.Duration) (int, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("expire conntrack entries: read the clock: %w", err)
	}
	now := uint64(ts.Nano())
	n, err := expireCT[gen3.CTKey](km.CT, now, ttl)
	if err != nil || km.CT6 == nil {
		return n, err
	}
	n6, err := expireCT[gen3.CTKey6](km.CT6, now, ttl)
	return n + n6, err
}

func expireCT[K comparable](m *ebpf.Map, now uint64, ttl time.Duration) (int, error) {
	var k K
	var v gen3.CTEntry
	var old []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if now > v.LastSeen && now-v.LastSeen > uint64(ttl) {
			old = append(old, k)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("expire conntrack entries of %s: read: %w", m.String(), err)
	}
	n := 0
	for _, k := range old {
		if err := m.Delete(k); err == nil {
			n++
		} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("expire conntrack entry %+v: %w", k, err)
		}
	}
	return n, nil
}
