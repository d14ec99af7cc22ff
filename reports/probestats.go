package reports

import (
	"slices"
	"time"
)

// ProbeStats aggregates every probe of a run, so that a run of hundreds
// of thousands of probes keeps a few kilobytes of figures and a bounded
// sample of probes in full (Run.Probes) rather than each probe's path.
// Reports take their tables from it; runs read from older reports, which
// kept every probe, get theirs from their probes (StatsOf).
type ProbeStats struct {
	Sent      int `json:"sent"`
	Delivered int `json:"delivered"`
	Replied   int `json:"replied"`
	// ExpectedDrops counts the probes not delivered that the scenario's
	// expectations wanted dropped.
	ExpectedDrops int `json:"expected_drops,omitempty"`
	// Hop counts of the delivered probes.
	HopsMin       int `json:"hops_min"`
	HopsMax       int `json:"hops_max"`
	SwitchHopsMax int `json:"switch_hops_max"`
	// Round-trip times of the answered probes: exact empirical quantiles
	// (gonum/stat) over all of them.
	RTTp50 time.Duration `json:"rtt_p50_ns"`
	RTTp99 time.Duration `json:"rtt_p99_ns"`
	RTTmax time.Duration `json:"rtt_max_ns"`
	// RTTs are the answered probes' non-zero round trips in ascending
	// order: all of them up to RTTKeep, beyond that RTTKeep order
	// statistics at evenly spaced ranks, the least and the greatest
	// included (what a CDF plot draws).
	RTTs []time.Duration `json:"rtts_ns,omitempty"`
	// Classes count the probes by outcome, in the order each first
	// occurred: per tag, a histogram of hops and of verdicts.
	Classes []ProbeClass `json:"classes,omitempty"`
}

// RTTKeep bounds ProbeStats.RTTs.
const RTTKeep = 4096

// ProbeClass is one outcome and how many probes had it.
type ProbeClass struct {
	ProbeKey
	Expect string `json:"expect,omitempty"`
	Probes int    `json:"probes"`
}

// ProbeKey is what a probe's outcome class is made of: every probe of one
// key took as many hops and got the same verdict for the same reason. A
// run keeps the first few probes of each key in full, so that every
// distinct outcome has an example with its path.
type ProbeKey struct {
	Tag        string `json:"tag,omitempty"`
	Proto      string `json:"proto"`
	Delivered  bool   `json:"delivered"`
	Replied    bool   `json:"replied"`
	Hops       int    `json:"hops"`
	SwitchHops int    `json:"switch_hops"`
	Reason     string `json:"reason,omitempty"`
	Rule       string `json:"rule,omitempty"`
}

// KeyOf is p's outcome class.
func KeyOf(p Probe) ProbeKey {
	return ProbeKey{Tag: p.Tag, Proto: p.Proto, Delivered: p.Delivered, Replied: p.Replied,
		Hops: p.Hops, SwitchHops: p.SwitchHops, Reason: p.Reason, Rule: p.Rule}
}

// ProbeTally builds a ProbeStats one probe at a time. The zero value is
// ready; it holds eight bytes per answered probe until Stats.
type ProbeTally struct {
	s       ProbeStats
	rtts    []float64 // every answered probe's round trip
	classes map[classKey]int
}

type classKey struct {
	ProbeKey
	expect string
}

// Add counts p.
func (t *ProbeTally) Add(p Probe) {
	s := &t.s
	if s.Sent == 0 {
		s.HopsMin = -1
	}
	s.Sent++
	k := classKey{KeyOf(p), p.Expect}
	if t.classes == nil {
		t.classes = map[classKey]int{}
	}
	i, ok := t.classes[k]
	if !ok {
		i = len(s.Classes)
		t.classes[k] = i
		s.Classes = append(s.Classes, ProbeClass{ProbeKey: k.ProbeKey, Expect: k.expect})
	}
	s.Classes[i].Probes++
	if !p.Delivered {
		if p.Expect == ExpectDropped {
			s.ExpectedDrops++
		}
		return
	}
	s.Delivered++
	if s.HopsMin < 0 || p.Hops < s.HopsMin {
		s.HopsMin = p.Hops
	}
	s.HopsMax = max(s.HopsMax, p.Hops)
	s.SwitchHopsMax = max(s.SwitchHopsMax, p.SwitchHops)
	if p.Replied {
		s.Replied++
		t.rtts = append(t.rtts, float64(p.RTT))
	}
}

// Stats returns the figures of the probes added so far.
func (t *ProbeTally) Stats() *ProbeStats {
	s := t.s
	s.Classes = slices.Clone(t.s.Classes)
	s.HopsMin = max(s.HopsMin, 0)
	rtts := slices.Clone(t.rtts)
	s.RTTp50, s.RTTp99, s.RTTmax = quantiles(rtts) // sorts rtts
	var pos []time.Duration
	for _, x := range rtts {
		if x > 0 {
			pos = append(pos, time.Duration(x))
		}
	}
	s.RTTs = spread(pos, RTTKeep)
	return &s
}

// spread keeps at most n of the sorted xs at evenly spaced ranks, the
// first and the last included.
func spread(xs []time.Duration, n int) []time.Duration {
	if len(xs) <= n {
		return xs
	}
	out := make([]time.Duration, n)
	step := float64(len(xs)-1) / float64(n-1)
	for i := range n {
		out[i] = xs[int(float64(i)*step+0.5)]
	}
	return out
}

// StatsOf is run's ProbeStats: the runner's, or, for a run that has
// none (read from an older report, or built by hand), its probes'.
func StatsOf(run *Run) *ProbeStats {
	if run.ProbeStats != nil {
		return run.ProbeStats
	}
	var t ProbeTally
	for _, p := range run.Probes {
		t.Add(p)
	}
	return t.Stats()
}

// AllProbesKept says whether run.Probes holds every probe the run sent
// (else a sample: see ProbeStats).
func (r *Run) AllProbesKept() bool {
	return r.ProbeStats == nil || r.ProbeStats.Sent == len(r.Probes)
}

// withStats is r with every run's ProbeStats set, computed once here for
// a run that has none (a report.json written before them, with every
// probe), so that a renderer asking StatsOf many times per run does not
// tally 100,000 probes each time. r and its runs are left as they are.
func withStats(r *Report) *Report {
	out := *r
	out.Runs = make([]*Run, len(r.Runs))
	for i, run := range r.Runs {
		out.Runs[i] = run
		if run.ProbeStats == nil {
			c := *run
			c.ProbeStats = StatsOf(run)
			out.Runs[i] = &c
		}
	}
	return &out
}
