package netnsrt_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// cpChecks runs with control_plane bgp: on the healthy fabric every
// control-plane check holds; once leaf1 has lost power, the sessions to
// it are not established, its speaker does not run, and its type-2
// route is gone from the other leaves' speakers, while the rest of the
// fabric stays consistent.
const cpChecks = `name: cp-checks
topology: {builder: spine-leaf, params: {spines: 2, leaves: 3, hosts_per_leaf: 1}}
generations: [evpn]
control_plane: bgp
networks:
  - {name: web, subnet: 10.9.0.0/24}
steps:
  - spawn: {name: a, count: 1, network: web, hosts: [host1]}
  - spawn: {name: b, count: 1, network: web, hosts: [host2]}
  - spawn: {name: c, count: 1, network: web, hosts: [host3]}
  - expect:
      bgp_sessions: established
      bgp_route:
        - {present_on: [leaf2, leaf3], type: 2, mac: a-1, ip: a-1, vni: web, origin: leaf1}
        - {present_on: [leaf1, leaf3], type: 3, vni: web, origin: leaf2}
        - {absent_from: [leaf1, leaf2, leaf3], type: 2, mac: "52:54:00:ff:ff:ff"}
      fabric_consistent: true
      within: 10s
  - fail: {node: leaf1}
  - expect:
      bgp_route: {absent_from: [leaf2, leaf3], type: 2, mac: a-1}
      bgp_sessions: [leaf2, leaf3]
      fabric_consistent: true
      within: 10s
  - expect: {bgp_sessions: established, within: 2s}
  - expect: {bgp_route: {present_on: [leaf2], type: 2, mac: a-1}}
  - restore: {node: leaf1}
  - expect:
      bgp_sessions: established
      bgp_route: {present_on: [leaf2, leaf3], type: 2, mac: a-1, origin: leaf1}
      fabric_consistent: true
      within: 10s
`

func TestControlPlaneChecks(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Parse("cp-checks.yaml", []byte(cpChecks))
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, s.Name)
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The checks of steps 6 and 7 (counted from 0: leaf1 failed) must
	// fail, naming what is wrong; the other control-plane checks pass.
	var failed []reports.Check
	passed := 0
	for _, c := range run.Checks {
		t.Logf("step %d %s: passed %v %s", c.Step, c.What, c.Passed, c.Detail)
		if !strings.HasPrefix(c.What, "bgp ") && !strings.HasPrefix(c.What, "fabric ") {
			continue
		}
		switch {
		case c.Step != 6 && c.Step != 7 && !c.Passed:
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		case c.Step != 6 && c.Step != 7:
			passed++
		case c.Passed:
			t.Errorf("step %d %s passed with leaf1 failed", c.Step, c.What)
		default:
			failed = append(failed, c)
		}
	}
	if passed != 11 {
		t.Errorf("%d checks passed, want 11 (sessions, 3 routes, consistent; sessions of leaf2 and leaf3, route, consistent; after the restore sessions, route, consistent)", passed)
	}
	if len(failed) != 2 {
		t.Fatalf("%d checks failed after leaf1 failed, want 2: %+v", len(failed), failed)
	}
	for _, want := range []string{"spine1: session to leaf1 (169.254.", "spine2: session to leaf1 (169.254.", "leaf1: its speaker does not run"} {
		if !strings.Contains(failed[0].Detail, want) {
			t.Errorf("%s: %q does not say %q", failed[0].What, failed[0].Detail, want)
		}
	}
	// The fail step measured convergence: the other leaves' speakers
	// withdrew leaf1's routes, which the report gives.
	fi := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == "node leaf1" && !f.Restore })
	if fi < 0 {
		t.Fatalf("no fault of leaf1 recorded: %+v", run.Faults)
	}
	if f := run.Faults[fi]; f.Convergence <= 0 || !strings.Contains(f.String(), "every other leaf's speaker withdrew its routes in") {
		t.Errorf("leaf1's fault %q (%+v) gives no convergence", f, f)
	} else {
		t.Logf("%s", f)
	}
	ri := slices.IndexFunc(run.Faults, func(f reports.Fault) bool { return f.Target == "node leaf1" && f.Restore })
	if ri < 0 {
		t.Fatalf("no restore of leaf1 recorded: %+v", run.Faults)
	}
	if f := run.Faults[ri]; f.Convergence <= 0 || !strings.Contains(f.String(), "every other leaf's speaker learnt its routes in") {
		t.Errorf("leaf1's restore %q (%+v) gives no convergence", f, f)
	} else {
		t.Logf("%s", f)
	}
	if !strings.HasPrefix(failed[1].What, "bgp route type-2 mac a-1 present on leaf2") || !strings.Contains(failed[1].Detail, "leaf2 lacks it") {
		t.Errorf("%s: %q; want leaf2 named as lacking leaf1's type-2 route", failed[1].What, failed[1].Detail)
	}
}
