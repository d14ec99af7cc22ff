package reports

import (
	"fmt"
	"html/template"
	"slices"
)

// scenarioPlots are the plots of one scenario's runs, in the order the
// HTML shows them: the round-trip CDF (a line per generation), the
// flows reached over time around each fault and drift, the drift
// outage of each flow, and per generation the spawn of its first
// instance step by step and the time each hop of its first delivered
// probe's path took.
func scenarioPlots(sc string, runs []*Run) ([]template.HTML, error) {
	var out []template.HTML
	add := func(svg string, err error) error {
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		out = append(out, template.HTML(svg))
		return nil
	}
	if cdf := rttSeries(runs); len(cdf) > 0 {
		if err := add(LatencyCDFSVG(sc+": round-trip times per generation", "round-trip time", cdf)); err != nil {
			return nil, err
		}
	}
	if reachPlotted(runs) {
		if err := add(ReachSVG(sc+": flows reached over time", runs)); err != nil {
			return nil, err
		}
	}
	if bars, unit := outageBars(runs); len(bars) > 0 {
		if err := add(BarsSVG(sc+": drift outage per flow", "last answer before the move → first after ("+unit+")", bars)); err != nil {
			return nil, err
		}
	}
	for _, run := range runs {
		if bars, unit := spawnBars(run); len(bars) > 0 {
			ev := firstSpawn(run)
			title := fmt.Sprintf("%s on %s: spawn of %s step by step", run.Generation, run.Backend, ev[0].Instance)
			if err := add(BarsSVG(title, fmt.Sprintf("time since %s (%s)", ev[0].Step, unit), bars)); err != nil {
				return nil, err
			}
		}
	}
	for _, run := range runs {
		if p, ok := firstDelivered(run); ok {
			if bars, unit := hopBars(run.Generation, p); len(bars) > 0 {
				title := fmt.Sprintf("%s on %s: each hop of %s → %s", run.Generation, run.Backend, p.From, p.To)
				if err := add(BarsSVG(title, "time from the previous device ("+unit+")", bars)); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// spawnBars are the steps of the run's first instance's spawn, each a
// bar of its time since the first step, in one unit; none when every
// step took no time (gen 3 on sim), which the spawn line already says.
func spawnBars(run *Run) ([]Bar, string) {
	ev := firstSpawn(run)
	if len(ev) < 2 || slices.IndexFunc(ev, func(e SpawnEvent) bool { return e.At != ev[0].At }) < 0 {
		return nil, ""
	}
	var steps []timeBar
	for _, e := range ev[1:] {
		steps = append(steps, timeBar{Label: e.Step, Gen: run.Generation, D: e.At - ev[0].At})
	}
	return timeBars(steps)
}
