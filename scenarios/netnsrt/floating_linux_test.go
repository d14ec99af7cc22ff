package netnsrt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestFloatingIPProbeIDs: UDP and TCP probes from outside the VPC to a
// pod's floating IP keep their probe ID through the internet gateway's
// one-to-one NAT (which rewrites the destination on the way in and the
// source on the way out), so that netns follows them as far as sim does:
// the same verdicts, paths and hops as on sim.
func TestFloatingIPProbeIDs(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Parse("floating-probes.yaml", []byte(`name: floating-probes
topology: {builder: vpc, params: {hosts: 2}}
generations: [vpc]
seed: 3
options:
  vpc: {warm_ip_target: 2}
networks:
  - {name: pods, subnet: 10.20.0.0/20}
steps:
  - spawn: {name: web, kind: pod, count: 1, network: pods, hosts: [host1]}
  - spawn: {name: client, kind: vm, count: 1, network: pods, hosts: [internet]}
  - floating_ip: {attach: [web-1]}
  - at: 2s
    traffic: {proto: udp, port: 53, from: [client-1], to: [web-1], floating_ip: true, tag: udp}
  - traffic: {proto: tcp, port: 443, from: [client-1], to: [web-1], floating_ip: true, tag: tcp}
  - traffic: {proto: icmp, from: [client-1], to: [web-1], floating_ip: true, tag: icmp}
  - expect: {tag: udp, reachable: ["client-1 -> web-1"], no_unexplained_drops: true}
  - expect: {tag: tcp, reachable: ["client-1 -> web-1"], no_unexplained_drops: true}
  - expect: {tag: icmp, reachable: ["client-1 -> web-1"], no_unexplained_drops: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	simRun, err := scenarios.Run(ctx, s, scenarios.GenVPC, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, s.Name)
	nsRun, err := scenarios.Run(ctx, s, scenarios.GenVPC, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range nsRun.Checks {
		if !c.Passed {
			t.Errorf("netns: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(nsRun.Probes) != len(simRun.Probes) || len(nsRun.Probes) != 3 {
		t.Fatalf("netns sent %d probes, sim %d, want 3", len(nsRun.Probes), len(simRun.Probes))
	}
	for i := range simRun.Probes {
		if d := reports.ProbeChanges(simRun.Probes[i], nsRun.Probes[i]); len(d) > 0 {
			t.Errorf("%s probe %s -> %s on netns (was: on sim): %s", simRun.Probes[i].Proto, simRun.Probes[i].From, simRun.Probes[i].To, strings.Join(d, "; "))
		}
	}
}
