package scenarios_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// TestSimDeterministic: the same scenario and seed give identical probes,
// paths, latencies, checks, timelines and drops.
func TestSimDeterministic(t *testing.T) {
	s, err := scenarios.Load("library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out [2][]byte
	for i := range out {
		run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatal(err)
		}
		run.Elapsed = 0
		// Wall-clock stamps of the controller's own state machine are not
		// part of the run; everything the runtime measured is.
		out[i], _ = json.Marshal(run)
	}
	if string(out[0]) != string(out[1]) {
		t.Errorf("two runs with seed %d differ:\n%s\n%s", s.Seed, out[0], out[1])
	}
}

const bad = `name: bad
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn]
networks: [{name: n, subnet: 10.0.0.0/29}]
steps:
  - spawn: {name: a, count: 1, network: n, hosts: [%s]}
  - traffic: {from: [a-1], to: [%s]}
`

// TestRunErrorsNameTheStep: a step that cannot be carried out stops the
// run with the file, line and step in the error.
func TestRunErrorsNameTheStep(t *testing.T) {
	cases := []struct{ host, to, want string }{
		{"leaf1", "a-1", `bad.yaml:6: step 0 (spawn): spawn a: "leaf1" is not a host`},
		{"host1", "zz", `bad.yaml:7: step 1 (traffic): traffic: no live instance matches`},
	}
	for _, c := range cases {
		src := strings.Replace(strings.Replace(bad, "%s", c.host, 1), "%s", c.to, 1)
		s, err := scenarios.Parse("bad.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, 1), scenarios.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// TestPoolExhaustionNamesThePool: a /29 holds 5 addresses after the
// gateway; the sixth spawn fails and says which pool.
func TestPoolExhaustionNamesThePool(t *testing.T) {
	src := strings.Replace(strings.Replace(bad, "%s", "host1", 1), "count: 1", "count: 6", 1)
	src = strings.Replace(src, "%s", "a-1", 1)
	s, err := scenarios.Parse("bad.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, 1), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "a-6") || !strings.Contains(err.Error(), `network "n" (pools 10.0.0.2-10.0.0.6)`) {
		t.Errorf("error %v: want the sixth instance and the pool named", err)
	}
}

// TestFailedExpectationIsRecorded: a wrong expectation fails the run
// (not the runner) and says what was seen.
func TestFailedExpectationIsRecorded(t *testing.T) {
	src := strings.Replace(strings.Replace(bad, "%s", "host1", 1), "%s", "a-1", 1)
	src = strings.Replace(src, "count: 1", "count: 2", 1) + "  - expect: {hops: {evpn: 99}}\n"
	src = strings.Replace(src, "to: [a-1]", "to: [a-2]", 1)
	s, err := scenarios.Parse("bad.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, 1), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !run.Failed() {
		t.Fatal("run with a wrong hop count passed")
	}
	var c reports.Check
	for _, x := range run.Checks {
		if !x.Passed {
			c = x
		}
	}
	if c.Line != 8 || !strings.Contains(c.Detail, "a-1 -> a-2 took") {
		t.Errorf("failed check = %+v", c)
	}
}

// TestLinkFaultOnSim: failing a host's only uplink cuts its instance off;
// restoring it brings it back. Covers link targets end to end.
func TestLinkFaultOnSim(t *testing.T) {
	const src = `name: link
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn, ebpf]
networks: [{name: n, subnet: 10.0.0.0/24}]
steps:
  - spawn: {name: a, count: 2, network: n}
  - fail: {link: "host1:eth1"}
  - traffic: {from: [a-2], to: [a-1], tag: cut}
  - expect: {tag: cut, unreachable: ["a-2 -> a-1"]}
  - restore: {link: "host1:eth1"}
  - at: 1s
    traffic: {from: [a-2], to: [a-1], tag: back}
  - expect: {tag: back, reachable: ["a-2 -> a-1"]}
  - fail: {link: "host1:eth9"}
`
	s, err := scenarios.Parse("link.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range s.Generations {
		run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, 1), scenarios.Options{})
		if err == nil || !strings.Contains(err.Error(), `link.yaml:14: step 7 (fail)`) || !strings.Contains(err.Error(), "eth9") {
			t.Errorf("%s: bad link: error %v", gen, err)
		}
		if len(run.Checks) != 2 {
			t.Errorf("%s: checks %+v", gen, run.Checks)
		}
		if !allPassed(run) {
			t.Errorf("%s: %+v", gen, run.Checks)
		}
	}
}

func allPassed(r *reports.Run) bool {
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}
