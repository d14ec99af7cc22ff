package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath/l3"
)

// Map errors, as the kernel's bpf(2) reports them.
var (
	ErrKeyNotExist = errors.New("key does not exist") // ENOENT
	ErrMapFull     = errors.New("map is full")        // E2BIG
)

// The map key and value types below have the explicit layout the kernel
// programs will use: fixed-size fields, addresses and ports in network byte
// order as byte arrays, integers in native (little-endian) order, padding
// spelt out so that binary.Size equals the C struct size. cilium/ebpf
// marshals them as they are.

// EndpointKey is the key of the endpoints map: a local pod's IPv4 address.
type EndpointKey struct {
	IP [4]byte // network order
}

// Endpoint flags.
const (
	// EndpointPolicyEnforced: ingress to the endpoint is default-deny; only
	// what the policy map allows (and replies, via conntrack) gets in.
	EndpointPolicyEnforced uint32 = 1 << 0
	// EndpointEgressEnforced: what the endpoint sends is default-deny;
	// only what the policy map's egress entries allow (and replies)
	// leaves it.
	EndpointEgressEnforced uint32 = 1 << 1
)

// EndpointInfo is the value of the endpoints map (Cilium's endpoint_info).
type EndpointInfo struct {
	IfIndex  uint32  // host-side lxc device
	Identity uint32  // security identity of the pod's labels
	Flags    uint32  // EndpointPolicyEnforced
	LxcID    uint16  // endpoint ID (the lxc device is lxc<LxcID>)
	_        [2]byte //
	MAC      [6]byte // the pod's eth0
	NodeMAC  [6]byte // the lxc device's (host side) MAC
}

// IPCacheKey is the key of the ipcache LPM trie (bpf_lpm_trie_key layout:
// the prefix length, then the address).
type IPCacheKey struct {
	PrefixLen uint32  // bits of IP that count
	IP        [4]byte // network order
}

// IPCacheValue maps an address or prefix to its security identity and, for
// pods on other nodes, the node to tunnel to.
type IPCacheValue struct {
	Identity       uint32
	TunnelEndpoint [4]byte // remote node IP, zero for local or world
}

// TunnelKey is the key of the tunnel map: a node CIDR's network address.
type TunnelKey struct {
	IP [4]byte // network order
}

// TunnelValue is the remote node's underlay IP.
type TunnelValue struct {
	NodeIP [4]byte
}

// PolicyKey is the key of the policy map: (source identity, destination
// identity, protocol, destination port, direction). Protocol 0 and port 0
// are wildcards, and so is identity 0 on the remote side: the source of
// an ingress entry, the destination of an egress one. Egress is 1 for an
// entry checked where the packet leaves its source pod (on the source
// node), 0 for one checked where it enters the destination pod.
type PolicyKey struct {
	SrcIdentity uint32
	DstIdentity uint32
	DPort       [2]byte // network order
	Proto       uint8
	Egress      uint8
}

// Policy actions.
const (
	PolicyAllow uint8 = 1
	PolicyDeny  uint8 = 2
)

// PolicyEntry is the value of the policy map, with Cilium's per-entry
// counters.
type PolicyEntry struct {
	Action  uint8
	_       [3]byte
	RuleID  uint32 // index into the rule names the agent keeps
	Packets uint64
	Bytes   uint64
}

// CTKey is a conntrack tuple. For ICMP echo, both ports hold the echo ID.
type CTKey struct {
	Src, Dst     [4]byte
	SPort, DPort [2]byte
	Proto        uint8
	_            [3]byte
}

// CTEntry is a conntrack entry.
type CTEntry struct {
	Packets  uint64
	Bytes    uint64
	Created  uint64 // virtual ns
	LastSeen uint64 // virtual ns; entries idle for CTTimeout expire
	Identity uint32 // source identity of the flow's first packet
	_        [4]byte
}

// CTTimeout is how long a conntrack entry lives without packets (Cilium's
// non-TCP lifetime; one value for all protocols here).
const CTTimeout = 60 * time.Second

// MapSpec names a map and its capacity.
type MapSpec struct {
	Name       string
	MaxEntries int
}

// HashMap is the userspace twin of a BPF hash map: lookups copy the value
// out, updates fail with ErrMapFull past MaxEntries. The conntrack key
// types are stored in an open-addressing table (table.go), the others in
// a Go map.
type HashMap[K comparable, V any] struct {
	spec MapSpec
	m    map[K]V
	t    *table[K, V] // instead of m when the key type has a hash here
}

