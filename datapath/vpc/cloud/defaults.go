package cloud

import (
	"net/netip"
	"time"
)

// DefaultLimits are AWS's published figures for a few instance types
// (a first version in Go; limits.yaml replaces it).
func DefaultLimits() *Limits {
	ms := time.Millisecond
	return &Limits{
		InstanceTypes: []InstanceType{
			{"t3.nano", 2, 2}, {"t3.small", 3, 4}, {"t3.medium", 3, 6}, {"m5.large", 3, 10},
			{"m5.xlarge", 4, 15}, {"m5.4xlarge", 8, 30}, {"c5.metal", 15, 50},
		},
		Classes: map[string]Bucket{"mutating": {200, 5}, "non-mutating": {100, 20}},
		Actions: map[string]Action{
			"CreateSubnet": {"mutating", 100 * ms}, "RunInstances": {"mutating", 100 * ms},
			"TerminateInstances": {"mutating", 100 * ms}, "DescribeInstances": {"non-mutating", 50 * ms},
			"CreateNetworkInterface": {"mutating", 100 * ms}, "AttachNetworkInterface": {"mutating", 100 * ms},
			"DetachNetworkInterface": {"mutating", 100 * ms}, "DeleteNetworkInterface": {"mutating", 100 * ms},
			"DescribeNetworkInterfaces": {"non-mutating", 50 * ms}, "AssignPrivateIpAddresses": {"mutating", 100 * ms},
			"UnassignPrivateIpAddresses": {"mutating", 100 * ms}, "AllocateAddress": {"mutating", 100 * ms},
			"AssociateAddress": {"mutating", 100 * ms}, "DisassociateAddress": {"mutating", 100 * ms},
			"ReleaseAddress": {"mutating", 100 * ms}, "DescribeAddresses": {"non-mutating", 50 * ms},
		},
		ElasticIPs: 5,
		PublicPool: netip.MustParsePrefix("198.51.100.0/24"),
	}
}
