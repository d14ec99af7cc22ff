package ktrace

import (
	"encoding/binary"
	"fmt"
)

// What the kernel programs saw (record.kind).
const (
	kindRecv = iota // net:netif_receive_skb
	kindXmit        // net:net_dev_start_xmit
	kindDrop        // skb:kfree_skb
)

// record.flags.
const (
	flagReversed = 1 << iota // matched the key with source and destination swapped
	flagEncap                // inside a VXLAN header
	flagICMPErr              // quoted by an ICMP error
	flagIPv6                 // an IPv6 packet (the innermost header the key is of)
)

// Offsets in a record, as the programs write it on their stack and into
// the ring buffer (host byte order).
const (
	recNanos    = 0
	recProbe    = 8
	recLocation = 16
	recNetns    = 24
	recIfindex  = 28
	recReason   = 32
	recKind     = 36
	recFlags    = 37
	recTCPFlags = 38
	recLen      = 40
	recordLen   = 48
)

// record is one sighting as the kernel reports it.
type record struct {
	nanos    uint64
	probe    uint64
	location uint64 // kfree_skb's caller
	netns    uint32 // the device's namespace inode
	ifindex  uint32
	reason   uint32 // enum skb_drop_reason
	kind     uint8
	flags    uint8
	tcpFlags uint8  // a TCP packet's flags
	len      uint32 // skb->len
}

func decodeRecord(b []byte) (record, error) {
	if len(b) < recordLen {
		return record{}, fmt.Errorf("ktrace record of %d bytes, want %d", len(b), recordLen)
	}
	le := binary.NativeEndian
	return record{
		nanos:    le.Uint64(b[recNanos:]),
		probe:    le.Uint64(b[recProbe:]),
		location: le.Uint64(b[recLocation:]),
		netns:    le.Uint32(b[recNetns:]),
		ifindex:  le.Uint32(b[recIfindex:]),
		reason:   le.Uint32(b[recReason:]),
		kind:     b[recKind],
		flags:    b[recFlags],
		tcpFlags: b[recTCPFlags],
		len:      le.Uint32(b[recLen:]),
	}, nil
}

// reply reports whether the packet travels from the probe's destination
// back to its source: an answer, or an ICMP error about the request.
func (r record) reply() bool {
	return (r.flags&flagReversed != 0) != (r.flags&flagICMPErr != 0)
}
