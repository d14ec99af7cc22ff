// Command netbed-cni is netbed's CNI plugin (spec 0.3.0–1.1.0): it gets or
// creates a pod's port in the controller by the pod's identity, so that a
// pod that drifts to another host keeps its address, wires a veth pair into
// the pod's namespace and reports the port's host binding and underlay
// state. Mode "evpn" (generation 2) takes addresses from the controller's
// global IPAM and attaches the host side to an OVS-like bridge; mode "ebpf"
// (generation 3) takes them from the node's own CIDR and routes to a plain
// lxc veth.
package main
