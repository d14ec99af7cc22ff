// Package cloud is a model of a public cloud's network API (its example is
// AWS EC2): instances of an instance type in a VPC subnet, elastic network
// interfaces (ENIs) created in a subnet and attached to instances, private
// IPv4 addresses assigned to them (a primary and secondaries, as the AWS
// VPC CNI gives pods), and floating (Elastic) IPs associated with a private
// address, with the provider's documented limits per instance type, a
// latency per call and EC2's token-bucket request throttling.
//
// API is the contract; Model is its in-memory implementation, safe for
// concurrent use, running on a Clock: virtual time on the sim runtime,
// real time on netns. Errors carry the provider's error codes as typed
// values (AttachmentLimitExceeded, RequestLimitExceeded, ...), tested with
// errors.Is. The limits and their sources are in limits.yaml; docs/vpc.md
// says where each number comes from.
package cloud
