// Package announce writes the frames an instance sends when it attaches
// (a gratuitous ARP, an unsolicited neighbour advertisement, a
// hypervisor's RARP; built by datapath/frame) out of a real interface in
// a network namespace, through an AF_PACKET socket, as arping -U and
// QEMU's announce_self do.
package announce
