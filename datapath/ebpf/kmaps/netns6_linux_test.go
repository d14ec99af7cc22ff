package kmaps

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

// TestCrossNodeTunnelKernel6 is TestCrossNodeTunnelKernel over IPv6, in
// node namespaces with IPv6 off: bpf_lxc answers each pod's neighbour
// solicitation for its gateway with cilium_host's MAC, finds the other
// node's IPv6 pod CIDR in the IPv6 tunnel map and tunnels over the IPv4
// underlay; bpf_overlay hands the packet to the pod's lxc after the
// ingress check. UDP must flow both ways; on an enforcing pod nothing
// gets in without an allow entry, an entry lets its flow in, and a
// reply to a flow the pod started gets in by the IPv6 conntrack map.
func TestCrossNodeTunnelKernel6(t *testing.T) {
	l := newLab(t)
	nodes := l.twoNodes(true)
	for i, n := range nodes {
		n.gw = net.ParseIP(fmt.Sprintf("fd10::%d01", 1+i))
		n.podIP = net.ParseIP(fmt.Sprintf("fd10::%d02", 1+i))
		n.cidr = net.ParseIP(fmt.Sprintf("fd10::%d00", 1+i))
	}
	for i, n := range nodes {
		vx := l.vxlan(n.h)
		l.attach(n.h, vx, l.load(NewPolicyProgram(n.km, TCActUnspec)), l.load(NewOverlayProgram(n.km)))
		cfg := LxcConfig{HostMAC: hostMAC, VXLANIfIndex: vx.Attrs().Index, NodeMaskBits: 24, NodeMaskBits6: 120}
		egress := l.load(NewEgressProgram(n.km, PolicyConfig{Pass: TCActUnspec}))
		policy := l.load(NewPolicyProgram(n.km, TCActUnspec))
		lxc := l.load(NewFromContainerProgram(n.km, cfg))
		n.pod = l.pod(n.h, n.km, "lxc1", n.podIP, n.gw, gen3.FirstPodIdentity+gen3.Identity(i), egress, policy, lxc)
	}
	for i, n := range nodes {
		o := nodes[1-i]
		if err := n.km.Tunnel6.Put(gen3.TunnelKey6{IP: [16]byte(o.cidr)}, gen3.TunnelValue{NodeIP: [4]byte(o.ip)}); err != nil {
			t.Fatal(err)
		}
		if err := n.km.IPCache6.Put(gen3.IPCacheKey6{PrefixLen: 128, IP: [16]byte(o.podIP)}, gen3.IPCacheValue{Identity: o.pod.info.Identity}); err != nil {
			t.Fatal(err)
		}
	}
	src, dst := nodes[0].pod, nodes[1].pod
	c1, c2 := l.listen(src, 0), l.listen(dst, 7777)
	to2 := &net.UDPAddr{IP: dst.ip, Port: 7777}
	from := exchange(t, c1, c2, to2, "across nodes over IPv6")
	if !from.(*net.UDPAddr).IP.Equal(src.ip) {
		t.Errorf("datagram came from %v, want %v", from, src.ip)
	}
	exchange(t, c2, c1, from, "and back")

	// Policy on the receiving node, before delivery.
	policyChecks(t, l, src, dst, nodes[1].km, c2)

	// Each pod resolved its gateway to cilium_host's MAC, and only that.
	for _, n := range nodes {
		neigh, err := n.pod.h.NeighList(n.pod.eth.Attrs().Index, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		sawGW := false
		for _, e := range neigh {
			if e.IP.Equal(n.gw) && e.HardwareAddr.String() == hostMAC.String() {
				sawGW = true
			}
			if !e.IP.Equal(n.gw) && !e.IP.IsLinkLocalUnicast() && !e.IP.IsMulticast() {
				t.Errorf("pod %v has a neighbour entry for %v", n.podIP, e.IP)
			}
		}
		if !sawGW {
			t.Errorf("pod %v never resolved its gateway %v to cilium_host's %v: %v", n.podIP, n.gw, hostMAC, neigh)
		}
	}
}
