package reports

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// svgColours are the colours the SVG fills or strokes with, in order of
// first use, upper case as gonum/plot writes them, black, white and the
// greys of the frame and grid left out.
func svgColours(svg string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?:fill|stroke):(#[0-9A-F]{6})`).FindAllStringSubmatch(svg, -1) {
		c := strings.ToLower(m[1])
		if r, g, b := c[1:3], c[3:5], c[5:7]; r == g && g == b {
			continue // a grey
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// svgWidth is the width the <svg> element asks for, in points.
func svgWidth(t *testing.T, svg string) float64 {
	t.Helper()
	m := regexp.MustCompile(`^<svg width="([0-9.]+)pt"`).FindStringSubmatch(svg)
	if m == nil {
		t.Fatalf("no width in %.100s", svg)
	}
	w, _ := strconv.ParseFloat(m[1], 64)
	return w
}

// TestBarsSVG: a bar per value in its generation's colour, its label and
// value text, the axis label with its unit, a missing bar not drawn and
// saying why, and a plot as wide as its title needs.
func TestBarsSVG(t *testing.T) {
	title := "ebpf-direct on netns: each hop of a-very-long-instance-name-0123456789 → another-long-instance-name-0123456789"
	svg, err := BarsSVG(title, "time from the previous device (µs)", []Bar{
		{Label: "leaf1", Value: 7, Text: "7.00 µs", Gen: "evpn"},
		{Label: "x", Text: "never recovered (17 lost)", Gen: "vlan", Missing: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">leaf1: 7.00 µs<", ">x: never recovered (17 lost)<", ">time from the previous device (µs)<", "&#39;Liberation Sans&#39;,Arial"} {
		if !strings.Contains(svg, want) && !strings.Contains(svg, strings.ReplaceAll(want, "&#39;", "'")) {
			t.Errorf("bars lack %q", want)
		}
	}
	if got := svgColours(svg); !slices.Equal(got, []string{GenColour("evpn")}) {
		t.Errorf("bar colours %v, want evpn's alone (the missing bar is not drawn)", got)
	}
	if w := float64(newPlot("").Title.TextStyle.Width(title)); svgWidth(t, svg) < w {
		t.Errorf("plot %vpt wide for a title of %vpt", svgWidth(t, svg), w)
	}
	if _, err := BarsSVG("none", "x", nil); err == nil {
		t.Error("a plot of no bars drew")
	}
}

// TestHopBars: a path whose devices were reached at 0, 10, 10 and 30 µs
// took 10, 0 and 20 µs per hop, a bar per device after the first.
func TestHopBars(t *testing.T) {
	p := Probe{Path: []string{"a", "leaf1", "leaf1/vxlan", "b"}, HopAt: []time.Duration{0, 10 * time.Microsecond, 10 * time.Microsecond, 30 * time.Microsecond}}
	bars, unit := hopBars("evpn", p)
	if unit != "µs" || len(bars) != 3 {
		t.Fatalf("%d bars in %s", len(bars), unit)
	}
	for i, want := range []Bar{{Label: "leaf1", Value: 10, Text: "10.0 µs", Gen: "evpn"}, {Label: "leaf1/vxlan", Value: 0, Text: "0 µs", Gen: "evpn"}, {Label: "b", Value: 20, Text: "20.0 µs", Gen: "evpn"}} {
		if bars[i] != want {
			t.Errorf("bar %d = %+v, want %+v", i, bars[i], want)
		}
	}
	if bars, _ := hopBars("evpn", Probe{Path: []string{"a", "b"}}); bars != nil {
		t.Errorf("a path without hop times has bars %v", bars)
	}
}

// TestSpawnBars: the first instance's steps at 0, 2 ms and 9 ms are bars
// of 2 and 9 ms after the first step; another instance's are left out;
// steps that all took no time make no plot.
func TestSpawnBars(t *testing.T) {
	run := &Run{Generation: "evpn", Timeline: []SpawnEvent{
		{Instance: "a", Step: "1-schedule", At: time.Second},
		{Instance: "b", Step: "1-schedule", At: time.Second},
		{Instance: "a", Step: "2-4-port-created", At: time.Second + 2*time.Millisecond},
		{Instance: "a", Step: "9-overlay-active", At: time.Second + 9*time.Millisecond},
	}}
	bars, unit := spawnBars(run)
	want := []Bar{{Label: "2-4-port-created", Value: 2, Text: "2.00 ms", Gen: "evpn"}, {Label: "9-overlay-active", Value: 9, Text: "9.00 ms", Gen: "evpn"}}
	if unit != "ms" || !slices.Equal(bars, want) {
		t.Errorf("spawn bars %+v in %s, want %+v in ms", bars, unit, want)
	}
	for i := range run.Timeline {
		run.Timeline[i].At = time.Second
	}
	if bars, _ := spawnBars(run); bars != nil {
		t.Errorf("a spawn whose steps took no time has bars %+v", bars)
	}
}

// reachRun is a known timeline: four flows all reached at 1 s, a fault
// at 1.5 s, none of them at 2 s and 3 s, two other flows reached at
// 2.5 s, the four again at 4 s after a restore at 3.5 s.
func reachRun(gen string) *Run {
	return &Run{Generation: gen, Backend: "sim",
		Reach: []Reach{
			{At: time.Second, Tag: "cross", Flows: 4, Reached: 4},
			{At: 2 * time.Second, Tag: "cross", Flows: 4},
			{At: 2500 * time.Millisecond, Tag: "same", Flows: 2, Reached: 2},
			{At: 3 * time.Second, Tag: "cross", Flows: 4},
			{At: 4 * time.Second, Tag: "cross", Flows: 4, Reached: 4},
		},
		Faults: []Fault{{At: 1500 * time.Millisecond, Target: "node core1"}, {At: 3500 * time.Millisecond, Target: "node core1", Restore: true}},
	}
}

// TestReachPoints: the outage of a known timeline, in seconds and
// percent, a line per tag.
func TestReachPoints(t *testing.T) {
	got := reachPoints(reachRun("vlan"), float64(time.Second))
	want := []plotter.XYs{{{X: 1, Y: 100}, {X: 2, Y: 0}, {X: 3, Y: 0}, {X: 4, Y: 100}}, {{X: 2.5, Y: 100}}}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("line %d = %v, want %v", i, got[i], want[i])
		}
	}
	ev := reachEvents([]*Run{reachRun("vlan"), reachRun("evpn")})
	if len(ev) != 2 || ev[0].Label != "fail node core1 at 1.50s" || ev[1].Label != "restore node core1 at 3.50s" || !ev[1].Restore {
		t.Errorf("events %+v, want the fail and the restore once each", ev)
	}
}

// TestReachSVG: a line per generation in its colour, the faults in the
// legend, the axes' units.
func TestReachSVG(t *testing.T) {
	svg, err := ReachSVG("core-failure: flows reached over time", []*Run{reachRun("vlan"), reachRun("evpn")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">time since the run began (s)<", ">flows reached (% of those probed)<", ">vlan on sim<", ">evpn on sim<", ">fail node core1 at 1.50s<", ">restore node core1 at 3.50s<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("reach plot lacks %q", want)
		}
	}
	if got := svgColours(svg); !slices.Equal(got, []string{GenColour("vlan"), GenColour("evpn")}) {
		t.Errorf("colours %v, want vlan's then evpn's", got)
	}
	if reachPlotted([]*Run{{Reach: reachRun("vlan").Reach}}) {
		t.Error("rounds without a fault or drift are plotted")
	}
	if _, err := ReachSVG("none", []*Run{{}}); err == nil {
		t.Error("a reach plot of nothing drew")
	}
}

// TestCapacityPlot: sizes from 8 to 8,000 entries at 2 to 500 instances
// per host are on log axes (100 halfway between 10 and 1,000; a tick
// labelled at each number of instances tried), in the generations'
// colours; sizes within one order of magnitude are on a linear axis.
func TestCapacityPlot(t *testing.T) {
	lines := []GenPoints{
		{Gen: "vlan", Points: [][2]float64{{2, 8}, {10, 40}, {100, 400}, {500, 2000}}},
		{Gen: "evpn", Points: [][2]float64{{2, 32}, {10, 160}, {100, 1600}, {500, 8000}}},
	}
	p, _, err := capacityPlot("macs", "instances per host", "entries, largest node", lines)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]plot.Axis{"x": p.X, "y": p.Y} {
		if _, ok := a.Scale.(plot.LogScale); !ok {
			t.Errorf("%s axis is not logarithmic", name)
		}
		if lo, hi := math.Log10(a.Min), math.Log10(a.Max); math.Abs(plot.LogScale{}.Normalize(a.Min, a.Max, math.Pow(10, (lo+hi)/2))-0.5) > 1e-9 {
			t.Errorf("%s axis: the geometric mean of its ends is not halfway", name)
		}
		if a.Min > 2 && name == "x" || a.Min > 8 && name == "y" || a.Max < 500 && name == "x" || a.Max < 8000 && name == "y" {
			t.Errorf("%s axis %v..%v leaves out points", name, a.Min, a.Max)
		}
	}
	var labels []string
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		labels = append(labels, tk.Label)
	}
	if !slices.Equal(labels, []string{"2", "10", "100", "500"}) {
		t.Errorf("x ticks %v, want one per number tried", labels)
	}
	svg, err := CapacitySVG("macs", "instances per host", "entries, largest node", lines)
	if err != nil {
		t.Fatal(err)
	}
	if got := svgColours(svg); !slices.Equal(got, []string{GenColour("vlan"), GenColour("evpn")}) {
		t.Errorf("colours %v, want vlan's then evpn's", got)
	}
	p, _, err = capacityPlot("vrfs", "instances per host", "entries", []GenPoints{{Gen: "evpn", Points: [][2]float64{{2, 3}, {5, 20}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Y.Scale.(plot.LogScale); ok {
		t.Error("3 to 20 entries on a log axis")
	}
	if _, ok := p.X.Scale.(plot.LogScale); ok {
		t.Error("2 to 5 instances on a log axis")
	}
}

// TestHTMLLoadsNothing: the HTML report forbids itself to load anything
// (Content-Security-Policy) and names nothing to load: no src, no link,
// no URL but its own anchors (TestReportInBrowser watches a browser).
func TestHTMLLoadsNothing(t *testing.T) {
	r := overviewSample()
	r.Runs[0].Reach = reachRun("vlan").Reach
	r.Runs[0].Faults = reachRun("vlan").Faults
	var b strings.Builder
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if !strings.Contains(h, `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`) {
		t.Error("the HTML has no Content-Security-Policy forbidding loads")
	}
	// The SVG namespaces are names, not addresses.
	for _, ns := range []string{`xmlns="http://www.w3.org/2000/svg"`, `xmlns:xlink="http://www.w3.org/1999/xlink"`} {
		h = strings.ReplaceAll(h, ns, "")
	}
	if m := regexp.MustCompile(`(?i)(src=|<link|url\(|@import|https?://)`).FindString(h); m != "" {
		t.Errorf("the HTML names something to load: %q", m)
	}
	if !strings.Contains(h, "flows reached over time") {
		t.Error("the sample has no reach plot")
	}
}
