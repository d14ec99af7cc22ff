package ebpf

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netbed/netbed/datapath/l3"
)

// SharedIPCache is the cluster-wide part of every node's ipcache. Cilium's
// agents each hold the same entries for every pod and node of the cluster
// (the kvstore's content, replicated per node); the model keeps those
// entries once, and each node's IPCache reads them beneath a small overlay
// of its own (its addresses, its local pods, whatever was written on that
// node alone). An entry has an owner, the node the address lives on: the
// owner's view leaves the entry out, as Cilium's agent writes its own pods
// as local endpoints, not as remote ones. Writing a pod's address is then
// one update, not one per node, while every view still answers Len, Lookup
// and Range as if the entry had been written to every node but its owner.
//
// A SharedIPCache and its views are not safe for concurrent use.
type SharedIPCache struct {
	spec MapSpec
	fib  *l3.FIB[sharedIPCacheEntry]
	// holders are, per prefix, the views whose overlay holds it, so
	// that a shared write keeps their counts of hidden entries right.
	holders holders[netip.Prefix]
}

type sharedIPCacheEntry struct {
	v     IPCacheValue
	owner *view // left out of this view; nil: in every view
}

// NewSharedIPCache returns an empty shared table; spec's capacity bounds
// it and every view of it.
func NewSharedIPCache(spec MapSpec) *SharedIPCache {
	return &SharedIPCache{spec: spec, fib: l3.NewFIB[sharedIPCacheEntry](), holders: holders[netip.Prefix]{}}
}

// Len returns the number of shared entries.
func (s *SharedIPCache) Len() int { return s.fib.Len() }

// Set inserts or replaces the prefix k in every view but owner's (owner
// nil: in every view).
func (s *SharedIPCache) Set(k IPCacheKey, v IPCacheValue, owner *IPCache) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("update shared map %s: %w", s.spec.Name, err)
	}
	p = p.Masked()
	old, had := s.fib.Get(p)
	if !had && s.spec.MaxEntries > 0 && s.fib.Len() >= s.spec.MaxEntries {
		return fmt.Errorf("update shared map %s: %w (%d entries)", s.spec.Name, ErrMapFull, s.spec.MaxEntries)
	}
	var o *view
	if owner != nil {
		o = &owner.view
	}
	s.holders.set(p, had, old.owner, o)
	return s.fib.Insert(p, sharedIPCacheEntry{v: v, owner: o})
}

// Delete removes the prefix k from the shared table.
func (s *SharedIPCache) Delete(k IPCacheKey) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("delete from shared map %s: %w", s.spec.Name, err)
	}
	p = p.Masked()
	old, had := s.fib.Get(p)
	if !had {
		return fmt.Errorf("delete from shared map %s: %w", s.spec.Name, ErrKeyNotExist)
	}
	s.holders.remove(p, old.owner)
	s.fib.Delete(p)
	return nil
}

// IPCache is one node's ipcache, the userspace twin of Cilium's LPM trie
// keyed by IPCacheKey: the node's own entries over the cluster's shared
// ones (SharedIPCache), or only its own when it has no shared table.
// Update and Delete change the node's own entries.
type IPCache struct {
	spec   MapSpec
	local  *l3.FIB[IPCacheValue]
	shared *SharedIPCache
	view
}

// NewIPCache returns a node's ipcache over shared (nil: a stand-alone
// map), with no entries of its own.
func NewIPCache(spec MapSpec, shared *SharedIPCache) *IPCache {
	return &IPCache{spec: spec, local: l3.NewFIB[IPCacheValue](), shared: shared}
}

// Shared returns the shared table the view reads, nil if none.
func (c *IPCache) Shared() *SharedIPCache { return c.shared }

// Spec returns the map's name and capacity.
func (c *IPCache) Spec() MapSpec { return c.spec }

// sees reports whether the view shows a shared entry for p.
func (c *IPCache) sees(p netip.Prefix) bool {
	if c.shared == nil {
		return false
	}
	e, ok := c.shared.fib.Get(p)
	return ok && e.owner != &c.view
}

