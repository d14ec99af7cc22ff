package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/topologies/netns"
)

// TestLabsOwner: a lab 'netbed up' finished is meant to outlive the
// process that made it; only an unfinished lab or a run's lab whose owner
// died was left by a killed run.
func TestLabsOwner(t *testing.T) {
	now := time.Now()
	dead := 1 << 30 // no such PID
	cases := []struct {
		name       string
		st         *netns.State
		owner      string
		table      string // in the table's row
		notInTable string
	}{
		{"up finished", &netns.State{Lab: "a", Complete: true, PID: dead, Updated: now}, "none", "none (left by netbed up)", "killed"},
		{"up killed halfway", &netns.State{Lab: "a", PID: dead, Updated: now}, "gone", "gone (killed? netbed down --lab a)", ""},
		{"run killed", &netns.State{Lab: "a", Backend: "netns", Complete: true, PID: dead, Updated: now}, "gone", "gone (killed? netbed down --lab a)", ""},
		{"no state", nil, "unknown", "unknown", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			labs := []netns.LabInfo{{Name: "a", State: c.st, Nodes: 2}}
			if r := labRows(labs, now)[0]; r.Owner != c.owner {
				t.Errorf("owner %q, want %q", r.Owner, c.owner)
			}
			var b bytes.Buffer
			if err := writeLabs(&b, labs, now); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), c.table) || (c.notInTable != "" && strings.Contains(b.String(), c.notInTable)) {
				t.Errorf("table:\n%s\nwant %q (and not %q)", b.String(), c.table, c.notInTable)
			}
		})
	}
}
