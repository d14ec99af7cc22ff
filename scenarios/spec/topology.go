package spec

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// TopologyFor returns the topology spec that applies to gen.
func (s *Scenario) TopologyFor(gen Generation) TopologySpec {
	if t, ok := s.Topologies[string(gen)]; ok {
		return t
	}
	return s.Topologies["default"]
}

// Build realises the spec: reads the file (relative to the scenario file's
// directory) or calls the builder with the params.
func (t TopologySpec) Build(scenarioFile string) (*topologies.Topology, error) {
	at := fmt.Sprintf("%s:%d: topology", scenarioFile, t.Line)
	if t.File != "" {
		path := t.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(scenarioFile), path)
		}
		topo, rep, err := clab.Load(path)
		if err == nil {
			err = clab.NeedHosts(path, topo, rep)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return topo, nil
	}
	params := map[string]int{}
	for k, v := range t.Params {
		params[k] = v
	}
	take := func(name string, dst *int) {
		if v, ok := params[name]; ok {
			*dst = v
			delete(params, name)
		}
	}
	var topo *topologies.Topology
	var err error
	switch t.Builder {
	case "three-tier":
		var p topologies.ThreeTierParams
		take("pods", &p.Pods)
		take("racks_per_pod", &p.RacksPerPod)
		take("hosts_per_rack", &p.HostsPerRack)
		take("firewalls", &p.Firewalls)
		err = unknownParams(at, t.Builder, params)
		if err == nil {
			topo, err = topologies.ThreeTier(p)
		}
	case "spine-leaf":
		var p topologies.SpineLeafParams
		var dual int
		take("spines", &p.Spines)
		take("leaves", &p.Leaves)
		take("hosts_per_leaf", &p.HostsPerLeaf)
		take("dual_homed", &dual)
		p.DualHomed = dual != 0
		err = unknownParams(at, t.Builder, params)
		if err == nil {
			topo, err = topologies.SpineLeaf(p)
		}
	case "multi-az":
		var p topologies.MultiAZParams
		take("azs", &p.AZs)
		take("border_leaves", &p.BorderLeaves)
		take("spines", &p.Fabric.Spines)
		take("leaves", &p.Fabric.Leaves)
		take("hosts_per_leaf", &p.Fabric.HostsPerLeaf)
		err = unknownParams(at, t.Builder, params)
		if err == nil {
			topo, err = topologies.MultiAZ(p)
		}
	case "vpc":
		var p topologies.VPCParams
		take("hosts", &p.Hosts)
		err = unknownParams(at, t.Builder, params)
		if err == nil {
			topo, err = topologies.VPC(p)
		}
	default:
		return nil, fmt.Errorf("%s: unknown builder %q", at, t.Builder)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	return topo, nil
}

func unknownParams(at, builder string, rest map[string]int) error {
	if len(rest) == 0 {
		return nil
	}
	names := make([]string, 0, len(rest))
	for k := range rest {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Errorf("%s: %s has no parameter %s", at, builder, strings.Join(names, ", "))
}
