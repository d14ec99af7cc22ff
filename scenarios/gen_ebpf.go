package scenarios

import (
	"net/netip"

	"github.com/netbed/netbed/datapath/ebpf"
)

// Generation 3's fabric: datapath/ebpf, tunnelled (ebpf) or directly
// routed (ebpf-direct), its nodes' pod CIDRs carved from the scenario's
// cluster CIDR.
func init() {
	for g, mode := range map[Generation]ebpf.Mode{GenEBPF: ebpf.Tunnel, GenEBPFDirect: ebpf.Direct} {
		RegisterFabric(g, func(env FabricEnv) (BuiltFabric, error) {
			f, err := ebpf.New(env.Topology, ebpf.Options{Mode: mode, ClusterCIDR: env.Options.ClusterCIDR, NodeMaskBits: env.Options.NodeMask,
				PodCIDRsFromBGP: env.BGP})
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
			return BuiltFabric{Fabric: f, NodeCIDR: nodeCIDR, PodMAC: ebpf.PodMAC}, nil
		})
	}
}
