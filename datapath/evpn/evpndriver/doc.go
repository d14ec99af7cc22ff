// Package evpndriver is the CNC's leaf driver for the generation 2 fabric
// model (datapath/evpn): it maps access VLANs to VNIs on an evpn.Fabric's
// leaves and binds and advertises ports on the leaf of their host's active
// NIC.
package evpndriver
