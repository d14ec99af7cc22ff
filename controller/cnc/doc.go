// Package cnc is the SDN controller's fabric programmer (the seed's CNC): when
// a port is bound to a host it finds the leaf ports that host is wired to and
// pushes the access VLAN → VNI mapping and the port's MAC/IP entry to those
// leaves through a LeafDriver, then reports the port's overlay state.
package cnc
