package ktrace

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IP protocol numbers a Key can hold. ProtoICMP with IPv6 addresses is
// ICMPv6 (protocol 58 on the wire).
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	protoICMPv6 = 58
)

// Key is a probe's packet as the kernel programs match it: source and
// destination (both IPv4 or both IPv6), the protocol, and either the
// source and destination ports (TCP, UDP) or the ICMP (ICMPv6) echo
// identifier and sequence number.
//
// A Key also matches the answer: the same packet with source and
// destination (and, for TCP and UDP, the ports) swapped, and an ICMP error
// quoting either one.
type Key struct {
	Proto uint8
	Src   netip.Addr
	Dst   netip.Addr
	// SrcPort and DstPort are the ports, or for ICMP the echo identifier
	// and sequence number.
	SrcPort uint16
	DstPort uint16
}

// ICMPEcho is the key of an echo request from src to dst with identifier
// id and sequence number seq.
func ICMPEcho(src, dst netip.Addr, id, seq uint16) Key {
	return Key{Proto: ProtoICMP, Src: src, Dst: dst, SrcPort: id, DstPort: seq}
}

// Flow is the key of a TCP or UDP packet.
func Flow(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) Key {
	return Key{Proto: proto, Src: src, Dst: dst, SrcPort: sport, DstPort: dport}
}

func (k Key) String() string {
	switch k.Proto {
	case ProtoICMP:
		if k.Src.Is6() {
			return fmt.Sprintf("icmpv6 %v -> %v id %d seq %d", k.Src, k.Dst, k.SrcPort, k.DstPort)
		}
		return fmt.Sprintf("icmp %v -> %v id %d seq %d", k.Src, k.Dst, k.SrcPort, k.DstPort)
	case ProtoTCP, ProtoUDP:
		name := "udp"
		if k.Proto == ProtoTCP {
			name = "tcp"
		}
		return fmt.Sprintf("%s %v:%d -> %v:%d", name, k.Src, k.SrcPort, k.Dst, k.DstPort)
	}
	return fmt.Sprintf("proto %d %v -> %v", k.Proto, k.Src, k.Dst)
}

// keyLen is the size of the kernel map's key: the source and the
// destination address (16 bytes each, an IPv4 address in the first 4),
// the ports as the packet carries them (network order), the protocol as
// the packet carries it (ICMPv6: 58), the IP version, two zero bytes.
const keyLen = 40

// Offsets in the kernel map's key.
const (
	keySrc     = 0
	keyDst     = 16
	keyPorts   = 32
	keyProto   = 36
	keyVersion = 37
)

// marshal is k as the kernel map's key.
func (k Key) marshal() ([keyLen]byte, error) {
	var b [keyLen]byte
	v6 := k.Src.Is6() && !k.Src.Is4In6()
	switch {
	case k.Src.Is4() && k.Dst.Is4():
		s, d := k.Src.As4(), k.Dst.As4()
		copy(b[keySrc:], s[:])
		copy(b[keyDst:], d[:])
		b[keyVersion] = 4
	case v6 && k.Dst.Is6() && !k.Dst.Is4In6():
		s, d := k.Src.As16(), k.Dst.As16()
		copy(b[keySrc:], s[:])
		copy(b[keyDst:], d[:])
		b[keyVersion] = 6
	default:
		return b, fmt.Errorf("key %v: addresses must be both IPv4 or both IPv6", k)
	}
	switch k.Proto {
	case ProtoICMP, ProtoTCP, ProtoUDP:
	default:
		return b, fmt.Errorf("key %v: protocol %d: want icmp (1), tcp (6) or udp (17)", k, k.Proto)
	}
	binary.BigEndian.PutUint16(b[keyPorts:], k.SrcPort)
	binary.BigEndian.PutUint16(b[keyPorts+2:], k.DstPort)
	b[keyProto] = k.Proto
	if k.Proto == ProtoICMP && v6 {
		b[keyProto] = protoICMPv6
	}
	return b, nil
}

// reverse is the key of the answer as the kernel builds it from a packet:
// addresses swapped, and ports swapped unless k is ICMP.
func (k Key) reverse() Key {
	r := Key{Proto: k.Proto, Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort}
	if k.Proto == ProtoICMP {
		r.SrcPort, r.DstPort = k.SrcPort, k.DstPort
	}
	return r
}
