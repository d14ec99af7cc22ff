package reports

import (
	"strings"
	"testing"
	"time"
)

// TestCDFPoints: the CDF of 1..100 is 0.5 at 50 and 1 at 100, starts at
// 0, and repeated times make one step.
func TestCDFPoints(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	pts := cdfPoints(xs)
	if len(pts) != 101 || pts[0].X != 1 || pts[0].Y != 0 {
		t.Fatalf("%d points, first %+v", len(pts), pts[0])
	}
	if p := pts[50]; p.X != 50 || p.Y != 0.5 {
		t.Errorf("point 50 = %+v, want (50, 0.5)", p)
	}
	if p := pts[100]; p.X != 100 || p.Y != 1 {
		t.Errorf("last point = %+v, want (100, 1)", p)
	}
	if pts := cdfPoints([]float64{3, 1, 3, 3}); len(pts) != 3 || pts[1].Y != 0.25 || pts[2].X != 3 || pts[2].Y != 1 {
		t.Errorf("CDF of 3,1,3,3 = %v, want (1,0) (1,.25) (3,1)", pts)
	}
}

// TestLatencyCDF: the gonum/plot SVG has a line per series in its
// generation's colour, a legend, the unit in the x label, a log axis
// when the times span orders of magnitude, and no XML prolog (it is
// inlined in the HTML).
func TestLatencyCDF(t *testing.T) {
	svg, err := LatencyCDFSVG("rtt", "round-trip time", []TimeSeries{
		{Name: "vlan on sim", Gen: "vlan", Times: []time.Duration{700 * time.Microsecond, 900 * time.Microsecond}},
		{Name: "ebpf on sim", Gen: "ebpf", Times: []time.Duration{5 * time.Microsecond, 6 * time.Microsecond, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg, "<svg") {
		t.Errorf("does not start with <svg: %.80s", svg)
	}
	for _, want := range []string{">round-trip time (µs)<", ">vlan on sim<", ">ebpf on sim<", ">fraction of probes<",
		"stroke:" + strings.ToUpper(GenColour("vlan")), "stroke:" + strings.ToUpper(GenColour("ebpf")), ">10<", ">100<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("CDF lacks %q", want)
		}
	}
	if _, err := LatencyCDFSVG("none", "rtt", []TimeSeries{{Name: "x"}}); err == nil {
		t.Error("a CDF of no times drew")
	}
}

// TestCDFPointsBounded: a CDF of 100,000 distinct times keeps at most
// cdfMaxPoints corners, from the first to the last, still rising, with
// its median where the full CDF has it.
func TestCDFPointsBounded(t *testing.T) {
	xs := make([]float64, 100000)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	pts := cdfPoints(xs)
	if len(pts) != cdfMaxPoints || pts[0].Y != 0 || pts[len(pts)-1].X != 100000 || pts[len(pts)-1].Y != 1 {
		t.Fatalf("%d points from %+v to %+v", len(pts), pts[0], pts[len(pts)-1])
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X < pts[i-1].X || pts[i].Y < pts[i-1].Y {
			t.Fatalf("point %d %+v falls back from %+v", i, pts[i], pts[i-1])
		}
	}
	for _, p := range pts {
		if p.Y >= 0.5 {
			if p.X < 50000-101 || p.X > 50000+101 {
				t.Errorf("the thinned CDF crosses 0.5 at %v, want 50000 ± 101", p.X)
			}
			break
		}
	}
}
