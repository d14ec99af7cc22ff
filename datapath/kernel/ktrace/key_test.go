package ktrace

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

func TestKeyMarshal(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a6, b6 := netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("fd00:2::2")
	const z12 = "000000000000000000000000"
	const (
		v4ab = "0a000001" + z12 + "0a000002" + z12
		v6ab = "fd000001000000000000000000000001" + "fd000002000000000000000000000002"
	)
	for _, c := range []struct {
		name string
		key  Key
		want string // hex of the map key
		err  string
	}{
		{"icmp", ICMPEcho(a, b, 0x0102, 0x0304), v4ab + "01020304" + "01040000", ""},
		{"udp", Flow(ProtoUDP, a, 40000, b, 7), v4ab + "9c400007" + "11040000", ""},
		{"tcp", Flow(ProtoTCP, a, 40000, b, 80), v4ab + "9c400050" + "06040000", ""},
		// ICMPv6 is protocol 58 on the wire; the version tells an IPv6
		// key from an IPv4 one whose address bytes it shares.
		{"icmpv6", ICMPEcho(a6, b6, 0x0102, 0x0304), v6ab + "01020304" + "3a060000", ""},
		{"udp6", Flow(ProtoUDP, a6, 40000, b6, 7), v6ab + "9c400007" + "11060000", ""},
		{"tcp6", Flow(ProtoTCP, a6, 40000, b6, 80), v6ab + "9c400050" + "06060000", ""},
		{"mixed", ICMPEcho(netip.MustParseAddr("::1"), b, 1, 1), "", "both IPv4 or both IPv6"},
		{"mapped", ICMPEcho(netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("::ffff:10.0.0.2"), 1, 1), "", "both IPv4 or both IPv6"},
		{"sctp", Flow(132, a, 1, b, 2), "", "protocol 132"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.key.marshal()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h := hex(got[:]); h != c.want {
				t.Errorf("key %s, want %s", h, c.want)
			}
		})
	}
}

func hex(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, x := range b {
		s.WriteByte(digits[x>>4])
		s.WriteByte(digits[x&15])
	}
	return s.String()
}

// TestKeyReverse: the answer's key, as the programs build it from the
// answer's headers (ICMP keeps id and sequence; ports swap).
func TestKeyReverse(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if got, want := ICMPEcho(a, b, 5, 6).reverse(), ICMPEcho(b, a, 5, 6); got != want {
		t.Errorf("icmp reverse %v, want %v", got, want)
	}
	if got, want := Flow(ProtoTCP, a, 40000, b, 80).reverse(), Flow(ProtoTCP, b, 80, a, 40000); got != want {
		t.Errorf("tcp reverse %v, want %v", got, want)
	}
}

func TestDecodeRecord(t *testing.T) {
	b := make([]byte, recordLen)
	le := binary.NativeEndian
	le.PutUint64(b[recNanos:], 100)
	le.PutUint64(b[recProbe:], 42)
	le.PutUint64(b[recLocation:], 0xffffffff81000000)
	le.PutUint32(b[recNetns:], 4026531840)
	le.PutUint32(b[recIfindex:], 7)
	le.PutUint32(b[recReason:], 12)
	b[recKind] = kindDrop
	b[recFlags] = flagEncap | flagICMPErr
	b[recTCPFlags] = 0x12
	le.PutUint32(b[recLen:], 98)
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	want := record{nanos: 100, probe: 42, location: 0xffffffff81000000, netns: 4026531840, ifindex: 7,
		reason: 12, kind: kindDrop, flags: flagEncap | flagICMPErr, tcpFlags: 0x12, len: 98}
	if r != want {
		t.Errorf("decoded %+v, want %+v", r, want)
	}
	if _, err := decodeRecord(b[:recordLen-1]); err == nil {
		t.Error("a short record decoded")
	}
}

// TestReply: the answer's way back is a reversed match, or an ICMP error
// quoting the request (but not one quoting the answer).
func TestReply(t *testing.T) {
	for _, c := range []struct {
		flags uint8
		want  bool
	}{
		{0, false},
		{flagReversed, true},
		{flagICMPErr, true},
		{flagICMPErr | flagReversed, false},
		{flagEncap | flagReversed, true},
	} {
		if got := (record{flags: c.flags}).reply(); got != c.want {
			t.Errorf("flags %#x: reply %v, want %v", c.flags, got, c.want)
		}
	}
}

// FuzzDecodeRecord: any bytes decode or fail, and a decoded record's
// fields are the bytes at their offsets.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(make([]byte, recordLen))
	f.Add(make([]byte, recordLen-1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if (err == nil) != (len(b) >= recordLen) {
			t.Fatalf("%d bytes: error %v", len(b), err)
		}
		if err == nil && (r.kind != b[recKind] || r.probe != binary.NativeEndian.Uint64(b[recProbe:])) {
			t.Fatalf("decoded %+v from %x", r, b)
		}
	})
}
