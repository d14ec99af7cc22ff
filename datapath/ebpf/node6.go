package ebpf

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
)

// IPv6 in the programs: the same paths as IPv4 (bpf_lxc, cilium_vxlan
// and bpf_overlay), reading the maps ending in 6, with neighbour
// discovery where IPv4 has ARP: bpf_lxc answers a pod's neighbour
// solicitation for any address but its own with cilium_host's MAC (as
// Cilium's icmp6 NDP handling does for the router address), so a pod
// only ever resolves its gateway. The underlay stays IPv4: IPv6 pod
// packets cross nodes inside VXLAN between node IPs (tunnel mode).

const (
	etherTypeIPv6 = 0x86dd
	ip6Len        = 40
	protoICMPv6   = 58
	icmp6EchoReq  = 128
	icmp6NS       = 135
)

// ipv6 checks that b is an untagged IPv6 frame with a whole header and
// the payload its header says.
func ipv6(b []byte) bool {
	return len(b) >= 14+ip6Len && binary.BigEndian.Uint16(b[12:14]) == etherTypeIPv6 && b[14]>>4 == 6 &&
		int(binary.BigEndian.Uint16(b[18:20])) <= len(b)-14-ip6Len
}

func src6(b []byte) [16]byte { return [16]byte(b[22:38]) }
func dst6(b []byte) [16]byte { return [16]byte(b[38:54]) }

// AddEndpointIPv6 gives the endpoint called name its IPv6 address: the
// IPv6 endpoints map and ipcache entries. ip must lie in the node's IPv6
// CIDR and not be its network address or gateway.
func (n *Node) AddEndpointIPv6(name string, ip netip.Addr) error {
	ep, ok := n.byName[name]
	if !ok {
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %w", name, n.cfg.Name, ErrNotFound)
	}
	c := n.cfg.NodeCIDR6
	switch {
	case !c.IsValid():
		return fmt.Errorf("add IPv6 address %v to endpoint %q on %s: the node has no IPv6 CIDR: %w", ip, name, n.cfg.Name, datapath.ErrNoIPv6)
	case ep.IP6.IsValid():
		return fmt.Errorf("add IPv6 address %v to endpoint %q on %s: it has %v: %w", ip, name, n.cfg.Name, ep.IP6, ErrExists)
	case !c.Contains(ip):
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %v: %w %v; give the pod an address from %v", name, n.cfg.Name, ip, ErrOutsideNodeCIDR, c, c)
	case ip == c.Addr() || ip == n.gw6:
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %v in %v: %w (network, gateway %v on cilium_host); use another address", name, n.cfg.Name, ip, c, ErrReservedAddr, n.gw6)
	}
	k := EndpointKey6{ip.As16()}
	if _, ok := n.maps.Endpoints6.Lookup(k); ok {
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %v: %w", name, n.cfg.Name, ip, ErrAddrInUse)
	}
	info, _ := n.maps.Endpoints.Lookup(EndpointKey{ep.IP.As4()})
	if err := n.maps.Endpoints6.Update(k, info); err != nil {
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %w", name, n.cfg.Name, err)
	}
	if err := n.maps.IPCache6.Update(IPCacheKey6{128, k.IP}, IPCacheValue{Identity: uint32(ep.Identity)}); err != nil {
		_ = n.maps.Endpoints6.Delete(k)
		return fmt.Errorf("add IPv6 address to endpoint %q on %s: %w", name, n.cfg.Name, err)
	}
	ep.IP6, ep.allowRule6 = ip, "endpoint:"+ip.String()
	return nil
}

func (n *Node) setTunnel6(cidr netip.Prefix, nodeIP netip.Addr) error {
	k := TunnelKey6{cidr.Masked().Addr().As16()}
	if err := n.maps.Tunnel6.Update(k, TunnelValue{nodeIP.As4()}); err != nil {
		return err
	}
	if n.tunnels6 == nil {
		n.tunnels6 = map[TunnelKey6]string{}
	}
	n.tunnels6[k] = "tunnel:" + cidr.Masked().String() + "->" + nodeIP.String()
	return nil
}

