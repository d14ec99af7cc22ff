package ipam

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/store"
)

// BenchmarkLocalAllocate measures in-process local IPAM allocations: a /16
// node CIDR (65533 addresses) filled, then emptied by a fresh pool.
func BenchmarkLocalAllocate(b *testing.B) {
	cidr := netip.MustParsePrefix("10.0.0.0/16")
	p, _ := NewNodePool(cidr)
	var fresh time.Duration
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := p.Allocate(); err != nil {
			t0 := time.Now()
			p, _ = NewNodePool(cidr)
			fresh += time.Since(t0)
			if _, err := p.Allocate(); err != nil {
				b.Fatal(err)
			}
		}
	}
	el := time.Since(start) - fresh
	b.ReportMetric(float64(b.N)/el.Seconds(), "allocs/s")
}

// BenchmarkLocalAllocateRelease measures allocate+release pairs on a
// half-full pool (the cursor has to skip held addresses).
func BenchmarkLocalAllocateRelease(b *testing.B) {
	p, _ := NewNodePool(netip.MustParsePrefix("10.0.0.0/16"))
	for i := 0; i < p.Size()/2; i++ {
		_, _ = p.Allocate()
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a, err := p.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Release(a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "allocs/s")
}

// BenchmarkGlobalAllocateBatch measures the global IPAM in bbolt: batches of
// 256 addresses in one durable transaction.
func BenchmarkGlobalAllocateBatch(b *testing.B) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "s.db"), store.BoltOptions{NoBatch: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := Pool{ID: "p", Prefix: netip.MustParsePrefix("10.0.0.0/8"), Ranges: []Range{{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.255.255.254")}}}
	const batch = 256
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := st.Update(context.Background(), func(tx store.Tx) error {
			_, err := AllocateN(tx, p, "bench", batch)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "allocs/s")
}
