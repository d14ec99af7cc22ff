// Package netnsrt is the netns runtime: a generation's fabric deployed as
// namespaces and veth pairs, its nodes run in real time by the userspace
// datapath, its instances real namespaces with the kernel's own IP stack,
// and every probe a real packet, traced and captured.
package netnsrt
