// Package userspace runs datapath.Nodes in real time over AF_PACKET
// sockets: one socket per port, opened inside the node's network
// namespace on the veth of that port's name, read in batches and written
// back through the node's Output (the userspace datapath). Its receive
// ring (RxRing) serves any reader of a packet socket, captures included.
package userspace
