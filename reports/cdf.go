package reports

import (
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// TimeSeries is one line of a time plot: a generation's times.
type TimeSeries struct {
	Name  string // the legend entry ("evpn on sim")
	Gen   string // the generation: the line's colour
	Times []time.Duration
}

// cdfMaxPoints bounds a CDF line's corners: a 100,000-probe run draws at
// most this many steps (each at most 1/cdfMaxPoints high), not one per probe.
const cdfMaxPoints = 1000

// cdfPoints is the empirical CDF of xs as the corners of a step line:
// (x₀, 0), then (xᵢ, (i+1)/n) for xs in ascending order, each held until
// the next x; of more than cdfMaxPoints corners, evenly spaced ones and
// the last are kept.
func cdfPoints(xs []float64) plotter.XYs {
	pts := cdfCorners(xs)
	if len(pts) <= cdfMaxPoints {
		return pts
	}
	kept := make(plotter.XYs, 0, cdfMaxPoints+1)
	step := float64(len(pts)-1) / float64(cdfMaxPoints-1)
	for i := range cdfMaxPoints - 1 {
		kept = append(kept, pts[int(float64(i)*step)])
	}
	return append(kept, pts[len(pts)-1])
}

func cdfCorners(xs []float64) plotter.XYs {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	pts := make(plotter.XYs, 0, len(xs)+1)
	if len(xs) == 0 {
		return pts
	}
	pts = append(pts, plotter.XY{X: xs[0], Y: 0})
	for i, x := range xs {
		y := float64(i+1) / float64(len(xs))
		if i+1 < len(xs) && xs[i+1] == x {
			continue // one step per distinct time
		}
		pts = append(pts, plotter.XY{X: x, Y: y})
	}
	return pts
}

// LatencyCDFSVG draws, with gonum/plot, the empirical CDF of each
// series' times as an SVG: the fraction of probes answered within x,
// one line per series in its generation's colour, x in one unit chosen
// by the longest time (named in the axis label), on a log axis when the
// times span more than an order of magnitude.
func LatencyCDFSVG(title, xLabel string, series []TimeSeries) (string, error) {
	var lo, hi time.Duration
	for _, s := range series {
		for _, d := range s.Times {
			if d <= 0 {
				continue
			}
			if lo == 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
		}
	}
	if hi == 0 {
		return "", fmt.Errorf("latency CDF %q: no times to plot", title)
	}
	unit, scale := timeUnit(hi)
	p := newPlot(title)
	p.X.Label.Text = fmt.Sprintf("%s (%s)", xLabel, unit)
	p.Y.Label.Text = "fraction of probes"
	p.Y.Min, p.Y.Max = 0, 1
	// A margin on either side, so that no step lies on the frame.
	p.X.Min, p.X.Max = float64(lo)/scale*0.9, float64(hi)/scale*1.1
	if spansDecade(float64(lo), float64(hi)) {
		logAxis(&p.X, float64(lo)/scale, float64(hi)/scale)
	}
	p.Add(plotter.NewGrid())
	leg := newLegend()
	for i, s := range series {
		var xs []float64
		for _, d := range s.Times {
			if d > 0 {
				xs = append(xs, float64(d)/scale)
			}
		}
		if len(xs) == 0 {
			continue
		}
		l, err := plotter.NewLine(cdfPoints(xs))
		if err != nil {
			return "", fmt.Errorf("latency CDF %q, %s: %w", title, s.Name, err)
		}
		l.StepStyle = plotter.PostStep
		l.Color = rgb(GenColour(s.Gen))
		l.Width = lineWidth(i, len(series))
		p.Add(l)
		leg.Add(s.Name, l)
	}
	return plotSVG(p, &leg, vg.Points(540), vg.Points(270))
}
