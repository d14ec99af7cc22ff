package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netbed/netbed/internal/yamltext"
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

// UseTopologyFile runs generation gen of the scenario (every generation
// without a topology of its own when gen is empty) on the containerlab
// file at path instead of the scenario's topology; flag names the option
// that asked, for errors.
func (s *Scenario) UseTopologyFile(gen Generation, path, flag string) error {
	key := "default"
	if gen != "" {
		if !slices.Contains(s.Generations, gen) {
			return fmt.Errorf("%s: %s does not run generation %s (it runs %v)", flag, s.File, gen, s.Generations)
		}
		key = string(gen)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	s.Topologies[key] = TopologySpec{File: abs, Flag: flag}
	return nil
}

// Build realises the spec: reads the file (relative to the scenario file's
// directory) or calls the builder with the params.
func (t TopologySpec) Build(scenarioFile string) (*topologies.Topology, error) {
	at := fmt.Sprintf("%s:%d: topology", scenarioFile, t.Line)
	atParams := fmt.Sprintf("%s:%d: topology.params", scenarioFile, t.Line)
	if t.Flag != "" {
		at = t.Flag
	}
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
		if err := unknownParams(atParams, t.Builder, params, "pods", "racks_per_pod", "hosts_per_rack", "firewalls"); err != nil {
			return nil, err
		}
		topo, err = topologies.ThreeTier(p)
	case "spine-leaf":
		var p topologies.SpineLeafParams
		var dual int
		take("spines", &p.Spines)
		take("leaves", &p.Leaves)
		take("hosts_per_leaf", &p.HostsPerLeaf)
		take("dual_homed", &dual)
		p.DualHomed = dual != 0
		if err := unknownParams(atParams, t.Builder, params, "spines", "leaves", "hosts_per_leaf", "dual_homed"); err != nil {
			return nil, err
		}
		topo, err = topologies.SpineLeaf(p)
	case "multi-az":
		var p topologies.MultiAZParams
		take("azs", &p.AZs)
		take("border_leaves", &p.BorderLeaves)
		take("spines", &p.Fabric.Spines)
		take("leaves", &p.Fabric.Leaves)
		take("hosts_per_leaf", &p.Fabric.HostsPerLeaf)
		if err := unknownParams(atParams, t.Builder, params, "azs", "border_leaves", "spines", "leaves", "hosts_per_leaf"); err != nil {
			return nil, err
		}
		topo, err = topologies.MultiAZ(p)
	case "vpc":
		var p topologies.VPCParams
		take("hosts", &p.Hosts)
		if err := unknownParams(atParams, t.Builder, params, "hosts"); err != nil {
			return nil, err
		}
		topo, err = topologies.VPC(p)
	case "hybrid":
		var p topologies.HybridParams
		var delayMS, mbps int
		take("spines", &p.Fabric.Spines)
		take("leaves", &p.Fabric.Leaves)
		take("hosts_per_leaf", &p.Fabric.HostsPerLeaf)
		take("vpcs", &p.VPCs)
		take("vpc_hosts", &p.VPCHosts)
		take("line_delay_ms", &delayMS)
		take("line_mbps", &mbps)
		if err := unknownParams(atParams, t.Builder, params, "spines", "leaves", "hosts_per_leaf", "vpcs", "vpc_hosts", "line_delay_ms", "line_mbps"); err != nil {
			return nil, err
		}
		p.LineDelay, p.LineRate = time.Duration(delayMS)*time.Millisecond, int64(mbps)*1_000_000
		topo, err = topologies.Hybrid(p)
	default:
		return nil, fmt.Errorf("%s: unknown builder %q", at, t.Builder)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	return topo, nil
}

// unknownParams names the first parameter in rest (by name) that the
// builder does not have, at its path, with the closest known one and the
// list of known ones.
func unknownParams(at, builder string, rest map[string]int, known ...string) error {
	if len(rest) == 0 {
		return nil
	}
	names := make([]string, 0, len(rest))
	for k := range rest {
		names = append(names, k)
	}
	sort.Strings(names)
	name := names[0]
	hint, best := "", 3
	for _, k := range known {
		if d := yamltext.EditDistance(name, k); d < best {
			hint, best = " (did you mean "+k+"?)", d
		}
	}
	return fmt.Errorf("%s.%s: %s has no parameter %s%s; its parameters: %s", at, name, builder, name, hint, strings.Join(known, ", "))
}
