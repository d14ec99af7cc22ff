package reports

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// overviewSample is sample() with a run per overview column that has
// something to say: expected drops, faults, a drift outage, a policy.
func overviewSample() *Report {
	r := sample()
	r.Runs[0].Description = "Two VMs\n  in two subnets."
	r.Runs[0].Latency = Latency{Kind: LatencyModelled}
	r.Runs[0].Probes[10].Expect = ExpectDropped
	r.Runs[1].Faults = []Fault{
		{At: time.Second, Target: "node leaf1", RoutesWithdrawn: 5, Convergence: 85 * time.Millisecond},
		{At: 2 * time.Second, Target: "node leaf1", Restore: true, RoutesWithdrawn: 5},
		{At: 3 * time.Second, Target: "controller"},
		{At: 4 * time.Second, Target: "controller", Restore: true, APIUnavailable: 900 * time.Millisecond},
	}
	r.Runs[1].Outages = []Outage{{Outage: 12340 * time.Microsecond, Recovered: true}, {Outage: 3 * time.Millisecond, Recovered: true}}
	pol := &Run{Scenario: "policy", Generation: "ebpf", Backend: "netns", Latency: Latency{Kind: LatencyMeasured},
		Probes: []Probe{{Delivered: true, Replied: true, Hops: 10, RTT: 50 * time.Microsecond}, {Reason: "policy-deny", Rule: "policy:1->2:default-deny", Expect: ExpectDropped}},
		Checks: []Check{{What: "verdict forwarded", Passed: true}, {What: "verdict dropped", Passed: true}}}
	gone := &Run{Scenario: "policy", Generation: "ebpf-direct", Backend: "sim", Error: "boom",
		Outages: []Outage{{Recovered: true, Outage: time.Millisecond}, {Lost: 3}}}
	r.Runs = append(r.Runs, pol, gone)
	return r
}

// TestOverview: the overview table, exactly, with every column (a
// fault's convergence among its costs), each padded to its cells' width
// but at most overviewPad: the long faults cell overflows its row alone.
func TestOverview(t *testing.T) {
	var b bytes.Buffer
	if err := WriteOverview(&b, overviewSample()); err != nil {
		t.Fatal(err)
	}
	want := `| scenario          | generation  | backend | checks          | probes delivered / sent      | hops | RTT p50 / p99                         | spawn p50 | drift outage                 | faults                                   | policy verdicts        |
|-------------------|-------------|---------|-----------------|------------------------------|------|---------------------------------------|-----------|------------------------------|------------------------------------------|------------------------|
| cross-subnet-hops | vlan        | sim     | 1/1 ✓           | 10/11, 1 dropped as expected | 18   | 104.0µs / 109.0µs (modelled)          | -         | -                            | -                                        | -                      |
| cross-subnet-hops | evpn        | sim     | 0/1 ✗           | 10/11                        | 6    | 44.0µs / 49.0µs (source not recorded) | -         | max 12.34ms over 2 flows     | fail node leaf1: 5 routes withdrawn, converged in 85.00ms; fail controller; restore controller: API unavailable for 900.00ms | -                      |
| policy            | ebpf        | netns   | 2/2 ✓           | 1/2, 1 dropped as expected   | 10   | 50.0µs / 50.0µs (measured)            | -         | -                            | -                                        | 1 denied, verdicts 2/2 |
| policy            | ebpf-direct | sim     | 0/0 ✗ run error | 0/0                          | -    | -                                     | -         | 1 of 2 flows never recovered | -                                        | -                      |
`
	if b.String() != want {
		t.Errorf("overview:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestOverviewFirst: both documents open with the overview, the HTML
// with every column the Markdown has, and each scenario says what it is
// and what it checks before its details.
func TestOverviewFirst(t *testing.T) {
	r := overviewSample()
	r.Runs[0].Checks = append(r.Runs[0].Checks, Check{Step: 4, What: "packet conservation", Passed: true})
	var md, html bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	m := md.String()
	ov, sc := strings.Index(m, "## Overview"), strings.Index(m, "## cross-subnet-hops")
	if ov < 0 || sc < ov {
		t.Fatalf("the Markdown does not open with the overview:\n%s", m)
	}
	want := "## cross-subnet-hops\n\nTwo VMs in two subnets.\n\nWhat the run checks:\n\n- step 3 (line 12): hops\n- after the last step: packet conservation\n\n| generation"
	if !strings.Contains(m, want) {
		t.Errorf("Markdown lacks the description and checks:\n%s\nwant %q", m, want)
	}
	h := html.String()
	if !strings.Contains(h, "<p>Two VMs in two subnets.</p>") || !strings.Contains(h, "<li>step 3 (line 12): hops</li>") {
		t.Errorf("HTML lacks the description or checks:\n%s", h)
	}
	if strings.Index(h, `id="overview"`) > strings.Index(h, `id="scenario-cross-subnet-hops"`) {
		t.Error("the HTML does not open with the overview")
	}
	for _, c := range overviewColumns {
		if !strings.Contains(h, "<th>"+c+"</th>") {
			t.Errorf("HTML overview lacks column %q", c)
		}
	}
	// Every header row of the HTML names the columns its Markdown twin does.
	th := regexp.MustCompile(`<tr><th>(.*?)</th></tr>`)
	var htmlHeads []string
	for _, m := range th.FindAllStringSubmatch(h, -1) {
		htmlHeads = append(htmlHeads, strings.ReplaceAll(m[1], "</th><th>", " | "))
	}
	mdHead := regexp.MustCompile(`(?m)^\| (.*) \|\n\|---`)
	for _, mm := range mdHead.FindAllStringSubmatch(m, -1) {
		var cols []string
		for _, c := range strings.Split(mm[1], "|") {
			cols = append(cols, strings.TrimSpace(c))
		}
		found := false
		for _, hh := range htmlHeads {
			found = found || hh == strings.Join(cols, " | ")
		}
		if !found {
			t.Errorf("the HTML has no table with the Markdown's columns %q; its tables: %q", mm[1], htmlHeads)
		}
	}
}
