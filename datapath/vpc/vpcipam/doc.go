// Package vpcipam is the global IPAM of the vpc generation: netbed's
// controller records every pod's address as its port (so a pod that
// drifts finds its address again, as in gen 2), and the cloud's API
// (package datapath/vpc/cloud) puts it on an ENI of the pod's node, as the
// AWS VPC CNI's ipamd does: an instance per node, ENIs created and
// attached in the pod's subnet until the instance type's limits, a warm
// pool of addresses already on the node's ENIs, and, on a drift, the
// address reassigned to an ENI of the new node. What the cloud did is
// pushed to the data plane (a Dataplane, the vpc fabric) at once.
//
// Throttled calls (RequestLimitExceeded) are retried with exponential
// backoff, each retry a step of the pod's spawn timeline; a limit error
// (AttachmentLimitExceeded, PrivateIpAddressLimitExceeded, ...) fails the
// spawn with the provider's code, also in the timeline.
package vpcipam
