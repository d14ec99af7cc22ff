package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/frame/gratuitous"
	"github.com/netbed/netbed/internal/announce"
	labns "github.com/netbed/netbed/topologies/netns"
)

// netlinkLinker is the linker on Linux: every call aims at the pod's
// namespace through a netlink handle, without moving the thread.
type netlinkLinker struct{}

var _ linker = netlinkLinker{}

func openNS(path string) (netns.NsHandle, *netlink.Handle, error) {
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return 0, nil, err
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		nsh.Close()
		return 0, nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return nsh, h, nil
}

func (netlinkLinker) Setup(w wiring) (_ wired, err error) {
	nsh, ch, err := openNS(w.Netns)
	if err != nil {
		return wired{}, fmt.Errorf("open netns %s: %w", w.Netns, err)
	}
	defer nsh.Close()
	defer ch.Close()
	hh, err := netlink.NewHandle()
	if err != nil {
		return wired{}, err
	}
	defer hh.Close()

	// A host side left by an earlier ADD of this container goes first.
	if old, err := hh.LinkByName(w.HostIf); err == nil {
		if err := hh.LinkDel(old); err != nil {
			return wired{}, fmt.Errorf("remove stale %s: %w", w.HostIf, err)
		}
	}
	if _, err := ch.LinkByName(w.IfName); err == nil {
		return wired{}, fmt.Errorf("interface %s already exists in %s; DEL the container first or pick another CNI_IFNAME", w.IfName, w.Netns)
	}

	la := netlink.NewLinkAttrs()
	la.Name = w.HostIf
	la.MTU = w.MTU
	veth := &netlink.Veth{LinkAttrs: la, PeerName: w.IfName, PeerHardwareAddr: w.MAC, PeerNamespace: netlink.NsFd(int(nsh))}
	if w.MTU > 0 {
		veth.PeerMTU = uint32(w.MTU)
	}
	if err := hh.LinkAdd(veth); err != nil {
		return wired{}, fmt.Errorf("create veth %s <-> %s in %s: %w", w.HostIf, w.IfName, w.Netns, err)
	}
	defer func() {
		if err != nil {
			if l, lerr := hh.LinkByName(w.HostIf); lerr == nil {
				_ = hh.LinkDel(l)
			}
		}
	}()
	host, err := hh.LinkByName(w.HostIf)
	if err != nil {
		return wired{}, err
	}
	pod, err := ch.LinkByName(w.IfName)
	if err != nil {
		return wired{}, fmt.Errorf("find %s in %s: %w", w.IfName, w.Netns, err)
	}
	out := wired{HostMAC: host.Attrs().HardwareAddr, PodMAC: pod.Attrs().HardwareAddr}

	// Host side.
	if w.Routed || w.Bridge == "" {
		if err := hh.LinkSetUp(host); err != nil {
			return out, fmt.Errorf("up %s: %w", w.HostIf, err)
		}
	} else {
		br, err := bridge(hh, w.Bridge, w.CreateBridge)
		if err != nil {
			return out, err
		}
		if err := hh.LinkSetMaster(host, br); err != nil {
			return out, fmt.Errorf("attach %s to %s: %w", w.HostIf, w.Bridge, err)
		}
		if err := hh.LinkSetUp(host); err != nil {
			return out, fmt.Errorf("up %s: %w", w.HostIf, err)
		}
	}

	// Pod side.
	if lo, err := ch.LinkByName("lo"); err == nil {
		_ = ch.LinkSetUp(lo)
	}
	if slices.ContainsFunc(w.Addrs, func(a netip.Prefix) bool { return a.Addr().Is6() }) {
		// A dual-stack pod: IPv6 on for its interface, quietly (its
		// addresses and routes are configured), and for the routed host
		// side, which carries the host route.
		if err := labns.DoIn(nsh, func() error { return enableIPv6(w.IfName) }); err != nil {
			return out, fmt.Errorf("IPv6 on %s in %s: %w", w.IfName, w.Netns, err)
		}
		if w.Routed {
			if err := enableIPv6(w.HostIf); err != nil {
				return out, fmt.Errorf("IPv6 on %s: %w", w.HostIf, err)
			}
		}
	}
	for _, a := range w.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := ch.AddrReplace(pod, addr); err != nil {
			return out, fmt.Errorf("address %v on %s: %w", a, w.IfName, err)
		}
	}
	if err := ch.LinkSetUp(pod); err != nil {
		return out, fmt.Errorf("up %s: %w", w.IfName, err)
	}
	idx := pod.Attrs().Index
	for _, gw := range w.Gateways {
		if w.Routed {
			// The gateway is on the host side: reach it on-link, with a
			// permanent neighbour entry (nothing answers ARP for it).
			if err := ch.RouteReplace(&netlink.Route{LinkIndex: idx, Scope: netlink.SCOPE_LINK, Dst: ipNet(netip.PrefixFrom(gw, gw.BitLen()))}); err != nil {
				return out, fmt.Errorf("route to gateway %v: %w", gw, err)
			}
			fam := netlink.FAMILY_V4
			if gw.Is6() {
				fam = netlink.FAMILY_V6
			}
			if err := ch.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: fam, State: netlink.NUD_PERMANENT, IP: gw.AsSlice(), HardwareAddr: out.HostMAC}); err != nil {
				return out, fmt.Errorf("neighbour %v on %s: %w", gw, w.IfName, err)
			}
		}
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if err := ch.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: ipNet(def), Gw: gw.AsSlice()}); err != nil {
			return out, fmt.Errorf("default route via %v: %w", gw, err)
		}
	}
	if w.Routed {
		for _, a := range w.Addrs {
			dst := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
			if err := hh.RouteReplace(&netlink.Route{LinkIndex: host.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: ipNet(dst)}); err != nil {
				return out, fmt.Errorf("host route to %v via %s: %w", dst, w.HostIf, err)
			}
		}
	}
	// The pod announces its addresses, as the reference plugins do once
	// the addresses are configured: switches that knew the MAC elsewhere
	// (a pod that drifted here) relearn it. A bridge forwards from the
	// host side only once the kernel has seen its carrier (the host
	// side's operational state up), so that comes first. Like theirs, a
	// failed announcement does not fail ADD.
	waitOperUp(hh, w.HostIf, 2*time.Second)
	_ = announce.SendIn(w.Netns, w.IfName, announcements(out.PodMAC, w.Addrs)...)
	return out, nil
}

