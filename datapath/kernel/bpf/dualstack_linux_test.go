package bpf

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath"
	gen3 "github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/kernel/kerneltest"
	"github.com/netbed/netbed/topologies/netns"
)

// addPod6 is addPod for a dual-stack model: the pod also gets its IPv6
// address (/128, no duplicate address detection), its node's IPv6
// gateway on link and the IPv6 default route via it.
func (r *rig) addPod6(name, host string, labels map[string]string) (*pod, netip.Addr) {
	t := r.t
	t.Helper()
	p := r.addPod(name, host, labels)
	ep, _, _ := r.model.Endpoint(name)
	node, _ := r.model.Host(host)
	if !ep.IP6.IsValid() || !node.Gateway6().IsValid() {
		t.Fatalf("%s on %s has no IPv6 address (%v) or gateway (%v)", name, host, ep.IP6, node.Gateway6())
	}
	p.in(t, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", []byte("0"), 0o644); err != nil {
			return err
		}
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		eth, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		gw := node.Gateway6()
		if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ep.IP6, 128)), Flags: unix.IFA_F_NODAD}); err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gw, 128)), Scope: netlink.SCOPE_LINK}); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("::/0")), Gw: gw.AsSlice()})
	})
	return p, ep.IP6
}

// udp6 sends msg from src (at from) to to:7777, where c listens, up to
// tries times, and reports whether it arrived.
func udp6(t *testing.T, src *pod, from, to netip.Addr, c *net.UDPConn, msg string, tries int) bool {
	t.Helper()
	var out *net.UDPConn
	src.in(t, func() error {
		var err error
		out, err = net.ListenUDP("udp6", &net.UDPAddr{IP: from.AsSlice()})
		return err
	})
	defer out.Close()
	buf := make([]byte, 128)
	for range tries {
		if _, err := out.WriteToUDP([]byte(msg), &net.UDPAddr{IP: to.AsSlice(), Port: 7777}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, f, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg && f.IP.Equal(from.AsSlice()) {
				return true
			}
		}
	}
	return false
}

// TestKernelFabricDualStack realises a dual-stack gen 3 (tunnel mode,
// an IPv6 cluster CIDR) on a deployed lab: the node agent's maps carry
// the pods' IPv6 addresses from the model's local IPAM, UDP over IPv6
// flows on one node and across nodes (neighbour discovery answered by
// bpf_lxc, VXLAN over the IPv4 underlay), and once db enforces policy an
// IPv6 flow it does not allow is dropped on db's node with a flow event
// naming both pods by their IPv6 addresses and the default-deny rule.
func TestKernelFabricDualStack(t *testing.T) {
	r := newRigWith(t, gen3.Options{Mode: gen3.Tunnel, ClusterCIDR6: netip.MustParsePrefix("fd10::/104")}, false)
	web, web6 := r.addPod6("web-1", "host1", map[string]string{"app": "web"})
	cache, cache6 := r.addPod6("cache-1", "host1", map[string]string{"app": "cache"})
	db, db6 := r.addPod6("db-1", "host2", map[string]string{"app": "db"})
	listen := func(p *pod, a netip.Addr) *net.UDPConn {
		var c *net.UDPConn
		p.in(t, func() error {
			var err error
			c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: a.AsSlice(), Port: 7777})
			return err
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	cWeb, cCache, cDB := listen(web, web6), listen(cache, cache6), listen(db, db6)
	for _, c := range []struct {
		name     string
		src      *pod
		from, to netip.Addr
		conn     *net.UDPConn
	}{
		{"same node", web, web6, cache6, cCache},
		{"across nodes", web, web6, db6, cDB},
		{"across nodes, back", db, db6, web6, cWeb},
	} {
		if !udp6(t, c.src, c.from, c.to, c.conn, "hello over IPv6, "+c.name, 5) {
			t.Errorf("%s: UDP over IPv6 %v -> %v never arrived", c.name, c.from, c.to)
		}
	}

	// Full-size segments over IPv6 through cilium_vxlan: the pods' MTU
	// leaves room for VXLAN over the IPv4 underlay.
	for _, p := range []*pod{web, db} {
		p.in(t, func() error {
			h, err := netlink.NewHandle()
			if err != nil {
				return err
			}
			defer h.Close()
			eth, err := h.LinkByName("eth0")
			if err != nil {
				return err
			}
			return h.LinkSetMTU(eth, r.fab.PodMTU())
		})
	}
	in := func(p *pod) func(func() error) error {
		return func(fn func() error) error { return netns.DoIn(p.ns, fn) }
	}
	if err := kerneltest.TCPTransfer(in(web), in(db), web6, db6, 1<<20, 10*time.Second); err != nil {
		t.Errorf("TCP over IPv6, 1 MiB from web-1 to db-1 across nodes: %v", err)
	}

	if err := r.model.ApplyPolicy(gen3.Policy{Name: "web-db", From: map[string]string{"app": "web"}, To: map[string]string{"app": "db"},
		Proto: gen3.ProtoUDP, Port: 7777, Allow: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.fab.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !udp6(t, web, web6, db6, cDB, "allowed over IPv6", 5) {
		t.Error("web-1 -> db-1 over IPv6, allowed by web-db, never arrived")
	}
	if udp6(t, cache, cache6, db6, cDB, "denied over IPv6", 1) {
		t.Error("cache-1 -> db-1 over IPv6 arrived, but db enforces policy and nothing allows cache")
	}
	if err := r.fab.FlushFlows(context.Background()); err != nil {
		t.Fatal(err)
	}
	cacheEP, _, _ := r.model.Endpoint("cache-1")
	dbEP, _, _ := r.model.Endpoint("db-1")
	var e FlowEvent
	for _, x := range r.fab.Flows() {
		if x.Src == cache6 && x.Dst == db6 && x.Proto == gen3.ProtoUDP && x.DPort == 7777 {
			e = x
		}
	}
	if e.Verdict != VerdictDropped || e.Reason != datapath.ReasonPolicy || e.Rule != gen3.DefaultDenyRule(cacheEP.Identity, dbEP.Identity) ||
		e.Node != "host2" || e.Iface != gen3.DevCiliumVXLAN || e.SrcName != "cache-1" || e.DstName != "db-1" || e.SPort == 0 {
		t.Errorf("IPv6 drop's flow event %v (reason %q), want dropped by %s on host2 %s, cache-1 -> db-1", e, e.Reason,
			gen3.DefaultDenyRule(cacheEP.Identity, dbEP.Identity), gen3.DevCiliumVXLAN)
	}
	if _, ok := r.fab.LastDrop(DropKey{Node: "host2", Proto: gen3.ProtoUDP, Src: cache6, Dst: db6, DPort: 7777}); !ok {
		t.Error("LastDrop does not find the IPv6 drop by its flow")
	}
}
