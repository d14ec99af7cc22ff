package scenarios_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios"
)

// TestStreamLeavesForegroundPathsAlone: a background stream's probes take
// their IDs from a range of their own, so the foreground probes' IDs, and
// the ECMP paths their source ports hash to, are the same however many
// stream rounds a run had time for. They used to share one counter: on
// netns, where the rounds sent depend on the wall clock, a scenario's
// cross-spine paths then changed from run to run and differed from sim's.
func TestStreamLeavesForegroundPathsAlone(t *testing.T) {
	paths := func(stream string) []string {
		t.Helper()
		s, err := scenarios.Parse("ids.yaml", []byte(fmt.Sprintf(`name: ids
topology: {builder: spine-leaf, params: {spines: 4, leaves: 2, hosts_per_leaf: 2}}
generations: [evpn]
seed: 1
networks:
  - {name: app, subnet: 10.7.0.0/24}
steps:
  - spawn: {name: a, kind: pod, count: 2, network: app, hosts: [host1]}
  - spawn: {name: b, kind: pod, count: 2, network: app, hosts: [host3]}
%s
  - at: 2s
    traffic: {proto: udp, port: 53, from: [a-1, a-2], to: [b-1, b-2], count: 4, tag: fg}
`, stream)))
		if err != nil {
			t.Fatal(err)
		}
		run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range run.Probes {
			if p.Tag == "fg" {
				var via []string
				for _, hop := range p.Path {
					if strings.HasPrefix(hop, "spine") {
						via = append(via, hop)
					}
				}
				out = append(out, p.From+">"+p.To+" via "+strings.Join(via, " "))
			}
		}
		if len(out) < 8 {
			t.Fatalf("stream %q: %d foreground probes kept; want 8 or more", stream, len(out))
		}
		return out
	}
	quiet := paths("")
	spines := map[string]bool{}
	for _, p := range quiet {
		spines[p[strings.LastIndex(p, " ")+1:]] = true
	}
	if len(spines) < 2 {
		t.Fatalf("the foreground probes crossed %d spine(s); the test needs ECMP to spread them: %q", len(spines), quiet)
	}
	for _, d := range []string{"300ms", "1s"} {
		busy := paths(`  - at: 500ms
    traffic: {proto: udp, port: 53, from: [a-1], to: [b-1], rate: 50, duration: ` + d + `, background: true, tag: stream}`)
		if !slices.Equal(quiet, busy) {
			t.Errorf("with a %s stream before them, the foreground probes took other paths:\nquiet: %q\nbusy:  %q", d, quiet, busy)
		}
	}
}
