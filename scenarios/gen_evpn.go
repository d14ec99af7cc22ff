package scenarios

import (
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/evpndriver"
)

// Generation 2's fabric: datapath/evpn with an external overlay, which the
// controller's CNC programs through the leaf driver; with control_plane:
// bgp each leaf keeps its own tables, filled by its BGP speaker.
func init() {
	RegisterFabric(GenEVPN, func(env FabricEnv) (BuiltFabric, error) {
		f, err := evpn.New(env.Topology, evpn.Options{ExternalOverlay: true, LeafTables: env.BGP, Site: env.Site})
		if err != nil {
			return BuiltFabric{}, err
		}
		return BuiltFabric{Fabric: f, Driver: evpndriver.New(f, env.Locker)}, nil
	})
}
