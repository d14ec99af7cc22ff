package reports

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// bigRun is one run of n probes between 100 instances, every one with
// its own round trip and a 10-device path, one in 50 dropped.
func bigRun(n int) *Report {
	run := &Run{Scenario: "big", Generation: "evpn", Backend: "netns", Latency: Latency{Kind: LatencyMeasured},
		Drops: map[string]int{"not-for-me": n, "split-horizon": n / 10}}
	path := []string{"a/eth0", "host1/tap", "host1/br-int", "host1/eth1", "leaf1", "spine1", "leaf2", "host2/eth1", "host2/tap", "b/eth0"}
	hopAt := make([]time.Duration, len(path))
	for i := range hopAt {
		hopAt[i] = time.Duration(i) * 20 * time.Microsecond
	}
	for i := range n {
		p := Probe{Tag: "t", From: fmt.Sprint("vm-", i%100), To: fmt.Sprint("vm-", (i+1)%100), Proto: "icmp",
			Delivered: true, Replied: true, Hops: 9, SwitchHops: 3, Path: path, HopAt: hopAt,
			RTT: 400*time.Microsecond + time.Duration(i)*time.Nanosecond, OneWay: 200 * time.Microsecond}
		if i%50 == 0 {
			p = Probe{Tag: "t", From: p.From, To: p.To, Proto: "icmp", DropAt: "leaf1", Reason: "no-route", Rule: "irb:host-unknown"}
		}
		run.Probes = append(run.Probes, p)
	}
	// A round of probes per 100, the leaf failing halfway and its
	// flows down for a tenth of the run, and the spawn of vm-0.
	for i := 0; i < n; i += 100 {
		r := Reach{At: time.Duration(i) * time.Millisecond, Tag: "t", Flows: 100, Reached: 100}
		if i >= n/2 && i < n/2+n/10 {
			r.Reached = 75
		}
		run.Reach = append(run.Reach, r)
	}
	run.Faults = []Fault{{At: time.Duration(n/2) * time.Millisecond, Target: "node leaf1", RoutesWithdrawn: 25}}
	for i, step := range []string{"1-schedule:host1", "2-4-port-created", "5-vnic-attached", "9-overlay-active"} {
		run.Timeline = append(run.Timeline, SpawnEvent{Instance: "vm-0", Step: step, At: time.Duration(i) * time.Millisecond})
	}
	run.Checks = []Check{{What: "all reachable", Passed: true}}
	return &Report{Title: "bench", Runs: []*Run{run}}
}

// sampled is r's run as the runner now records it: the figures of every
// probe (ProbeStats) and, in full, the first 1,000 probes and the first
// four of each outcome after them.
func sampled(r *Report) *Report {
	run := *r.Runs[0]
	var t ProbeTally
	perKey := map[ProbeKey]int{}
	run.Probes = nil
	for i, p := range r.Runs[0].Probes {
		t.Add(p)
		if k := KeyOf(p); i < 1000 || perKey[k] < 4 {
			perKey[k]++
			run.Probes = append(run.Probes, p)
		}
	}
	run.ProbeStats = t.Stats()
	return &Report{Title: r.Title, Runs: []*Run{&run}}
}

// BenchmarkRender100k renders the Markdown and the HTML report of a
// 100,000-probe run: its plots are the round-trip CDF, the flows reached
// over time (1,000 rounds around a fault), the spawn steps and the time
// per hop. The run is as the runner records it (figures of every probe,
// a sample in full), and, "all-probes", as a report.json written before
// ProbeStats holds it: every probe, the figures derived from them.
func BenchmarkRender100k(b *testing.B) {
	all := bigRun(100000)
	for _, r := range []struct {
		name string
		rep  *Report
	}{{"", sampled(all)}, {"all-probes-", all}} {
		for _, f := range []struct {
			name  string
			write func(io.Writer, *Report) error
		}{{"markdown", WriteMarkdown}, {"html", WriteHTML}} {
			b.Run(r.name+f.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := f.write(io.Discard, r.rep); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
