// Package stack is the IPv4 stack of an instance (VM or pod) as a
// datapath.Node with one port, eth0: ARP, ICMP echo, UDP echo, TCP SYN
// answers, and the probes netbed sends between instances.
package stack
