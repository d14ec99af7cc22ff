package kmaps

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	gen3 "github.com/netbed/netbed/datapath/ebpf"
)

// Verdicts of a FlowRecord, as Hubble names them.
const (
	VerdictForwarded uint8 = 1
	VerdictDropped   uint8 = 2
)

// Reasons of a FlowRecord: which branch of the policy check decided.
const (
	ReasonCTReply     uint8 = 1 // a reply to a flow the destination started
	ReasonPolicyAllow uint8 = 2 // an allow entry (FlowRecord.Key)
	ReasonPolicyDeny  uint8 = 3 // a deny entry (FlowRecord.Key)
	ReasonDefaultDeny uint8 = 4 // no entry, and the endpoint enforces policy
	ReasonNotEnforced uint8 = 5 // no entry, and the endpoint does not enforce
)

// Directions of a FlowRecord, as Hubble's traffic direction.
const (
	DirIngress uint8 = 0 // checked for the destination, on its node
	DirEgress  uint8 = 1 // checked for the source, on its node, as it leaves the pod
)

// FlowRecord is what the policy programs write to the events ring buffer
// for each verdict (48 bytes, the layout of the programs' stack slot).
// For an egress verdict the source is the local pod whose egress policy
// decided and the destination identity the remote one (the ipcache's,
// world when absent).
type FlowRecord struct {
	Src, Dst    [4]byte // network order
	SrcIdentity uint32
	DstIdentity uint32
	IfIndex     uint32 // the device the program ran on
	// Key is the policy map key last looked up: the entry that decided
	// for ReasonPolicyAllow and ReasonPolicyDeny.
	Key     gen3.PolicyKey
	DPort   [2]byte // network order; the echo ID's slot is not used: 0 for ICMP
	Proto   uint8
	Verdict uint8
	Reason  uint8
	// Direction is DirIngress or DirEgress: whose policy decided.
	Direction uint8
	// SPort is the source port (network order), or for ICMP echo the
	// echo ID, as the conntrack key holds it: what tells one probe's
	// packets from another's.
	SPort [2]byte
	Nanos uint64 // bpf_ktime_get_ns
}

// The record's stack slot and field offsets.
const (
	fpEvent       = -200
	flowRecordLen = 48
	evSrc         = 0
	evDst         = 4
	evSrcID       = 8
	evDstID       = 12
	evIfIndex     = 16
	evKey         = 20
	evDPort       = 32
	evProto       = 34
	evVerdict     = 35
	evReason      = 36
	evDirection   = 37
	evSPort       = 38
	evNanos       = 40
)

// DefaultEventsSize is the ring buffer size NewEvents uses for 0 (1 MiB,
// about 21,000 records).
const DefaultEventsSize = 1 << 20

// NewEvents creates a ring buffer for flow records; size (bytes) must be
// a power of two and a multiple of the page size, 0 for DefaultEventsSize.
func NewEvents(size int) (*ebpf.Map, error) {
	if size == 0 {
		size = DefaultEventsSize
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "cilium_events", Type: ebpf.RingBuf, MaxEntries: uint32(size)})
	if err != nil {
		return nil, fmt.Errorf("create flow events ring buffer (%d bytes): %w", size, err)
	}
	return m, nil
}

// ParseFlowRecord decodes one ring buffer sample.
func ParseFlowRecord(b []byte) (FlowRecord, error) {
	var r FlowRecord
	if len(b) < flowRecordLen {
		return r, fmt.Errorf("flow record of %d bytes, want %d", len(b), flowRecordLen)
	}
	_, err := binary.Decode(b[:flowRecordLen], binary.LittleEndian, &r)
	return r, err
}

// flowRecord6 is the IPv6 record's layout: the addresses, then the
// fields FlowRecord has after its own (emitTail writes both).
type flowRecord6 struct {
	Src, Dst    [16]byte
	SrcIdentity uint32
	DstIdentity uint32
	IfIndex     uint32
	Key         gen3.PolicyKey
	DPort       [2]byte
	Proto       uint8
	Verdict     uint8
	Reason      uint8
	Direction   uint8
	SPort       [2]byte
	Nanos       uint64
}

// ParseFlow decodes a ring buffer sample of either family: an IPv4
// record (48 bytes) or an IPv6 one (72), told apart by their length. r
// holds the fields; src and dst are the addresses (r.Src and r.Dst are
// zero for IPv6). For ICMPv6, r.Proto is ICMP's, the protocol policy
// used.
func ParseFlow(b []byte) (r FlowRecord, src, dst netip.Addr, err error) {
	if len(b) != flowRecord6Len {
		r, err = ParseFlowRecord(b)
		return r, netip.AddrFrom4(r.Src), netip.AddrFrom4(r.Dst), err
	}
	var r6 flowRecord6
	if _, err := binary.Decode(b, binary.LittleEndian, &r6); err != nil {
		return r, src, dst, fmt.Errorf("IPv6 flow record: %w", err)
	}
	r = FlowRecord{SrcIdentity: r6.SrcIdentity, DstIdentity: r6.DstIdentity, IfIndex: r6.IfIndex, Key: r6.Key, DPort: r6.DPort,
		Proto: r6.Proto, Verdict: r6.Verdict, Reason: r6.Reason, Direction: r6.Direction, SPort: r6.SPort, Nanos: r6.Nanos}
	return r, netip.AddrFrom16(r6.Src), netip.AddrFrom16(r6.Dst), nil
}