// NewHashMap returns an empty map.
func NewHashMap[K comparable, V any](spec MapSpec) *HashMap[K, V] {
	if h := hasherOf[K](); h != nil {
		return &HashMap[K, V]{spec: spec, t: &table[K, V]{hash: h}}
	}
	return &HashMap[K, V]{spec: spec, m: make(map[K]V)}
}

// Spec returns the map's name and capacity.
func (h *HashMap[K, V]) Spec() MapSpec { return h.spec }

// Lookup returns the value for k.
func (h *HashMap[K, V]) Lookup(k K) (V, bool) {
	if h.t != nil {
		if p := h.t.ref(k); p != nil {
			return *p, true
		}
		var zero V
		return zero, false
	}
	v, ok := h.m[k]
	return v, ok
}

// ref returns k's value in place, nil if absent, good until the next
// Update or Delete. Only for a key type stored in a table (hasherOf):
// a Go map's values have no address.
func (h *HashMap[K, V]) ref(k K) *V { return h.t.ref(k) }

// Update inserts or replaces k.
func (h *HashMap[K, V]) Update(k K, v V) error {
	if h.t != nil {
		if h.t.put(k, v, h.spec.MaxEntries) {
			return fmt.Errorf("update map %s: %w (%d entries)", h.spec.Name, ErrMapFull, h.spec.MaxEntries)
		}
		return nil
	}
	if h.spec.MaxEntries > 0 && len(h.m) >= h.spec.MaxEntries {
		if _, ok := h.m[k]; !ok {
			return fmt.Errorf("update map %s: %w (%d entries)", h.spec.Name, ErrMapFull, h.spec.MaxEntries)
		}
	}
	h.m[k] = v
	return nil
}

// Delete removes k.
func (h *HashMap[K, V]) Delete(k K) error {
	if h.t != nil {
		if !h.t.del(k) {
			return fmt.Errorf("delete from map %s: %w", h.spec.Name, ErrKeyNotExist)
		}
		return nil
	}
	if _, ok := h.m[k]; !ok {
		return fmt.Errorf("delete from map %s: %w", h.spec.Name, ErrKeyNotExist)
	}
	delete(h.m, k)
	return nil
}

// Len returns the number of entries.
func (h *HashMap[K, V]) Len() int {
	if h.t != nil {
		return h.t.n
	}
	return len(h.m)
}

// Clear removes every entry.
func (h *HashMap[K, V]) Clear() {
	if h.t != nil {
		h.t.clear()
		return
	}
	clear(h.m)
}

// Range calls fn for every entry in no particular order until fn returns
// false. fn must not update or delete entries.
func (h *HashMap[K, V]) Range(fn func(K, V) bool) {
	if h.t != nil {
		h.t.each(fn)
		return
	}
	for k, v := range h.m {
		if !fn(k, v) {
			return
		}
	}
}

// LPMTrie is the userspace twin of a BPF LPM trie keyed by IPCacheKey.
type LPMTrie[V any] struct {
	spec MapSpec
	fib  *l3.FIB[V]
}

// NewLPMTrie returns an empty trie.
func NewLPMTrie[V any](spec MapSpec) *LPMTrie[V] {
	return &LPMTrie[V]{spec: spec, fib: l3.NewFIB[V]()}
}

func (k IPCacheKey) prefix() (netip.Prefix, error) {
	if k.PrefixLen > 32 {
		return netip.Prefix{}, fmt.Errorf("ipcache key /%d: prefix length over 32", k.PrefixLen)
	}
	return netip.PrefixFrom(netip.AddrFrom4(k.IP), int(k.PrefixLen)), nil
}

// Update inserts or replaces the prefix k.
func (t *LPMTrie[V]) Update(k IPCacheKey, v V) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("update map %s: %w", t.spec.Name, err)
	}
	if _, ok := t.fib.Get(p); !ok && t.spec.MaxEntries > 0 && t.fib.Len() >= t.spec.MaxEntries {
		return fmt.Errorf("update map %s: %w (%d entries)", t.spec.Name, ErrMapFull, t.spec.MaxEntries)
	}
	return t.fib.Insert(p, v)
}

// Delete removes the prefix k.
func (t *LPMTrie[V]) Delete(k IPCacheKey) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("delete from map %s: %w", t.spec.Name, err)
	}
	if !t.fib.Delete(p) {
		return fmt.Errorf("delete from map %s: %w", t.spec.Name, ErrKeyNotExist)
	}
	return nil
}

// Lookup returns the value of the longest prefix containing the address
// (the kernel ignores k.PrefixLen beyond using it as the search length; a
// full /32 lookup is what programs do).
func (t *LPMTrie[V]) Lookup(ip [4]byte) (V, bool) {
	v, _, ok := t.fib.Lookup(binary.BigEndian.Uint32(ip[:]))
	return v, ok
}

