package main

import (
	"net"
	"net/netip"
)

// wiring is one veth pair the plugin puts between the host and a pod.
type wiring struct {
	Netns  string // the pod's network namespace (path)
	IfName string // the pod-side name (CNI_IFNAME)
	HostIf string // the host-side name
	MAC    net.HardwareAddr
	// Addrs are the pod's addresses with their prefix length; Gateways
	// the default gateways (one per family).
	Addrs    []netip.Prefix
	Gateways []netip.Addr
	MTU      int
	// Routed (ebpf): the host side is a plain veth with a /32 route to the
	// pod, the pod reaches its gateway through the host side's MAC.
	// Otherwise (evpn) the host side is enslaved to Bridge, if one is
	// named.
	Routed       bool
	Bridge       string
	CreateBridge bool
}

// wired is what Setup made.
type wired struct {
	HostMAC, PodMAC net.HardwareAddr
}

// linker creates, removes and checks the veth pairs; the Linux
// implementation is netlink, unit tests use a fake.
type linker interface {
	// Setup creates and configures the pair; on error it leaves nothing.
	Setup(w wiring) (wired, error)
	// Teardown removes the pair; missing links and a missing namespace
	// are not errors.
	Teardown(netnsPath, ifName, hostIf string) error
	// Check verifies the pair is as Setup left it.
	Check(w wiring) error
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
