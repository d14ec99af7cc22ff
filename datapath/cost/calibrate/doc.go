// Package calibrate remeasures the device costs of package cost on this
// machine's kernel devices (veth, the Linux bridge, VXLAN, iptables with
// the nft backend, tc BPF programs) and on Open vSwitch's userspace
// datapath, by ICMP echo round trips between namespaces through paths with and
// without each device. netbed calibrate runs it.
package calibrate
