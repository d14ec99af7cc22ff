package evpndriver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
)

// Driver is the cnc.LeafDriver of the generation 2 fabric model: it maps
// access VLANs to VNIs on an evpn.Fabric's leaves and, on the leaf of the
// host's active NIC, binds the port's MAC and advertises its type-2 routes
// (MAC, IP, L3 VNI; one per address of a dual-stack port), as the seed's
// CNC does on the switches.
//
// The fabric's node models are not safe for concurrent use: every call
// holds Lock, which whoever else drives the fabric (the simulator) must
// share. Networks go through AddNetwork, so that the driver knows each
// VNI's host-side VLAN and tenant; pass AccessVLAN as cnc.Options.AccessVLAN so
// that the CNC uses the VLAN the fabric's hosts tag with.
type Driver struct {
	Lock sync.Locker
	f    *evpn.Fabric
	nets map[uint32]datapath.NetworkSpec // by VNI
}

var _ cnc.LeafDriver = (*Driver)(nil)

// New returns a driver of f serialised by lock (nil: a mutex of
// its own).
func New(f *evpn.Fabric, lock sync.Locker) *Driver {
	if lock == nil {
		lock = &sync.Mutex{}
	}
	return &Driver{Lock: lock, f: f, nets: map[uint32]datapath.NetworkSpec{}}
}

// AddNetwork adds n to the fabric (every leaf learns its subnet, anycast
// gateway and tenant) and records its VLAN and tenant.
func (d *Driver) AddNetwork(n datapath.NetworkSpec) error {
	d.Lock.Lock()
	defer d.Lock.Unlock()
	if err := d.f.AddNetwork(n); err != nil {
		return err
	}
	d.nets[n.VNI] = n
	return nil
}

// AccessVLAN returns the host-side VLAN of vni (the same on every leaf).
func (d *Driver) AccessVLAN(_ string, vni uint32) (uint16, bool) {
	d.Lock.Lock()
	defer d.Lock.Unlock()
	n, ok := d.nets[vni]
	return n.VLAN, ok
}

// leafPort finds the leaf and the index of cfg's interface on it.
func (d *Driver) leafPort(leaf string, cfg cnc.LeafConfig) (*evpn.Leaf, int, error) {
	l, ok := d.f.Leaf(leaf)
	if !ok {
		return nil, 0, fmt.Errorf("leaf %q: not a leaf of the evpn fabric", leaf)
	}
	port := slices.Index(l.Ports(), cfg.Iface)
	if port < 0 {
		return nil, 0, fmt.Errorf("leaf %q has no interface %q", leaf, cfg.Iface)
	}
	return l, port, nil
}

// primary reports whether leaf is the one behind host's active NIC, which
// binds and advertises the host's endpoints.
func (d *Driver) primary(leaf, host string) bool {
	ls := d.f.HostLeaves(host)
	return len(ls) > 0 && ls[0] == leaf
}

func (d *Driver) routes(l *evpn.Leaf, cfg cnc.LeafConfig) ([]evpn.Route, error) {
	hw, err := net.ParseMAC(cfg.MAC)
	if err != nil {
		return nil, fmt.Errorf("port %s: MAC %q: %w", cfg.Port, cfg.MAC, err)
	}
	mac := evpn.MACOf(hw)
	n := d.nets[cfg.VNI]
	l3vni, _ := d.f.L3VNI(n.Tenant)
	var out []evpn.Route
	for _, ip := range cfg.IPs {
		// One type-2 route per address, IPv4 and IPv6 alike (a
		// dual-stack port has two).
		if ip.IsValid() {
			out = append(out, evpn.Route{Type: evpn.MACIP, VNI: cfg.VNI, L3VNI: l3vni, MAC: mac, IP: ip.Unmap(), VTEP: l.VTEP(), RouterMAC: l.RouterMAC()})
		}
	}
	if len(out) == 0 {
		out = append(out, evpn.Route{Type: evpn.MACIP, VNI: cfg.VNI, MAC: mac, VTEP: l.VTEP()})
	}
	return out, nil
}

// Apply maps cfg.VLAN to cfg.VNI on the leaf port and, on the primary
// leaf, binds the port and advertises it from the leaf (its BGP speaker:
// a leaf whose session is down advertises it when the session is back).
func (d *Driver) Apply(ctx context.Context, leaf string, cfg cnc.LeafConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.Lock.Lock()
	defer d.Lock.Unlock()
	if _, ok := d.nets[cfg.VNI]; !ok {
		return fmt.Errorf("apply on leaf %s: VNI %d: %w (add the network with Driver.AddNetwork)", leaf, cfg.VNI, evpn.ErrUnknownVNI)
	}
	l, port, err := d.leafPort(leaf, cfg)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := l.ConfigurePort(port, cfg.VLAN, cfg.VNI); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if !d.primary(leaf, cfg.Host) {
		return nil
	}
	rts, err := d.routes(l, cfg)
	if err != nil {
		return fmt.Errorf("apply on leaf %s: %w", leaf, err)
	}
	if err := l.BindLocal(port, cfg.VLAN, rts[0].MAC); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	for _, r := range rts {
		if err := l.Advertise(r); err != nil {
			return fmt.Errorf("apply on leaf %s: %w", leaf, err)
		}
	}
	return nil
}

// Remove withdraws the port's routes from this leaf, unbinds its MAC and,
// when asked, removes the VLAN → VNI mapping.
func (d *Driver) Remove(ctx context.Context, leaf string, cfg cnc.LeafConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.Lock.Lock()
	defer d.Lock.Unlock()
	l, port, err := d.leafPort(leaf, cfg)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	rts, err := d.routes(l, cfg)
	if err != nil {
		return fmt.Errorf("remove on leaf %s: %w", leaf, err)
	}
	for _, r := range rts {
		// Only a route still pointing at this leaf goes; after a move the
		// newer one stays.
		if err := l.Withdraw(r); err != nil && !errors.Is(err, evpn.ErrNotFound) {
			return fmt.Errorf("remove on leaf %s: %w", leaf, err)
		}
	}
	if err := l.UnbindLocal(cfg.VNI, rts[0].MAC); err != nil && !errors.Is(err, evpn.ErrNotFound) {
		return fmt.Errorf("remove: %w", err)
	}
	if cfg.RemoveMapping {
		if err := l.UnconfigurePort(port, cfg.VLAN); err != nil && !errors.Is(err, evpn.ErrNotFound) {
			return fmt.Errorf("remove: %w", err)
		}
	}
	return nil
}
