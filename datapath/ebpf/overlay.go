package ebpf

import "slices"

// view is the bookkeeping of one node's view of a shared table
// (SharedIPCache, SharedHashMap), from which its Len follows: owned
// counts the shared entries it leaves out (their owner is its node),
// shadowed the keys of its own that hide a shared entry it would
// otherwise show.
type view struct{ owned, shadowed int }

// holders keeps a shared table's views' counts right as entries come
// and go: per key, the views whose own entries hold it.
type holders[K comparable] map[K][]*view

// set records that the shared entry k (owned by oldOwner, if had) is now
// owner's (nil: no node's).
func (h holders[K]) set(k K, had bool, oldOwner, owner *view) {
	for _, v := range h[k] {
		if had && oldOwner != v {
			v.shadowed--
		}
		if owner != v {
			v.shadowed++
		}
	}
	if had && oldOwner != nil {
		oldOwner.owned--
	}
	if owner != nil {
		owner.owned++
	}
}

// remove records that the shared entry k, owned by owner, is gone.
func (h holders[K]) remove(k K, owner *view) {
	for _, v := range h[k] {
		if owner != v {
			v.shadowed--
		}
	}
	if owner != nil {
		owner.owned--
	}
}

// hold records that v's own entries now hold k; seen: v showed a shared
// entry for k, which its own now hides.
func (h holders[K]) hold(k K, v *view, seen bool) {
	h[k] = append(h[k], v)
	if seen {
		v.shadowed++
	}
}

// release records that v's own entries no longer hold k; seen: v now
// shows the shared entry for k again.
func (h holders[K]) release(k K, v *view, seen bool) {
	if hs := slices.DeleteFunc(h[k], func(x *view) bool { return x == v }); len(hs) == 0 {
		delete(h, k)
	} else {
		h[k] = hs
	}
	if seen {
		v.shadowed--
	}
}
