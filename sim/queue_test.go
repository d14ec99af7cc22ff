package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
)

// TestQueueAgainstSlowModel sends frames of random sizes at random times
// into a rated wire with a bounded queue and checks every accept or drop,
// and every arrival time, against an obvious model: a list of the end
// times of the frames still queued.
func TestQueueAgainstSlowModel(t *testing.T) {
	for _, q := range []int{1, 2, 5, 13, 64} {
		r := rand.New(rand.NewPCG(uint64(q), 7))
		e, _, _, dst := pair(t, 1, 1e9, 3*time.Microsecond, 0, LinkOpts{QueueFrames: q})
		type send struct {
			at   time.Duration
			size int
		}
		var sends []send
		at := time.Duration(0)
		for range 3000 {
			at += time.Duration(r.IntN(1500)) * time.Nanosecond // busy: ~1 frame per 750 ns
			sends = append(sends, send{at, 60 + r.IntN(1440)})
		}
		for _, s := range sends {
			ok(t, e.Do(s.at, "src", 0, func(now time.Duration, out datapath.Output) {
				out.Send(0, make([]byte, s.size))
			}))
		}
		ok(t, e.RunUntilIdle())
		cs := conserve(t, e)

		// The model of the first wire (src -> w); the forwarder then sends
		// each frame on at once into an identical second wire.
		model := func(in []send) (out []send, drops int) {
			var queued []time.Duration
			last := time.Duration(0)
			for _, s := range in {
				k := 0
				for _, end := range queued {
					if end > s.at {
						queued[k] = end
						k++
					}
				}
				queued = queued[:k]
				if len(queued) >= q {
					drops++
					continue
				}
				start := max(s.at, last)
				end := start + serialisation(s.size, 1e9)
				last = end
				queued = append(queued, end)
				out = append(out, send{end + 3*time.Microsecond, s.size})
			}
			return out, drops
		}
		mid, d1 := model(sends)
		final, d2 := model(mid)
		if got := cs.Dropped[datapath.ReasonQueueFull]; got != uint64(d1+d2) {
			t.Errorf("q=%d: %d queue-full drops, model %d", q, got, d1+d2)
		}
		if len(dst.got) != len(final) {
			t.Fatalf("q=%d: %d delivered, model %d", q, len(dst.got), len(final))
		}
		for i := range final {
			if dst.got[i] != final[i].at || dst.sizes[i] != final[i].size {
				t.Fatalf("q=%d: frame %d at %v (%d B), model %v (%d B)", q, i, dst.got[i], dst.sizes[i], final[i].at, final[i].size)
			}
		}
		if d1 == 0 {
			t.Errorf("q=%d: the load never filled the queue; the test proves little", q)
		}
	}
}
