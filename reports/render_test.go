package reports

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	run := func(gen string, hops int, rtt time.Duration, pass bool) *Run {
		r := &Run{Scenario: "cross-subnet-hops", Generation: gen, Backend: "sim"}
		for i := range 10 {
			r.Probes = append(r.Probes, Probe{From: "a", To: "b", Delivered: true, Replied: true, Hops: hops, RTT: rtt + time.Duration(i)*time.Microsecond, Path: []string{"a", "b"}, HopAt: []time.Duration{0, 7 * time.Microsecond}})
		}
		r.Probes = append(r.Probes, Probe{From: "a", To: "c", Reason: "no-route", DropAt: "core1"})
		r.Checks = []Check{{Step: 3, Line: 12, What: "hops", Passed: pass, Detail: "want 18"}}
		r.Timeline = []SpawnEvent{{Instance: "a", Step: "1-schedule:host1", At: time.Second}, {Instance: "b", Step: "1-schedule:host2", At: time.Second},
			{Instance: "a", Step: "2-4-port-created", At: time.Second + 2*time.Millisecond}, {Instance: "a", Step: "9-overlay-active", At: time.Second + 9*time.Millisecond}}
		r.Tables = []Table{{Node: "tor1", Name: "macs", Entries: 40}, {Node: "tor2", Name: "macs", Entries: 60}, {Node: "core1", Name: "arp", Entries: 0}}
		return r
	}
	return &Report{Title: "t", Runs: []*Run{run("vlan", 18, 100*time.Microsecond, true), run("evpn", 6, 40*time.Microsecond, false)}}
}

func TestSummarize(t *testing.T) {
	s := Summarize(sample().Runs[0])
	if s.Probes != 11 || s.Delivered != 10 || s.HopsMin != 18 || s.HopsMax != 18 {
		t.Errorf("summary = %+v", s)
	}
	// Empirical quantile of 100..109µs: p50 is the 5th value, max the last.
	if s.RTTp50 != 104*time.Microsecond || s.RTTmax != 109*time.Microsecond {
		t.Errorf("rtt p50 %v max %v", s.RTTp50, s.RTTmax)
	}
}

