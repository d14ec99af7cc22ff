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
