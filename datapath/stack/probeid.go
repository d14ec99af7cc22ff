package stack

import (
	"encoding/binary"

	"github.com/google/gopacket/layers"

	"github.com/netbed/netbed/datapath/frame"
)

// IDMatch says how much of a probe ID a captured frame carried.
type IDMatch uint8

// ID matches.
const (
	NoID   IDMatch = iota // not a probe's frame
	FullID                // the 8-byte payload: the whole ID
	Low32                 // a TCP answer: only the ID's low 32 bits (ack - 1)
)

// ProbeIDOf reads the probe ID from a decoded frame (a capture on a real
// interface, say): the 8-byte payload of an ICMP echo or echo reply, a UDP
// datagram or a TCP SYN sent by Probe or echoed by an instance; for a
// SYN-ACK or RST answering a probe, only the low 32 bits, from the
// acknowledgement number. VXLAN packets are read through to the inner
// frame.
func ProbeIDOf(p *frame.Parsed) (uint64, IDMatch) {
	if p.Inner != nil {
		return ProbeIDOf(p.Inner)
	}
	var payload []byte
	switch {
	case p.Has(layers.LayerTypeICMPv4):
		switch p.ICMP4.TypeCode.Type() {
		case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
			payload = p.ICMP4.Payload
		}
	case p.Has(layers.LayerTypeUDP):
		payload = p.UDP.Payload
	case p.Has(layers.LayerTypeTCP):
		t := &p.TCP
		if t.SYN && !t.ACK {
			payload = t.Payload
		} else if t.ACK && (t.SYN || t.RST) {
			return uint64(t.Ack - 1), Low32
		}
	}
	if len(payload) != 8 {
		return 0, NoID
	}
	return binary.BigEndian.Uint64(payload), FullID
}
