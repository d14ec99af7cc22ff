package scenarios_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// familiesAgree checks that every IPv6 probe of a run had the outcome of
// the IPv4 probe of the same pair, protocol and step: delivered, replied,
// the deciding rule, the hop and switch hop counts. Probes of one key
// (a truth table probes a pair on several ports) pair up in the order
// they were sent. It returns how many pairs it compared.
func familiesAgree(t *testing.T, probes []reports.Probe) int {
	t.Helper()
	key := func(p reports.Probe) string { return fmt.Sprintf("%s %s->%s %s", p.Tag, p.From, p.To, p.Proto) }
	v4 := map[string][]reports.Probe{}
	for _, p := range probes {
		if p.Family == "" {
			v4[key(p)] = append(v4[key(p)], p)
		}
	}
	n := 0
	for _, p6 := range probes {
		if p6.Family != scenarios.FamilyIPv6 {
			continue
		}
		k := key(p6)
		if len(v4[k]) == 0 {
			continue
		}
		p4 := v4[k][0]
		v4[k] = v4[k][1:]
		n++
		if p4.Delivered != p6.Delivered || p4.Replied != p6.Replied || p4.Rule != p6.Rule || p4.Hops != p6.Hops || p4.SwitchHops != p6.SwitchHops {
			t.Errorf("%s: IPv4 delivered=%v replied=%v rule=%q hops=%d/%d, IPv6 delivered=%v replied=%v rule=%q hops=%d/%d",
				k, p4.Delivered, p4.Replied, p4.Rule, p4.Hops, p4.SwitchHops, p6.Delivered, p6.Replied, p6.Rule, p6.Hops, p6.SwitchHops)
		}
	}
	return n
}

// TestGen3DualStackOnSim runs the shipped dual-stack-pods scenario on
// sim: every pod has an address of each family, from its node's IPv4 and
// IPv6 CIDRs, and every IPv6 probe's verdict, rule and hops are those of
// the IPv4 probe between the same pods (policy allows and denies alike).
func TestGen3DualStackOnSim(t *testing.T) {
	s, err := scenarios.Load("library/dual-stack-pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Failed() {
		t.Fatalf("checks failed: %+v", run.Checks)
	}
	dropped := 0
	for _, p := range run.Probes {
		if p.Family == scenarios.FamilyIPv6 && !p.Delivered {
			dropped++
			if !strings.HasPrefix(p.Rule, "policy:") {
				t.Errorf("IPv6 probe %s -> %s dropped by %q, not by policy", p.From, p.To, p.Rule)
			}
		}
	}
	if n := familiesAgree(t, run.Probes); n < 12 || dropped == 0 {
		t.Errorf("compared %d pairs across families, %d IPv6 probes dropped: want the matrix and the policy's drops", n, dropped)
	}
}

