package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
)

// plotCheckJS measures, in the page as Chromium laid it out, every
// <svg>: its box, its title (the first text), how many marks it drew in
// colour (path, line, polyline, polygon, circle or rect whose fill or
// stroke is not a grey, with a non-empty box inside the plot's: the
// data, not the frame, ticks or grid), and every text whose box leaves
// the plot's.
const plotCheckJS = `(() => {
  const grey = c => { const m = c.match(/rgba?\((\d+), (\d+), (\d+)/); return !m || (m[1] === m[2] && m[2] === m[3]); };
  return [...document.querySelectorAll('svg')].map(svg => {
    const s = svg.getBoundingClientRect();
    const inside = b => b.right > s.left && b.left < s.right && b.bottom > s.top && b.top < s.bottom;
    let marks = 0;
    for (const e of svg.querySelectorAll('path, line, polyline, polygon, circle, rect')) {
      const st = getComputedStyle(e);
      if (grey(st.fill) && grey(st.stroke)) continue;
      const b = e.getBoundingClientRect();
      if ((b.width > 0 || b.height > 0) && inside(b)) marks++;
    }
    const over = [];
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBoundingClientRect();
      if (b.left < s.left - 1 || b.right > s.right + 1 || b.top < s.top - 1 || b.bottom > s.bottom + 1)
        over.push(t.textContent + ' [' + [b.left, b.top, b.right, b.bottom].map(Math.round) + ' outside ' + [s.left, s.top, s.right, s.bottom].map(Math.round) + ']');
    }
    const first = svg.querySelector('text');
    return {title: first ? first.textContent : '', width: s.width, height: s.height, marks, over};
  });
})()`

// plotCheck is one <svg> as plotCheckJS measured it.
type plotCheck struct {
	Title         string
	Width, Height float64
	Marks         int
	Over          []string
}

// checkInBrowser opens the file in Chromium and returns what is wrong
// with it: a plot without visible marks, a text outside its plot, a
// network request for anything but the file itself or a data: URL; and
// how many plots it has.
func checkInBrowser(ctx context.Context, t *testing.T, c *testutil.Chromium, file string) (problems []string, plots int) {
	t.Helper()
	url := "file://" + file
	session, err := c.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var checks []plotCheck
	if err := c.Eval(ctx, session, plotCheckJS, &checks); err != nil {
		t.Fatal(err)
	}
	for i, p := range checks {
		name := fmt.Sprintf("%s: plot %d %q", filepath.Base(file), i+1, p.Title)
		if p.Width < 50 || p.Height < 50 {
			problems = append(problems, fmt.Sprintf("%s is %.0f×%.0f px", name, p.Width, p.Height))
		}
		if p.Marks == 0 {
			problems = append(problems, name+" drew no visible mark in colour")
		}
		for _, o := range p.Over {
			problems = append(problems, name+": text outside the plot: "+o)
		}
	}
	for _, raw := range c.Events(session, "Network.requestWillBeSent") {
		var ev struct {
			Request struct{ URL string } `json:"request"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if u := ev.Request.URL; u != url && !strings.HasPrefix(u, "data:") {
			problems = append(problems, fmt.Sprintf("%s: requests %s", filepath.Base(file), u))
		}
	}
	return problems, len(checks)
}

// TestReportInBrowser renders real reports in headless Chromium and
// checks them through the DevTools protocol: the HTML report of five
// shipped scenarios on sim (a round-trip CDF each, the flows reached
// around faults and drifts, drift outages, spawn steps, time per hop)
// and a capacity study's (log axes): every plot drew visible marks, no
// text leaves its plot, and the page requests nothing over the network.
// A page made to fail every check shows that the checks can fail.
func TestReportInBrowser(t *testing.T) {
	c := testutil.StartChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	var files []string
	for _, s := range []string{"core-failure", "drift-ping-pong", "leaf-failure", "cross-subnet-hops", "vm-spawn"} {
		files = append(files, filepath.Join("..", "..", "scenarios", "library", s+".yaml"))
	}
	var stdout, stderr strings.Builder
	if code := run(append([]string{"compare", "-q", "--backend", "sim", "--out", filepath.Join(dir, "report")}, files...), &stdout, &stderr); code != 0 {
		t.Fatalf("compare: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"capacity", "-q", "--gen", "vlan,evpn,ebpf", "--per-host", "1,12", "--leaves", "2", "--hosts-per-leaf", "1", "--traffic=false", "--out", filepath.Join(dir, "capacity")}, &stdout, &stderr); code != 0 {
		t.Fatalf("capacity: exit %d: %s", code, stderr.String())
	}
	for _, f := range []struct {
		path     string
		minPlots int
	}{
		// Per scenario a CDF; flows reached for the three with faults or
		// drifts; drift outages; time per hop for each of the 13 runs, and
		// their spawn steps when the spawn took time (31 plots in all).
		{filepath.Join(dir, "report", "report.html"), 5 + 3 + 1 + 13},
		{filepath.Join(dir, "capacity", "capacity.html"), 4},
	} {
		problems, plots := checkInBrowser(ctx, t, c, f.path)
		for _, p := range problems {
			t.Error(p)
		}
		if plots < f.minPlots {
			t.Errorf("%s: %d plots, want at least %d", f.path, plots, f.minPlots)
		}
	}

	bad := filepath.Join(dir, "bad.html")
	page := `<!doctype html><html><body>
<svg width="100" height="100"><text x="60" y="50">a label far too long for its plot</text></svg>
<svg width="100" height="100"><path d="M10 10 L90 90" style="stroke:#4e79a7"/></svg>
<img src="http://192.0.2.1/x.png"></body></html>`
	if err := os.WriteFile(bad, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, _ := checkInBrowser(ctx, t, c, bad)
	want := []string{"plot 1 \"a label far too long for its plot\" drew no visible mark", "text outside the plot: a label far too long", "requests http://192.0.2.1/x.png"}
	for _, w := range want {
		if !strings.Contains(strings.Join(problems, "\n"), w) {
			t.Errorf("the checks missed %q in a page made to fail; they found:\n%s", w, strings.Join(problems, "\n"))
		}
	}
	if len(problems) != len(want) {
		t.Errorf("the checks found %d problems in a page with %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
}
