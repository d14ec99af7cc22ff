package scenarios

import (
	"github.com/netbed/netbed/datapath/vpc"
)

// The public cloud's fabric: datapath/vpc on a VPC topology (the vpc
// builder). Its ENIs, addresses and floating IPs come from the cloud's
// API through the controller (vpcflow.go, datapath/vpc/vpcipam).
func init() {
	RegisterFabric(GenVPC, func(env FabricEnv) (BuiltFabric, error) {
		f, err := vpc.New(env.Topology, vpc.Options{Site: env.Site})
		if err != nil {
			return BuiltFabric{}, err
		}
		return BuiltFabric{Fabric: f}, nil
	})
}