// tunnelFor6 returns the tunnel map entry covering an IPv6 pod address
// of another node, in tunnel mode.
func (n *Node) tunnelFor6(a [16]byte) (TunnelKey6, TunnelValue, bool) {
	d := netip.AddrFrom16(a)
	if n.cfg.Mode != Tunnel || !n.cfg.ClusterCIDR6.Contains(d) || n.cfg.NodeCIDR6.Contains(d) {
		return TunnelKey6{}, TunnelValue{}, false
	}
	tk := TunnelKey6{mask16(a, n.cfg.NodeCIDR6.Bits())}
	tv, ok := n.maps.Tunnel6.Lookup(tk)
	return tk, tv, ok
}

func (n *Node) endpointOf6(ip [16]byte) *Endpoint {
	info, ok := n.maps.Endpoints6.Lookup(EndpointKey6{ip})
	if !ok {
		return nil
	}
	p := int(info.IfIndex) - IfIndexBase
	if p < 0 || p >= len(n.eps) {
		return nil
	}
	return n.eps[p]
}

// fromContainer6 is bpf_lxc's from-container program for IPv6.
func (n *Node) fromContainer6(now time.Duration, ep *Endpoint, b []byte, out datapath.Output) {
	if !ipv6(b) {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonMalformed, "not-ipv6")
		return
	}
	if b[20] == protoICMPv6 && len(b) >= 14+ip6Len+24 && b[54] >= icmp6NS-2 && b[54] <= icmp6NS+2 {
		// Router and neighbour discovery (133-137).
		n.ndpResponder(now, ep, b, out)
		return
	}
	if b[38] == 0xff {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNotForMe, "ipv6:multicast")
		return
	}
	if !ep.IP6.IsValid() || src6(b) != ep.IP6.As16() {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonPolicy, "source-ip-check")
		return
	}
	if b[21] <= 1 {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonTTL, "")
		return
	}
	dst := dst6(b)
	if ok, rule := n.egress6(now, ep, dst, b); !ok {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonPolicy, rule)
		return
	}
	k, _, _ := flow6(b)
	n.ctTrack6(now, k, ep.Identity, len(b))
	if peer := n.endpointOf6(dst); peer != nil {
		n.toEndpoint6(now, ProgLxc, ep.Device, ep.Identity, peer, b, out)
		return
	}
	if n.gw6.IsValid() && dst == n.gw6b {
		n.toHost(now, ep, b, out)
		return
	}
	if tk, tv, ok := n.tunnelFor6(dst); ok {
		n.encap(now, ProgLxc, ep.Device, ep.Identity, tv.NodeIP, n.tunnels6[tk], b, out)
		return
	}
	if n.cfg.Mode == Tunnel && n.cfg.ClusterCIDR6.Contains(netip.AddrFrom16(dst)) && !n.cfg.NodeCIDR6.Contains(netip.AddrFrom16(dst)) {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNoTunnel, "tunnel:miss")
		return
	}
	// The underlay routes IPv4 only: no IPv6 beyond the cluster's pods.
	n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNoRoute, "fib:no-ipv6-route")
}

// ndpResponder answers a pod's neighbour solicitation for any address
// but its own with cilium_host's MAC (router flag set), and drops the
// rest of neighbour and router discovery: the node sends no router
// advertisements, the pod's routes are configured.
func (n *Node) ndpResponder(now time.Duration, ep *Endpoint, b []byte, out datapath.Output) {
	var nd frame.NDP
	ok := false
	if plen := int(binary.BigEndian.Uint16(b[18:20])); plen >= 24 {
		nd, ok = frame.ParseNDP(b[54], b[14+ip6Len+4:14+ip6Len+plen])
	}
	src := netip.AddrFrom16(src6(b))
	if !ok || nd.Type != icmp6NS || !nd.Target.Is6() || (ep.IP6.IsValid() && nd.Target == ep.IP6) || src.IsUnspecified() {
		n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDrop, datapath.ReasonNotForMe, "ndp:ignored")
		return
	}
	dmac := net.HardwareAddr(b[6:12])
	if nd.HasLL {
		dmac = net.HardwareAddr(nd.LLAddr[:])
	}
	n.trace(out, now, ProgLxc, datapath.KindBPF, ep.Device, "", datapath.ActDeliver, "", "ndp:responder")
	n.trace(out, now, ProgLxc, datapath.KindBPF, "", ep.Device, datapath.ActOriginate, "", "ndp:advertisement")
	out.Send(ep.Port, frame.NeighborAdvertisement(net.HardwareAddr(n.hostMAC[:]), nd.Target, dmac, src,
		frame.NARouter|frame.NASolicited|frame.NAOverride))
}

