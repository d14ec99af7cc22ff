package inetsum

import (
	"math/rand/v2"
	"testing"
)

// TestIPv4HeaderUnrolled checks the unrolled 20-byte path against the
// plain loop, on random headers and on sums that carry more than once.
func TestIPv4HeaderUnrolled(t *testing.T) {
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
		if got, want := IPv4Header(h), slow(h); got != want {
			t.Fatalf("IPv4Header(% x) = %#04x, want %#04x", h, got, want)
		}
	}
}

// TestSum: an ICMP echo request with its checksum in verifies to 0,
// an odd length counts its last byte as the high half of a word, and an
// even-length header gives IPv4Header's sum.
func TestSum(t *testing.T) {
	echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'n', 'e', 't', 'b', 'e', 'd'}
	c := Sum(echo)
	echo[2], echo[3] = byte(c>>8), byte(c)
	if got := Sum(echo); got != 0 {
		t.Errorf("checksum over a message with its checksum in: %#04x, want 0", got)
	}
	if got, want := Sum([]byte{1, 2, 3}), Sum([]byte{1, 2, 3, 0}); got != want {
		t.Errorf("odd length: %#04x, want %#04x (padded with a zero byte)", got, want)
	}
	h := []byte{0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	if got, want := Sum(h), IPv4Header(h); got != want {
		t.Errorf("IPv4 header: %#04x, IPv4Header %#04x", got, want)
	}
}
