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
// gen 2 on the Linux bridge and VXLAN devices with OVS hosts, gen 3 on tc
// BPF programs; the ones named by kernelDualStack carry IPv6 too.
func init() {
	registerKernel(scenarios.GenVLAN, func() kernel.Fabric { return ovs.New() }, ovs.Available)
	registerKernel(scenarios.GenVLANStock, func() kernel.Fabric { return ovs.New() }, ovs.Available)
	registerKernel(scenarios.GenEVPN, func() kernel.Fabric { return bridge.New(bridge.Options{}) }, ovs.Available)
	registerKernel(scenarios.GenEBPF, func() kernel.Fabric { return bpf.New(bpf.Options{}) }, nil)
	registerKernel(scenarios.GenEBPFDirect, func() kernel.Fabric { return bpf.New(bpf.Options{}) }, nil)
	kernelDualStack(scenarios.GenVLAN)
	kernelDualStack(scenarios.GenVLANStock)
	kernelDualStack(scenarios.GenEVPN)
}