// Update inserts or replaces the prefix k among the node's own entries;
// it hides a shared entry of the same prefix.
func (c *IPCache) Update(k IPCacheKey, v IPCacheValue) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("update map %s: %w", c.spec.Name, err)
	}
	p = p.Masked()
	if _, ok := c.local.Get(p); ok {
		return c.local.Insert(p, v)
	}
	seen := c.sees(p)
	if !seen && c.spec.MaxEntries > 0 && c.Len() >= c.spec.MaxEntries {
		return fmt.Errorf("update map %s: %w (%d entries)", c.spec.Name, ErrMapFull, c.spec.MaxEntries)
	}
	if err := c.local.Insert(p, v); err != nil {
		return err
	}
	if c.shared != nil {
		c.shared.holders.hold(p, &c.view, seen)
	}
	return nil
}

// Delete removes the prefix k from the node's own entries (a shared
// entry is removed from the SharedIPCache, for every node at once).
func (c *IPCache) Delete(k IPCacheKey) error {
	p, err := k.prefix()
	if err != nil {
		return fmt.Errorf("delete from map %s: %w", c.spec.Name, err)
	}
	p = p.Masked()
	if !c.local.Delete(p) {
		return fmt.Errorf("delete from map %s: %w", c.spec.Name, ErrKeyNotExist)
	}
	if c.shared != nil {
		c.shared.holders.release(p, &c.view, c.sees(p))
	}
	return nil
}

// Lookup returns the value of the longest prefix containing the address
// among the node's own entries and the shared ones it shows; at equal
// length the node's own wins.
func (c *IPCache) Lookup(ip [4]byte) (IPCacheValue, bool) {
	a := binary.BigEndian.Uint32(ip[:])
	lv, lbits, lok := c.local.Lookup(a)
	if c.shared != nil {
		e, sbits, sok := c.shared.fib.Lookup(a)
		for sok && e.owner == &c.view {
			e, sbits, sok = c.shared.fib.LookupBelow(a, sbits)
		}
		if sok && (!lok || sbits > lbits) {
			return e.v, true
		}
	}
	return lv, lok
}

// Len returns the number of prefixes the node's map holds: its own and
// the shared ones it shows.
func (c *IPCache) Len() int {
	n := c.local.Len()
	if c.shared != nil {
		n += c.shared.fib.Len() - c.owned - c.shadowed
	}
	return n
}

// Range calls fn for every prefix of the node's map (longest first, then
// by address) until fn returns false.
func (c *IPCache) Range(fn func(IPCacheKey, IPCacheValue) bool) {
	if c.shared == nil {
		c.local.Walk(func(p netip.Prefix, v IPCacheValue) bool {
			return fn(IPCacheKey{PrefixLen: uint32(p.Bits()), IP: p.Addr().As4()}, v)
		})
		return
	}
	type entry struct {
		k IPCacheKey
		v IPCacheValue
	}
	all := make([]entry, 0, c.Len())
	c.local.Walk(func(p netip.Prefix, v IPCacheValue) bool {
		all = append(all, entry{IPCacheKey{PrefixLen: uint32(p.Bits()), IP: p.Addr().As4()}, v})
		return true
	})
	c.shared.fib.Walk(func(p netip.Prefix, e sharedIPCacheEntry) bool {
		if _, mine := c.local.Get(p); e.owner != &c.view && !mine {
			all = append(all, entry{IPCacheKey{PrefixLen: uint32(p.Bits()), IP: p.Addr().As4()}, e.v})
		}
		return true
	})
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.k.PrefixLen, a.k.PrefixLen),
			cmp.Compare(binary.BigEndian.Uint32(a.k.IP[:]), binary.BigEndian.Uint32(b.k.IP[:])))
	})
	for _, e := range all {
		if !fn(e.k, e.v) {
			return
		}
	}
}
