package scenarios

import (
	"fmt"
	"slices"

	"github.com/netbed/netbed/datapath/hybrid"
)

// The hybrid network: every site's fabric built by its own generation's
// builder on that site's nodes (FabricEnv.Site), joined by the
// topology's dedicated lines (datapath/hybrid). Gen 2's CNC driver is
// the private cloud's; its networks go through it.
func init() {
	RegisterFabric(GenHybrid, func(env FabricEnv) (BuiltFabric, error) {
		if len(env.Sites) == 0 {
			return BuiltFabric{}, fmt.Errorf("hybrid: the scenario has no sites (sites: the private cloud and the VPCs, with their generations)")
		}
		if env.ControlPlane == ControlPlaneBGP {
			return BuiltFabric{}, fmt.Errorf("hybrid: control_plane: bgp is not modelled for a hybrid network (its lines' routes are static); use the shared route table")
		}
		have := env.Topology.Sites()
		var sites []*hybrid.Site
		out := BuiltFabric{}
		for _, st := range env.Sites {
			if !slices.Contains(have, st.Name) {
				return BuiltFabric{}, fmt.Errorf("hybrid: site %s has no node in topology %s (its sites: %v; a node's site is its netbed.site label)", st.Name, env.Topology.Name, have)
			}
			sub := env
			sub.Generation, sub.Site, sub.Sites = st.Generation, st.Name, nil
			bf, err := buildFabric(sub)
			if err != nil {
				return BuiltFabric{}, fmt.Errorf("site %s (%s): %w", st.Name, st.Generation, err)
			}
			hs := &hybrid.Site{Name: st.Name, Fabric: bf.Fabric}
			if bf.Driver != nil {
				if out.Driver != nil {
					return BuiltFabric{}, fmt.Errorf("hybrid: two sites programmed by a CNC (%s is the second)", st.Name)
				}
				out.Driver, hs.AddNetwork = bf.Driver, bf.Driver.AddNetwork
			}
			sites = append(sites, hs)
		}
		for _, s := range have {
			if !slices.ContainsFunc(env.Sites, func(x Site) bool { return x.Name == s }) {
				return BuiltFabric{}, fmt.Errorf("hybrid: topology %s has nodes of site %s, which the scenario's sites do not name", env.Topology.Name, s)
			}
		}
		f, err := hybrid.New(env.Topology, sites)
		if err != nil {
			return BuiltFabric{}, err
		}
		out.Fabric = f
		return out, nil
	})
}