// quietIPv6 turn IPv6 on for an interface without duplicate address
// detection, router solicitations or autoconfiguration, in that order, so
// that enabling it sends none of them.
var quietIPv6 = [][2]string{{"accept_dad", "0"}, {"router_solicitations", "0"}, {"accept_ra", "0"}, {"autoconf", "0"}, {"disable_ipv6", "0"}}

// enableIPv6 turns IPv6 on for ifname in the calling thread's namespace
// (a namespace may start with it off, as netbed's netns backend's do).
func enableIPv6(ifname string) error {
	for _, kv := range quietIPv6 {
		p := "/proc/sys/net/ipv6/conf/" + ifname + "/" + kv[0]
		if err := os.WriteFile(p, []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// waitOperUp waits up to timeout for the link name to be operationally up.
func waitOperUp(h *netlink.Handle, name string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if l, err := h.LinkByName(name); err == nil && l.Attrs().OperState == netlink.OperUp {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// announcements are the frames a pod with addresses addrs sends on ADD:
// a gratuitous ARP per IPv4 address, an unsolicited neighbour
// advertisement per IPv6 one.
func announcements(mac net.HardwareAddr, addrs []netip.Prefix) [][]byte {
	var out [][]byte
	for _, a := range addrs {
		if a.Addr().Is4() {
			out = append(out, gratuitous.ARP(mac, a.Addr()))
		} else {
			out = append(out, gratuitous.NA(mac, a.Addr()))
		}
	}
	return out
}

// bridge returns the bridge called name, creating it when asked.
func bridge(h *netlink.Handle, name string, create bool) (netlink.Link, error) {
	br, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("find bridge %s: %w", name, err)
		}
		if !create {
			return nil, fmt.Errorf("bridge %s not found on this host; create it (ip link add %s type bridge) or set \"createBridge\": true", name, name)
		}
		la := netlink.NewLinkAttrs()
		la.Name = name
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if br, err = h.LinkByName(name); err != nil {
			return nil, fmt.Errorf("find bridge %s: %w", name, err)
		}
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("%s is a %s, not a bridge; set \"bridge\" to the host's bridge", name, br.Type())
	}
	if err := h.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("up bridge %s: %w", name, err)
	}
	return br, nil
}

func (netlinkLinker) Teardown(nsPath, ifName, hostIf string) error {
	hh, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer hh.Close()
	if l, err := hh.LinkByName(hostIf); err == nil {
		if err := hh.LinkDel(l); err != nil {
			return fmt.Errorf("delete %s: %w", hostIf, err)
		}
	}
	if nsPath == "" {
		return nil
	}
	if _, err := os.Stat(nsPath); err != nil {
		return nil // the namespace is gone, and its links with it
	}
	nsh, ch, err := openNS(nsPath)
	if err != nil {
		return nil // not a namespace (any more): nothing of ours is in it
	}
	defer nsh.Close()
	defer ch.Close()
	if l, err := ch.LinkByName(ifName); err == nil && l.Type() == "veth" {
		if err := ch.LinkDel(l); err != nil {
			return fmt.Errorf("delete %s in %s: %w", ifName, nsPath, err)
		}
	}
	return nil
}

func (netlinkLinker) Check(w wiring) error {
	nsh, ch, err := openNS(w.Netns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", w.Netns, err)
	}
	defer nsh.Close()
	defer ch.Close()
	pod, err := ch.LinkByName(w.IfName)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", w.IfName, w.Netns, err)
	}
	if pod.Type() != "veth" {
		return fmt.Errorf("%s in %s is a %s, not a veth", w.IfName, w.Netns, pod.Type())
	}
	if pod.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("%s in %s is down", w.IfName, w.Netns)
	}
	if w.MAC != nil && pod.Attrs().HardwareAddr.String() != w.MAC.String() {
		return fmt.Errorf("%s in %s has MAC %s, want %s", w.IfName, w.Netns, pod.Attrs().HardwareAddr, w.MAC)
	}
	if w.MTU > 0 && pod.Attrs().MTU != w.MTU {
		return fmt.Errorf("%s in %s has MTU %d, want %d", w.IfName, w.Netns, pod.Attrs().MTU, w.MTU)
	}
	addrs, err := ch.AddrList(pod, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	var have []netip.Prefix
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ones, _ := a.Mask.Size()
			have = append(have, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	for _, want := range w.Addrs {
		if !slices.Contains(have, want) {
			return fmt.Errorf("%s in %s lacks address %v (has %v)", w.IfName, w.Netns, want, have)
		}
	}
	hh, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer hh.Close()
	host, err := hh.LinkByName(w.HostIf)
	if err != nil {
		return fmt.Errorf("host side %s: %w", w.HostIf, err)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("host side %s is down", w.HostIf)
	}
	if pod.Attrs().ParentIndex != 0 && pod.Attrs().ParentIndex != host.Attrs().Index {
		return fmt.Errorf("%s in %s is not paired with %s", w.IfName, w.Netns, w.HostIf)
	}
	if !w.Routed && w.Bridge != "" {
		br, err := hh.LinkByName(w.Bridge)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", w.Bridge, err)
		}
		if host.Attrs().MasterIndex != br.Attrs().Index {
			return fmt.Errorf("host side %s is not attached to %s", w.HostIf, w.Bridge)
		}
	}
	return nil
}
