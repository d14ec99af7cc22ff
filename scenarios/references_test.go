package scenarios

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/topologies"
)

// TestCheckReferences: every name a step uses that matches nothing is
// reported, all at once, with file:line: field, and a problem of some
// generations only says which.
func TestCheckReferences(t *testing.T) {
	const head = `name: refs
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [evpn, ebpf]
networks:
  - {name: web, subnet: 10.0.1.0/24}
steps:
  - spawn: {name: web, count: 2, network: web}
`
	cases := []struct {
		name  string
		steps string
		want  []string
	}{
		{"all names known", `  - churn: {name: c, rate: 1, duration: 1s, network: web}
  - traffic: {from: [web], to: [web-2, c], tag: x}
  - drift: {instances: [web-1], to: host2}
  - expect: {tag: x, reachable: ["web-1 -> web-2"], ip_unchanged: [web-1]}
  - fail: {role: spine}
  - restore: {agent: host1}
`, nil},
		{"host not in the topology", `  - spawn: {name: db, count: 1, network: web, hosts: [host1, host9]}
`, []string{`refs.yaml:8: steps[1].spawn.hosts[1]: "host9" is not a host of topology spine-leaf (hosts: host1, host2)`}},
		{"drift of an instance never spawned", `  - drift: {instances: [db-1]}
`, []string{`refs.yaml:8: steps[1].drift.instances[0]: "db-1" matches no instance spawned before this step`}},
		{"drift before its spawn", `  - drift: {instances: [db-1]}
  - spawn: {name: db, count: 1, network: web}
`, []string{`refs.yaml:8: steps[1].drift.instances[0]: "db-1" matches no instance spawned before this step`}},
		{"traffic from a prefix that matches nothing", `  - traffic:
      from: [app]
      to: [web-3]
`, []string{
			`refs.yaml:9: steps[1].traffic.from[0]: "app" matches no instance spawned before this step`,
			`refs.yaml:10: steps[1].traffic.to[0]: "web-3" matches no instance spawned before this step`}},
		{"expect a tag no traffic set", `  - traffic: {from: [web-1], to: [web-2], tag: x}
  - expect: {tag: y, reachable: ["web-1 -> db-1"]}
`, []string{
			`refs.yaml:9: steps[2].expect.tag: "y" is set by no traffic step before this one (tags set before it: x)`,
			`refs.yaml:9: steps[2].expect.reachable[0]: "db-1" matches no instance spawned before this step`}},
		{"expect a tag with no traffic at all", `  - expect: {tag: y}
`, []string{`refs.yaml:8: steps[1].expect.tag: "y" is set by no traffic step before this one (no traffic step before it sets a tag)`}},
		{"fail targets the topology lacks", `  - fail: {node: leaf7}
  - fail: {role: core}
  - restore: {agent: spine1}
`, []string{
			`refs.yaml:8: steps[1].fail.node: no node "leaf7" in topology spine-leaf`,
			`refs.yaml:9: steps[2].fail.role: no node with role "core" in topology spine-leaf`,
			`refs.yaml:10: steps[3].restore.agent: "spine1" is not a host of topology spine-leaf (hosts: host1, host2)`}},
		{"a problem of one generation", `  - drift: {instances: [web-1], to: leaf1}
    generations: [ebpf]
`, []string{`refs.yaml:8: steps[1].drift.to: "leaf1" is not a host of topology spine-leaf (hosts: host1, host2) (generation ebpf)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("refs.yaml", []byte(head+c.steps))
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckReferences(func(g Generation) (*topologies.Topology, error) { return s.TopologyFor(g).Build(s.File) })
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestCheckReferencesRoles: a generation given a topology its fabric is
// not built from (gen 1 on a spine-leaf) is a problem of the topology's
// line, found before a run; the run used to fail at its start, after
// validate had said ok.
func TestCheckReferencesRoles(t *testing.T) {
	for _, c := range []struct{ name, topo, want string }{
		{"shared", `topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}`,
			`roles.yaml:1: topology: topology spine-leaf has spine1 (role spine), leaf1 (role leaf): vlan's fabric is built from hosts and tor, access, aggregation, core, firewall only; give it one with topologies.vlan: {builder: three-tier} (generation vlan)`},
		{"own", `topologies:
  default: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
  vlan: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}`,
			`roles.yaml:3: topologies.vlan: topology spine-leaf has spine1 (role spine), leaf1 (role leaf): vlan's fabric is built from hosts and tor, access, aggregation, core, firewall only; give it one with topologies.vlan: {builder: three-tier} (generation vlan)`},
		{"right", `topologies:
  default: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
  vlan: {builder: three-tier, params: {pods: 1, racks_per_pod: 2, hosts_per_rack: 1}}`, ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("roles.yaml", []byte(c.topo+`
name: roles
generations: [vlan, evpn]
networks:
  - {name: web, subnet: 10.0.1.0/24}
steps:
  - spawn: {name: web, count: 2, network: web}
`))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := s.CheckReferences(func(g Generation) (*topologies.Topology, error) { return s.TopologyFor(g).Build(s.File) }); err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestLibraryReferences: the shipped scenarios name nothing that does not
// exist.
func TestLibraryReferences(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("library: %v, %d files", err, len(files))
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckReferences(func(g Generation) (*topologies.Topology, error) { return s.TopologyFor(g).Build(f) }); err != nil {
			t.Errorf("%v", err)
		}
	}
}
