package fabricbench

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// The generations' fabrics in an engine, one instance per host, as the
// benchmarks and the allocation test use them: the engine, the
// instances' names and their stacks.

// ebpfFabric is gen 3 on a spine-leaf: one pod per host.
func ebpfFabric(tb testing.TB, p topologies.SpineLeafParams, mode ebpf.Mode) (*sim.Engine, []string, []*stack.Instance) {
	tb.Helper()
	topo, err := topologies.SpineLeaf(p)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := ebpf.New(topo, ebpf.Options{Mode: mode, PodsPerNode: 2})
	if err != nil {
		tb.Fatal(err)
	}
	e := load(tb, f)
	var names []string
	var insts []*stack.Instance
	for h, hn := range topo.NodesByRole(topologies.RoleHost) {
		name := fmt.Sprintf("pod%d", h)
		nd, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: hn.Name})
		if err != nil {
			tb.Fatal(err)
		}
		names, insts = append(names, name), append(insts, nd.(*stack.Instance))
	}
	return e, names, insts
}

// evpnFabric is gen 2 on a spine-leaf: two subnets of one tenant,
// alternating by host, so half the pairs are routed on the leaf.
func evpnFabric(tb testing.TB, p topologies.SpineLeafParams, devCost sim.DeviceCost) (*sim.Engine, []string, []*stack.Instance) {
	tb.Helper()
	topo, err := topologies.SpineLeaf(p)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	nets := []datapath.NetworkSpec{
		{Name: "a", Tenant: "t", Subnet: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.1"), VLAN: 10, VNI: 10010},
		{Name: "b", Tenant: "t", Subnet: netip.MustParsePrefix("10.2.0.0/16"), Gateway: netip.MustParseAddr("10.2.0.1"), VLAN: 20, VNI: 10020},
	}
	for _, n := range nets {
		if err := f.AddNetwork(n); err != nil {
			tb.Fatal(err)
		}
	}
	e := load(tb, f)
	e.SetDeviceCost(devCost)
	var names []string
	var insts []*stack.Instance
	for h, hn := range topo.NodesByRole(topologies.RoleHost) {
		nw := nets[h%2]
		ip := nw.Subnet.Addr().As4()
		ip[2], ip[3] = byte((h+2)>>8), byte(h+2)
		spec := datapath.InstanceSpec{Name: fmt.Sprintf("vm%d", h), Host: hn.Name, Network: nw.Name,
			MAC: net.HardwareAddr{2, 0x10, 0, 0, byte(h >> 8), byte(h)}, IP: netip.PrefixFrom(netip.AddrFrom4(ip), 16), Gateway: nw.Gateway}
		nd, err := e.AddInstance(f, spec)
		if err != nil {
			tb.Fatal(err)
		}
		names, insts = append(names, spec.Name), append(insts, nd.(*stack.Instance))
	}
	return e, names, insts
}

// vlanFabric is gen 1 (Ctrip's host model) on a three-tier fabric: a VLAN
// per rack, its gateway on the core, so pairs in different racks are
// routed there.
func vlanFabric(tb testing.TB, p topologies.ThreeTierParams) (*sim.Engine, []string, []*stack.Instance) {
	tb.Helper()
	topo, err := topologies.ThreeTier(p)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := vlan.New(topo, vlan.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var nets []datapath.NetworkSpec
	for r := range p.Pods * p.RacksPerPod {
		n := datapath.NetworkSpec{Name: fmt.Sprintf("rack%d", r), VLAN: uint16(10 + r),
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r), 0, 0}), 16)}
		if err := f.AddNetwork(n); err != nil {
			tb.Fatal(err)
		}
		nets = append(nets, n)
	}
	e := load(tb, f)
	var names []string
	var insts []*stack.Instance
	for h, hn := range topo.NodesByRole(topologies.RoleHost) {
		nw := nets[h/p.HostsPerRack]
		ip := nw.Subnet.Addr().As4()
		ip[3] = byte(10 + h%p.HostsPerRack)
		spec := datapath.InstanceSpec{Name: fmt.Sprintf("vm%d", h), Host: hn.Name, Network: nw.Name,
			IP: netip.PrefixFrom(netip.AddrFrom4(ip), 16)}
		nd, err := e.AddInstance(f, spec)
		if err != nil {
			tb.Fatal(err)
		}
		names, insts = append(names, spec.Name), append(insts, nd.(*stack.Instance))
	}
	return e, names, insts
}

// load puts f's nodes and wires into a new engine: 1 µs processing per
// node, 1024-frame queues.
func load(tb testing.TB, f datapath.Fabric) *sim.Engine {
	tb.Helper()
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{QueueFrames: 1024}); err != nil {
		tb.Fatal(err)
	}
	return e
}
