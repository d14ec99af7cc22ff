package ebpf

import (
	"maps"
	"slices"
	"strings"
)

// Identity is a security identity: every pod with the same labels has the
// same one, wherever it runs.
type Identity uint32

// Reserved identities, as Cilium numbers them.
const (
	IdentityAny        Identity = 0 // wildcard in policy keys
	IdentityHost       Identity = 1 // the local node
	IdentityWorld      Identity = 2 // anything outside the cluster
	IdentityRemoteNode Identity = 6 // another node of the cluster
	// FirstPodIdentity is the first identity allocated for pod labels.
	FirstPodIdentity Identity = 256
)

// LabelsKey is the canonical form of a label set: "k=v" pairs sorted by
// key, joined by commas. Equal label sets give equal keys.
func LabelsKey(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// Identities allocates identities for label sets: the same labels always
// get the same identity; new label sets get the next number from
// FirstPodIdentity, so the numbering depends only on the order in which
// label sets first appear. Identities are never released (Cilium garbage-
// collects unused ones; a simulation run does not need to).
type Identities struct {
	byKey  map[string]Identity
	labels map[Identity]map[string]string
	next   Identity
}

// NewIdentities returns an empty allocator.
func NewIdentities() *Identities {
	return &Identities{byKey: map[string]Identity{}, labels: map[Identity]map[string]string{}, next: FirstPodIdentity}
}

// Allocate returns the identity of labels, allocating it on first use.
func (a *Identities) Allocate(labels map[string]string) Identity {
	k := LabelsKey(labels)
	if id, ok := a.byKey[k]; ok {
		return id
	}
	id := a.next
	a.next++
	a.byKey[k] = id
	a.labels[id] = maps.Clone(labels)
	return id
}

// Lookup returns the identity of labels without allocating.
func (a *Identities) Lookup(labels map[string]string) (Identity, bool) {
	id, ok := a.byKey[LabelsKey(labels)]
	return id, ok
}

// Labels returns the labels of id.
func (a *Identities) Labels(id Identity) (map[string]string, bool) {
	l, ok := a.labels[id]
	return l, ok
}

// All returns the allocated pod identities in ascending order.
func (a *Identities) All() []Identity {
	return slices.Sorted(maps.Keys(a.labels))
}

// Selects reports whether selector (labels that must all be present with
// these values) matches labels. An empty selector matches everything.
func Selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
