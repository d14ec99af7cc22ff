// Package gratuitous builds the frames a host sends unasked to announce
// where an address or a MAC now is (gratuitous ARP, unsolicited neighbour
// advertisement, RARP), byte by byte with the standard library only: the
// CNI plugin, started once per pod, sends them, and gopacket's layers
// alone cost it about 50 ms of CPU at every start. Package frame's
// builders of the same names return these frames.
package gratuitous
