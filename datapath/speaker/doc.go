// Package speaker is a switch's or a node's BGP process: a GoBGP server
// embedded in process, carrying EVPN routes (gen 2's leaves and spines)
// and IPv4 unicast routes (gen 3's direct routing) as netbed's own route
// types, with its sessions observable and its gRPC API open to the stock
// gobgp CLI.
package speaker
