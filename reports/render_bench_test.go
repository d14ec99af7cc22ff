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
	run.Checks = []Check{{What: "all reachable", Passed: true}}
	return &Report{Title: "bench", Runs: []*Run{run}}
}

// BenchmarkRender100k renders the Markdown and the HTML report (with its
// round-trip CDF) of a 100,000-probe run.
func BenchmarkRender100k(b *testing.B) {
	r := bigRun(100000)
	for _, f := range []struct {
		name  string
		write func(io.Writer, *Report) error
	}{{"markdown", WriteMarkdown}, {"html", WriteHTML}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f.write(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
