package scenarios_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

func runHybrid(t *testing.T, s *scenarios.Scenario) *reports.Run {
	t.Helper()
	run, err := scenarios.Run(context.Background(), s, scenarios.GenHybrid, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	return run
}

// crosses reports whether path goes from device a's node straight to
// device b's node (a dedicated line between them).
func crosses(path []string, a, b string) bool {
	node := func(d string) string { n, _, _ := strings.Cut(d, "/"); return n }
	for i := 1; i < len(path); i++ {
		if node(path[i-1]) == a && node(path[i]) == b {
			return true
		}
	}
	return false
}

// TestHybridAcrossTheLine: the shipped hybrid-cloud scenario on sim: pods
// in the private cloud and in the VPC reach each other by their own
// addresses (no NAT: the probe arrives at the address it was sent to),
// every probe between the sites crosses the dedicated line between
// dc-border1 and vpc1-vpc-router in its direction, probes inside the
// private cloud do not, and the line's modelled one-way delay (10 ms) is
// in every round trip across it.
func TestHybridAcrossTheLine(t *testing.T) {
	s, err := scenarios.Load("library/hybrid-cloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run := runHybrid(t, s)
	inDC := func(name string) bool { return strings.HasPrefix(name, "dc-") }
	across := 0
	for _, p := range run.Probes {
		if !p.Delivered {
			t.Errorf("%s -> %s not delivered", p.From, p.To)
			continue
		}
		switch {
		case inDC(p.From) && !inDC(p.To):
			across++
			if !crosses(p.Path, "dc-border1", "vpc1-vpc-router") {
				t.Errorf("%s -> %s does not cross the line: %v", p.From, p.To, p.Path)
			}
		case !inDC(p.From) && inDC(p.To):
			across++
			if !crosses(p.Path, "vpc1-vpc-router", "dc-border1") {
				t.Errorf("%s -> %s does not cross the line: %v", p.From, p.To, p.Path)
			}
		default:
			if slices.ContainsFunc(p.Path, func(d string) bool { return strings.HasPrefix(d, "vpc1-") || d == "dc-border1" }) {
				t.Errorf("%s -> %s leaves the private cloud: %v", p.From, p.To, p.Path)
			}
			continue
		}
		if p.RTT < 2*10*time.Millisecond {
			t.Errorf("%s -> %s: round trip %v across a line of 10 ms each way", p.From, p.To, p.RTT)
		}
	}
	if across != 5 {
		t.Errorf("%d probes across the line, want 5", across)
	}
	// The VPC's pods spawn the cloud's way, with options.vpc's warm pool;
	// the private cloud's through gen 2's controller and CNC.
	if st := steps(run, "cloud-api-1"); !hasStep(st, "2-ipam-warm-pool") {
		t.Errorf("cloud-api-1's timeline %v: no address from the warm pool (options.vpc)", st)
	}
	if st := steps(run, "dc-web-1"); !hasStep(st, "9-overlay-active") {
		t.Errorf("dc-web-1's timeline %v: no overlay from the CNC", st)
	}
}

// TestHybridTransit: two VPCs, each with its line to the private cloud,
// reach each other through it (VPC router, line, border leaf, spine,
// the other border leaf, its line), and a VPC's network added before any
// of the private cloud's (its tenant's VRF not there yet) is routed once
// it is.
func TestHybridTransit(t *testing.T) {
	s, err := scenarios.Parse("two.yaml", []byte(`name: two-vpcs
topology: {builder: hybrid, params: {vpcs: 2, vpc_hosts: 1, line_delay_ms: 5}}
sites:
  - {name: dc, generation: evpn}
  - {name: vpc1, generation: vpc, cidr: 10.100.0.0/16}
  - {name: vpc2, generation: vpc, cidr: 10.101.0.0/16}
networks:
  - {name: vpc1-pods, subnet: 10.100.0.0/20, site: vpc1}
  - {name: dc-pods, subnet: 10.20.0.0/20, site: dc}
  - {name: vpc2-pods, subnet: 10.101.0.0/20, site: vpc2}
steps:
  - spawn: {name: a, kind: pod, count: 1, network: dc-pods, hosts: [dc-host2]}
  - spawn: {name: b, kind: pod, count: 1, network: vpc1-pods, hosts: [vpc1-host1]}
  - spawn: {name: c, kind: pod, count: 1, network: vpc2-pods, hosts: [vpc2-host1]}
  - at: 5s
    traffic: {proto: icmp, from: [a-1, b-1, c-1], to: [a-1, b-1, c-1], matrix: true, tag: all}
  - expect: {tag: all, all_reachable: true, no_unexplained_drops: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	run := runHybrid(t, s)
	for _, p := range run.Probes {
		if p.From == "b-1" && p.To == "c-1" && !(crosses(p.Path, "vpc1-vpc-router", "dc-border1") && crosses(p.Path, "dc-border2", "vpc2-vpc-router")) {
			t.Errorf("b-1 -> c-1 does not go through the private cloud: %v", p.Path)
		}
	}
	if len(run.Probes) != 6 {
		t.Errorf("%d probes, want 6", len(run.Probes))
	}
}
