package netnsrt

import (
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/bpf"
	"github.com/netbed/netbed/datapath/kernel/bridge"
	"github.com/netbed/netbed/datapath/kernel/ovs"
	"github.com/netbed/netbed/scenarios"
)

// The generations the kernel backend runs, one registration each: gen 1
// on Open vSwitch (the stock host's qbr bridges and iptables included),
// gen 2 on the Linux bridge and VXLAN devices with OVS hosts, both
// dual-stack; gen 3 on tc BPF programs, dual-stack in tunnel mode
// (ebpf); ebpf-direct's model refuses an IPv6 cluster CIDR (it routes no
// IPv6 across nodes), so no IPv6 probe reaches it
// (TestKernelEBPFDirectRefusesIPv6).
func init() {
	openvswitch := func() kernel.Fabric { return ovs.New() }
	registerKernel(scenarios.GenVLAN, kernelGen{make: openvswitch, needs: ovs.Available, ipv6: true})
	registerKernel(scenarios.GenVLANStock, kernelGen{make: openvswitch, needs: ovs.Available, ipv6: true})
	registerKernel(scenarios.GenEVPN, kernelGen{make: func() kernel.Fabric { return bridge.New(bridge.Options{}) }, needs: ovs.Available, ipv6: true})
	tcBPF := func() kernel.Fabric { return bpf.New(bpf.Options{}) }
	registerKernel(scenarios.GenEBPF, kernelGen{make: tcBPF, ipv6: true})
	registerKernel(scenarios.GenEBPFDirect, kernelGen{make: tcBPF})
}
