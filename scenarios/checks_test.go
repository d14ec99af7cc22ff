package scenarios_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// failedCheck returns the first failed check whose name starts with what.
func failedCheck(run *reports.Run, what string) (reports.Check, bool) {
	for _, c := range run.Checks {
		if !c.Passed && strings.HasPrefix(c.What, what) {
			return c, true
		}
	}
	return reports.Check{}, false
}

// TestMeasuringChecksNeedMeasurements: on sim, a hop, switch-hop or
// latency check over a tag whose every probe was dropped (tenant
// isolation drops them) fails and says there was nothing to measure,
// instead of passing over an empty set.
func TestMeasuringChecksNeedMeasurements(t *testing.T) {
	const src = `name: nothing-measured
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
networks:
  - {name: blue, tenant: blue, subnet: 10.6.0.0/24}
  - {name: red, tenant: red, subnet: 10.7.0.0/24}
steps:
  - spawn: {name: blue, count: 1, network: blue, hosts: [host1]}
  - spawn: {name: red, count: 1, network: red, hosts: [host2]}
  - at: 1s
    traffic: {proto: icmp, from: [blue-1], to: [red-1], tag: across}
  - expect: {tag: across, hops: {evpn: 9}}
  - expect: {tag: across, switch_hops: {evpn: 3}}
  - expect: {tag: across, max_latency: 1s}
`
	wantFailures(t, runSrc(t, "nothing.yaml", src, simBackend(t, 1)), map[string]string{
		"hops":        "no delivered probe of tag across to measure hops on",
		"switch hops": "no delivered probe of tag across to measure switch hops on",
		"rtt":         "blue-1 -> red-1 was not answered",
	})
}

