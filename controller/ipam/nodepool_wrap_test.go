package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

// TestNodePoolSmallWrap: in a pool smaller than one bitmap word, an
// address released behind the cursor is found again once the cursor has
// reached the end (regression: the search stopped at the word's padding).
func TestNodePoolSmallWrap(t *testing.T) {
	p, err := NewNodePool(netip.MustParsePrefix("10.1.0.0/28"))
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Addr
	for range p.Size() {
		a, err := p.Allocate()
		if err != nil {
			t.Fatalf("allocate %d of %d: %v", len(got)+1, p.Size(), err)
		}
		got = append(got, a)
	}
	if err := p.Release(got[3]); err != nil {
		t.Fatal(err)
	}
	a, err := p.Allocate()
	if err != nil || a != got[3] {
		t.Fatalf("after releasing %v: got %v, %v", got[3], a, err)
	}
	if _, err := p.Allocate(); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("full pool: err %v, want ErrPoolExhausted", err)
	}
}
