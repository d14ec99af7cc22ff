package scenarios

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// recs builds one pair's records: a probe every 10 ms from 0, answered
// 1 ms later unless its index is in lost.
func recs(n int, lost ...int) []streamRec {
	var out []streamRec
	for i := range n {
		r := streamRec{pair: 0, sent: time.Duration(i) * 10 * ms}
		r.replied = true
		for _, l := range lost {
			if l == i {
				r.replied = false
			}
		}
		if r.replied {
			r.reply = r.sent + ms
		}
		out = append(out, r)
	}
	return out
}

func TestOutages(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recs      []streamRec
		drifts    []driftEvent
		pairs     [][2]string
		n         int // outages expected
		recovered bool
		outage    time.Duration
		lost      int
	}{
		// Answers at 1, 11, 21 ms; drift at 25 ms; 30 and 40 lost; 50
		// answered at 51 ms: 51 - 21 = 30 ms, 2 lost.
		{name: "recovered", recs: recs(8, 3, 4), drifts: []driftEvent{{"b", 25 * ms}}, pairs: [][2]string{{"a", "b"}},
			n: 1, recovered: true, outage: 30 * ms, lost: 2},
		// A probe lost before the drift counts too: the gap starts at the
		// last answer.
		{name: "loss-before", recs: recs(8, 2, 3), drifts: []driftEvent{{"b", 25 * ms}}, pairs: [][2]string{{"a", "b"}},
			n: 1, recovered: true, outage: 30 * ms, lost: 2},
		{name: "never", recs: recs(8, 3, 4, 5, 6, 7), drifts: []driftEvent{{"b", 25 * ms}}, pairs: [][2]string{{"a", "b"}},
			n: 1, recovered: false, lost: 5},
		// Not recovered before the instance drifted again at 45 ms: the
		// answer at 51 ms belongs to the second move.
		{name: "bounded-by-next-drift", recs: recs(8, 3, 4), drifts: []driftEvent{{"b", 25 * ms}, {"b", 45 * ms}}, pairs: [][2]string{{"a", "b"}},
			n: 2, recovered: false, lost: 2},
		// A flow that does not involve the drifted instance has no outage.
		{name: "other-flow", recs: recs(8), drifts: []driftEvent{{"c", 25 * ms}}, pairs: [][2]string{{"a", "b"}}, n: 0},
		// A drift after the stream ended is not its business.
		{name: "after-stream", recs: recs(8), drifts: []driftEvent{{"b", time.Second}}, pairs: [][2]string{{"a", "b"}}, n: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stream{tag: "s", pairs: tc.pairs, start: 0, until: 80 * ms, recs: tc.recs}
			got := outages([]*stream{s}, tc.drifts)
			if len(got) != tc.n {
				t.Fatalf("outages %+v; want %d", got, tc.n)
			}
			if tc.n == 0 {
				return
			}
			o := got[0]
			if o.Recovered != tc.recovered || o.Outage != tc.outage || o.Lost != tc.lost || o.From != "a" || o.To != "b" || o.DriftAt != tc.drifts[0].at {
				t.Errorf("outage %+v; want recovered %v after %v with %d lost", o, tc.recovered, tc.outage, tc.lost)
			}
		})
	}
}
