// Package l3 is IPv4 routing for the fabric models: a longest-prefix-match
// FIB, ECMP next-hop groups, a Router datapath.Node and shortest-path route
// computation over a topology.
package l3
