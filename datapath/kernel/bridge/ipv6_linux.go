package bridge

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/kernel"
)

// IPv6 on a leaf. The tenants' side is dual-stack, the underlay stays
// IPv4 (the model's: VXLAN between IPv4 loopbacks). A dual-stack
// network's bridge gets IPv6 (its own devices only: the lab's namespaces
// start with IPv6 off) and the anycast gateway's IPv6 address beside the
// IPv4 one, without duplicate address detection (every leaf holds it);
// remote hosts' type-2 MAC/IPv6 bindings are neighbours on the bridge as
// the IPv4 ones are, which the bridge answers neighbour solicitations
// from (neigh_suppress covers ND). Between subnets an IPv6 route cannot
// name an IPv4 next hop (the kernel refuses RTA_VIA for IPv6), so the
// remote VTEP is the IPv4-mapped IPv6 next hop ::ffff:<VTEP> on link over
// the L3 VNI bridge, and that address a neighbour there with the VTEP's
// router MAC: what zebra installs for IPv6 routes over an IPv4 EVPN
// underlay. vishvananda/netlink encodes an IPv4-mapped address as IPv4
// (a 4-byte gateway or neighbour), so these routes and neighbours are
// written with requests of our own.

// ipv6Sysctls turn IPv6 on for one device of a leaf, quietly: no
// duplicate address detection (the anycast gateway's address is on every
// leaf), no router advertisements taken.
var ipv6Sysctls = [][2]string{{"accept_dad", "0"}, {"accept_ra", "0"}, {"disable_ipv6", "0"}}

// enableIPv6 turns IPv6 on for dev on leaf l.
func (f *Fabric) enableIPv6(l *leaf, dev string) error {
	return f.env.Lab.Do(l.name, func() error {
		for _, kv := range ipv6Sysctls {
			p := "/proc/sys/net/ipv6/conf/" + dev + "/" + kv[0]
			if err := os.WriteFile(p, []byte(kv[1]), 0o644); err != nil {
				return fmt.Errorf("IPv6 on %s: %w", dev, err)
			}
		}
		return nil
	})
}

// mapped is the IPv6 next hop of an IPv4 VTEP: ::ffff:<VTEP>.
func mapped(vtep netip.Addr) netip.Addr { return netip.AddrFrom16(vtep.As16()) }

// route6 is an IPv6 tenant route over the L3 VNI bridge dev: on link
// through each VTEP's mapped address (ECMP over several).
type route6 struct {
	dst   netip.Prefix
	table int
	dev   int
	vteps []netip.Addr
}

// replaceRoute6 installs r (replacing a route to the same prefix) in the
// calling thread's namespace.
func replaceRoute6(r route6) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	msg := nl.NewRtMsg()
	msg.Family, msg.Dst_len, msg.Protocol = unix.AF_INET6, uint8(r.dst.Bits()), uint8(tenantProto)
	msg.Table = unix.RT_TABLE_UNSPEC
	if r.table < 256 {
		msg.Table = uint8(r.table)
	}
	req.AddData(msg)
	dst := r.dst.Addr().As16()
	req.AddData(nl.NewRtAttr(unix.RTA_DST, dst[:]))
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(r.table))))
	gw := func(v netip.Addr) []byte {
		a := mapped(v).As16()
		return a[:]
	}
	if len(r.vteps) == 1 {
		msg.Flags |= unix.RTNH_F_ONLINK
		req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(r.dev))))
		req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gw(r.vteps[0])))
	} else {
		var buf []byte
		for _, v := range r.vteps {
			nh := &nl.RtNexthop{RtNexthop: unix.RtNexthop{Ifindex: int32(r.dev), Flags: unix.RTNH_F_ONLINK},
				Children: []nl.NetlinkRequestData{nl.NewRtAttr(unix.RTA_GATEWAY, gw(v))}}
			buf = append(buf, nh.Serialize()...)
		}
		req.AddData(nl.NewRtAttr(unix.RTA_MULTIPATH, buf))
	}
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("route %v via %v onlink table %d: %w", r.dst, r.vteps, r.table, err)
	}
	return nil
}

// mappedNeigh sets (set) or removes the neighbour ::ffff:<vtep> with
// mac on dev (noarp, extern_learn) in the calling thread's namespace.
func mappedNeigh(set bool, dev int, vtep netip.Addr, mac evpn.MAC) error {
	typ, flags := unix.RTM_DELNEIGH, unix.NLM_F_ACK
	if set {
		typ, flags = unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(typ, flags)
	req.AddData(&netlink.Ndmsg{Family: unix.AF_INET6, Index: uint32(dev), State: netlink.NUD_NOARP, Flags: netlink.NTF_EXT_LEARNED})
	a := mapped(vtep).As16()
	req.AddData(nl.NewRtAttr(unix.NDA_DST, a[:]))
	if set {
		req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, mac.HardwareAddr()))
	}
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("neighbour %v lladdr %s extern_learn: %w", mapped(vtep), mac, err)
	}
	return nil
}

// ipv6Of reports whether a VRF routes any IPv6: then its L3 VNI bridge
// needs IPv6 on, and the remote VTEPs their mapped neighbours.
func ipv6Of(v evpn.VRFState) bool {
	for _, c := range v.Connected {
		if c.Prefix.Addr().Is6() {
			return true
		}
	}
	for _, h := range v.Hosts {
		if h.IP.Is6() {
			return true
		}
	}
	for _, p := range v.Prefixes {
		if p.Prefix.Addr().Is6() {
			return true
		}
	}
	return false
}

// defaultRoute is the unreachable default of a tenant's table in one
// family: nothing falls through to the main (underlay) table.
func defaultRoute(family, table int) *netlink.Route {
	dst := netip.MustParsePrefix("0.0.0.0/0")
	if family == netlink.FAMILY_V6 {
		dst = netip.MustParsePrefix("::/0")
	}
	return &netlink.Route{Dst: kernel.IPNet(dst), Type: unix.RTN_UNREACHABLE, Table: table, Protocol: tenantProto}
}