func TestRenderers(t *testing.T) {
	r := sample()
	if !r.Failed() || r.Runs[0].Failed() {
		t.Fatal("Failed() wrong")
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## cross-subnet-hops", "| vlan | sim | 10/11 | 18 |", "| evpn | sim | 10/11 | 6 |", "1/1 ✓", "0/1 ✗", "**evpn** step 3 (line 12): hops — want 18", "- vlan, a → c (): dropped at core1, [no-route](#glossary)", "- vlan, a → b, 18 hops: a → b (+7.0µs)", "| vlan | macs | 60 | tor2 | 100 |", "- vlan, a: [1-schedule:host1](#glossary) → [2-4-port-created](#glossary) (+2.00ms) → [9-overlay-active](#glossary) (+9.00ms)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&js)
	if err != nil || len(back.Runs) != 2 || back.Runs[1].Probes[0].RTT != r.Runs[1].Probes[0].RTT {
		t.Fatalf("json round trip: %v", err)
	}
	var ju bytes.Buffer
	if err := WriteJUnit(&ju, r); err != nil {
		t.Fatal(err)
	}
	var parsed junitSuites
	if err := xml.Unmarshal(ju.Bytes(), &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Suites) != 2 || parsed.Suites[1].Failures != 1 || parsed.Suites[0].Failures != 0 {
		t.Errorf("junit = %+v", parsed)
	}
	var h bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	// The RTT CDF, and per generation the spawn steps of its first instance
	// and the per-hop times of its first probe.
	if strings.Count(h.String(), "<svg") != 5 || !strings.Contains(h.String(), `class="fail"`) {
		t.Errorf("html lacks plots or failure marks")
	}
	if !strings.Contains(h.String(), "vlan on sim: each hop of a → b") || !strings.Contains(h.String(), ">b: 7.00 µs<") {
		t.Errorf("html lacks the per-hop plot")
	}
	if !strings.Contains(h.String(), "evpn on sim: spawn of a step by step") || !strings.Contains(h.String(), ">time since 1-schedule:host1 (ms)<") {
		t.Errorf("html lacks the spawn plot")
	}
	if !strings.Contains(h.String(), "<td>macs</td><td>60</td><td>tor2</td><td>100</td>") {
		t.Errorf("html lacks the table sizes")
	}
	if strings.Contains(md.String(), "| arp |") {
		t.Errorf("a table empty everywhere is listed:\n%s", md.String())
	}
}

func TestMerge(t *testing.T) {
	a, b := sample(), sample()
	a.Merge(b)
	if len(a.Runs) != 4 || len(a.Scenarios()) != 1 || len(a.RunsOf("cross-subnet-hops")) != 4 {
		t.Errorf("merge: %d runs", len(a.Runs))
	}
}

// A run's faults are listed in the Markdown, with the ports a host took
// down, the routes withdrawn and the controller's outage, and survive JSON.
func TestFaultsRendered(t *testing.T) {
	r := sample()
	r.Runs[1].Faults = []Fault{
		{At: time.Second, Target: "node leaf1", RoutesWithdrawn: 5},
		{At: 2 * time.Second, Target: "node host2", PortsDown: []string{"vm-2", "vm-6"}},
		{At: 3 * time.Second, Target: "controller", Restore: true, APIUnavailable: 1500 * time.Millisecond},
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- evpn fail node leaf1 at 1.00s: 5 routes withdrawn", "- evpn fail node host2 at 2.00s: ports down: vm-2, vm-6", "- evpn restore controller at 3.00s: API unavailable for 1.50s"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"ports_down": [`) {
		t.Errorf("json lacks ports_down:\n%s", js.String())
	}
	back, err := ReadJSON(&js)
	if err != nil || len(back.Runs[1].Faults) != 3 || back.Runs[1].Faults[2].APIUnavailable != 1500*time.Millisecond {
		t.Fatalf("json round trip of faults: %v %+v", err, back.Runs[1].Faults)
	}
}

// TestLatencySource: every format says what the latencies are, once per
// backend: modelled on sim with the calibration's date and machine,
// measured on netns, and that it was not recorded in an older report.
func TestLatencySource(t *testing.T) {
	r := sample()
	for _, run := range r.Runs {
		run.Latency = Latency{Kind: LatencyModelled, Calibration: "2026-12-06", Machine: "2 vCPU AMD EPYC"}
	}
	netns := *r.Runs[0]
	netns.Backend, netns.Latency = "netns", Latency{Kind: LatencyMeasured, Method: "captures"}
	old := *r.Runs[0]
	old.Scenario, old.Latency = "older", Latency{}
	r.Runs = append(r.Runs, &netns, &old)
	var md, html, js bytes.Buffer
	for _, f := range []func() error{
		func() error { return WriteMarkdown(&md, r) },
		func() error { return WriteHTML(&html, r) },
		func() error { return WriteJSON(&js, r) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	for name, out := range map[string]string{"markdown": md.String(), "html": html.String()} {
		if n := strings.Count(out, "sim: modelled (sim, device costs calibrated 2026-12-06 on 2 vCPU AMD EPYC)"); n != 1 {
			t.Errorf("%s: the sim runs' latency source appears %d times, want once:\n%s", name, n, out)
		}
		if !strings.Contains(out, "netns: measured: captures") || !strings.Contains(out, "sim: latency source not recorded") {
			t.Errorf("%s: no netns or unrecorded latency source:\n%s", name, out)
		}
	}
	back, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Runs[0].Latency; got != r.Runs[0].Latency {
		t.Errorf("JSON round trip: latency %+v, want %+v", got, r.Runs[0].Latency)
	}
}

// Drift outages appear per flow in the Markdown, the HTML (a plot) and
// the JSON, and a flow that never recovered says so.
func TestOutagesRendered(t *testing.T) {
	r := sample()
	r.Runs[0].Outages = []Outage{
		{Tag: "s", Instance: "b", From: "a", To: "b", DriftAt: 2 * time.Second, Outage: 12340 * time.Microsecond, Recovered: true, Lost: 1},
		{Tag: "s", Instance: "b", From: "c", To: "b", DriftAt: 2 * time.Second, Lost: 7},
	}
	var md, html, js bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| vlan | sim | b | 2s | a → b | 12.34ms (1 lost) |", "| vlan | sim | b | 2s | c → b | never recovered (7 lost) |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "drift outage per flow") || !strings.Contains(html.String(), "never recovered (7 lost)") {
		t.Error("HTML lacks the outage plot")
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Runs[0].Outages; len(got) != 2 || got[0] != r.Runs[0].Outages[0] || got[1].Recovered {
		t.Errorf("JSON round trip: %+v", got)
	}
}

// TestPlotUnits: every bar of a time plot is in the unit its title
// names, whatever the spread of the times (699.3µs next to 4ms is 0.70
// ms next to 4.00 ms), and a missing time says why instead.
func TestPlotUnits(t *testing.T) {
	bars, unit := timeBars([]timeBar{{Label: "a", D: 699300 * time.Nanosecond}, {Label: "b", D: 4 * time.Millisecond, Note: " (1 lost)"}, {Label: "c", Missing: true, Note: "never recovered (7 lost)"}})
	if unit != "ms" {
		t.Fatalf("unit %q, want ms", unit)
	}
	want := []Bar{{Label: "a", Value: 0.6993, Text: "0.70 ms"}, {Label: "b", Value: 4, Text: "4.00 ms (1 lost)"}, {Label: "c", Text: "never recovered (7 lost)", Missing: true}}
	for i := range want {
		if bars[i] != want[i] {
			t.Errorf("bar %d = %+v, want %+v", i, bars[i], want[i])
		}
	}
	if _, unit := timeBars([]timeBar{{D: 7 * time.Microsecond}}); unit != "µs" {
		t.Errorf("7µs in %s, want µs", unit)
	}
	if _, unit := timeBars([]timeBar{{D: 1500 * time.Millisecond}}); unit != "s" {
		t.Errorf("1.5s in %s, want s", unit)
	}
	// In a rendered report no bar of a time plot names another unit
	// than its title.
	r := sample()
	r.Runs[1].Probes[0].Path = []string{"a", "x", "b"}
	r.Runs[1].Probes[0].HopAt = []time.Duration{0, 7 * time.Microsecond, 2 * time.Millisecond}
	var h bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	axis := regexp.MustCompile(`>[^<]*\((µs|ms|s)\)</text>`)
	barUnit := regexp.MustCompile(`\d ?(µs|ms|s)[ <]`)
	for _, svg := range strings.Split(h.String(), "<svg")[1:] {
		m := axis.FindStringSubmatch(svg)
		if m == nil {
			t.Errorf("a plot's axis names no unit: %.200s", svg)
			continue
		}
		for _, u := range barUnit.FindAllStringSubmatch(svg, -1) {
			if u[1] != m[1] {
				t.Errorf("a plot whose axis is in %s has a bar in %s: %.300s", m[1], u[1], svg)
			}
		}
	}
}

// TestGenColours: in every plot of a report a generation's bars have its
// one colour, and no two generations share one.
func TestGenColours(t *testing.T) {
	r := sample()
	r.Runs[0].Outages = []Outage{{From: "a", To: "b", Outage: time.Millisecond, Recovered: true}}
	var h bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	for _, svg := range strings.Split(h.String(), "<svg")[1:] {
		svg = "<svg" + svg[:strings.Index(svg, "</svg>")]
		var want []string
		switch {
		case strings.Contains(svg, "round-trip times per generation"):
			want = []string{GenColour("vlan"), GenColour("evpn")}
		case strings.Contains(svg, "vlan on sim:"), strings.Contains(svg, "drift outage"):
			want = []string{GenColour("vlan")}
		case strings.Contains(svg, "evpn on sim:"):
			want = []string{GenColour("evpn")}
		default:
			t.Errorf("unexpected plot %.300s", svg)
		}
		if got := svgColours(svg); !slices.Equal(got, want) {
			t.Errorf("plot colours %v, want %v: %.200s", got, want, svg)
		}
	}
	seen := map[string]string{}
	for _, g := range []string{"vlan", "vlan-stock", "evpn", "ebpf", "ebpf-direct"} {
		if other, ok := seen[GenColour(g)]; ok {
			t.Errorf("%s and %s share a colour", g, other)
		}
		seen[GenColour(g)] = g
	}
}
