package reports

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Change is one difference between a baseline report and a new one.
type Change struct {
	Run string // scenario/generation
	// Regression marks what a CI gate should fail on: behaviour that
	// changed (a verdict, a path, hops, a drop, a check that no longer
	// holds, a run that is gone) or a timing beyond the allowed slowdown.
	Regression bool
	What       string
}

// DiffOptions tune Diff.
type DiffOptions struct {
	// MaxSlowdown, if above 1, compares timings (round-trip p50 and p99,
	// spawn p50) of runs on the same backend: one that grew by more than
	// this factor is a regression, one that shrank as much is noted. 0
	// leaves timings out: on shared machines they move with the load.
	MaxSlowdown float64
}

// Diff compares report cur against baseline base, run by run (matched by
// scenario and generation). Behaviour is compared whatever the backends
// (sim and netns must agree on paths, hops and verdicts); timings only
// between runs of one backend.
func Diff(base, cur *Report, opts DiffOptions) []Change {
	var out []Change
	add := func(run string, reg bool, format string, a ...any) {
		out = append(out, Change{Run: run, Regression: reg, What: fmt.Sprintf(format, a...)})
	}
	matched := map[*Run]bool{}
	for _, c := range cur.Runs {
		key := c.Scenario + "/" + c.Generation
		b := baselineRun(base, c, matched)
		if b == nil {
			add(key, false, "new: not in the baseline")
			continue
		}
		matched[b] = true
		diffRun(key, b, c, opts, add)
	}
	for _, b := range base.Runs {
		if !matched[b] {
			add(b.Scenario+"/"+b.Generation, true, "gone: in the baseline (on %s) but not run", b.Backend)
		}
	}
	return out
}

// baselineRun finds the run of base matching c, one of the same backend
// first.
func baselineRun(base *Report, c *Run, taken map[*Run]bool) *Run {
	var other *Run
	for _, b := range base.Runs {
		if taken[b] || b.Scenario != c.Scenario || b.Generation != c.Generation {
			continue
		}
		if b.Backend == c.Backend {
			return b
		}
		if other == nil {
			other = b
		}
	}
	return other
}

func diffRun(key string, b, c *Run, opts DiffOptions, add func(string, bool, string, ...any)) {
	if b.Error == "" && c.Error != "" {
		add(key, true, "the run failed: %s", c.Error)
	}
	passed := map[string]bool{}
	for _, ch := range b.Checks {
		passed[checkKey(ch)] = ch.Passed
	}
	for _, ch := range c.Checks {
		was, ok := passed[checkKey(ch)]
		switch {
		case ok && was && !ch.Passed:
			add(key, true, "check no longer holds: step %d %s: %s", ch.Step, ch.What, ch.Detail)
		case ok && !was && ch.Passed:
			add(key, false, "check holds now: step %d %s", ch.Step, ch.What)
		}
	}
	if bn, cn := StatsOf(b).Sent, StatsOf(c).Sent; bn != cn {
		add(key, true, "%d probes, baseline %d", cn, bn)
	}
	if !b.AllProbesKept() || !c.AllProbesKept() {
		diffSampled(key, b, c, add)
	} else {
		diffProbes(key, b, c, add)
	}
	if opts.MaxSlowdown <= 1 || b.Backend != c.Backend {
		return
	}
	diffTimes(key, b, c, opts, add)
}

// diffProbes compares two runs that kept every probe, probe by probe.
func diffProbes(key string, b, c *Run, add func(string, bool, string, ...any)) {
	for i := range min(len(b.Probes), len(c.Probes)) {
		bp, cp := b.Probes[i], c.Probes[i]
		name := fmt.Sprintf("probe %d (%s -> %s, %s)", i, cp.From, cp.To, cp.Proto)
		if bp.From != cp.From || bp.To != cp.To || bp.Proto != cp.Proto {
			add(key, true, "%s: baseline probed %s -> %s, %s", name, bp.From, bp.To, bp.Proto)
			continue
		}
		for _, d := range ProbeChanges(bp, cp) {
			add(key, true, "%s: %s", name, d)
		}
	}
}

