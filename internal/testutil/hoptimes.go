package testutil

import (
	"testing"

	"github.com/netbed/netbed/reports"
)

// CheckHopTimes checks the per-hop times of every delivered probe: one
// per path element, the first 0, never going back. Where the backend takes
// the one-way time from the same events (sim), the last must equal it.
func CheckHopTimes(t testing.TB, probes []reports.Probe, lastIsOneWay bool) {
	t.Helper()
	for i, p := range probes {
		if !p.Delivered {
			continue
		}
		if len(p.HopAt) != len(p.Path) || len(p.Path) == 0 {
			t.Errorf("probe %d (%s -> %s): %d hop times for %d path elements", i, p.From, p.To, len(p.HopAt), len(p.Path))
			continue
		}
		if p.HopAt[0] != 0 {
			t.Errorf("probe %d (%s -> %s): first hop time %v, want 0", i, p.From, p.To, p.HopAt[0])
		}
		for k := 1; k < len(p.HopAt); k++ {
			if p.HopAt[k] < p.HopAt[k-1] {
				t.Errorf("probe %d (%s -> %s): reached %s (%v) before %s (%v)", i, p.From, p.To, p.Path[k], p.HopAt[k], p.Path[k-1], p.HopAt[k-1])
			}
		}
		if last := p.HopAt[len(p.HopAt)-1]; lastIsOneWay && last != p.OneWay {
			t.Errorf("probe %d (%s -> %s): last hop at %v, one-way time %v", i, p.From, p.To, last, p.OneWay)
		}
	}
}
