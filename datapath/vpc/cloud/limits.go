package cloud

import (
	"net/netip"
	"time"
)

// InstanceType is what one instance type allows (EC2's
// NetworkInfo.MaximumNetworkInterfaces and Ipv4AddressesPerInterface).
type InstanceType struct {
	Name string
	// ENIs is the largest number of network interfaces attached at once,
	// the primary included.
	ENIs int
	// IPv4PerENI is the largest number of private IPv4 addresses on one
	// ENI, its primary included.
	IPv4PerENI int
}

// MaxPods is the AWS VPC CNI's largest pod count on a node of this type
// (its eni-max-pods formula): every ENI but its primary address gives pods
// addresses, and 2 more for the host-network pods (aws-node, kube-proxy).
func (t InstanceType) MaxPods() int { return t.ENIs*(t.IPv4PerENI-1) + 2 }

// Bucket is one token bucket of EC2's request rate limiting: it holds at
// most Capacity tokens, a call takes one, and Refill tokens come back per
// second.
type Bucket struct {
	Capacity int
	Refill   float64 // tokens per second
}

// Action is one API action's cost: its throttling bucket and its latency.
type Action struct {
	// Class is the action's category ("mutating"), or "" for an action
	// with a bucket of its own size (EC2's uncategorized actions).
	Class string
	// Bucket is the size of the action's own bucket: its class's, or its
	// own. A zero Capacity turns throttling off for the action.
	Bucket  Bucket
	Latency time.Duration
}

// Limits is the cloud's whole configuration: the instance types, the
// throttling classes with their buckets, each action's class and latency,
// and the Elastic IP quota. limits.yaml holds the defaults with their
// sources.
type Limits struct {
	// Sources are the documents the numbers come from.
	Sources       []string
	InstanceTypes []InstanceType
	// Classes are the throttling categories' bucket sizes, by name. Every
	// action has a bucket of its own, of its class's size (EC2 evaluates
	// each API individually).
	Classes map[string]Bucket
	Actions map[string]Action
	// ElasticIPs is the account's quota of floating IPs.
	ElasticIPs int
	// PublicPool is where floating IPs come from.
	PublicPool netip.Prefix
}

// InstanceType returns the named type.
func (l *Limits) InstanceType(name string) (InstanceType, bool) {
	for _, t := range l.InstanceTypes {
		if t.Name == name {
			return t, true
		}
	}
	return InstanceType{}, false
}