// fromOverlay6 is bpf_overlay for an IPv6 inner frame from a pod of
// identity src.
func (n *Node) fromOverlay6(now time.Duration, src Identity, inner []byte, out datapath.Output) {
	if inner[21] <= 1 {
		n.trace(out, now, ProgOverlay, datapath.KindBPF, DevCiliumVXLAN, "", datapath.ActDrop, datapath.ReasonTTL, "")
		return
	}
	ep := n.endpointOf6(dst6(inner))
	if ep == nil {
		n.trace(out, now, ProgOverlay, datapath.KindBPF, DevCiliumVXLAN, "", datapath.ActDrop, datapath.ReasonNoRoute, "endpoint:miss")
		return
	}
	n.toEndpoint6(now, ProgOverlay, DevCiliumVXLAN, src, ep, inner, out)
}

// toEndpoint6 runs the ingress policy for ep and delivers or drops.
func (n *Node) toEndpoint6(now time.Duration, prog, in string, src Identity, ep *Endpoint, b []byte, out datapath.Output) {
	ok, rule := n.ingress6(now, src, ep, b)
	if !ok {
		n.trace(out, now, prog, datapath.KindBPF, in, "", datapath.ActDrop, datapath.ReasonPolicy, rule)
		return
	}
	n.deliver(now, prog, in, ep, b, rule, out)
}

// policyProto is the protocol a packet's policy lookup uses: ICMPv6 is
// ICMP to policy, so that a rule naming ICMP holds for both families.
func policyProto(p Proto) Proto {
	if p == protoICMPv6 {
		return ProtoICMP
	}
	return p
}

// ingress6 is ingress for an IPv6 packet: the same policy map, the IPv6
// conntrack and endpoints maps.
func (n *Node) ingress6(now time.Duration, src Identity, ep *Endpoint, b []byte) (bool, string) {
	k, proto, dport := flow6(b)
	rk := reverse6(k)
	if e, ok := n.maps.CT6.Lookup(rk); ok && ctFresh(now, e) && !echoRequest6(b) {
		n.ctUpdate6(now, rk, e, true, src, len(b))
		return true, "ct:reply"
	}
	pk, e, ok := PolicyLookup(n.maps.Policy, src, ep.Identity, policyProto(proto), dport)
	if ok {
		e.Packets++
		e.Bytes += uint64(len(b))
		_ = n.maps.Policy.Update(pk, e)
		if e.Action != PolicyAllow {
			return false, n.ruleName(e)
		}
		n.ctTrack6(now, k, src, len(b))
		return true, n.ruleName(e)
	}
	if info, _ := n.maps.Endpoints6.Lookup(EndpointKey6{ep.IP6.As16()}); info.Flags&EndpointPolicyEnforced != 0 {
		return false, DefaultDenyRule(src, ep.Identity)
	}
	n.ctTrack6(now, k, src, len(b))
	return true, ep.allowRule6
}

func (n *Node) ruleName(e PolicyEntry) string {
	if int(e.RuleID) < len(n.policy.Names) {
		return n.policy.Names[e.RuleID]
	}
	return ""
}

