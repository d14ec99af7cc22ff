package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios/spec"
)

// TestParseAlone: the reader works without the packages that run
// scenarios: generations come from package generation's registry.
func TestParseAlone(t *testing.T) {
	s, err := spec.Parse("alone.yaml", []byte(`name: alone
topology: {builder: spine-leaf}
networks: [{name: n, subnet: 10.0.0.0/24}]
steps:
  - spawn: {name: a, count: 2, network: n}
  - traffic: {from: [a-1], to: [a-2]}
  - expect: {reachable: ["a-1 -> a-2"], hops: {evpn: 7}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Generations; len(got) != 3 || got[0] != spec.GenVLAN || got[1] != spec.GenEVPN || got[2] != spec.GenEBPF {
		t.Errorf("default generations %v", got)
	}
	if s.Steps[2].Expect.Hops[spec.GenEVPN] != 7 {
		t.Errorf("hops %v", s.Steps[2].Expect.Hops)
	}
	_, err = spec.Parse("bad.yaml", []byte("name: bad\ntopology: {builder: spine-leaf}\ngenerations: [gen4]\n"))
	var pe *spec.Error
	if !errors.As(err, &pe) || !errors.Is(err, spec.ErrInvalid) || pe.Line != 3 ||
		!strings.Contains(err.Error(), `"gen4" is not a generation; use [vlan vlan-stock evpn ebpf ebpf-direct`) {
		t.Errorf("error %v, want bad.yaml:3 naming the registered generations", err)
	}
}

// TestBuildUnknownParam: a builder parameter the builder does not have is
// named once with its file and line, with the parameters it does have.
func TestBuildUnknownParam(t *testing.T) {
	s, err := spec.Parse("p.yaml", []byte("name: p\ntopology: {builder: spine-leaf, params: {spines: 2, leafs: 4}}\nnetworks: [{name: n, subnet: 10.0.0.0/24}]\nsteps:\n  - spawn: {name: a, count: 1, network: n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.TopologyFor(spec.GenEVPN).Build(s.File)
	want := `p.yaml:2: topology.params.leafs: spine-leaf has no parameter leafs (did you mean leaves?); its parameters: spines, leaves, hosts_per_leaf, dual_homed`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}
