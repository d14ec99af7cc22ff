package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Every plot of a report is drawn with gonum/plot and inlined in the
// HTML as an <svg> element. Their text is in Liberation Sans, whose
// widths gonum/plot measures to lay the plot out; the SVG names Arial
// and Helvetica after it, which have the same metrics, so that labels
// fit in a browser without Liberation too.

// plotFont is the font of every plot's text.
var plotFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// svgFontFamily is what the SVG says for plotFont, and what it is
// replaced with.
const (
	svgFontFamily  = "font-family:Liberation Sans;"
	htmlFontFamily = "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"
)

// newPlot is a plot titled title with every text in plotFont.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(plotFont, 12)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(plotFont, 11)
		a.Tick.Label.Font = font.From(plotFont, 10)
	}
	p.Legend.TextStyle.Font = font.From(plotFont, 10)
	return p
}

// newLegend is a legend for the right of a plot, in plotFont.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(plotFont, 10)
	l.Top, l.Left = true, true
	return l
}

// plotSVG draws p, and leg to its right when it has entries, as an
// <svg> element (no XML prolog) at least w × h points: wider when the
// title or the legend needs it, taller when the legend does.
func plotSVG(p *plot.Plot, leg *plot.Legend, w, h vg.Length) (string, error) {
	const pad = vg.Length(8)
	var legW, legH vg.Length
	if leg != nil {
		r := leg.Rectangle(draw.Canvas{})
		legW, legH = r.Max.X-r.Min.X, r.Max.Y-r.Min.Y
	}
	if legW > 0 {
		legW += 2 * pad
	}
	w = max(w, p.Title.TextStyle.Width(p.Title.Text)+2*pad, legW+240)
	titleH := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	h = max(h, legH+titleH+3*pad)
	c := vgsvg.New(w, h)
	// A margin all round: a browser's font boxes reach a little beyond
	// the extents gonum/plot lays the text out with.
	dc := draw.Crop(draw.New(c), pad/2, -pad/2, pad/2, -pad/2)
	if p.Title.Text != "" && legW > 0 {
		// The title centred over the whole width, the plot and the
		// legend below it.
		title := p.Title.Text
		sty := p.Title.TextStyle
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y + sty.FontExtents().Descent}, title)
		p.Title.Text = ""
		defer func() { p.Title.Text = title }()
		dc = draw.Crop(dc, 0, 0, 0, -titleH)
	}
	p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	if legW > 0 {
		leg.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-legW+pad, -pad, pad, -pad))
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("plot %q: %w", p.Title.Text, err)
	}
	out := b.String()
	if i := strings.Index(out, "<svg"); i > 0 {
		out = out[i:] // inline in HTML: no XML prolog
	}
	return strings.ReplaceAll(out, svgFontFamily, htmlFontFamily), nil
}

// timeUnit is the unit a plot shows times in whose longest is longest
// (µs, ms or s), and the nanoseconds in one.
func timeUnit(longest time.Duration) (string, float64) {
	switch {
	case longest >= time.Second:
		return "s", float64(time.Second)
	case longest >= time.Millisecond:
		return "ms", float64(time.Millisecond)
	}
	return "µs", float64(time.Microsecond)
}

// rgb parses "#rrggbb".
func rgb(hex string) color.Color {
	v, err := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	if err != nil {
		return color.Black
	}
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}

// spansDecade says whether positive values from lo to hi span more than
// an order of magnitude: a log axis shows them better.
func spansDecade(lo, hi float64) bool {
	return lo > 0 && hi > 10*lo
}

// logAxis puts a on a log scale with ticks at the powers of ten, from
// lo/1.5 to hi*1.5 so that no mark lies on the frame.
func logAxis(a *plot.Axis, lo, hi float64) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
	a.Min, a.Max = lo/1.5, hi*1.5
	// At least one labelled tick inside: a power of ten.
	if math.Floor(math.Log10(a.Max)) < math.Ceil(math.Log10(a.Min)) {
		a.Min = math.Pow10(int(math.Floor(math.Log10(a.Min))))
	}
}

// hbars is a gonum/plot plotter of horizontal bars from 0, one per row
// of a nominal Y axis (row 0 at the top), each in its own colour. A
// bar of NaN is not drawn (its label says why).
type hbars struct {
	values  []float64
	colours []color.Color
}

func (h hbars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	half := vg.Points(8)
	for i, v := range h.values {
		if math.IsNaN(v) {
			continue
		}
		y := trY(float64(len(h.values) - 1 - i))
		x0, x1 := trX(0), trX(v)
		if x1-x0 < 1 {
			x1 = x0 + 1 // a bar of 0 still shows where it is
		}
		c.FillPolygon(h.colours[i], []vg.Point{{X: x0, Y: y - half}, {X: x1, Y: y - half}, {X: x1, Y: y + half}, {X: x0, Y: y + half}})
	}
}

func (h hbars) DataRange() (xmin, xmax, ymin, ymax float64) {
	for _, v := range h.values {
		if !math.IsNaN(v) {
			xmax = max(xmax, v)
		}
	}
	if xmax == 0 {
		xmax = 1
	}
	return 0, xmax * 1.05, -0.5, float64(len(h.values)) - 0.5
}

// BarsSVG draws bars as horizontal bars with gonum/plot, each in its
// generation's colour (or a palette colour when it has none), its label
// and value text on the left, in the order given from the top; xLabel
// names the values and their unit.
func BarsSVG(title, xLabel string, bars []Bar) (string, error) {
	if len(bars) == 0 {
		return "", fmt.Errorf("bar plot %q: no bars", title)
	}
	p := newPlot(title)
	p.X.Label.Text = xLabel
	h := hbars{}
	names := make([]string, len(bars))
	for i, b := range bars {
		names[len(bars)-1-i] = b.Label + ": " + barText(b)
		v := b.Value
		if b.Missing {
			v = math.NaN()
		}
		colour := palette[i%len(palette)]
		if b.Gen != "" {
			colour = GenColour(b.Gen)
		}
		h.values = append(h.values, v)
		h.colours = append(h.colours, rgb(colour))
	}
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	p.Add(grid, h)
	p.NominalY(names...)
	p.Y.Min, p.Y.Max = -0.5, float64(len(bars))-0.5
	return plotSVG(p, nil, vg.Points(540), vg.Points(float64(60+20*len(bars))))
}

// lineWidth and dotRadius are the width of line i of n and the radius of
// its dots: the first drawn is the widest, so that a line drawn on top
// of another with the same values (two generations with equal tables)
// leaves it showing on either side.
func lineWidth(i, n int) vg.Length { return vg.Points(1.5 + 2*float64(n-1-i)) }
func dotRadius(i, n int) vg.Length { return vg.Points(2.5 + 1.5*float64(n-1-i)) }
