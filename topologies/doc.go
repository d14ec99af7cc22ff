// Package topologies is netbed's topology graph: nodes with roles, links,
// availability zones and racks, the builders for the seed's fabrics, and
// validation. It does no I/O.
package topologies