// runSrc parses scenario src (named file) and runs its evpn generation on b.
func runSrc(t *testing.T, file, src string, b scenarios.Backend) *reports.Run {
	t.Helper()
	s, err := scenarios.Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// wantFailures checks that, for every check name prefix, a check failed
// and its detail says the text given.
func wantFailures(t *testing.T, run *reports.Run, want map[string]string) {
	t.Helper()
	for what, text := range want {
		got, ok := failedCheck(run, what)
		if !ok {
			t.Errorf("%s check passed: %+v", what, run.Checks)
			continue
		}
		if !strings.Contains(got.Detail, text) {
			t.Errorf("%s check: %q, want it to say %q", what, got.Detail, text)
		}
	}
}

// scripted is a Backend whose probes end as a test says: the runner's
// checks are tested on outcomes no real fabric gives on demand (a probe
// delivered and never answered, a probe lost without a recorded drop).
// TestMeasuringChecksNeedMeasurements and the netnsrt conservation test
// cover the same checks on real runtimes.
type scripted struct {
	probes      map[string]reports.Probe // by destination
	unexplained int
	drops       map[string]int
	now         time.Duration
	insts       int
}

func (b *scripted) Name() string                                    { return "scripted" }
func (b *scripted) Start(context.Context, scenarios.Env) error      { return nil }
func (b *scripted) Delete(context.Context, string) error            { return nil }
func (b *scripted) Fail(context.Context, scenarios.Target) error    { return nil }
func (b *scripted) Restore(context.Context, scenarios.Target) error { return nil }
func (b *scripted) Policy(context.Context, scenarios.Policy) error  { return nil }
func (b *scripted) Now() time.Duration                              { return b.now }
func (b *scripted) Close() error                                    { return nil }
func (b *scripted) Sleep(_ context.Context, d time.Duration) error {
	b.now += d
	return nil
}
func (b *scripted) PortState(context.Context, string) (string, error) { return "ACTIVE_ACTIVE", nil }
func (b *scripted) Spawn(_ context.Context, r scenarios.SpawnRequest) (scenarios.Instance, error) {
	b.insts++
	return scenarios.Instance{Name: r.Name, Host: r.Host}, nil
}
func (b *scripted) Move(_ context.Context, name, host string) (scenarios.Instance, error) {
	return scenarios.Instance{Name: name, Host: host}, nil
}
func (b *scripted) Probe(_ context.Context, r scenarios.ProbeRequest) (reports.Probe, error) {
	return b.probes[r.To], nil
}
func (b *scripted) Finish(run *reports.Run) error {
	run.Counters = map[string]int{"unexplained_drops": b.unexplained}
	run.Drops = b.drops
	return nil
}

var _ scenarios.Backend = (*scripted)(nil)

const scriptedSrc = `name: scripted
topology: {builder: spine-leaf, params: {spines: 1, leaves: 1, hosts_per_leaf: 1}}
generations: [evpn]
networks: [{name: n, subnet: 10.0.0.0/24}]
steps:
  - spawn: {name: a, count: 3, network: n}
  - traffic: {from: [a-1], to: [a-2, a-3], tag: t}
  - expect: {tag: t, max_latency: 1ms, hops: {evpn: 4}}
`

func runScripted(t *testing.T, src string, b *scripted) *reports.Run {
	t.Helper()
	return runSrc(t, "scripted.yaml", src, b)
}

var answered = reports.Probe{Delivered: true, Replied: true, Hops: 4, RTT: 100 * time.Microsecond}

// TestUnansweredProbeFailsLatency: a probe delivered but never answered
// has no round trip (its RTT is 0); a latency check fails on it and says
// where the answer was lost.
func TestUnansweredProbeFailsLatency(t *testing.T) {
	b := &scripted{probes: map[string]reports.Probe{
		"a-2": answered,
		"a-3": {Delivered: true, Hops: 4, DropAt: "leaf1", Reason: "no-route"},
	}}
	run := runScripted(t, scriptedSrc, b)
	c, ok := failedCheck(run, "rtt")
	if !ok || !strings.Contains(c.Detail, "a-1 -> a-3 was not answered (answer dropped at leaf1: no-route)") {
		t.Errorf("latency check over an unanswered probe: %+v", run.Checks)
	}
	if _, ok := failedCheck(run, "hops"); ok {
		t.Errorf("hops are measured on the delivered forward path, answered or not: %+v", run.Checks)
	}
}

// TestConservation: every run ends with a conservation check. It fails
// on a probe lost without a recorded drop, on frames the runtime could
// not account for, and on congestion drops unless the scenario expects
// congestion; and passes when everything is accounted for.
func TestConservation(t *testing.T) {
	dropped := reports.Probe{DropAt: "leaf1", Reason: "policy-deny"}
	cases := []struct {
		name       string
		congestion bool
		b          scripted
		want       string // "" passes
	}{
		{name: "accounted", b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": dropped}}},
		{name: "lost probe", b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": {}}},
			want: "1 probes lost without a recorded drop, first a-1 -> a-3 (t)"},
		{name: "unexplained frames", b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": answered}, unexplained: 3},
			want: "3 frames lost without a reason"},
		{name: "unexplained frames by kind", b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": answered}, unexplained: 3, drops: map[string]int{"send-error": 1, "": 2}},
			want: "3 frames lost without a reason (no reason 2, send-error 1)"},
		{name: "ring full", b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": answered}, drops: map[string]int{"rx-ring-full": 2}},
			want: "2 frames dropped as rx-ring-full in a scenario that does not expect congestion"},
		{name: "congestion expected", congestion: true,
			b: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": answered}, drops: map[string]int{"rx-ring-full": 2, "queue-full": 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(scriptedSrc, "  - expect: {tag: t, max_latency: 1ms, hops: {evpn: 4}}\n", "", 1)
			if c.congestion {
				src = strings.Replace(src, "generations:", "expect_congestion: true\ngenerations:", 1)
			}
			run := runScripted(t, src, &c.b)
			last := run.Checks[len(run.Checks)-1]
			if last.What != "packet conservation" {
				t.Fatalf("last check is %q, want the conservation check", last.What)
			}
			switch {
			case c.want == "" && !last.Passed:
				t.Errorf("failed: %s", last.Detail)
			case c.want != "" && (last.Passed || !strings.Contains(last.Detail, c.want)):
				t.Errorf("passed=%v %q, want a failure saying %q", last.Passed, last.Detail, c.want)
			}
		})
	}
}

// TestControlPlaneChecksNeedBGP: with the shared control plane the
// control-plane expectations fail and say what they need, instead of
// passing with no speaker to ask.
func TestControlPlaneChecksNeedBGP(t *testing.T) {
	const src = `name: no-speakers
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
networks:
  - {name: blue, subnet: 10.6.0.0/24}
steps:
  - spawn: {name: blue, count: 2, network: blue}
  - expect: {bgp_sessions: established}
  - expect: {bgp_route: {present_on: [leaf2], type: 2, mac: blue-1}, fabric_consistent: true}
`
	wantFailures(t, runSrc(t, "nospeakers.yaml", src, simBackend(t, 1)), map[string]string{
		"bgp_sessions":                 "bgp_sessions needs control_plane: bgp (this run: control plane shared on sim",
		"bgp_route, fabric_consistent": "bgp_route and fabric_consistent need control_plane: bgp (this run",
	})
}

// settling is a scripted backend whose control plane has not converged.
type settling struct {
	scripted
	settled int
	err     error
}

func (b *settling) Settle(context.Context) error {
	b.settled++
	return b.err
}

// TestTrafficSettlesFirst: a backend whose control plane converges in its
// own time (real BGP) is settled before each traffic step, and a fabric
// that does not converge stops the run saying what is missing.
func TestTrafficSettlesFirst(t *testing.T) {
	b := &settling{scripted: scripted{probes: map[string]reports.Probe{"a-2": answered, "a-3": answered}}}
	s, err := scenarios.Parse("scripted.yaml", []byte(scriptedSrc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{}); err != nil || b.settled != 1 {
		t.Errorf("settled %d times (err %v), want once, before the traffic step", b.settled, err)
	}
	b.err = errors.New("leaf1 lacks type-2 vni 10100 02:00:00:00:00:01 of leaf2")
	_, err = scenarios.Run(context.Background(), s, scenarios.GenEVPN, b, scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "traffic: leaf1 lacks type-2") {
		t.Errorf("a fabric that does not converge: error %v", err)
	}
}
