package reports

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampledRun is a run of n probes a -> bK that kept the first keep in
// full, with its figures of them all: probe i took hops(i) hops.
func sampledRun(n, keep int, hops func(int) int) *Run {
	var all []Probe
	for i := range n {
		all = append(all, Probe{Tag: "t", From: "a", To: fmt.Sprintf("b%d", i), Proto: "icmp", Delivered: true, Replied: true,
			Hops: hops(i), Path: []string{"a", "b"}, RTT: time.Duration(i+1) * time.Microsecond})
	}
	r := &Run{Scenario: "s", Generation: "evpn", Backend: "sim", Probes: all}
	r.ProbeStats = StatsOf(r)
	r.Probes = all[:keep]
	return r
}

// TestDiffSampled: runs that kept a sample are compared by how many
// probes had each outcome and by the probes both kept.
func TestDiffSampled(t *testing.T) {
	three := func(int) int { return 3 }
	base := sampledRun(5000, 1000, three)
	if base.AllProbesKept() {
		t.Fatal("a sampled run says it kept every probe")
	}
	if ch := Diff(&Report{Runs: []*Run{base}}, &Report{Runs: []*Run{sampledRun(5000, 1000, three)}}, DiffOptions{}); len(ch) != 0 {
		t.Errorf("changes between equal sampled runs: %+v", ch)
	}
	// Probe 4000 (not kept) took 4 hops.
	cur := sampledRun(5000, 1000, func(i int) int { return 3 + min(1, max(0, i-3999)) - min(1, max(0, i-4000)) })
	ch := Diff(&Report{Runs: []*Run{base}}, &Report{Runs: []*Run{cur}}, DiffOptions{})
	var got []string
	for _, c := range ch {
		got = append(got, c.What)
	}
	want := []string{"4999 probes tagged t (icmp) answered in 3 hops (0 switch), baseline 5000",
		"1 probes tagged t (icmp) answered in 4 hops (0 switch), baseline 0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !Regressed(ch) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A kept probe that changed is named.
	cur = sampledRun(5000, 1000, func(i int) int { return 3 + min(1, max(0, 1-i)) })
	ch = Diff(&Report{Runs: []*Run{base}}, &Report{Runs: []*Run{cur}}, DiffOptions{})
	if len(ch) != 3 || !strings.Contains(ch[2].What, "probe a -> b0 (icmp, t #1): 4 hops (0 switch), was 3 (0)") {
		t.Errorf("changes: %+v", ch)
	}
}

// TestProbeTally: the figures of probes, with the CDF's times bounded.
func TestProbeTally(t *testing.T) {
	var tl ProbeTally
	for i := range 10000 {
		tl.Add(Probe{Tag: "t", Proto: "udp", Delivered: i%10 != 0, Replied: i%10 != 0, Hops: 3 + i%2, RTT: time.Duration(i)})
	}
	tl.Add(Probe{Tag: "t", Proto: "udp", Reason: "policy-deny", Expect: ExpectDropped})
	s := tl.Stats()
	if s.Sent != 10001 || s.Delivered != 9000 || s.Replied != 9000 || s.ExpectedDrops != 1 || s.HopsMin != 3 || s.HopsMax != 4 {
		t.Errorf("figures %+v", s)
	}
	if len(s.RTTs) != RTTKeep || s.RTTs[0] != 1 || s.RTTs[RTTKeep-1] != 9999 || s.RTTmax != 9999 {
		t.Errorf("%d times from %v to %v, max %v; want %d from 1ns to 9.999µs", len(s.RTTs), s.RTTs[0], s.RTTs[len(s.RTTs)-1], s.RTTmax, RTTKeep)
	}
	if n := len(s.Classes); n != 4 {
		t.Errorf("%d classes, want 4 (delivered in 3 and 4 hops, dropped, denied): %+v", n, s.Classes)
	}
}

// TestWithStats: renderers tally a run without ProbeStats once, on a
// copy: the report they were given is unchanged, a run that has its
// figures is shared, and the Markdown is what it was.
func TestWithStats(t *testing.T) {
	r := sample()
	r.Runs[1].ProbeStats = StatsOf(r.Runs[1])
	w := withStats(r)
	if r.Runs[0].ProbeStats != nil {
		t.Error("withStats changed the report it was given")
	}
	if w.Runs[1] != r.Runs[1] || w.Runs[0] == r.Runs[0] || !reflect.DeepEqual(w.Runs[0].ProbeStats, StatsOf(r.Runs[0])) {
		t.Error("withStats did not tally the run without figures alone")
	}
	var a, b bytes.Buffer
	if err := WriteMarkdown(&a, r); err != nil {
		t.Fatal(err)
	}
	r.Runs[0].ProbeStats = StatsOf(r.Runs[0])
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("the Markdown of a run with its figures tallied differs")
	}
}
