package ipam

import (
	"fmt"
	"math"
	"net/netip"
)

// Range is an inclusive span of addresses of one family.
type Range struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.Start.BitLen() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// Size is the number of addresses in r, saturating at math.MaxUint64.
func (r Range) Size() uint64 {
	d := diff(r.End, r.Start)
	if d == math.MaxUint64 {
		return d
	}
	return d + 1
}

// Validate checks that r is well-formed and inside p.
func (r Range) Validate(p netip.Prefix) error {
	if !r.Start.IsValid() || !r.End.IsValid() {
		return fmt.Errorf("range %v: start and end must both be addresses", r)
	}
	if r.Start.BitLen() != r.End.BitLen() {
		return fmt.Errorf("range %v: start and end of different IP families", r)
	}
	if r.Start.Compare(r.End) > 0 {
		return fmt.Errorf("range %v: start after end", r)
	}
	if !p.Contains(r.Start) || !p.Contains(r.End) {
		return fmt.Errorf("range %v: %w %v", r, ErrOutOfRange, p)
	}
	return nil
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool {
	return r.Start.BitLen() == o.Start.BitLen() && r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0
}

// diff returns a-b for a >= b of one family, saturating at MaxUint64.
func diff(a, b netip.Addr) uint64 {
	x, y := a.As16(), b.As16()
	hiA, loA := be64(x[:8]), be64(x[8:])
	hiB, loB := be64(y[:8]), be64(y[8:])
	lo := loA - loB
	borrow := uint64(0)
	if loA < loB {
		borrow = 1
	}
	hi := hiA - hiB - borrow
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// add returns a+n, and false when it overflows the family's address space.
func add(a netip.Addr, n uint64) (netip.Addr, bool) {
	x := a.As16()
	hi, lo := be64(x[:8]), be64(x[8:])
	nlo := lo + n
	if nlo < lo {
		hi++
		if hi == 0 {
			return netip.Addr{}, false
		}
	}
	putBE64(x[:8], hi)
	putBE64(x[8:], nlo)
	if a.Is4() {
		if hi != 0 || x[8] != 0 || x[9] != 0 || x[10] != 0xff || x[11] != 0xff {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte(x[12:16])), true
	}
	return netip.AddrFrom16(x), true
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// LastAddr returns the last address of p (the broadcast address for IPv4).
func LastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(a)
}

// DefaultRange is the allocation range of a subnet without explicit pools:
// every address of p except the first (network address, or IPv6's
// subnet-router anycast) and, for IPv4, the last (broadcast). The gateway,
// if inside, is excluded by the caller's reservation.
func DefaultRange(p netip.Prefix) (Range, bool) {
	p = p.Masked()
	start := p.Addr().Next()
	end := LastAddr(p)
	if p.Addr().Is4() {
		end = end.Prev()
	}
	if !start.IsValid() || !end.IsValid() || start.Compare(end) > 0 || !p.Contains(start) {
		return Range{}, false
	}
	return Range{Start: start, End: end}, true
}
