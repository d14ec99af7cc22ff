package reports

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/generation"
)

// Report is every run of one invocation: scenarios × generations.
type Report struct {
	Title   string    `json:"title"`
	Machine string    `json:"machine,omitempty"`
	Runs    []*Run    `json:"runs"`
	Created time.Time `json:"created"`
	// Shard is the part of a study the report holds (--shard); nil for
	// a whole study (or a merged one).
	Shard *Shard `json:"shard,omitempty"`
}

// Failed reports whether any run failed.
// dropsLead introduces a run's drop counts: every frame the fabric
// dropped, the instances' own ARP and neighbour discovery included, not
// only the probes (whose drops the probe list shows).
const dropsLead = "frames dropped in the fabric (probes and all other traffic), by reason: "

func (r *Report) Failed() bool {
	for _, run := range r.Runs {
		if run.Failed() {
			return true
		}
	}
	return false
}

// Scenarios returns the scenario names in first-seen order.
func (r *Report) Scenarios() []string {
	var out []string
	seen := map[string]bool{}
	for _, run := range r.Runs {
		if !seen[run.Scenario] {
			seen[run.Scenario] = true
			out = append(out, run.Scenario)
		}
	}
	return out
}

// RunsOf returns the runs of one scenario in report order.
func (r *Report) RunsOf(scenario string) []*Run {
	var out []*Run
	for _, run := range r.Runs {
		if run.Scenario == scenario {
			out = append(out, run)
		}
	}
	return out
}

