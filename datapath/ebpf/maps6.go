package ebpf

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// IPv6 beside IPv4: Cilium keys one endpoints map and one ipcache by
// (family, address); the twins here keep a map per family, with the same
// values, so that the IPv4 keys keep their layout. The policy map is
// keyed by identities and serves both families unchanged.

// EndpointKey6 is the key of the IPv6 endpoints map: a local pod's IPv6
// address.
type EndpointKey6 struct {
	IP [16]byte // network order
}

// IPCacheKey6 is the key of the IPv6 ipcache LPM trie (bpf_lpm_trie_key
// layout: the prefix length, then the address).
type IPCacheKey6 struct {
	PrefixLen uint32   // bits of IP that count
	IP        [16]byte // network order
}

// TunnelKey6 is the key of the IPv6 tunnel map: an IPv6 node CIDR's
// network address; the value is the node's (IPv4) underlay address, as
// Cilium tunnels both families over one underlay.
type TunnelKey6 struct {
	IP [16]byte
}

// CTKey6 is an IPv6 conntrack tuple (cilium_ct6_global). For ICMPv6
// echo, both ports hold the echo ID.
type CTKey6 struct {
	Src, Dst     [16]byte
	SPort, DPort [2]byte
	Proto        uint8
	_            [3]byte
}

// LPMTrie6 is the userspace twin of a BPF LPM trie keyed by IPCacheKey6:
// one hash map per prefix length in use, probed from the longest, as
// l3.FIB does for IPv4.
type LPMTrie6[V any] struct {
	spec MapSpec
	lens []uint8          // prefix lengths in use, longest first
	tabs []map[[16]byte]V // the prefixes of each length, as lens
	n    int
}

// table returns the map of prefixes of length bits, or nil.
func (t *LPMTrie6[V]) table(bits int) map[[16]byte]V {
	for i, l := range t.lens {
		if int(l) == bits {
			return t.tabs[i]
		}
	}
	return nil
}

// NewLPMTrie6 returns an empty trie.
func NewLPMTrie6[V any](spec MapSpec) *LPMTrie6[V] {
	return &LPMTrie6[V]{spec: spec}
}

func (k IPCacheKey6) masked() ([16]byte, int, error) {
	if k.PrefixLen > 128 {
		return [16]byte{}, 0, fmt.Errorf("ipcache key /%d: prefix length over 128", k.PrefixLen)
	}
	return mask16(k.IP, int(k.PrefixLen)), int(k.PrefixLen), nil
}

// mask16 clears the bits of a past the first bits.
func mask16(a [16]byte, bits int) [16]byte {
	for i := range a {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			a[i] &= ^byte(0xff >> bits)
			bits = 0
		default:
			a[i] = 0
		}
	}
	return a
}

// Update inserts or replaces the prefix k.
func (t *LPMTrie6[V]) Update(k IPCacheKey6, v V) error {
	a, bits, err := k.masked()
	if err != nil {
		return fmt.Errorf("update map %s: %w", t.spec.Name, err)
	}
	m := t.table(bits)
	if _, ok := m[a]; !ok {
		if t.spec.MaxEntries > 0 && t.n >= t.spec.MaxEntries {
			return fmt.Errorf("update map %s: %w (%d entries)", t.spec.Name, ErrMapFull, t.spec.MaxEntries)
		}
		if m == nil {
			m = map[[16]byte]V{}
			i, _ := slices.BinarySearchFunc(t.lens, uint8(bits), func(x, y uint8) int { return cmp.Compare(y, x) })
			t.lens = slices.Insert(t.lens, i, uint8(bits))
			t.tabs = slices.Insert(t.tabs, i, m)
		}
		t.n++
	}
	m[a] = v
	return nil
}

// Delete removes the prefix k.
func (t *LPMTrie6[V]) Delete(k IPCacheKey6) error {
	a, bits, err := k.masked()
	if err != nil {
		return fmt.Errorf("delete from map %s: %w", t.spec.Name, err)
	}
	m := t.table(bits)
	if _, ok := m[a]; !ok {
		return fmt.Errorf("delete from map %s: %w", t.spec.Name, ErrKeyNotExist)
	}
	delete(m, a)
	t.n--
	if len(m) == 0 {
		i := slices.Index(t.lens, uint8(bits))
		t.lens = slices.Delete(t.lens, i, i+1)
		t.tabs = slices.Delete(t.tabs, i, i+1)
	}
	return nil
}

// Lookup returns the value of the longest prefix containing ip.
func (t *LPMTrie6[V]) Lookup(ip [16]byte) (V, bool) {
	for i, l := range t.lens {
		if v, ok := t.tabs[i][mask16(ip, int(l))]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// Len returns the number of prefixes.
func (t *LPMTrie6[V]) Len() int { return t.n }

// Spec returns the trie's name and capacity.
func (t *LPMTrie6[V]) Spec() MapSpec { return t.spec }

// Range calls fn for every prefix (longest first, then by address) until
// fn returns false.
func (t *LPMTrie6[V]) Range(fn func(IPCacheKey6, V) bool) {
	for i, l := range t.lens {
		keys := make([][16]byte, 0, len(t.tabs[i]))
		for a := range t.tabs[i] {
			keys = append(keys, a)
		}
		slices.SortFunc(keys, func(x, y [16]byte) int { return netip.AddrFrom16(x).Compare(netip.AddrFrom16(y)) })
		for _, a := range keys {
			if !fn(IPCacheKey6{PrefixLen: uint32(l), IP: a}, t.tabs[i][a]) {
				return
			}
		}
	}
}

// ipcacheKey6 returns the IPv6 ipcache key of p.
func ipcacheKey6(p netip.Prefix) IPCacheKey6 {
	return IPCacheKey6{PrefixLen: uint32(p.Bits()), IP: p.Masked().Addr().As16()}
}
