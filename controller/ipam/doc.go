// Package ipam allocates IP addresses: the global IPAM keeps per-subnet pools
// in the controller's store, the local IPAM carves a cluster CIDR into one
// CIDR per node and allocates inside it in memory.
package ipam
