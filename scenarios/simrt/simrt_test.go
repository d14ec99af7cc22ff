package simrt

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// TestProbeVerdicts: a probe answered by its target is delivered; a probe
// to an address another tenant's instance also uses is answered, in the
// sender's tenant, by someone else, and must not count as delivered.
func TestProbeVerdicts(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := New(1)
	ctx := context.Background()
	if err := rt.Load(ctx, f, topo); err != nil {
		t.Fatal(err)
	}
	subnet := netip.MustParsePrefix("10.0.0.0/24")
	gw := netip.MustParseAddr("10.0.0.1")
	for i, tenant := range []string{"blue", "red"} {
		if err := f.AddNetwork(datapath.NetworkSpec{Name: tenant, Tenant: tenant, Subnet: subnet, Gateway: gw, VLAN: uint16(100 + i), VNI: uint32(1000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(name, host, network string, mac byte, ip string) {
		s := datapath.InstanceSpec{Name: name, Host: host, Network: network, MAC: net.HardwareAddr{2, 0, 0, 0, 0, mac},
			IP: netip.PrefixFrom(netip.MustParseAddr(ip), 24), Gateway: gw}
		if err := rt.AddInstance(ctx, f, s); err != nil {
			t.Fatal(err)
		}
	}
	add("blue-1", "host1", "blue", 1, "10.0.0.2")
	add("blue-2", "host2", "blue", 2, "10.0.0.3")
	add("red-1", "host2", "red", 3, "10.0.0.3")

	p, err := rt.Probe(ctx, scenarios.RuntimeProbe{From: "blue-1", To: "blue-2", Dst: netip.MustParseAddr("10.0.0.3"), Proto: "icmp", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Delivered || !p.Replied || p.SwitchHops != 3 || p.RTT <= 0 {
		t.Errorf("blue-1 -> blue-2: %+v", p)
	}
	// red-1 has blue-2's address in another tenant: blue-1's probe to it
	// reaches blue-2, which is not red-1.
	p, err = rt.Probe(ctx, scenarios.RuntimeProbe{From: "blue-1", To: "red-1", Dst: netip.MustParseAddr("10.0.0.3"), Proto: "icmp", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.Delivered || p.Replied || p.Reason != "delivered-to-other-instance" || p.DropAt != "blue-2" {
		t.Errorf("blue-1 -> red-1 (same address in another tenant): %+v", p)
	}
	if _, err := rt.Probe(ctx, scenarios.RuntimeProbe{From: "blue-1", To: "x", Dst: gw, Proto: "sctp", Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "sctp") {
		t.Errorf("unknown protocol: %v", err)
	}
	if err := rt.SetLinkState(ctx, topologies.Endpoint{Node: "host1", Iface: "eth9"}, false); err == nil {
		t.Error("failing a link on a port that does not exist succeeded")
	}
	drops, unexplained := rt.Stats()
	if unexplained != 0 {
		t.Errorf("%d frames unexplained; drops %v", unexplained, drops)
	}
}
