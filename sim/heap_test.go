package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQueueOrder checks the queue against sorting: events come out by time,
// ties in scheduling order, across interleaved pushes and pops. Spans
// beyond the wheel's put events in the wheel, the FIFO and the heap at once.
func TestQueueOrder(t *testing.T) {
	for _, c := range []struct{ n, span int }{
		{1, 50}, {2, 50}, {5, 50}, {17, 50}, {1000, 50},
		{1000, 3 * wheelSpan}, {5000, 40 * wheelSpan},
	} {
		n := c.n
		r := rand.New(rand.NewPCG(uint64(n), uint64(c.span)))
		q := new(queue)
		var want, got []event
		seq := uint64(0)
		for i := range n {
			seq++
			e := event{at: time.Duration(r.IntN(c.span)), seq: seq}
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
		q2 := new(queue)
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

// TestQueueAgainstModel drives the queue as the engine does (pushes at or
// after the time of the last event popped, near and far) and checks every
// peek and pop against a slice searched for the earliest event.
func TestQueueAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		r := rand.New(rand.NewPCG(seed, 7))
		q := new(queue)
		var model []event
		var now time.Duration
		seq := uint64(0)
		for step := range 20000 {
			if len(model) == 0 || r.IntN(3) > 0 {
				var d time.Duration
				switch r.IntN(5) {
				case 0:
					d = 0
				case 1, 2:
					d = time.Duration(1000 + r.IntN(600)) // a hop
				case 3:
					d = time.Duration(r.IntN(2 * wheelSpan))
				default:
					d = time.Duration(r.IntN(50 * wheelSpan))
				}
				seq++
				e := event{at: now + d, seq: seq, wire: int32(step)}
				q.push(e)
				model = append(model, e)
				continue
			}
			m := 0
			for i := range model {
				if model[i].before(&model[m]) {
					m = i
				}
			}
			want := model[m]
			model = slices.Delete(model, m, m+1)
			if p := q.peek(); p.seq != want.seq {
				t.Fatalf("seed %d step %d: peek seq %d at %v, want seq %d at %v", seed, step, p.seq, p.at, want.seq, want.at)
			}
			got := q.pop()
			if got != want {
				t.Fatalf("seed %d step %d: pop %+v, want %+v", seed, step, got, want)
			}
			if q.len() != len(model) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, q.len(), len(model))
			}
			now = got.at
		}
	}
}