// diffSampled compares two runs of which one at least kept a sample of
// its probes: how many probes had each outcome (ProbeKey), then the
// probes both kept in full, matched by tag, pair, protocol and their
// rank among that pair's probes.
func diffSampled(key string, b, c *Run, add func(string, bool, string, ...any)) {
	count := func(r *Run) (map[ProbeKey]int, []ProbeKey) {
		m := map[ProbeKey]int{}
		var order []ProbeKey
		for _, cl := range StatsOf(r).Classes {
			if _, ok := m[cl.ProbeKey]; !ok {
				order = append(order, cl.ProbeKey)
			}
			m[cl.ProbeKey] += cl.Probes
		}
		return m, order
	}
	bm, border := count(b)
	cm, corder := count(c)
	for _, k := range append(corder, border...) {
		if bm[k] != cm[k] {
			add(key, true, "%d probes %s, baseline %d", cm[k], k, bm[k])
			bm[k], cm[k] = 0, 0 // once
		}
	}
	type pk struct {
		tag, from, to, proto string
		rank                 int
	}
	index := func(r *Run) map[pk]Probe {
		m, seen := map[pk]Probe{}, map[pk]int{}
		for _, p := range r.Probes {
			k := pk{p.Tag, p.From, p.To, p.Proto, 0}
			k.rank = seen[k]
			seen[k]++
			m[k] = p
		}
		return m
	}
	bi := index(b)
	seen := map[pk]int{}
	for _, cp := range c.Probes {
		k := pk{cp.Tag, cp.From, cp.To, cp.Proto, 0}
		k.rank = seen[k]
		seen[k]++
		bp, ok := bi[k]
		if !ok {
			continue
		}
		name := fmt.Sprintf("probe %s -> %s (%s, %s #%d)", cp.From, cp.To, cp.Proto, cp.Tag, k.rank+1)
		for _, d := range ProbeChanges(bp, cp) {
			add(key, true, "%s: %s", name, d)
		}
	}
}

// String names the outcome: "tagged all (icmp) answered in 9 hops (3
// switch)", "tagged deny (udp) dropped: policy-deny (policy:42)".
func (k ProbeKey) String() string {
	s := fmt.Sprintf("tagged %s (%s) ", k.Tag, k.Proto)
	switch {
	case k.Replied:
		s += "answered"
	case k.Delivered:
		s += "delivered, not answered"
	default:
		s += "dropped"
	}
	if k.Delivered {
		s += fmt.Sprintf(" in %d hops (%d switch)", k.Hops, k.SwitchHops)
	}
	if k.Reason != "" {
		s += ": " + k.Reason
		if k.Rule != "" {
			s += " (" + k.Rule + ")"
		}
	}
	return s
}

// diffTimes compares timings of two runs on one backend.
func diffTimes(key string, b, c *Run, opts DiffOptions, add func(string, bool, string, ...any)) {
	bs, cs := Summarize(b), Summarize(c)
	for _, t := range []struct {
		what string
		b, c time.Duration
	}{{"round-trip p50", bs.RTTp50, cs.RTTp50}, {"round-trip p99", bs.RTTp99, cs.RTTp99}, {"spawn p50", bs.SpawnP50, cs.SpawnP50}} {
		if t.b <= 0 || t.c <= 0 {
			continue
		}
		ratio := float64(t.c) / float64(t.b)
		switch {
		case ratio > opts.MaxSlowdown:
			add(key, true, "%s %s, baseline %s: %.2f× slower (allowed %.2f×)", t.what, dur(t.c), dur(t.b), ratio, opts.MaxSlowdown)
		case ratio < 1/opts.MaxSlowdown:
			add(key, false, "%s %s, baseline %s: %.2f× faster", t.what, dur(t.c), dur(t.b), 1/ratio)
		}
	}
}

func checkKey(c Check) string { return fmt.Sprintf("%d/%s", c.Step, c.What) }

// probeChanges lists how one probe's outcome differs from its baseline
// in what every backend must reproduce.
func ProbeChanges(b, c Probe) []string {
	var d []string
	if b.Verdict() != c.Verdict() {
		d = append(d, fmt.Sprintf("%s, was %s", c.Verdict(), b.Verdict()))
	}
	if b.Replied != c.Replied {
		d = append(d, fmt.Sprintf("replied %v, was %v", c.Replied, b.Replied))
	}
	if b.Hops != c.Hops || b.SwitchHops != c.SwitchHops {
		d = append(d, fmt.Sprintf("%d hops (%d switch), was %d (%d)", c.Hops, c.SwitchHops, b.Hops, b.SwitchHops))
	}
	if !slices.Equal(b.Path, c.Path) {
		d = append(d, fmt.Sprintf("path %s, was %s", strings.Join(c.Path, " → "), strings.Join(b.Path, " → ")))
	}
	if b.DropAt != c.DropAt || b.Reason != c.Reason || b.Rule != c.Rule {
		d = append(d, fmt.Sprintf("dropped at %q (%s %s), was %q (%s %s)", c.DropAt, c.Reason, c.Rule, b.DropAt, b.Reason, b.Rule))
	}
	return d
}

// Regressed reports whether any change is a regression.
func Regressed(changes []Change) bool {
	return slices.ContainsFunc(changes, func(c Change) bool { return c.Regression })
}

// WriteDiffMarkdown writes the changes against the baseline named
// baseline, regressions first.
func WriteDiffMarkdown(w io.Writer, baseline string, changes []Change) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Against the baseline %s\n\n", baseline)
	if len(changes) == 0 {
		b.WriteString("No change: every run matches the baseline.\n")
	}
	for _, reg := range []bool{true, false} {
		for _, c := range changes {
			if c.Regression == reg {
				mark := "-"
				if reg {
					mark = "- **regression**"
				}
				fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Run, c.What)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
