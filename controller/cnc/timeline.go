package cnc

import (
	"fmt"
	"sort"
	"time"

	"github.com/netbed/netbed/controller"
)

// Event is one entry of a port's spawn timeline.
type Event struct {
	At     time.Time
	Source string // "underlay" or "overlay" (a port state transition), "cnc" (a CNC step)
	What   string
	// Took is a CNC step's duration (0 for transitions).
	Took time.Duration
	Err  string
}

// Timeline merges a port's recorded state transitions with the CNC's steps
// on it (Steps(p.ID)) in time order: the seed's spawn flow as it happened,
// from the binding (step 7) through the leaf configuration (step 9) to
// ACTIVE_ACTIVE. Ties keep transitions before steps.
func Timeline(p controller.Port, steps []Step) []Event {
	out := make([]Event, 0, len(p.Transitions)+len(steps))
	for _, tr := range p.Transitions {
		what := fmt.Sprintf("%s -> %s", tr.From, tr.To)
		if tr.Reason != "" {
			what += " (" + tr.Reason + ")"
		}
		out = append(out, Event{At: tr.At, Source: string(tr.Plane), What: what})
	}
	for _, s := range steps {
		what := s.Kind
		switch s.Kind {
		case "lookup":
			what += " host " + s.Host
		case "apply", "remove":
			what += fmt.Sprintf(" leaf %s (attempt %d)", s.Leaf, s.Attempt)
		case "report":
			what += " overlay " + string(s.State)
		}
		out = append(out, Event{At: s.Start, Source: "cnc", What: what, Took: s.Duration(), Err: s.Err})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
