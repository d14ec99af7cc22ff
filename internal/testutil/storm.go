package testutil

import (
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/reports"
)

// CheckKilledMidStorm checks a run whose controller was killed (fault
// kill) and restored (fault restore) during a spawn storm of instances
// named storm-*: the API was unavailable for a time within the gap between
// the two (plus a second for the restart), and storm spawns happened both
// before the kill and after the restore.
func CheckKilledMidStorm(t testing.TB, run *reports.Run, kill, restore reports.Fault) {
	t.Helper()
	if restore.APIUnavailable <= 0 || restore.APIUnavailable > restore.At-kill.At+time.Second {
		t.Errorf("API unavailable for %v between a kill at %v and a restore at %v", restore.APIUnavailable, kill.At, restore.At)
	}
	var before, after bool
	for _, e := range run.Timeline {
		if strings.HasPrefix(e.Instance, "storm-") {
			before = before || e.At < kill.At
			after = after || e.At > restore.At
		}
	}
	if !before || !after {
		t.Errorf("storm steps before the kill: %v, after the restore: %v; want both (the kill in the middle of the storm)", before, after)
	}
}
