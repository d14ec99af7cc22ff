package scenarios_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/scenarios"
)

// TestEveryGenerationHasAFabric: every registered generation can be built
// for sim and netns.
func TestEveryGenerationHasAFabric(t *testing.T) {
	have := scenarios.FabricGenerations()
	for _, g := range generation.Names() {
		if !slices.Contains(have, g) {
			t.Errorf("generation %s has no fabric builder (scenarios.RegisterFabric)", g)
		}
	}
}

const onePlace = `name: one-place
topologies:
  default: {builder: spine-leaf, params: {spines: 2, leaves: 4, hosts_per_leaf: 2}}
  vlan-stock: {file: ../../topologies/examples/three-tier.clab.yml}
  t-stock: {file: ../../topologies/examples/three-tier.clab.yml}
generations: [vlan-stock, t-stock, ebpf, t-ebpf]
seed: 1
networks:
  - {name: web, subnet: 10.0.1.0/24}
  - {name: db, subnet: 10.0.2.0/24}
steps:
  - spawn: {name: web, kind: pod, count: 1, network: web, hosts: [host1]}
  - spawn: {name: db, kind: pod, count: 1, network: db, hosts: [host3]}
  - at: 2s
    traffic: {proto: icmp, from: [web-1], to: [db-1], count: 3, rate: 10, tag: cross}
  - expect:
      tag: cross
      reachable: ["web-1 -> db-1"]
      hops: {vlan-stock: 24, t-stock: 24}
      switch_hops: {ebpf: 3, t-ebpf: 3}
      no_unexplained_drops: true
`

// TestNewGenerationInOnePlace: a generation registered by a test alone (a
// description and a fabric builder, nothing else) is read, built and run
// like a shipped one: copies of vlan-stock (global IPAM, the controller's
// spawn flow) and of ebpf (local IPAM, the backend's endpoints) give their
// originals' probes, hop for hop.
func TestNewGenerationInOnePlace(t *testing.T) {
	copyOf := func(of, name generation.Name) {
		d, ok := generation.Lookup(of)
		if !ok {
			t.Fatalf("%s not registered", of)
		}
		d.Name, d.Default, d.Colour = name, false, "#000000"
		generation.RegisterForTest(t, d)
	}
	copyOf(scenarios.GenVLANStock, "t-stock")
	scenarios.RegisterFabricForTest(t, "t-stock", func(env scenarios.FabricEnv) (scenarios.BuiltFabric, error) {
		f, err := vlan.New(env.Topology, vlan.Options{Stock: true})
		return scenarios.BuiltFabric{Fabric: f}, err
	})
	copyOf(scenarios.GenEBPF, "t-ebpf")
	scenarios.RegisterFabricForTest(t, "t-ebpf", func(env scenarios.FabricEnv) (scenarios.BuiltFabric, error) {
		f, err := ebpf.New(env.Topology, ebpf.Options{Mode: ebpf.Tunnel, ClusterCIDR: env.Options.ClusterCIDR, NodeMaskBits: env.Options.NodeMask})
		if err != nil {
			return scenarios.BuiltFabric{}, err
		}
		return scenarios.BuiltFabric{Fabric: f, PodMAC: ebpf.PodMAC, NodeCIDR: func(h string) (netip.Prefix, bool) {
			n, ok := f.Host(h)
			if !ok {
				return netip.Prefix{}, false
			}
			return n.Config().NodeCIDR, true
		}}, nil
	})
	s, err := scenarios.Parse("library/one-place.yaml", []byte(onePlace))
	if err != nil {
		t.Fatal(err)
	}
	probes := map[scenarios.Generation]string{}
	for _, g := range s.Generations {
		run, err := scenarios.Run(context.Background(), s, g, simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		for _, c := range run.Checks {
			if !c.Passed {
				t.Errorf("%s: check %s failed: %s", g, c.What, c.Detail)
			}
		}
		b, _ := json.Marshal(run.Probes)
		probes[g] = string(b)
	}
	for copy, of := range map[scenarios.Generation]scenarios.Generation{"t-stock": scenarios.GenVLANStock, "t-ebpf": scenarios.GenEBPF} {
		if probes[copy] != probes[of] {
			t.Errorf("%s's probes differ from %s's:\n%s\n%s", copy, of, probes[copy], probes[of])
		}
	}
	if generation.Colour("t-stock") != "#000000" {
		t.Error("the copy's colour is not its own")
	}
}

// TestDefaultGenOptionsAreEBPFs: the scenario reader's default address
// plan (package spec, which may not import datapath/ebpf) is gen 3's.
func TestDefaultGenOptionsAreEBPFs(t *testing.T) {
	if o := scenarios.DefaultGenOptions; o.ClusterCIDR != ebpf.DefaultClusterCIDR || o.NodeMask != ebpf.DefaultNodeMaskBits {
		t.Errorf("spec's defaults %v /%d, datapath/ebpf's %v /%d", o.ClusterCIDR, o.NodeMask, ebpf.DefaultClusterCIDR, ebpf.DefaultNodeMaskBits)
	}
	if o := scenarios.DefaultGenOptions; o.NodeMask6 != ebpf.DefaultNodeMaskBits6 || o.ClusterCIDR6.IsValid() {
		t.Errorf("spec's IPv6 defaults %v /%d, datapath/ebpf's none and /%d", o.ClusterCIDR6, o.NodeMask6, ebpf.DefaultNodeMaskBits6)
	}
}
