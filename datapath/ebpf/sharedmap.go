package ebpf

import "fmt"

// SharedHashMap is the cluster-wide part of a hash map every node holds
// alike (the tunnel map: every other node's CIDR and IP), kept once, as
// SharedIPCache does for the ipcache. Each node's OverlayHashMap reads
// it beneath entries of its own; an entry's owner, the node it is about,
// leaves it out of its view.
//
// A SharedHashMap and its views are not safe for concurrent use.
type SharedHashMap[K comparable, V any] struct {
	spec    MapSpec
	m       map[K]sharedHashEntry[V]
	holders holders[K]
}

type sharedHashEntry[V any] struct {
	v     V
	owner *view // left out of this view; nil: in every view
}

// NewSharedHashMap returns an empty shared map; spec's capacity bounds it.
func NewSharedHashMap[K comparable, V any](spec MapSpec) *SharedHashMap[K, V] {
	return &SharedHashMap[K, V]{spec: spec, m: map[K]sharedHashEntry[V]{}, holders: holders[K]{}}
}

// Len returns the number of shared entries.
func (s *SharedHashMap[K, V]) Len() int { return len(s.m) }

// Set inserts or replaces k in every view but owner's (nil: in every view).
func (s *SharedHashMap[K, V]) Set(k K, v V, owner *OverlayHashMap[K, V]) error {
	old, had := s.m[k]
	if !had && s.spec.MaxEntries > 0 && len(s.m) >= s.spec.MaxEntries {
		return fmt.Errorf("update shared map %s: %w (%d entries)", s.spec.Name, ErrMapFull, s.spec.MaxEntries)
	}
	var o *view
	if owner != nil {
		o = &owner.view
	}
	s.holders.set(k, had, old.owner, o)
	s.m[k] = sharedHashEntry[V]{v: v, owner: o}
	return nil
}

// Delete removes k from the shared map.
func (s *SharedHashMap[K, V]) Delete(k K) error {
	old, had := s.m[k]
	if !had {
		return fmt.Errorf("delete from shared map %s: %w", s.spec.Name, ErrKeyNotExist)
	}
	s.holders.remove(k, old.owner)
	delete(s.m, k)
	return nil
}

// OverlayHashMap is one node's hash map: its own entries over a
// SharedHashMap's (or its own only, with none). It answers Lookup, Len
// and Range as HashMap does for the entries the node holds; Update and
// Delete change the node's own.
type OverlayHashMap[K comparable, V any] struct {
	spec   MapSpec
	local  map[K]V
	shared *SharedHashMap[K, V]
	view
}

// NewOverlayHashMap returns a node's map over shared (nil: stand-alone).
func NewOverlayHashMap[K comparable, V any](spec MapSpec, shared *SharedHashMap[K, V]) *OverlayHashMap[K, V] {
	return &OverlayHashMap[K, V]{spec: spec, local: map[K]V{}, shared: shared}
}

// Spec returns the map's name and capacity.
func (o *OverlayHashMap[K, V]) Spec() MapSpec { return o.spec }

func (o *OverlayHashMap[K, V]) sees(k K) bool {
	if o.shared == nil {
		return false
	}
	e, ok := o.shared.m[k]
	return ok && e.owner != &o.view
}

// Lookup returns the value for k: the node's own, else the shared one.
func (o *OverlayHashMap[K, V]) Lookup(k K) (V, bool) {
	if len(o.local) > 0 {
		if v, ok := o.local[k]; ok {
			return v, true
		}
	}
	if o.shared != nil {
		if e, ok := o.shared.m[k]; ok && e.owner != &o.view {
			return e.v, true
		}
	}
	var zero V
	return zero, false
}

// Update inserts or replaces k among the node's own entries.
func (o *OverlayHashMap[K, V]) Update(k K, v V) error {
	if _, ok := o.local[k]; ok {
		o.local[k] = v
		return nil
	}
	seen := o.sees(k)
	if !seen && o.spec.MaxEntries > 0 && o.Len() >= o.spec.MaxEntries {
		return fmt.Errorf("update map %s: %w (%d entries)", o.spec.Name, ErrMapFull, o.spec.MaxEntries)
	}
	o.local[k] = v
	if o.shared != nil {
		o.shared.holders.hold(k, &o.view, seen)
	}
	return nil
}

// Delete removes k from the node's own entries.
func (o *OverlayHashMap[K, V]) Delete(k K) error {
	if _, ok := o.local[k]; !ok {
		return fmt.Errorf("delete from map %s: %w", o.spec.Name, ErrKeyNotExist)
	}
	delete(o.local, k)
	if o.shared != nil {
		o.shared.holders.release(k, &o.view, o.sees(k))
	}
	return nil
}

// Len returns the number of entries the node holds.
func (o *OverlayHashMap[K, V]) Len() int {
	n := len(o.local)
	if o.shared != nil {
		n += len(o.shared.m) - o.owned - o.shadowed
	}
	return n
}

// Range calls fn for every entry the node holds, in no particular order,
// until fn returns false.
func (o *OverlayHashMap[K, V]) Range(fn func(K, V) bool) {
	for k, v := range o.local {
		if !fn(k, v) {
			return
		}
	}
	if o.shared == nil {
		return
	}
	for k, e := range o.shared.m {
		if _, mine := o.local[k]; e.owner == &o.view || mine {
			continue
		}
		if !fn(k, e.v) {
			return
		}
	}
}
