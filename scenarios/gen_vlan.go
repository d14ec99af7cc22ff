package scenarios

import "github.com/netbed/netbed/datapath/vlan"

// Generation 1's fabric: datapath/vlan, with stock OpenStack's host for
// vlan-stock.
func init() {
	for _, g := range []Generation{GenVLAN, GenVLANStock} {
		stock := g == GenVLANStock
		RegisterFabric(g, func(env FabricEnv) (BuiltFabric, error) {
			f, err := vlan.New(env.Topology, vlan.Options{Stock: stock})
			if err != nil {
				return BuiltFabric{}, err
			}
			return BuiltFabric{Fabric: f}, nil
		})
	}
}
