package scenarios_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// generatedScenario is cross-subnet-hops on a topology file: two instances
// on hosts below different leaves, in different subnets, pinging, for the
// generations that run on a leaf-spine fabric (vlan wants three tiers).
const generatedScenario = `name: generated-clos
topology: {file: %s}
generations: [evpn, ebpf, ebpf-direct]
seed: 1
networks:
  - {name: web, subnet: 10.0.1.0/24}
  - {name: db, subnet: 10.0.2.0/24}
steps:
  - spawn: {name: web, kind: vm, count: 1, network: web, hosts: [host1]}
  - spawn: {name: db, kind: vm, count: 1, network: db, hosts: [host3]}
  - at: 2s
    traffic: {proto: icmp, from: [web-1], to: [db-1], count: 3, rate: 10, tag: cross}
  - expect:
      tag: cross
      reachable: ["web-1 -> db-1"]
      switch_hops: {evpn: 3, ebpf: 3, ebpf-direct: 3}
      no_unexplained_drops: true
`

// TestGeneratedClosScenario runs a scenario on files written by containerlab
// generate: on the file as generated, the run fails saying that a generated
// Clos has no hosts and how to add them; on the file imported with hosts
// below every leaf (what 'netbed topo import --hosts-per-leaf 1' writes), every
// check passes on sim for every generation of the scenario.
func TestGeneratedClosScenario(t *testing.T) {
	for _, src := range []string{"generated-srl-2tier.clab.yml", "generated-srl-3tier.clab.yml"} {
		t.Run(src, func(t *testing.T) {
			dir := t.TempDir()
			generated := filepath.Join("..", "topologies", "clab", "testdata", src)
			abs, err := filepath.Abs(generated)
			if err != nil {
				t.Fatal(err)
			}
			scenario := func(topoFile string) *scenarios.Scenario {
				s, err := scenarios.Parse(filepath.Join(dir, "s.yaml"), []byte(strings.Replace(generatedScenario, "%s", topoFile, 1)))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}

			s := scenario(abs)
			_, err = scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
			if !errors.Is(err, clab.ErrNoHosts) {
				t.Fatalf("run on the generated file: got %v, want an error wrapping clab.ErrNoHosts", err)
			}
			for _, want := range []string{"s.yaml:2: topology", src, "a Clos from containerlab generate has no servers below its leaves",
				"netbed topo import --hosts-per-leaf 2 " + abs + " -o with-hosts.clab.yml"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}

			topo, _, err := clab.Load(generated)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := topologies.AddHostsPerLeaf(topo, 1); err != nil {
				t.Fatal(err)
			}
			imported := filepath.Join(dir, "with-hosts.clab.yml")
			if err := clab.WriteFile(imported, topo); err != nil {
				t.Fatal(err)
			}
			s = scenario("with-hosts.clab.yml")
			for _, gen := range s.Generations {
				t.Run(string(gen), func(t *testing.T) {
					run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if len(run.Checks) == 0 {
						t.Fatal("no checks ran")
					}
					for _, c := range run.Checks {
						if !c.Passed {
							t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
						}
					}
				})
			}
		})
	}
}
