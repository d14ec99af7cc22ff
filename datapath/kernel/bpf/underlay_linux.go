package bpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/kernel"
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
		if err := kernel.RouteNode(f.env.Lab, name); err != nil {
			return err
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
	peer := func(node, iface string) (netip.Addr, bool) {
		a, _, ok := f.peerAddr(node, iface, lo)
		return a, ok
	}
	if r, ok := f.model.Router(name); ok {
		return kernel.ModelRoutes(h, f.env.Topology, name, r.Routes(), routeProto, peer)
	}
	n, _ := f.model.Host(name)
	var hops []kernel.Hop
	for _, c := range n.Config().NICs {
		gw, ok := peer(name, c.Name)
		if !ok {
			return nil, fmt.Errorf("default route on %s: no leaf behind %s", name, c.Name)
		}
		hops = append(hops, kernel.Hop{Dev: c.Name, Gw: gw})
	}
	x, err := kernel.ECMPRoute(h, name, netip.MustParsePrefix("0.0.0.0/0"), hops, routeProto)
	if err != nil {
		return nil, err
	}
	return []*netlink.Route{x}, nil
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
		errs = append(errs, kernel.SyncRoutes(h, name, routeProto, want))
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
		errs = append(errs, kernel.DelRoutes(h, name, routeProto, nil))
	}
	return errors.Join(errs...)
}
