package bpf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/l3"
)

// Route protocols that mark the routes this package installs: the
// underlay's (routers' routes, hosts' default routes) and the pods'.
const (
	routeProto    = netlink.RouteProtocol(0x6e)
	podRouteProto = netlink.RouteProtocol(0x6f)
)

var errNoSuchProcess = unix.ESRCH // what deleting a missing route returns

// loopbacks returns every router's own address (its route with a local
// next hop).
func (f *Fabric) loopbacks() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, name := range f.routers {
		r, _ := f.model.Router(name)
		for _, rt := range r.Routes() {
			for _, nh := range rt.NextHops {
				if nh.Port == l3.LocalPort && rt.Prefix.Bits() == 32 {
					out[name] = rt.Prefix.Addr()
				}
			}
		}
	}
	return out
}

// buildUnderlay turns on forwarding (rp_filter off, as the unnumbered
// fabric needs; routes over a link without carrier ignored; ECMP by the
// layer 4 flow) on every router and host, puts each router's loopback on
// its lo and each host's node IP on its NICs; syncRoutes then installs
// the routes.
func (f *Fabric) buildUnderlay(ctx context.Context) error {
	lo := f.loopbacks()
	f.undo = append(f.undo, f.removeRoutes)
	for _, name := range append(slices.Clone(f.routers), f.order...) {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range []struct{ path, v string }{
			{"net/ipv4/ip_forward", "1"}, {"net/ipv4/conf/all/rp_filter", "0"}, {"net/ipv4/conf/default/rp_filter", "0"},
			// A next hop whose link lost carrier is skipped, as a BGP
			// session over it would have gone down.
			{"net/ipv4/conf/all/ignore_routes_with_linkdown", "1"},
			// ECMP by flow (addresses, protocol, ports), as the
			// model's routers hash; VXLAN's source port carries the
			// inner flow's hash.
			{"net/ipv4/fib_multipath_hash_policy", "1"},
		} {
			if err := f.sysctl(name, s.path, s.v); err != nil {
				return err
			}
		}
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			return err
		}
		if a, ok := lo[name]; ok {
			if err := f.addAddr(h, name, "lo", netip.PrefixFrom(a, 32)); err != nil {
				return err
			}
			continue
		}
		n, _ := f.model.Host(name)
		for _, c := range n.Config().NICs {
			if err := f.addAddr(h, name, c.Name, netip.PrefixFrom(n.Config().NodeIP, 32)); err != nil {
				return err
			}
		}
	}
	f.progress("gen 3: underlay addresses on %d routers and %d hosts", len(f.routers), len(f.order))
	return nil
}

// addAddr adds p to dev and registers its removal.
func (f *Fabric) addAddr(h *netlink.Handle, node, dev string, p netip.Prefix) error {
	lk, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find %s on %s: %w", dev, node, err)
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if err := h.AddrReplace(lk, a); err != nil {
		return fmt.Errorf("address %v on %s %s: %w", p, node, dev, err)
	}
	f.undo = append(f.undo, func() error {
		if err := h.AddrDel(lk, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("remove %v from %s %s: %w", p, node, dev, err)
		}
		return nil
	})
	return nil
}

// wantRoutes are a node's underlay routes: for a router the model's
// (ECMP groups to the neighbours' loopbacks or node IPs, on link), for a
// host a default route to its leaves.
func (f *Fabric) wantRoutes(name string, h *netlink.Handle, lo map[string]netip.Addr) ([]*netlink.Route, error) {
	ifindex := func(dev string) (int, error) {
		lk, err := h.LinkByName(dev)
		if err != nil {
			return 0, fmt.Errorf("find %s on %s: %w", dev, name, err)
		}
		return lk.Attrs().Index, nil
	}
	type hop struct {
		dev string
		gw  netip.Addr // invalid: on link, no gateway
	}
	route := func(dst netip.Prefix, hops []hop) (*netlink.Route, error) {
		rt := &netlink.Route{Dst: ipNet(dst), Protocol: routeProto}
		for _, hp := range hops {
			idx, err := ifindex(hp.dev)
			if err != nil {
				return nil, err
			}
			nh := &netlink.NexthopInfo{LinkIndex: idx}
			if hp.gw.IsValid() {
				nh.Gw, nh.Flags = hp.gw.AsSlice(), int(netlink.FLAG_ONLINK)
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
	var out []*netlink.Route
	t := f.env.Topology
	if r, ok := f.model.Router(name); ok {
		for _, rt := range r.Routes() {
			var hops []hop
			for _, nh := range rt.NextHops {
				if nh.Port == l3.LocalPort {
					continue
				}
				dev := t.Interfaces(name)[nh.Port]
				gw, _, ok := f.peerAddr(name, dev, lo)
				if !ok {
					return nil, fmt.Errorf("route %v on %s: no address behind %s", rt.Prefix, name, dev)
				}
				if rt.Prefix.Bits() == 32 && gw == rt.Prefix.Addr() {
					gw = netip.Addr{}
				}
				hops = append(hops, hop{dev, gw})
			}
			if len(hops) == 0 {
				continue
			}
			x, err := route(rt.Prefix, hops)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	n, _ := f.model.Host(name)
	var hops []hop
	for _, c := range n.Config().NICs {
		gw, _, ok := f.peerAddr(name, c.Name, lo)
		if !ok {
			return nil, fmt.Errorf("default route on %s: no leaf behind %s", name, c.Name)
		}
		hops = append(hops, hop{c.Name, gw})
	}
	x, err := route(netip.MustParsePrefix("0.0.0.0/0"), hops)
	if err != nil {
		return nil, err
	}
	return append(out, x), nil
}

// syncRoutes makes every router's and host's underlay routes the
// model's: replaces each, and removes routes of ours it no longer has.
func (f *Fabric) syncRoutes() error {
	lo := f.loopbacks()
	var errs []error
	for _, name := range append(slices.Clone(f.routers), f.order...) {
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want, err := f.wantRoutes(name, h, lo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keep := map[string]bool{}
		for _, rt := range want {
			keep[rt.Dst.String()] = true
			switch err := h.RouteReplace(rt); {
			case errors.Is(err, unix.ENETDOWN):
				// The node is failed (its links are set down, as power
				// loss does): the route returns with the Sync of its
				// restore.
			case err != nil:
				errs = append(errs, fmt.Errorf("route %v on %s: %w", rt.Dst, name, err))
			}
		}
		errs = append(errs, delRoutes(h, name, func(rt netlink.Route) bool { return !keep[dstString(rt.Dst)] }))
	}
	return errors.Join(errs...)
}

func dstString(d *net.IPNet) string {
	if d == nil {
		return "0.0.0.0/0"
	}
	return d.String()
}

// delRoutes removes node's routes of ours that drop selects.
func delRoutes(h *netlink.Handle, node string, drop func(netlink.Route) bool) error {
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list routes on %s: %w", node, err)
	}
	var errs []error
	for _, rt := range have {
		if drop(rt) {
			if err := h.RouteDel(&rt); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove route %v on %s: %w", rt.Dst, node, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeRoutes removes every underlay route of ours (Close).
func (f *Fabric) removeRoutes() error {
	var errs []error
	for _, name := range append(slices.Clone(f.routers), f.order...) {
		h, err := f.env.Lab.Handle(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, delRoutes(h, name, func(netlink.Route) bool { return true }))
	}
	return errors.Join(errs...)
}
