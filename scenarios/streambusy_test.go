package scenarios_test

import (
	"context"
	"testing"

	"github.com/netbed/netbed/scenarios"
)

// TestStreamServedAfterBusySteps: a background stream keeps probing when
// steps follow one another without an `at` to wait for. The rounds that
// fell due while a step was busy (here a probe waiting out its timeout
// across tenants) count as lost and the latest is sent as the step ends,
// so a flow that recovered from a drift is seen to recover (it used to be
// reported "never recovered (0 lost)": no probe was sent after the drift
// until a later step waited).
func TestStreamServedAfterBusySteps(t *testing.T) {
	s, err := scenarios.Parse("busy.yaml", []byte(`name: busy
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 2}}
generations: [evpn]
seed: 1
networks:
  - {name: app, subnet: 10.7.0.0/24, tenant: blue}
  - {name: other, subnet: 10.8.0.0/24, tenant: red}
steps:
  - spawn: {name: mover, kind: pod, count: 1, network: app, hosts: [host1]}
  - spawn: {name: peer, kind: vm, count: 1, network: app, hosts: [host3]}
  - spawn: {name: red, kind: vm, count: 1, network: other, hosts: [host2]}
  - at: 1s
    traffic: {proto: icmp, from: [peer-1], to: [mover-1], rate: 100, duration: 3s, background: true, tag: stream}
  - drift: {instances: [mover-1], to: host4}
  - traffic: {proto: icmp, from: [peer-1], to: [red-1], tag: across}
  - expect: {tag: across, unreachable: ["peer-1 -> red-1"]}
  - expect: {tag: stream, recovered: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("%s: %s", c.What, c.Detail)
		}
	}
	if len(run.Outages) != 1 {
		t.Fatalf("outages %+v; want 1", run.Outages)
	}
	for _, o := range run.Outages {
		if !o.Recovered {
			t.Errorf("outage %+v: not recovered", o)
		}
	}
}
