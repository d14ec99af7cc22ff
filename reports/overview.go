package reports

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// overviewColumns are the overview table's columns, in order; the
// Markdown and the HTML both render exactly these.
var overviewColumns = []string{
	"scenario", "generation", "backend", "checks", "probes delivered / sent",
	"hops", "RTT p50 / p99", "spawn p50", "drift outage", "faults", "policy verdicts",
}

// overviewRow is one run as the overview shows it, a cell per column.
type overviewRow struct {
	Cells  []string
	Failed bool
}

// overview is one row per run, in report order.
func overview(r *Report) []overviewRow {
	var rows []overviewRow
	for _, run := range r.Runs {
		s := Summarize(run)
		rows = append(rows, overviewRow{Failed: run.Failed(), Cells: []string{
			run.Scenario, run.Generation, run.Backend,
			checksCell(run, s), deliveredCell(run, s), hopsCell(s), rttCell(run, s),
			dur(s.SpawnP50), outageCell(run.Outages), faultsCell(run.Faults), policyCell(run),
		}})
	}
	return rows
}

// checksCell is "5/5 ✓" or "3/5 ✗" (a run that errored fails).
func checksCell(run *Run, s Summary) string {
	mark := " ✓"
	if run.Failed() {
		mark = " ✗"
	}
	if run.Error != "" {
		mark = " ✗ run error"
	}
	return fmt.Sprintf("%d/%d%s", s.ChecksPassed, s.Checks, mark)
}

// deliveredCell is "6/10", with how many of the drops the scenario's
// expectations called for ("6/10, 4 dropped as expected"), so that a
// passing run with drops reads right.
func deliveredCell(run *Run, s Summary) string {
	cell := fmt.Sprintf("%d/%d", s.Delivered, s.Probes)
	if meant := StatsOf(run).ExpectedDrops; meant > 0 {
		cell += fmt.Sprintf(", %d dropped as expected", meant)
	}
	return cell
}

func hopsCell(s Summary) string {
	if s.Delivered == 0 {
		return "-"
	}
	if s.HopsMin == s.HopsMax {
		return fmt.Sprint(s.HopsMin)
	}
	return fmt.Sprintf("%d–%d", s.HopsMin, s.HopsMax)
}

// rttCell is "471.5µs / 708.6µs (modelled)": the percentiles and what
// kind of time they are.
func rttCell(run *Run, s Summary) string {
	if s.RTTp50 == 0 && s.RTTp99 == 0 {
		return "-"
	}
	kind := run.Latency.Kind
	if kind == "" {
		kind = "source not recorded"
	}
	return fmt.Sprintf("%s / %s (%s)", dur(s.RTTp50), dur(s.RTTp99), kind)
}

// outageCell is the worst drift outage of the run's flows: "max 12.34ms
// over 4 flows", or how many flows never recovered.
func outageCell(outs []Outage) string {
	if len(outs) == 0 {
		return "-"
	}
	var worst time.Duration
	never := 0
	for _, o := range outs {
		if !o.Recovered {
			never++
			continue
		}
		worst = max(worst, o.Outage)
	}
	flows := "flows"
	if len(outs) == 1 {
		flows = "flow"
	}
	if never > 0 {
		return fmt.Sprintf("%d of %d %s never recovered", never, len(outs), flows)
	}
	return fmt.Sprintf("max %s over %d %s", dur(worst.Round(10*time.Microsecond)), len(outs), flows)
}

