package reports

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// GenPoints is one generation's line of a plot: (x, y) points, x
// ascending.
type GenPoints struct {
	Gen    string
	Points [][2]float64
}

// CapacitySVG draws with gonum/plot a line with a dot per point for each
// generation, in its colour and named in the legend; an axis whose
// values span more than an order of magnitude is logarithmic (a table
// of 10 entries and one of 8,000 both show).
func CapacitySVG(title, xLabel, yLabel string, lines []GenPoints) (string, error) {
	p, leg, err := capacityPlot(title, xLabel, yLabel, lines)
	if err != nil {
		return "", err
	}
	return plotSVG(p, leg, vg.Points(340), vg.Points(220))
}

func capacityPlot(title, xLabel, yLabel string, lines []GenPoints) (*plot.Plot, *plot.Legend, error) {
	xlo, xhi, ylo, yhi := math.Inf(1), 0.0, math.Inf(1), 0.0
	for _, l := range lines {
		for _, pt := range l.Points {
			xlo, xhi = min(xlo, pt[0]), max(xhi, pt[0])
			ylo, yhi = min(ylo, pt[1]), max(yhi, pt[1])
		}
	}
	if xhi == 0 && yhi == 0 {
		return nil, nil, fmt.Errorf("plot %q: no points", title)
	}
	p := newPlot(title)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	if spansDecade(xlo, xhi) {
		logAxis(&p.X, xlo, xhi)
		p.X.Tick.Marker = valueTicks(lines)
	}
	if spansDecade(ylo, yhi) {
		logAxis(&p.Y, ylo, yhi)
	} else {
		p.Y.Min, p.Y.Max = 0, yhi*1.1
	}
	p.Add(plotter.NewGrid())
	leg := newLegend()
	for i, l := range lines {
		pts := make(plotter.XYs, 0, len(l.Points))
		for _, pt := range l.Points {
			pts = append(pts, plotter.XY{X: pt[0], Y: pt[1]})
		}
		if len(pts) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, nil, fmt.Errorf("plot %q, %s: %w", title, l.Gen, err)
		}
		c := rgb(GenColour(l.Gen))
		line.Color, line.Width = c, lineWidth(i, len(lines))
		dots.GlyphStyle = draw.GlyphStyle{Color: c, Radius: dotRadius(i, len(lines)), Shape: draw.CircleGlyph{}}
		p.Add(line, dots)
		leg.Add(l.Gen, line, dots)
	}
	return p, &leg, nil
}

// valueTicks are a labelled tick at every x of the lines (instances per
// host as the study tried them), instead of only the powers of ten.
func valueTicks(lines []GenPoints) plot.ConstantTicks {
	var xs []float64
	for _, l := range lines {
		for _, pt := range l.Points {
			xs = append(xs, pt[0])
		}
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	ticks := make(plot.ConstantTicks, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', -1, 64)}
	}
	return ticks
}