// Merge appends the runs of other reports (shards of one study).
func (r *Report) Merge(others ...*Report) {
	for _, o := range others {
		r.Runs = append(r.Runs, o.Runs...)
	}
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return &r, nil
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// WriteMarkdown writes the comparison: one table per scenario with a row
// per generation, then the failed checks.
func WriteMarkdown(w io.Writer, r *Report) error {
	r = withStats(r)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	if r.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s\n\n", r.Machine)
	}
	b.WriteString("## Overview\n\n" + overviewIntro + "\n\n")
	b.WriteString(overviewMarkdown(r))
	b.WriteString("\n")
	for _, sc := range r.Scenarios() {
		fmt.Fprintf(&b, "## %s\n\n", sc)
		if d := description(r.RunsOf(sc)); d != "" {
			b.WriteString(d + "\n\n")
		}
		if cl := checkList(r.RunsOf(sc)); len(cl) > 0 {
			b.WriteString("What the run checks:\n\n")
			for _, c := range cl {
				b.WriteString("- " + c + "\n")
			}
			b.WriteString("\n")
		}
		b.WriteString("| generation | backend | probes delivered | hops (min–max) | switch hops | RTT p50 | RTT p99 | spawn p50 | checks |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, run := range r.RunsOf(sc) {
			s := Summarize(run)
			status := fmt.Sprintf("%d/%d", s.ChecksPassed, s.Checks)
			if run.Failed() {
				status += " ✗"
			} else {
				status += " ✓"
			}
			hops := fmt.Sprintf("%d–%d", s.HopsMin, s.HopsMax)
			if s.HopsMin == s.HopsMax {
				hops = fmt.Sprint(s.HopsMin)
			}
			fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %d | %s | %s | %s | %s |\n", run.Generation, run.Backend,
				s.Delivered, s.Probes, hops, s.SwitchHopsMax, dur(s.RTTp50), dur(s.RTTp99), dur(s.SpawnP50), status)
		}
		b.WriteString("\n")
		for _, l := range latencyLines(r.RunsOf(sc)) {
			fmt.Fprintf(&b, "Latency on %s\n\n", l)
		}
		for _, run := range r.RunsOf(sc) {
			if run.Error != "" {
				fmt.Fprintf(&b, "- **%s**: run error: %s\n", run.Generation, run.Error)
			}
			for _, c := range run.Checks {
				if !c.Passed {
					fmt.Fprintf(&b, "- **%s** step %d (line %d): %s — %s\n", run.Generation, c.Step, c.Line, c.What, c.Detail)
				}
			}
			if len(run.Drops) > 0 {
				var parts []string
				for _, k := range sortedKeys(run.Drops) {
					parts = append(parts, fmt.Sprintf("%s %d", mdTerm(KindReason, k), run.Drops[k]))
				}
				fmt.Fprintf(&b, "- %s %s%s\n", run.Generation, dropsLead, strings.Join(parts, ", "))
			}
			for _, f := range run.Faults {
				fmt.Fprintf(&b, "- %s %s\n", run.Generation, f)
			}
		}
		if o := outageTable(r.RunsOf(sc)); o != "" {
			b.WriteString("\nDrift outages per flow (background probe stream: last answer before the move → first answer after it):\n\n" + o)
		}
		if d := droppedProbes(r.RunsOf(sc), 8, mdLinker); len(d) > 0 {
			b.WriteString("\nDropped probes:\n\n- " + strings.Join(d, "\n- ") + "\n")
		}
		if p := firstPath(r.RunsOf(sc)); p != "" {
			b.WriteString("\nPaths of the first delivered probe:\n\n" + p)
		}
		if t := spawnLines(r.RunsOf(sc), mdLinker); len(t) > 0 {
			b.WriteString("\nSpawn of the first instance, step by step:\n\n- " + strings.Join(t, "\n- ") + "\n")
		}
		if t := tableSizes(r.RunsOf(sc)); len(t) > 0 {
			b.WriteString("\n<details><summary>Table sizes at the end (largest node per table)</summary>\n\n")
			b.WriteString("| generation | table | largest | on | total over nodes |\n|---|---|---|---|---|\n")
			for _, x := range t {
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %d |\n", x.Gen, x.Name, x.Largest, x.Node, x.Total)
			}
			b.WriteString("\n</details>\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(glossaryMarkdown(r))
	_, err := io.WriteString(w, b.String())
	return err
}

// overviewIntro says how to read the overview table.
const overviewIntro = "One row per scenario and generation. Probes delivered counts the probes that reached their destination " +
	"of those sent, and how many of the others the scenario's expectations wanted dropped. " +
	"Round trips are modelled (sim: computed from calibrated device costs) or measured (timed on real packets). " +
	"Drift outage is the worst gap a background stream saw when an instance moved."

// description is the scenario's description, from the first of its
// runs that carries one, on one line.
func description(runs []*Run) string {
	for _, run := range runs {
		if d := strings.Join(strings.Fields(run.Description), " "); d != "" {
			return d
		}
	}
	return ""
}

// latencyLines says, once per backend, what the runs' latencies are
// ("sim: modelled (…)"), in the order the runs come.
func latencyLines(runs []*Run) []string {
	var out []string
	seen := map[string]bool{}
	for _, run := range runs {
		l := run.Backend + ": " + run.Latency.String()
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// outageTable lists every run's drift outages as Markdown table rows.
func outageTable(runs []*Run) string {
	var b strings.Builder
	for _, run := range runs {
		for _, o := range run.Outages {
			if b.Len() == 0 {
				b.WriteString("| generation | backend | drifted | at | flow | outage |\n|---|---|---|---|---|---|\n")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %v | %s → %s | %s |\n", run.Generation, run.Backend, o.Instance, o.DriftAt, o.From, o.To, o)
		}
	}
	return b.String()
}

// runOutage is an outage with its run's generation and backend.
type runOutage struct {
	Gen, Backend string
	O            Outage
}

func runOutages(runs []*Run) []runOutage {
	var out []runOutage
	for _, run := range runs {
		for _, o := range run.Outages {
			out = append(out, runOutage{run.Generation, run.Backend, o})
		}
	}
	return out
}

// outageBars are the drift outages as bars in one unit; a flow that
// never recovered has an empty bar that says so.
func outageBars(runs []*Run) ([]Bar, string) {
	var bars []timeBar
	for _, run := range runs {
		for _, o := range run.Outages {
			bars = append(bars, timeBar{Label: fmt.Sprintf("%s/%s %s→%s @%v", run.Generation, run.Backend, o.From, o.To, o.DriftAt),
				Gen: run.Generation, D: o.Outage, Note: fmt.Sprintf(" (%d lost)", o.Lost), Missing: !o.Recovered})
			if !o.Recovered {
				bars[len(bars)-1].Note = o.String()
			}
		}
	}
	return timeBars(bars)
}

// timeBar is a bar whose value is a time.
type timeBar struct {
	Label, Gen string
	D          time.Duration
	// Note follows the time in the bar's text; when Missing the bar has
	// no time and the note is its whole text.
	Note    string
	Missing bool
}

// timeBars are bars in one unit for every bar, µs, ms or s, chosen by
// the longest time; the unit is returned for the plot's title.
func timeBars(tbs []timeBar) ([]Bar, string) {
	var longest time.Duration
	for _, b := range tbs {
		longest = max(longest, b.D)
	}
	unit, scale := timeUnit(longest)
	bars := make([]Bar, len(tbs))
	for i, b := range tbs {
		bars[i] = Bar{Label: b.Label, Gen: b.Gen, Text: b.Note, Missing: b.Missing}
		if !b.Missing {
			bars[i].Value = float64(b.D) / scale
			bars[i].Text = inUnit(bars[i].Value, unit) + b.Note
		}
	}
	return bars, unit
}

// inUnit prints v with three significant digits or so and its unit.
func inUnit(v float64, unit string) string {
	switch {
	case v == 0:
		return "0 " + unit
	case v < 10:
		return fmt.Sprintf("%.2f %s", v, unit)
	case v < 100:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// firstSpawn returns the steps of the first instance the run's timeline
// names, in order.
func firstSpawn(run *Run) []SpawnEvent {
	if len(run.Timeline) == 0 {
		return nil
	}
	name := run.Timeline[0].Instance
	var out []SpawnEvent
	for _, e := range run.Timeline {
		if e.Instance == name {
			out = append(out, e)
		}
	}
	return out
}

// linker renders a term of a kind in one output format, linked to its
// glossary entry; esc escapes the text around it.
type linker struct {
	term func(TermKind, string) string
	esc  func(string) string
}

var (
	mdLinker   = linker{term: mdTerm, esc: func(s string) string { return s }}
	htmlLinker = linker{term: func(k TermKind, s string) string { return string(htmlTerm(k, s)) }, esc: template.HTMLEscapeString}
)

// spawnLines is a line per run: its first instance's spawn steps, each
// with the time since the first step; then a line for every instance
// whose spawn met a limit, a throttled or refused call, or failed, with
// those steps.
func spawnLines(runs []*Run, l linker) []string {
	var out []string
	for _, run := range runs {
		ev := firstSpawn(run)
		if len(ev) < 2 {
			continue
		}
		var b strings.Builder
		b.WriteString(l.esc(fmt.Sprintf("%s, %s: ", run.Generation, ev[0].Instance)) + l.term(KindStep, ev[0].Step))
		for _, e := range ev[1:] {
			b.WriteString(" → " + l.term(KindStep, e.Step) + l.esc(fmt.Sprintf(" (+%s)", hopDur(e.At-ev[0].At))))
		}
		out = append(out, b.String())
		out = append(out, troubleLines(run, l)...)
	}
	return out
}

// troubleSteps are the spawn steps that say an instance's spawn met a
// limit or failed.
var troubleSteps = []string{"failed", "limit", "cloud-error", "throttled"}

// troubleLines is a line for every instance of run whose timeline has a
// trouble step: those steps, at their time in the run.
func troubleLines(run *Run, l linker) []string {
	var out []string
	steps := map[string][]SpawnEvent{}
	var order []string
	for _, e := range run.Timeline {
		if !slices.Contains(troubleSteps, termName(KindStep, e.Step)) {
			continue
		}
		if _, ok := steps[e.Instance]; !ok {
			order = append(order, e.Instance)
		}
		steps[e.Instance] = append(steps[e.Instance], e)
	}
	for _, inst := range order {
		var b strings.Builder
		b.WriteString(l.esc(fmt.Sprintf("%s, %s: ", run.Generation, inst)))
		for i, e := range steps[inst] {
			if i > 0 {
				b.WriteString(" → ")
			}
			b.WriteString(l.term(KindStep, e.Step) + l.esc(fmt.Sprintf(" (at %s)", hopDur(e.At))))
		}
		out = append(out, b.String())
	}
	return out
}

// tableSize is a TableStat of one generation's run.
type tableSize struct {
	Gen string
	TableStat
}

// tableSizes lists the runs' TableStats.
func tableSizes(runs []*Run) []tableSize {
	var out []tableSize
	for _, run := range runs {
		for _, t := range TableStats(run) {
			out = append(out, tableSize{run.Generation, t})
		}
	}
	return out
}

// droppedProbes lists where and why probes were dropped, one line per
// distinct (generation, pair, place, rule), at most limit lines.
func droppedProbes(runs []*Run, limit int, l linker) []string {
	var out []string
	seen := map[string]bool{}
	for _, run := range runs {
		for _, p := range run.Probes {
			if p.Delivered {
				continue
			}
			key := fmt.Sprint(run.Generation, p.From, p.To, p.Proto, p.DropAt, p.Reason, p.Rule)
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(out) == limit {
				return append(out, "…")
			}
			line := l.esc(fmt.Sprintf("%s, %s → %s (%s): dropped at %s, ", run.Generation, p.From, p.To, p.Proto, orDash(p.DropAt)))
			if p.Reason == "" {
				line += "-"
			} else {
				line += l.term(KindReason, p.Reason)
			}
			if p.Rule != "" {
				line += ", rule " + l.term(KindRule, p.Rule)
			}
			if p.Expect == ExpectDropped {
				line += l.esc(" (expected)")
			}
			out = append(out, line)
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstPath(runs []*Run) string {
	var b strings.Builder
	for _, run := range runs {
		if p, ok := firstDelivered(run); ok {
			fmt.Fprintf(&b, "- %s, %s → %s, %d hops: %s\n", run.Generation, p.From, p.To, p.Hops, timedPath(p))
		}
	}
	return b.String()
}

// firstDelivered is the run's first probe that reached its destination
// along a known path.
func firstDelivered(run *Run) (Probe, bool) {
	for _, p := range run.Probes {
		if p.Delivered && len(p.Path) > 0 {
			return p, true
		}
	}
	return Probe{}, false
}

// timedPath joins the path's devices, each after the first with the time
// the probe took from the previous one when it is known.
func timedPath(p Probe) string {
	if len(p.HopAt) != len(p.Path) {
		return strings.Join(p.Path, " → ")
	}
	var b strings.Builder
	b.WriteString(p.Path[0])
	for i := 1; i < len(p.Path); i++ {
		fmt.Fprintf(&b, " → %s (+%s)", p.Path[i], hopDur(p.HopAt[i]-p.HopAt[i-1]))
	}
	return b.String()
}

// hopDur is dur, with a hop that took no time (devices of one node,
// which handles the frame in one go) shown as 0.
func hopDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return dur(d)
}

// hopBars are the per-hop latencies of a generation's probe p, one bar
// per hop, in one unit.
func hopBars(gen string, p Probe) ([]Bar, string) {
	if len(p.HopAt) != len(p.Path) {
		return nil, ""
	}
	var bars []timeBar
	for i := 1; i < len(p.Path); i++ {
		bars = append(bars, timeBar{Label: p.Path[i], Gen: gen, D: p.HopAt[i] - p.HopAt[i-1]})
	}
	return timeBars(bars)
}

// JUnit XML, one suite per scenario and generation, one case per check.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes JUnit XML for CI systems.
func WriteJUnit(w io.Writer, r *Report) error {
	var out junitSuites
	for _, run := range r.Runs {
		s := junitSuite{Name: run.Scenario + "/" + run.Generation, Time: run.Elapsed.Seconds()}
		if run.Error != "" {
			s.Cases = append(s.Cases, junitCase{Name: "run", Classname: s.Name, Failure: &junitFailure{Message: run.Error}})
		}
		for _, c := range run.Checks {
			jc := junitCase{Name: fmt.Sprintf("step %d: %s", c.Step, c.What), Classname: s.Name}
			if !c.Passed {
				jc.Failure = &junitFailure{Message: c.Detail, Body: fmt.Sprintf("line %d", c.Line)}
			}
			s.Cases = append(s.Cases, jc)
		}
		s.Tests = len(s.Cases)
		for _, c := range s.Cases {
			if c.Failure != nil {
				s.Failures++
			}
		}
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	return enc.Encode(out)
}

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
	Text  string // the value as shown; empty: Value
	Gen   string // the generation the bar is of: its colour
	// Missing: the bar has no value (a flow that never recovered); its
	// Text says why.
	Missing bool
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"}

// GenColour is the colour of a generation in every plot, its registered
// description's (generation.Desc.Colour); a generation without one of its
// own gets a palette colour by its name.
func GenColour(gen string) string {
	if c := generation.Colour(gen); c != "" {
		return c
	}
	h := 0
	for _, r := range gen {
		h = h*31 + int(r)
	}
	return palette[(h%len(palette)+len(palette))%len(palette)]
}

// barText is what a bar says beside it.
func barText(b Bar) string {
	if b.Text != "" {
		return b.Text
	}
	return fmt.Sprintf("%g", b.Value)
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
svg{display:block;margin:1em 0}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.fail{color:#b00}.pass{color:#070}code{font-size:11px}</style></head><body>
<h1>{{.Title}}</h1>{{if .Machine}}<p>Machine: {{.Machine}}</p>{{end}}
<h2 id="overview">Overview</h2>
<p>{{.Intro}}</p>
<table class="overview"><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Overview}}<tr{{if .Failed}} class="fail"{{end}}>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{range .Sections}}<h2 id="scenario-{{.Name}}">{{.Name}}</h2>
{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .CheckList}}<p>What the run checks:</p><ul>{{range .CheckList}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table><tr><th>generation</th><th>backend</th><th>probes delivered</th><th>hops (min–max)</th><th>switch hops</th><th>RTT p50</th><th>RTT p99</th><th>spawn p50</th><th>checks</th></tr>
{{range .Rows}}<tr><td>{{.Gen}}</td><td>{{.Backend}}</td><td>{{.Delivered}}</td><td>{{.Hops}}</td><td>{{.SwitchHops}}</td><td>{{.P50}}</td><td>{{.P99}}</td><td>{{.Spawn}}</td><td class="{{.Class}}">{{.Checks}}</td></tr>{{end}}
</table>
{{range .Latency}}<p>Latency on {{.}}</p>{{end}}
{{if .Outages}}<p>Drift outages per flow (background probe stream: last answer before the move → first answer after it):</p>
<table><tr><th>generation</th><th>backend</th><th>drifted</th><th>at</th><th>flow</th><th>outage</th></tr>
{{range .Outages}}<tr><td>{{.Gen}}</td><td>{{.Backend}}</td><td>{{.O.Instance}}</td><td>{{.O.DriftAt}}</td><td>{{.O.From}} → {{.O.To}}</td><td>{{.O}}</td></tr>{{end}}
</table>{{end}}
{{range .Plots}}{{.}}{{end}}
{{range .Failures}}<p class="fail">{{.}}</p>{{end}}
{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Dropped}}<p>Dropped probes:</p><ul>{{range .Dropped}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Spawns}}<p>Spawn of the first instance, step by step:</p><ul>{{range .Spawns}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Tables}}<details><summary>Table sizes at the end (largest node per table)</summary>
<table><tr><th>generation</th><th>table</th><th>largest</th><th>on</th><th>total over nodes</th></tr>
{{range .Tables}}<tr><td>{{.Gen}}</td><td>{{.Name}}</td><td>{{.Largest}}</td><td>{{.Node}}</td><td>{{.Total}}</td></tr>{{end}}
</table></details>{{end}}
{{end}}
{{if .Glossary}}<h2 id="glossary">Glossary</h2>
<p>The drop reasons, rule prefixes (a rule's first word, before its <code>:</code>) and spawn steps this report names.</p>
<table><tr><th>term</th><th>kind</th><th>meaning</th></tr>
{{range .Glossary}}<tr id="{{.ID}}"><td><code>{{.Name}}</code></td><td>{{.Kind}}</td><td>{{.Meaning}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// WriteHTML writes a self-contained HTML report: the overview, then per
// scenario its tables and its plots (scenarioPlots), drawn with
// gonum/plot and inlined as SVG, so that the page needs nothing else;
// its Content-Security-Policy forbids it to load anything.
func WriteHTML(w io.Writer, r *Report) error {
	r = withStats(r)
	type row struct{ Gen, Backend, Delivered, Hops, SwitchHops, P50, P99, Spawn, Checks, Class string }
	type section struct {
		Name, Description string
		CheckList         []string
		Rows              []row
		Plots             []template.HTML
		Failures          []string
		Tables            []tableSize
		Latency           []string
		Outages           []runOutage
		// Notes are each run's drops by reason and its faults.
		Notes, Dropped, Spawns []template.HTML
	}
	type term struct {
		Term
		ID string
	}
	data := struct {
		Title, Machine, Intro string
		Columns               []string
		Overview              []overviewRow
		Sections              []section
		Glossary              []term
	}{Title: r.Title, Machine: r.Machine, Intro: overviewIntro, Columns: overviewColumns, Overview: overview(r)}
	for _, t := range usedTerms(r) {
		if t.Meaning == "" {
			t.Meaning = "(not in the glossary)"
		}
		data.Glossary = append(data.Glossary, term{t, anchor(t)})
	}
	for _, sc := range r.Scenarios() {
		sec := section{Name: sc, Description: description(r.RunsOf(sc)), CheckList: checkList(r.RunsOf(sc)),
			Tables: tableSizes(r.RunsOf(sc)), Latency: latencyLines(r.RunsOf(sc)), Outages: runOutages(r.RunsOf(sc))}
		for _, run := range r.RunsOf(sc) {
			if len(run.Drops) > 0 {
				var parts []string
				for _, k := range sortedKeys(run.Drops) {
					parts = append(parts, fmt.Sprintf("%s %d", htmlTerm(KindReason, k), run.Drops[k]))
				}
				sec.Notes = append(sec.Notes, template.HTML(template.HTMLEscapeString(run.Generation+" "+dropsLead)+strings.Join(parts, ", ")))
			}
			for _, f := range run.Faults {
				sec.Notes = append(sec.Notes, template.HTML(template.HTMLEscapeString(run.Generation+" "+f.String())))
			}
		}
		for _, d := range droppedProbes(r.RunsOf(sc), 8, htmlLinker) {
			sec.Dropped = append(sec.Dropped, template.HTML(d))
		}
		for _, l := range spawnLines(r.RunsOf(sc), htmlLinker) {
			sec.Spawns = append(sec.Spawns, template.HTML(l))
		}
		for _, run := range r.RunsOf(sc) {
			s := Summarize(run)
			class := "pass"
			if run.Failed() {
				class = "fail"
			}
			sec.Rows = append(sec.Rows, row{run.Generation, run.Backend, fmt.Sprintf("%d/%d", s.Delivered, s.Probes),
				hopsCell(s), fmt.Sprint(s.SwitchHopsMax), dur(s.RTTp50), dur(s.RTTp99), dur(s.SpawnP50),
				fmt.Sprintf("%d/%d", s.ChecksPassed, s.Checks), class})
			if run.Error != "" {
				sec.Failures = append(sec.Failures, run.Generation+": "+run.Error)
			}
			for _, c := range run.Checks {
				if !c.Passed {
					sec.Failures = append(sec.Failures, fmt.Sprintf("%s step %d (line %d): %s — %s", run.Generation, c.Step, c.Line, c.What, c.Detail))
				}
			}
		}
		plots, err := scenarioPlots(sc, r.RunsOf(sc))
		if err != nil {
			return err
		}
		sec.Plots = plots
		data.Sections = append(data.Sections, sec)
	}
	return htmlTmpl.Execute(w, data)
}

// rttSeries are the round-trip times of the runs' answered probes, a
// series per run.
func rttSeries(runs []*Run) []TimeSeries {
	var out []TimeSeries
	for _, run := range runs {
		s := TimeSeries{Name: run.Generation + " on " + run.Backend, Gen: run.Generation, Times: StatsOf(run).RTTs}
		if len(s.Times) > 0 {
			out = append(out, s)
		}
	}
	return out
}