// Len returns the number of prefixes.
func (t *LPMTrie[V]) Len() int { return t.fib.Len() }

// Spec returns the trie's name and capacity.
func (t *LPMTrie[V]) Spec() MapSpec { return t.spec }

// Range calls fn for every prefix (longest first) until fn returns false.
func (t *LPMTrie[V]) Range(fn func(IPCacheKey, V) bool) {
	t.fib.Walk(func(p netip.Prefix, v V) bool {
		return fn(IPCacheKey{PrefixLen: uint32(p.Bits()), IP: p.Addr().As4()}, v)
	})
}

// Maps are one node's BPF maps. Tunnel and ipcache entries for other nodes
// are the same on every node (a fabric's nodes read them from one
// SharedIPCache and one SharedHashMap); endpoints, policy and conntrack
// are the node's own. The maps ending in 6 are the IPv6 ones of a
// dual-stack node (empty on an IPv4-only one; its IPv6 ipcache and tunnel
// map are its own); policy serves both families.
type Maps struct {
	Endpoints *HashMap[EndpointKey, EndpointInfo]
	IPCache   *IPCache
	Tunnel    *OverlayHashMap[TunnelKey, TunnelValue]
	Policy    *HashMap[PolicyKey, PolicyEntry]
	CT        *HashMap[CTKey, CTEntry]

	Endpoints6 *HashMap[EndpointKey6, EndpointInfo]
	IPCache6   *LPMTrie6[IPCacheValue]
	Tunnel6    *HashMap[TunnelKey6, TunnelValue]
	CT6        *HashMap[CTKey6, CTEntry]
}

// Map capacities (Cilium's defaults, roughly).
const (
	MaxEndpoints = 65535
	MaxIPCache   = 512000
	MaxTunnel    = 65536
	MaxPolicy    = 16384 * 64
	MaxCT        = 524288
)

var (
	ipcacheSpec = MapSpec{"cilium_ipcache", MaxIPCache}
	tunnelSpec  = MapSpec{"cilium_tunnel_map", MaxTunnel}
)

// NewMaps returns empty maps with the default capacities.
func NewMaps() *Maps { return newMaps(nil) }

// clusterMaps are what a fabric's nodes hold alike, kept once: the
// shared part of their ipcache and tunnel map, and the rule names of the
// shared tunnel entries.
type clusterMaps struct {
	ipcache     *SharedIPCache
	tunnel      *SharedHashMap[TunnelKey, TunnelValue]
	tunnelRules map[TunnelKey]string
}

func newClusterMaps() *clusterMaps {
	return &clusterMaps{ipcache: NewSharedIPCache(ipcacheSpec),
		tunnel: NewSharedHashMap[TunnelKey, TunnelValue](tunnelSpec), tunnelRules: map[TunnelKey]string{}}
}

// newMaps is NewMaps over a fabric's shared maps (nil: the node's own only).
func newMaps(c *clusterMaps) *Maps {
	var ipc *SharedIPCache
	var tun *SharedHashMap[TunnelKey, TunnelValue]
	if c != nil {
		ipc, tun = c.ipcache, c.tunnel
	}
	return &Maps{
		Endpoints: NewHashMap[EndpointKey, EndpointInfo](MapSpec{"cilium_lxc", MaxEndpoints}),
		IPCache:   NewIPCache(ipcacheSpec, ipc),
		Tunnel:    NewOverlayHashMap(tunnelSpec, tun),
		Policy:    NewHashMap[PolicyKey, PolicyEntry](MapSpec{"cilium_policy", MaxPolicy}),
		CT:        NewHashMap[CTKey, CTEntry](MapSpec{"cilium_ct4_global", MaxCT}),

		Endpoints6: NewHashMap[EndpointKey6, EndpointInfo](MapSpec{"cilium_lxc6", MaxEndpoints}),
		IPCache6:   NewLPMTrie6[IPCacheValue](MapSpec{"cilium_ipcache6", MaxIPCache}),
		Tunnel6:    NewHashMap[TunnelKey6, TunnelValue](MapSpec{"cilium_tunnel_map6", MaxTunnel}),
		CT6:        NewHashMap[CTKey6, CTEntry](MapSpec{"cilium_ct6_global", MaxCT}),
	}
}

func addr4(a netip.Addr) [4]byte { return a.As4() }

func port2(p uint16) [2]byte { return [2]byte{byte(p >> 8), byte(p)} }

func portOf(b [2]byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
