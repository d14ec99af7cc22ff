package ebpf

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// FirstCIDRIdentity is the first CIDR identity: Cilium numbers the
// identities of CIDR selectors in the node-local scope, from 2^24, so
// they never travel in a VNI (its 24 bits carry pod identities only).
const FirstCIDRIdentity Identity = 1 << 24

// IsCIDR reports whether id is a CIDR identity.
func (id Identity) IsCIDR() bool { return id >= FirstCIDRIdentity }

// CIDRIdentities numbers prefixes as CIDR identities from
// FirstCIDRIdentity, IPv4 before IPv6, shorter before longer, then by
// address: the same prefixes always get the same numbers.
func CIDRIdentities(prefixes []netip.Prefix) map[netip.Prefix]Identity {
	ps := slices.Clone(prefixes)
	for i, p := range ps {
		ps[i] = p.Masked()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if a.Addr().Is4() != b.Addr().Is4() {
			if a.Addr().Is4() {
				return -1
			}
			return 1
		}
		if a.Bits() != b.Bits() {
			return a.Bits() - b.Bits()
		}
		return a.Addr().Compare(b.Addr())
	})
	ps = slices.Compact(ps)
	out := make(map[netip.Prefix]Identity, len(ps))
	for i, p := range ps {
		out[p] = FirstCIDRIdentity + Identity(i)
	}
	return out
}

// SetCIDRIdentities writes the prefixes of policies' CIDR selectors
// (NetworkPolicy ipBlocks outside the pods) into every node's ipcache
// with their identities, IPv4 and IPv6 alike, replacing the previous set:
// an address outside the cluster then resolves, by longest prefix, to the
// identity of the most specific such prefix holding it, or to world. Pod
// and node addresses, longer prefixes, keep their own identities. A
// prefix of length 0 is world and is not written.
func (f *Fabric) SetCIDRIdentities(ids map[netip.Prefix]Identity) error {
	for p := range f.cidrs {
		if _, keep := ids[p]; keep {
			continue
		}
		if p.Addr().Is4() {
			_ = f.cluster.ipcache.Delete(IPCacheKey{uint32(p.Bits()), p.Addr().As4()})
			continue
		}
		for _, h := range f.order {
			_ = f.hosts[h].maps.IPCache6.Delete(ipcacheKey6(p))
		}
	}
	f.cidrs = map[netip.Prefix]Identity{}
	for _, p := range slices.SortedFunc(maps.Keys(ids), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		id := ids[p]
		if p.Bits() == 0 {
			continue
		}
		if !id.IsCIDR() {
			return fmt.Errorf("CIDR identity of %v: %d is not a CIDR identity (from %d)", p, id, FirstCIDRIdentity)
		}
		if p != p.Masked() {
			return fmt.Errorf("CIDR identity %d: %v has host bits set", id, p)
		}
		v := IPCacheValue{Identity: uint32(id)}
		if p.Addr().Is4() {
			if err := f.cluster.ipcache.Set(IPCacheKey{uint32(p.Bits()), p.Addr().As4()}, v, nil); err != nil {
				return fmt.Errorf("CIDR identity %d of %v: %w", id, p, err)
			}
		} else {
			for _, h := range f.order {
				if err := f.hosts[h].maps.IPCache6.Update(ipcacheKey6(p), v); err != nil {
					return fmt.Errorf("CIDR identity %d of %v on %s: %w", id, p, h, err)
				}
			}
		}
		f.cidrs[p] = id
	}
	return nil
}

// CIDRIdentity returns the prefix a CIDR identity stands for.
func (f *Fabric) CIDRIdentity(id Identity) (netip.Prefix, bool) {
	for p, i := range f.cidrs {
		if i == id {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
