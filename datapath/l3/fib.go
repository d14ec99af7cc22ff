package l3

import (
	"fmt"
	"net/netip"
	"slices"
)

// FIB is an IPv4 longest-prefix-match table mapping prefixes to values of
// type V. It keeps one hash map per prefix length and probes the lengths in
// use from longest to shortest, so a lookup costs at most one map probe per
// distinct length present and allocates nothing.
//
// A FIB is not safe for concurrent use.
type FIB[V any] struct {
	byLen [33]map[uint32]V
	lens  []uint8 // prefix lengths in use, longest first
	n     int
}

// NewFIB returns an empty FIB.
func NewFIB[V any]() *FIB[V] { return &FIB[V]{} }

func mask(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func key(p netip.Prefix) (uint32, int, error) {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0, 0, fmt.Errorf("prefix %v: %w", p, ErrNotIPv4)
	}
	a := p.Addr().As4()
	bits := p.Bits()
	return be32(a) & mask(bits), bits, nil
}

func be32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

// Insert adds or replaces the value for p (host bits are ignored).
func (f *FIB[V]) Insert(p netip.Prefix, v V) error {
	k, bits, err := key(p)
	if err != nil {
		return fmt.Errorf("fib insert: %w", err)
	}
	m := f.byLen[bits]
	if m == nil {
		m = make(map[uint32]V)
		f.byLen[bits] = m
		f.lens = append(f.lens, uint8(bits))
		slices.SortFunc(f.lens, func(a, b uint8) int { return int(b) - int(a) })
	}
	if _, ok := m[k]; !ok {
		f.n++
	}
	m[k] = v
	return nil
}

// Delete removes p and reports whether it was present.
func (f *FIB[V]) Delete(p netip.Prefix) bool {
	k, bits, err := key(p)
	if err != nil {
		return false
	}
	m := f.byLen[bits]
	if _, ok := m[k]; !ok {
		return false
	}
	delete(m, k)
	f.n--
	if len(m) == 0 {
		f.byLen[bits] = nil
		f.lens = slices.DeleteFunc(f.lens, func(l uint8) bool { return int(l) == bits })
	}
	return true
}

// Get returns the value stored for exactly p.
func (f *FIB[V]) Get(p netip.Prefix) (V, bool) {
	var zero V
	k, bits, err := key(p)
	if err != nil {
		return zero, false
	}
	v, ok := f.byLen[bits][k]
	return v, ok
}

// Lookup returns the value of the longest prefix containing addr and that
// prefix's length.
func (f *FIB[V]) Lookup(addr uint32) (v V, bits int, ok bool) {
	for _, l := range f.lens {
		if v, ok := f.byLen[l][addr&mask(int(l))]; ok {
			return v, int(l), true
		}
	}
	return v, 0, false
}

// LookupBelow is Lookup restricted to prefixes shorter than below bits:
// the next match after one of length below, for a caller that must skip
// that one.
func (f *FIB[V]) LookupBelow(addr uint32, below int) (v V, bits int, ok bool) {
	for _, l := range f.lens {
		if int(l) >= below {
			continue
		}
		if v, ok := f.byLen[l][addr&mask(int(l))]; ok {
			return v, int(l), true
		}
	}
	return v, 0, false
}

// LookupAddr is Lookup for a netip.Addr; non-IPv4 addresses never match.
func (f *FIB[V]) LookupAddr(a netip.Addr) (V, netip.Prefix, bool) {
	var zero V
	if !a.Is4() {
		return zero, netip.Prefix{}, false
	}
	v, bits, ok := f.Lookup(be32(a.As4()))
	if !ok {
		return zero, netip.Prefix{}, false
	}
	p, _ := a.Prefix(bits)
	return v, p, true
}

// Len returns the number of prefixes.
func (f *FIB[V]) Len() int { return f.n }

// Walk calls fn for every prefix, longest first, then by address.
func (f *FIB[V]) Walk(fn func(p netip.Prefix, v V) bool) {
	for _, l := range f.lens {
		keys := make([]uint32, 0, len(f.byLen[l]))
		for k := range f.byLen[l] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			a := netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)})
			if !fn(netip.PrefixFrom(a, int(l)), f.byLen[l][k]) {
				return
			}
		}
	}
}
