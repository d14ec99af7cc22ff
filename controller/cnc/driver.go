package cnc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
)

// PortID is a controller port's ID (controller.Port.ID).
type PortID = string

// LeafConfig is what one port needs on one leaf: the leaf's host-facing
// interface carries the access VLAN mapped to the network's VNI, and the
// leaf advertises the port's MAC and addresses in that VNI.
//
// For a VLAN (generation 1) network VNI is 0 and VLAN is the network's
// segment; for a routed network both are 0 and only the MAC/IP entry counts.
type LeafConfig struct {
	Iface   string       // the leaf's interface facing the host
	Host    string       // the host behind Iface
	VLAN    uint16       // access VLAN on Iface
	VNI     uint32       // the network's VNI
	Network string       // network ID
	Port    PortID       // the port whose entry this is
	MAC     string       // the port's MAC
	IPs     []netip.Addr // the port's addresses
	// RemoveMapping, on Remove only, also removes the VLAN → VNI mapping
	// from Iface. The CNC sets it when no other port needs the mapping.
	RemoveMapping bool
}

// Mapping is one access VLAN → VNI mapping on a leaf interface.
type Mapping struct {
	Iface string
	VLAN  uint16
	VNI   uint32
}

func (c LeafConfig) mapping() Mapping { return Mapping{Iface: c.Iface, VLAN: c.VLAN, VNI: c.VNI} }

// LeafDriver configures leaves. Every implementation must be idempotent:
// applying a config already present, or removing one already absent,
// succeeds and changes nothing. Apply installs the mapping (if missing) and
// the port's entry; Remove removes the port's entry and, when
// cfg.RemoveMapping, the mapping. Both may be called concurrently for
// different leaves and ports.
type LeafDriver interface {
	Apply(ctx context.Context, leaf string, cfg LeafConfig) error
	Remove(ctx context.Context, leaf string, cfg LeafConfig) error
}

// Entry is a MAC/IP entry a leaf advertises (an EVPN type-2 route).
type Entry struct {
	Port  PortID
	Iface string
	VNI   uint32
	VLAN  uint16
	MAC   string
	IPs   []netip.Addr
}

// LeafState is one leaf's configured state as a MemoryDriver holds it.
type LeafState struct {
	Mappings []Mapping // sorted by interface, then VLAN
	Entries  []Entry   // sorted by port
}

// HasEntry reports whether the leaf advertises port.
func (s LeafState) HasEntry(port PortID) bool {
	return slices.ContainsFunc(s.Entries, func(e Entry) bool { return e.Port == port })
}

// HasMapping reports whether the leaf maps vlan to vni on iface.
func (s LeafState) HasMapping(iface string, vlan uint16, vni uint32) bool {
	return slices.Contains(s.Mappings, Mapping{Iface: iface, VLAN: vlan, VNI: vni})
}

// MemoryDriver is the in-memory LeafDriver: it keeps every leaf's configured
// state, for the simulator and for tests. Fail makes calls fail on demand.
type MemoryDriver struct {
	mu     sync.Mutex
	leaves map[string]*memLeaf
	fail   map[string]int // leaf -> calls left to fail
	calls  int
}

type memLeaf struct {
	mappings map[Mapping]bool
	entries  map[PortID]Entry
}

var _ LeafDriver = (*MemoryDriver)(nil)

// NewMemoryDriver returns a driver with no leaf configured.
func NewMemoryDriver() *MemoryDriver {
	return &MemoryDriver{leaves: map[string]*memLeaf{}, fail: map[string]int{}}
}

// ErrInjected is the error of a call that Fail made fail.
var ErrInjected = errors.New("injected leaf failure")

// Fail makes the next n calls for leaf fail with ErrInjected; n < 0 makes
// every call fail until Fail(leaf, 0).
func (d *MemoryDriver) Fail(leaf string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail[leaf] = n
}

func (d *MemoryDriver) begin(ctx context.Context, op, leaf string) (*memLeaf, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s on leaf %s: %w", op, leaf, err)
	}
	d.calls++
	if n := d.fail[leaf]; n != 0 {
		if n > 0 {
			d.fail[leaf] = n - 1
		}
		return nil, fmt.Errorf("%s on leaf %s: %w", op, leaf, ErrInjected)
	}
	l := d.leaves[leaf]
	if l == nil {
		l = &memLeaf{mappings: map[Mapping]bool{}, entries: map[PortID]Entry{}}
		d.leaves[leaf] = l
	}
	return l, nil
}

// Apply installs cfg's mapping and entry on leaf.
func (d *MemoryDriver) Apply(ctx context.Context, leaf string, cfg LeafConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, err := d.begin(ctx, "apply", leaf)
	if err != nil {
		return err
	}
	if cfg.VLAN != 0 || cfg.VNI != 0 {
		l.mappings[cfg.mapping()] = true
	}
	l.entries[cfg.Port] = Entry{Port: cfg.Port, Iface: cfg.Iface, VNI: cfg.VNI, VLAN: cfg.VLAN, MAC: cfg.MAC, IPs: slices.Clone(cfg.IPs)}
	return nil
}

// Remove removes cfg's entry from leaf, and its mapping if asked.
func (d *MemoryDriver) Remove(ctx context.Context, leaf string, cfg LeafConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, err := d.begin(ctx, "remove", leaf)
	if err != nil {
		return err
	}
	// Only the entry cfg describes goes: a removal built from a stale or
	// partial view of the port changes nothing.
	if e, ok := l.entries[cfg.Port]; ok && e.Iface == cfg.Iface && e.MAC == cfg.MAC {
		delete(l.entries, cfg.Port)
	}
	if cfg.RemoveMapping {
		delete(l.mappings, cfg.mapping())
	}
	return nil
}

// Calls returns how many Apply and Remove calls the driver has seen.
func (d *MemoryDriver) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// Leaf returns a copy of leaf's configured state.
func (d *MemoryDriver) Leaf(leaf string) LeafState {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s LeafState
	l := d.leaves[leaf]
	if l == nil {
		return s
	}
	for m := range l.mappings {
		s.Mappings = append(s.Mappings, m)
	}
	sort.Slice(s.Mappings, func(i, j int) bool {
		a, b := s.Mappings[i], s.Mappings[j]
		if a.Iface != b.Iface {
			return a.Iface < b.Iface
		}
		return a.VLAN < b.VLAN
	})
	for _, e := range l.entries {
		e.IPs = slices.Clone(e.IPs)
		s.Entries = append(s.Entries, e)
	}
	sort.Slice(s.Entries, func(i, j int) bool { return s.Entries[i].Port < s.Entries[j].Port })
	return s
}

// Leaves returns the names of the leaves that hold any configuration.
func (d *MemoryDriver) Leaves() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name, l := range d.leaves {
		if len(l.mappings) > 0 || len(l.entries) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
