package reports

import (
	"fmt"
	"image/color"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// reachPlotted says whether the runs have something to show over time:
// probe rounds, and a fault or a drift among them.
func reachPlotted(runs []*Run) bool {
	for _, run := range runs {
		if len(run.Reach) > 0 && (len(run.Faults) > 0 || len(run.Outages) > 0) {
			return true
		}
	}
	return false
}

// reachPoints are the run's probe rounds as (time in units of scale,
// percent of the round's flows reached), in time order, a line per tag:
// the rounds of one traffic step or stream, which probe the same flows.
func reachPoints(run *Run, scale float64) []plotter.XYs {
	rounds := slices.Clone(run.Reach)
	slices.SortStableFunc(rounds, func(a, b Reach) int { return int(a.At - b.At) })
	var out []plotter.XYs
	byTag := map[string]int{}
	for _, r := range rounds {
		if r.Flows == 0 {
			continue
		}
		i, ok := byTag[r.Tag]
		if !ok {
			i = len(out)
			byTag[r.Tag] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], plotter.XY{X: float64(r.At) / scale, Y: 100 * float64(r.Reached) / float64(r.Flows)})
	}
	return out
}

// reachEvent is a fault or a drift: a vertical line of the plot.
type reachEvent struct {
	At      time.Duration
	Label   string
	Restore bool
	Drift   bool
}

// reachEvents are the runs' faults and drifts, each once (runs on sim
// have them at the same times), in time order.
func reachEvents(runs []*Run) []reachEvent {
	var out []reachEvent
	seen := map[string]bool{}
	add := func(e reachEvent) {
		if !seen[e.Label] {
			seen[e.Label] = true
			out = append(out, e)
		}
	}
	for _, run := range runs {
		for _, f := range run.Faults {
			verb := "fail "
			if f.Restore {
				verb = "restore "
			}
			add(reachEvent{At: f.At, Label: verb + f.Target + " at " + hopDur(f.At), Restore: f.Restore})
		}
		for _, o := range run.Outages {
			add(reachEvent{At: o.DriftAt, Label: "drift " + o.Instance + " at " + hopDur(o.DriftAt), Drift: true})
		}
	}
	slices.SortStableFunc(out, func(a, b reachEvent) int { return int(a.At - b.At) })
	return out
}

// ReachSVG draws with gonum/plot, for each run in its generation's
// colour, the percentage of the flows each round of probes reached (a
// dot) against the time it was sent, the rounds of one traffic step or
// stream joined by a line, with the runs' faults and drifts as vertical
// lines named in the legend: how far an outage went and when the flows
// came back.
func ReachSVG(title string, runs []*Run) (string, error) {
	var last time.Duration
	for _, run := range runs {
		for _, r := range run.Reach {
			last = max(last, r.At)
		}
	}
	events := reachEvents(runs)
	for _, e := range events {
		last = max(last, e.At)
	}
	if last == 0 {
		return "", fmt.Errorf("reach plot %q: no probe rounds", title)
	}
	unit, scale := timeUnit(last)
	p := newPlot(title)
	p.X.Label.Text = fmt.Sprintf("time since the run began (%s)", unit)
	p.Y.Label.Text = "flows reached (% of those probed)"
	p.X.Min, p.X.Max = 0, float64(last)/scale*1.05
	p.Y.Min, p.Y.Max = -5, 105
	p.Add(plotter.NewGrid())
	leg := newLegend()
	for i, run := range runs {
		c := rgb(GenColour(run.Generation))
		var thumbs []plot.Thumbnailer
		for _, pts := range reachPoints(run, scale) {
			if len(pts) > 1 {
				l, err := plotter.NewLine(pts)
				if err != nil {
					return "", fmt.Errorf("reach plot %q, %s: %w", title, run.Generation, err)
				}
				l.Color, l.Width = c, lineWidth(i, len(runs))
				p.Add(l)
				if len(thumbs) == 0 {
					thumbs = append(thumbs, l)
				}
			}
			// Each round a dot; a stream's many rounds draw the line alone.
			if len(pts) <= 100 {
				sc, err := plotter.NewScatter(pts)
				if err != nil {
					return "", fmt.Errorf("reach plot %q, %s: %w", title, run.Generation, err)
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: dotRadius(i, len(runs)), Shape: draw.CircleGlyph{}}
				p.Add(sc)
				if len(thumbs) < 2 {
					thumbs = append(thumbs, sc)
				}
			}
		}
		if len(thumbs) > 0 {
			leg.Add(run.Generation+" on "+run.Backend, thumbs...)
		}
	}
	for _, e := range events {
		x := float64(e.At) / scale
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: -5}, {X: x, Y: 105}})
		if err != nil {
			return "", fmt.Errorf("reach plot %q: %w", title, err)
		}
		l.Color = color.Gray{Y: 0x40}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		switch {
		case e.Restore:
			l.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		case e.Drift:
			l.Color = color.Gray{Y: 0x80}
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(2), vg.Points(1), vg.Points(2)}
		}
		p.Add(l)
		leg.Add(e.Label, l)
	}
	return plotSVG(p, &leg, vg.Points(540), vg.Points(260))
}
