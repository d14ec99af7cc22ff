package cnc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/topologies"
)

// ErrUnknownDevice: a blast radius was asked of a device the topology
// lacks.
var ErrUnknownDevice = errors.New("no such device in the topology")

// Radius is what one device's failure touches.
type Radius struct {
	Device string
	Role   topologies.Role
	// Dependent ports lose at least one path (DependentPorts); Isolated
	// ports lose every path (IsolatedPorts). Both sorted.
	Dependent []PortID
	Isolated  []PortID
}

// BlastRadius computes device's radius over ports' host bindings on topo,
// without a running CNC: for planning, or for ports read from a
// controller's API.
func BlastRadius(topo *topologies.Topology, ports []controller.Port, device string) (Radius, error) {
	w := newWiring(topo)
	n := topo.Node(device)
	if n == nil {
		return Radius{}, fmt.Errorf("blast radius of %q: %w %s", device, ErrUnknownDevice, topo.Name)
	}
	r := Radius{Device: device, Role: n.Role}
	dep, iso := w.hostHit(device, false), w.hostHit(device, true)
	for _, p := range ports {
		if p.Host == "" {
			continue
		}
		if dep(p.Host) {
			r.Dependent = append(r.Dependent, p.ID)
		}
		if iso(p.Host) {
			r.Isolated = append(r.Isolated, p.ID)
		}
	}
	sort.Strings(r.Dependent)
	sort.Strings(r.Isolated)
	return r, nil
}

// hostHit returns whether a host's ports depend on device (isolatedOnly:
// lose every path when it fails), or nil for an unknown device.
func (w *wiring) hostHit(device string, isolatedOnly bool) func(host string) bool {
	n := w.topo.Node(device)
	if n == nil {
		return nil
	}
	switch n.Role {
	case topologies.RoleHost:
		return func(h string) bool { return h == device }
	case topologies.RoleLeaf:
		return func(h string) bool {
			ls := w.leafSet(h)
			return ls[device] && (!isolatedOnly || len(ls) == 1)
		}
	}
	// A device above the leaves: a leaf is cut off when it is the leaf's
	// only uplink.
	return func(h string) bool {
		ls := w.leafSet(h)
		dep, allCut := false, len(ls) > 0
		for l := range ls {
			up := w.up[l]
			d := slices.Contains(up, device)
			dep = dep || d
			allCut = allCut && d && len(up) == 1
		}
		if isolatedOnly {
			return allCut
		}
		return dep
	}
}

// Attach builds a CNC for svc, makes it svc's overlay and queues every port
// already bound, as a controller restarting on its store needs: leaves are
// (re)configured for the bindings the store holds.
func Attach(ctx context.Context, svc *controller.Service, topo *topologies.Topology, drv LeafDriver, o Options) (*CNC, error) {
	c := New(topo, drv, svc, o)
	svc.SetOverlay(c)
	ports, err := svc.ListPorts(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("attach CNC: list ports: %w", err)
	}
	c.Resync(ports)
	return c, nil
}
