package scenarios

import (
	"net/netip"

	"github.com/netbed/netbed/datapath/ebpf"
)

// Generation 3's fabric: datapath/ebpf, tunnelled (ebpf) or directly
// routed (ebpf-direct), its nodes' pod CIDRs carved from the scenario's
// cluster CIDR, and from its IPv6 cluster CIDR when it has one (dual
// stack, tunnel mode only).
func init() {
	for g, mode := range map[Generation]ebpf.Mode{GenEBPF: ebpf.Tunnel, GenEBPFDirect: ebpf.Direct} {
		RegisterFabric(g, func(env FabricEnv) (BuiltFabric, error) {
			f, err := ebpf.New(env.Topology, ebpf.Options{Mode: mode, ClusterCIDR: env.Options.ClusterCIDR, NodeMaskBits: env.Options.NodeMask,
				ClusterCIDR6: env.Options.ClusterCIDR6, NodeMaskBits6: env.Options.NodeMask6, PodCIDRsFromBGP: env.BGP})
			if err != nil {
				return BuiltFabric{}, err
			}
			nodeCIDR := func(host string) (netip.Prefix, bool) {
				n, ok := f.Host(host)
				if !ok {
					return netip.Prefix{}, false
				}
				return n.Config().NodeCIDR, true
			}
			nodeCIDR6 := func(host string) (netip.Prefix, bool) {
				n, ok := f.Host(host)
				if !ok || !n.Config().NodeCIDR6.IsValid() {
					return netip.Prefix{}, false
				}
				return n.Config().NodeCIDR6, true
			}
			return BuiltFabric{Fabric: f, NodeCIDR: nodeCIDR, NodeCIDR6: nodeCIDR6, PodMAC: ebpf.PodMAC}, nil
		})
	}
}