// faultsCell sums up the run's faults: what failed, and what it cost
// ("fail node leaf1: 3 routes withdrawn, converged in 85.00ms; fail node
// host2: 2 ports down; restore controller: API unavailable for 900.00ms").
func faultsCell(faults []Fault) string {
	var parts []string
	for _, f := range faults {
		var effects []string
		if f.RoutesWithdrawn > 0 && !f.Restore {
			effects = append(effects, fmt.Sprintf("%d routes withdrawn", f.RoutesWithdrawn))
		}
		if f.Convergence > 0 {
			effects = append(effects, "converged in "+dur(f.Convergence))
		}
		if len(f.PortsDown) > 0 {
			effects = append(effects, fmt.Sprintf("%d ports down", len(f.PortsDown)))
		}
		if f.APIUnavailable > 0 {
			effects = append(effects, "API unavailable for "+dur(f.APIUnavailable))
		}
		if f.CNCHandover > 0 {
			effects = append(effects, "CNC handed over in "+dur(f.CNCHandover))
		}
		if f.Restore && len(effects) == 0 {
			continue // a plain restore adds nothing to its fail
		}
		verb := "fail "
		if f.Restore {
			verb = "restore "
		}
		p := verb + f.Target
		if len(effects) > 0 {
			p += ": " + strings.Join(effects, ", ")
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// policyCell is how many probes a policy denied and how many verdict
// checks passed ("2 denied, verdicts 4/4").
func policyCell(run *Run) string {
	denied := 0
	for _, c := range StatsOf(run).Classes {
		if c.Reason == "policy-deny" {
			denied += c.Probes
		}
	}
	checks, passed := 0, 0
	for _, c := range run.Checks {
		if strings.HasPrefix(c.What, "verdict ") {
			checks++
			if c.Passed {
				passed++
			}
		}
	}
	var parts []string
	if denied > 0 {
		parts = append(parts, fmt.Sprintf("%d denied", denied))
	}
	if checks > 0 {
		parts = append(parts, fmt.Sprintf("verdicts %d/%d", passed, checks))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// overviewPad is the widest a column is padded to: a longer cell (a run
// with several faults) overflows its row alone, not every row.
const overviewPad = 40

// overviewMarkdown is the overview table in Markdown, each column padded
// to the width of its cells (at most overviewPad) so that it reads as a
// table in a terminal too.
func overviewMarkdown(r *Report) string {
	rows := [][]string{overviewColumns}
	for _, row := range overview(r) {
		cells := make([]string, len(row.Cells))
		for i, c := range row.Cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		rows = append(rows, cells)
	}
	width := make([]int, len(overviewColumns))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], min(utf8.RuneCountInString(c), overviewPad), 3)
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			b.WriteString("| " + c + strings.Repeat(" ", max(width[i]-utf8.RuneCountInString(c), 0)) + " ")
		}
		b.WriteString("|\n")
	}
	line(rows[0])
	for i := range width {
		b.WriteString("|" + strings.Repeat("-", width[i]+2))
	}
	b.WriteString("|\n")
	for _, row := range rows[1:] {
		line(row)
	}
	return b.String()
}

// checkList is what a scenario's runs checked, a line per expectation
// step in step order ("step 5 (line 22): ip unchanged vm-1, ip unchanged
// vm-2"), each distinct check once and at most four per line: what the
// run was meant to show.
func checkList(runs []*Run) []string {
	type step struct {
		step, line int
		whats      []string
	}
	var steps []*step
	byStep := map[int]*step{}
	seen := map[string]bool{}
	for _, run := range runs {
		for _, c := range run.Checks {
			st, ok := byStep[c.Step]
			if !ok {
				st = &step{step: c.Step, line: c.Line}
				byStep[c.Step] = st
				steps = append(steps, st)
			}
			if key := fmt.Sprint(c.Step, c.What); !seen[key] {
				seen[key] = true
				st.whats = append(st.whats, c.What)
			}
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].step < steps[j].step })
	const most = 4
	out := make([]string, 0, len(steps))
	for _, st := range steps {
		w := st.whats
		more := ""
		if len(w) > most {
			more = fmt.Sprintf(" and %d more", len(w)-most)
			w = w[:most]
		}
		where := fmt.Sprintf("step %d (line %d)", st.step, st.line)
		if st.line == 0 {
			where = "after the last step" // the runner's own checks: packet conservation
		}
		out = append(out, fmt.Sprintf("%s: %s%s", where, strings.Join(w, ", "), more))
	}
	return out
}

// WriteOverview writes the overview table alone, in Markdown: a row per
// run with its checks, deliveries, hops, round trips, spawn time, drift
// outage, faults and policy verdicts.
func WriteOverview(w io.Writer, r *Report) error {
	r = withStats(r)
	_, err := io.WriteString(w, overviewMarkdown(r))
	return err
}

// WriteSummary writes what a terminal shows at the end of a run: the
// overview table, then every run error and failed check on a line of
// its own.
func WriteSummary(w io.Writer, r *Report) error {
	r = withStats(r)
	var b strings.Builder
	b.WriteString(overviewMarkdown(r))
	if f := failureLines(r); len(f) > 0 {
		b.WriteString("\nFailed:\n- " + strings.Join(f, "\n- ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// failureLines are the runs' errors and failed checks, one line each
// ("core-failure/vlan step 3 (line 12): hops — want 18").
func failureLines(r *Report) []string {
	var out []string
	for _, run := range r.Runs {
		if run.Error != "" {
			out = append(out, fmt.Sprintf("%s/%s: run error: %s", run.Scenario, run.Generation, run.Error))
		}
		for _, c := range run.Checks {
			if !c.Passed {
				out = append(out, fmt.Sprintf("%s/%s step %d (line %d): %s — %s", run.Scenario, run.Generation, c.Step, c.Line, c.What, c.Detail))
			}
		}
	}
	return out
}
