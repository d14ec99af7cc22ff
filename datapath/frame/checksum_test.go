package frame

import (
	"math/rand/v2"
	"testing"
)

// TestIPv4ChecksumUnrolled checks the unrolled 20-byte path against the
// plain loop, on random headers and on sums that carry more than once.
func TestIPv4ChecksumUnrolled(t *testing.T) {
	slow := func(h []byte) uint16 {
		var s uint32
		for i := 0; i+1 < len(h); i += 2 {
			s += uint32(h[i])<<8 | uint32(h[i+1])
		}
		for s>>16 != 0 {
			s = s&0xffff + s>>16
		}
		return ^uint16(s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	headers := [][]byte{make([]byte, 20), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 1000 {
		h := make([]byte, 20)
		for i := range h {
			h[i] = byte(r.Uint32())
		}
		headers = append(headers, h)
	}
	for _, h := range headers {
		if got, want := IPv4Checksum(h), slow(h); got != want {
			t.Fatalf("IPv4Checksum(% x) = %#04x, want %#04x", h, got, want)
		}
	}
}

// TestChecksum: an ICMP echo request with its checksum in verifies to 0,
// an odd length counts its last byte as the high half of a word, and an
// even-length header gives IPv4Checksum's sum.
func TestChecksum(t *testing.T) {
	echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'n', 'e', 't', 'b', 'e', 'd'}
	c := Checksum(echo)
	echo[2], echo[3] = byte(c>>8), byte(c)
	if got := Checksum(echo); got != 0 {
		t.Errorf("checksum over a message with its checksum in: %#04x, want 0", got)
	}
	if got, want := Checksum([]byte{1, 2, 3}), Checksum([]byte{1, 2, 3, 0}); got != want {
		t.Errorf("odd length: %#04x, want %#04x (padded with a zero byte)", got, want)
	}
	h := []byte{0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	if got, want := Checksum(h), IPv4Checksum(h); got != want {
		t.Errorf("IPv4 header: %#04x, IPv4Checksum %#04x", got, want)
	}
}
