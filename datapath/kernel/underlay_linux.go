package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/topologies"
)

// RouterSysctls are what a node that routes a fabric's underlay sets in
// its namespace: forwarding on, rp_filter off (the fabric is unnumbered:
// a packet's source is a loopback behind another interface), a next hop
// over a link without carrier skipped (as a BGP session over it would
// have dropped), ECMP by the layer-4 flow (as the models' routers hash;
// a VXLAN packet's UDP source port carries its inner flow's hash).
var RouterSysctls = []struct{ Path, Value string }{
	{"net/ipv4/ip_forward", "1"},
	{"net/ipv4/conf/all/rp_filter", "0"},
	{"net/ipv4/conf/default/rp_filter", "0"},
	{"net/ipv4/conf/all/ignore_routes_with_linkdown", "1"},
	{"net/ipv4/fib_multipath_hash_policy", "1"},
}

// Sysctl writes /proc/sys/<path> in node's namespace.
func Sysctl(lab Lab, node, path, value string) error {
	return lab.Do(node, func() error {
		if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s on %s: %w", path, value, node, err)
		}
		return nil
	})
}

// RouteNode applies RouterSysctls in node's namespace.
func RouteNode(lab Lab, node string) error {
	for _, s := range RouterSysctls {
		if err := Sysctl(lab, node, s.Path, s.Value); err != nil {
			return err
		}
	}
	return nil
}

// Hop is one next hop of a kernel route: out of Dev, through Gw (on
// link: the unnumbered fabric's neighbour answers ARP for its loopback),
// or straight to the destination when Gw is invalid.
type Hop struct {
	Dev string
	Gw  netip.Addr
}

// ECMPRoute is the route to dst over hops (one: a plain route; more: a
// multipath route), marked with proto.
func ECMPRoute(h *netlink.Handle, node string, dst netip.Prefix, hops []Hop, proto netlink.RouteProtocol) (*netlink.Route, error) {
	rt := &netlink.Route{Dst: IPNet(dst), Protocol: proto}
	for _, hp := range hops {
		lk, err := h.LinkByName(hp.Dev)
		if err != nil {
			return nil, fmt.Errorf("route %v on %s: find %s: %w", dst, node, hp.Dev, err)
		}
		nh := &netlink.NexthopInfo{LinkIndex: lk.Attrs().Index}
		if hp.Gw.IsValid() {
			nh.Gw, nh.Flags = hp.Gw.AsSlice(), int(netlink.FLAG_ONLINK)
		}
		rt.MultiPath = append(rt.MultiPath, nh)
	}
	if len(rt.MultiPath) == 1 {
		nh := rt.MultiPath[0]
		rt.MultiPath, rt.LinkIndex, rt.Gw, rt.Flags = nil, nh.LinkIndex, nh.Gw, nh.Flags
		if nh.Gw == nil {
			rt.Scope = netlink.SCOPE_LINK
		}
	}
	return rt, nil
}

// ModelRoutes turns a router model's routes (l3.Route, next hops by the
// node's topology port) into kernel routes: each next hop through the
// address peerAddr gives for the far end of its link (the neighbour's
// loopback), on link; a route to that neighbour itself goes straight out
// of the interface. Routes with only local next hops are left out.
func ModelRoutes(h *netlink.Handle, t *topologies.Topology, node string, rs []l3.Route, proto netlink.RouteProtocol,
	peerAddr func(node, iface string) (netip.Addr, bool)) ([]*netlink.Route, error) {
	ifaces := t.Interfaces(node)
	var out []*netlink.Route
	for _, rt := range rs {
		var hops []Hop
		for _, nh := range rt.NextHops {
			if nh.Port == l3.LocalPort {
				continue
			}
			if nh.Port < 0 || nh.Port >= len(ifaces) {
				return nil, fmt.Errorf("route %v on %s: port %d out of range", rt.Prefix, node, nh.Port)
			}
			dev := ifaces[nh.Port]
			gw, ok := peerAddr(node, dev)
			if !ok {
				return nil, fmt.Errorf("route %v on %s: no address behind %s", rt.Prefix, node, dev)
			}
			if rt.Prefix.Bits() == 32 && gw == rt.Prefix.Addr() {
				gw = netip.Addr{}
			}
			hops = append(hops, Hop{dev, gw})
		}
		if len(hops) == 0 {
			continue
		}
		x, err := ECMPRoute(h, node, rt.Prefix, hops, proto)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// SyncRoutes makes node's main-table routes marked proto exactly want:
// it replaces each, and removes the others of proto. A route over a link
// that is down (a failed node's) is left for the next sync.
func SyncRoutes(h *netlink.Handle, node string, proto netlink.RouteProtocol, want []*netlink.Route) error {
	keep := map[string]bool{}
	var errs []error
	for _, rt := range want {
		keep[dstString(rt.Dst)] = true
		switch err := h.RouteReplace(rt); {
		case errors.Is(err, unix.ENETDOWN):
		case err != nil:
			errs = append(errs, fmt.Errorf("route %v on %s: %w", rt.Dst, node, err))
		}
	}
	errs = append(errs, DelRoutes(h, node, proto, func(rt netlink.Route) bool { return !keep[dstString(rt.Dst)] }))
	return errors.Join(errs...)
}

// DelRoutes removes node's main-table routes marked proto that drop
// selects (nil: all of them).
func DelRoutes(h *netlink.Handle, node string, proto netlink.RouteProtocol, drop func(netlink.Route) bool) error {
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list routes on %s: %w", node, err)
	}
	var errs []error
	for _, rt := range have {
		if drop == nil || drop(rt) {
			if err := h.RouteDel(&rt); err != nil && !IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove route %v on %s: %w", rt.Dst, node, err))
			}
		}
	}
	return errors.Join(errs...)
}

// IsNotFound reports whether err says that what was to be removed is gone.
func IsNotFound(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT)
}

func dstString(d *net.IPNet) string {
	if d == nil {
		return "0.0.0.0/0"
	}
	return d.String()
}

// IPNet is p as a *net.IPNet.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