// egress6 is egress for an IPv6 packet: the destination's identity from
// the IPv6 endpoints map or ipcache (world when neither knows it).
func (n *Node) egress6(now time.Duration, ep *Endpoint, dst [16]byte, b []byte) (bool, string) {
	if info, _ := n.maps.Endpoints6.Lookup(EndpointKey6{ep.IP6.As16()}); info.Flags&EndpointEgressEnforced == 0 {
		return true, ""
	}
	k, proto, dport := flow6(b)
	if e, ok := n.maps.CT6.Lookup(reverse6(k)); ok && ctFresh(now, e) && !echoRequest6(b) {
		return true, "ct:reply"
	}
	remote := IdentityWorld
	switch {
	case n.endpointOf6(dst) != nil:
		remote = n.endpointOf6(dst).Identity
	case n.gw6.IsValid() && dst == n.gw6b:
		remote = IdentityHost
	default:
		if v, ok := n.maps.IPCache6.Lookup(dst); ok {
			remote = Identity(v.Identity)
		}
	}
	pk, e, ok := EgressLookup(n.maps.Policy, ep.Identity, remote, policyProto(proto), dport)
	if !ok {
		return false, EgressDefaultDenyRule(ep.Identity, remote)
	}
	e.Packets++
	e.Bytes += uint64(len(b))
	_ = n.maps.Policy.Update(pk, e)
	return e.Action == PolicyAllow, n.ruleName(e)
}

// flow6 extracts the IPv6 conntrack tuple, protocol and destination port
// (no extension headers: the next header is the transport).
func flow6(b []byte) (k CTKey6, proto Proto, dport uint16) {
	k.Src, k.Dst = src6(b), dst6(b)
	k.Proto = b[20]
	l4 := b[14+ip6Len:]
	switch k.Proto {
	case 6, 17:
		if len(l4) >= 4 {
			k.SPort, k.DPort = [2]byte(l4[0:2]), [2]byte(l4[2:4])
		}
	case protoICMPv6:
		if len(l4) >= 8 && (l4[0] == icmp6EchoReq || l4[0] == icmp6EchoReq+1) {
			k.SPort, k.DPort = [2]byte(l4[4:6]), [2]byte(l4[4:6])
		}
	}
	return k, Proto(k.Proto), portOf(k.DPort)
}

// echoRequest6 reports whether the IPv6 frame b is an ICMPv6 echo
// request.
func echoRequest6(b []byte) bool {
	return b[20] == protoICMPv6 && len(b) > 14+ip6Len && b[14+ip6Len] == icmp6EchoReq
}

func reverse6(k CTKey6) CTKey6 {
	k.Src, k.Dst = k.Dst, k.Src
	k.SPort, k.DPort = k.DPort, k.SPort
	return k
}

func (n *Node) ctTrack6(now time.Duration, k CTKey6, id Identity, size int) {
	e, ok := n.maps.CT6.Lookup(k)
	n.ctUpdate6(now, k, e, ok && ctFresh(now, e), id, size)
}

func (n *Node) ctUpdate6(now time.Duration, k CTKey6, e CTEntry, live bool, id Identity, size int) {
	if !live {
		e = CTEntry{Created: uint64(now), Identity: uint32(id)}
	}
	e.Packets++
	e.Bytes += uint64(size)
	e.LastSeen = uint64(now)
	if err := n.maps.CT6.Update(k, e); err != nil {
		var dead []CTKey6
		n.maps.CT6.Range(func(k CTKey6, e CTEntry) bool {
			if !ctFresh(now, e) {
				dead = append(dead, k)
			}
			return true
		})
		for _, d := range dead {
			_ = n.maps.CT6.Delete(d)
		}
		_ = n.maps.CT6.Update(k, e)
	}
}

// echoReply6 builds the reply to an ICMPv6 echo request in b, or nil.
func echoReply6(b []byte, srcMAC, dstMAC [6]byte) []byte {
	plen := int(binary.BigEndian.Uint16(b[18:20]))
	if !echoRequest6(b) || plen < 8 {
		return nil
	}
	icmp := b[14+ip6Len : 14+ip6Len+plen]
	return frame.ICMPv6Echo(frame.IPv4{SrcMAC: net.HardwareAddr(srcMAC[:]), DstMAC: net.HardwareAddr(dstMAC[:]),
		Src: netip.AddrFrom16(dst6(b)), Dst: netip.AddrFrom16(src6(b))},
		true, binary.BigEndian.Uint16(icmp[4:6]), binary.BigEndian.Uint16(icmp[6:8]), icmp[8:])
}
