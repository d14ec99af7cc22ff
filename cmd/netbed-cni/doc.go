// Command netbed-cni is netbed's CNI plugin (spec 0.3.0–1.1.0): it gets or
// creates a pod's port in the controller by the pod's identity, so that a
// pod that drifts to another host keeps its address, wires a veth pair into
// the pod's namespace and reports the port's host binding and underlay
// state. Mode "evpn" (generation 2) takes addresses from the controller's
// global IPAM and attaches the host side to an OVS-like bridge; mode "ebpf"
// (generation 3) takes them from the node's own CIDR and routes to a plain
// lxc veth.
//
// A configuration (fields in NetConf):
//
//	{
//	  "cniVersion": "1.1.0",
//	  "name": "netbed",
//	  "type": "netbed-cni",
//	  "mode": "evpn",
//	  "controllerURL": "unix:///run/netbed/controller.sock",
//	  "label": "prod-env",
//	  "createBridge": true,
//	  "mtu": 1450
//	}
//
// and for generation 3, with the node's CIDR given or, without it, the
// node's block of the controller's cluster pool:
//
//	{"cniVersion": "1.1.0", "name": "pods", "type": "netbed-cni",
//	 "mode": "ebpf", "nodeCIDR": "10.244.1.0/24"}
//
// With "nodeCIDR6" as well (an IPv6 block from /104 to /126, like
// "fd10::100/120") the pod is dual-stack: it also gets an IPv6 /128 from
// that block, its first address being the IPv6 gateway, and the result's
// ips list both addresses, each with its gateway, and its routes a
// default route per family.
//
// A pod's port is named after its identity, first match: NETBED_PORT in
// CNI_ARGS (that exact name), an identity label
// in args.cni.labels (default "statefulset.kubernetes.io/pod-name"),
// NETBED_IDENTITY in CNI_ARGS, K8S_POD_NAMESPACE and K8S_POD_NAME, the
// container ID. With keepPort "auto", DEL keeps the port (and its address)
// of the first three, which are stateful, and deletes the others.
// "attach": "none" leaves an evpn pod's host side out of any bridge (netbed's
// netns backend, whose userspace datapath reads the veth itself).
//
// Against a controller that serves TLS and authenticates: "caFile" (its
// CA; TLS over https:// or a unix:// socket), "serverName", and the node's
// "tokenFile" or "certFile" and "keyFile":
//
//	{"controllerURL": "https://10.0.0.1:7480", "caFile": "/etc/netbed/ca.crt",
//	 "tokenFile": "/etc/netbed/token", "label": "prod-env"}
package main