// TestGen3IPv6Refused: a gen 3 scenario without cluster_cidr6 refuses an
// IPv6 probe, naming the pod without an IPv6 address; ebpf-direct refuses
// an IPv6 cluster CIDR (its underlay routes IPv4 only).
func TestGen3IPv6Refused(t *testing.T) {
	src := `name: v6
topology: {builder: spine-leaf, params: {spines: 1, leaves: 1, hosts_per_leaf: 2}}
generations: [ebpf, ebpf-direct]
seed: 1
%s
networks:
  - {name: pods, subnet: 10.10.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 2, network: pods}
  - traffic: {proto: icmp, from: [p-1], to: [p-2], family: ipv6, tag: x}
  - expect: {tag: x, all_reachable: true}
`
	s, err := scenarios.Parse("v6.yaml", []byte(fmt.Sprintf(src, "")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, 1), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "p-2 has no IPv6 address (the scenario gives ebpf no IPv6 cluster CIDR; set options.ebpf.cluster_cidr6") {
		t.Errorf("IPv6 probe on an IPv4-only cluster: %v", err)
	}
	d, err := scenarios.Parse("v6.yaml", []byte(fmt.Sprintf(src, "options:\n  default: {cluster_cidr6: 'fd10::/104'}")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = scenarios.Run(context.Background(), d, scenarios.GenEBPFDirect, simBackend(t, 1), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "use tunnel mode (ebpf) for dual stack") {
		t.Errorf("ebpf-direct with cluster_cidr6: %v", err)
	}
}

// TestTruthTableOverIPv6: on dual-stack pods the truth table probes every
// cell over each family and evaluates each with the pods' addresses of
// that family. An ipBlock of IPv4 addresses that holds the web pod's
// admits it to the db over IPv4 and, by the Kubernetes semantics, not
// over IPv6. (Gen 3 admits it over both: its policy is keyed by identity,
// which has no family; the table shows that cell as a difference.)
func TestTruthTableOverIPv6(t *testing.T) {
	s, err := scenarios.Parse("testdata/truth-ipv6.yaml", []byte(`name: truth-ipv6
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [ebpf]
seed: 1
options:
  ebpf: {cluster_cidr6: "fd10::/104"}
networks:
  - {name: pods, subnet: 10.10.0.0/24}
steps:
  - spawn: {name: web, kind: pod, count: 1, network: pods, labels: {app: web}, hosts: [host1]}
  - spawn: {name: db, kind: pod, count: 1, network: pods, labels: {app: db}, hosts: [host2]}
  - policy: {file: policies/ipblock-v4.yaml}
  - expect: {truth_table: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.TruthTables) != 1 {
		t.Fatalf("%d truth tables; want 1", len(run.TruthTables))
	}
	tt := run.TruthTables[0]
	want := map[string]bool{ // web -> db, expected allowed
		"tcp/5432": true, "tcp/5432 over ipv6": false,
		"icmp": false, "icmp over ipv6": false,
	}
	n6 := 0
	for _, c := range tt.Cells {
		if strings.HasSuffix(c.Traffic, " over ipv6") {
			n6++
		}
		if w, ok := want[c.Traffic]; ok && c.From == "default/web-1" && c.To == "default/db-1" {
			if c.Expected != w {
				t.Errorf("%s: expected allowed %v; want %v (%s)", c, c.Expected, w, c.Why)
			}
			delete(want, c.Traffic)
		}
	}
	if len(want) > 0 {
		t.Errorf("cells missing: %v (traffics %v)", want, tt.Traffics)
	}
	if n6 == 0 || 2*n6 != len(tt.Cells) {
		t.Errorf("%d of %d cells over IPv6; want half", n6, len(tt.Cells))
	}
	// Every cell is a probe in the run's list, with what the table
	// wanted of it, so that the report counts the drops it meant.
	var mine []reports.Probe
	for _, p := range run.Probes {
		if p.Tag == tt.Tag {
			mine = append(mine, p)
		}
	}
	if len(mine) != len(tt.Cells) {
		t.Errorf("%d probes tagged %s in the run; want one per cell (%d)", len(mine), tt.Tag, len(tt.Cells))
	}
	for i := range min(len(mine), len(tt.Cells)) {
		want := reports.ExpectDropped
		if tt.Cells[i].Expected {
			want = reports.ExpectDelivered
		}
		if mine[i].Expect != want || mine[i].Replied != tt.Cells[i].Observed {
			t.Errorf("probe %d %s -> %s: expect %q replied %v; the cell %s wants %q, observed %v", i, mine[i].From, mine[i].To, mine[i].Expect, mine[i].Replied, tt.Cells[i], want, tt.Cells[i].Observed)
		}
	}
	// Every cell agrees but the one gen 3 cannot tell apart: it admits
	// the web pod to the db on 5432 by identity, over both families.
	if bad := tt.Mismatches(); len(bad) > 1 || len(bad) == 1 && bad[0].Traffic != "tcp/5432 over ipv6" {
		t.Errorf("cells that differ: %v", bad)
	}
}
