package scenarios_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// wide is gen 3 on 512 hosts (4 spines, 32 leaves, 16 hosts a leaf), and
// gen 1 on as many (2 pods of 16 racks of 16), with options in place of %s.
const wide = `name: wide
topologies: {default: {builder: spine-leaf, params: {spines: 4, leaves: 32, hosts_per_leaf: 16}}, vlan: {builder: three-tier, params: {pods: 2, racks_per_pod: 16, hosts_per_rack: 16}}}
generations: [ebpf, vlan]
seed: 1
%s
networks:
  - {name: a, subnet: 10.200.0.0/16}
  - {name: b, subnet: 10.201.0.0/16}
  - {name: c, subnet: 10.202.0.0/16}
steps:
  - spawn: {name: pod, kind: pod, count: 2, network: a, hosts: [host1, host512]}
  - traffic: {proto: icmp, from: [pod-1], to: [pod-2], tag: far}
  - expect: {tag: far, all_reachable: true}
`

// TestGen3At512Hosts: the default cluster CIDR holds a 512-host gen 3
// fabric (the /16 it had held 256 node CIDRs, and such a run failed at
// once); a cluster CIDR too small is an error naming the option, its line
// and the size it would need, from validation and from a run alike.
func TestGen3At512Hosts(t *testing.T) {
	s, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "")))
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, 1), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Failed() {
		t.Fatalf("checks failed: %+v", run.Checks)
	}
	small, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "options:\n  ebpf: {cluster_cidr: 10.0.0.0/16}")))
	if err != nil {
		t.Fatal(err)
	}
	const want = "wide.yaml:6: options.ebpf.cluster_cidr: 10.0.0.0/16 holds 256 node CIDRs of /24, topology spine-leaf has 512 hosts: it needs a /15 or larger"
	_, err = scenarios.Run(context.Background(), small, scenarios.GenEBPF, simBackend(t, 1), scenarios.Options{})
	if err == nil || err.Error() != want || !errors.Is(err, scenarios.ErrInvalid) {
		t.Errorf("run: %v\nwant: %s", err, want)
	}
	err = small.CheckReferences(func(g scenarios.Generation) (*topologyT, error) { return small.TopologyFor(g).Build(small.File) })
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("validate: %v\nwant: %s", err, want)
	}
	// A longer node mask fits them in the same /16.
	mask, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "options:\n  default: {cluster_cidr: 10.0.0.0/16, node_mask: 25}")))
	if err != nil {
		t.Fatal(err)
	}
	if o := mask.OptionsFor(scenarios.GenEBPF); o.NodeMask != 25 || o.ClusterCIDR.String() != "10.0.0.0/16" {
		t.Errorf("options %+v", o)
	}
	err = mask.CheckReferences(func(g scenarios.Generation) (*topologyT, error) { return mask.TopologyFor(g).Build(mask.File) })
	if err != nil {
		t.Errorf("validate with node_mask 25: %v", err)
	}
}

// TestGen3ClusterCIDR6TooSmall: an IPv6 cluster CIDR without room for
// every host's IPv6 node CIDR names cluster_cidr6, its line and the size
// it needs; a node_mask6 shorter than the cluster CIDR names node_mask6.
func TestGen3ClusterCIDR6TooSmall(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{"options:\n  ebpf: {cluster_cidr6: 'fd10::/112'}",
			"wide.yaml:6: options.ebpf.cluster_cidr6: fd10::/112 holds 256 node CIDRs of /120, topology spine-leaf has 512 hosts: it needs a /111 or larger"},
		{"options:\n  ebpf:\n    cluster_cidr6: 'fd10::/112'\n    node_mask6: 108",
			"wide.yaml:8: options.ebpf.node_mask6: /108: an IPv6 node CIDR must lie between the cluster CIDR's /112 and /126"},
	} {
		s, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, c.opts)))
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckReferences(func(g scenarios.Generation) (*topologyT, error) { return s.TopologyFor(g).Build(s.File) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: validate: %v\nwant: %s", c.opts, err, c.want)
		}
	}
	ok, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "options:\n  ebpf: {cluster_cidr6: 'fd10::/104', node_mask6: 116}")))
	if err != nil {
		t.Fatal(err)
	}
	if o := ok.OptionsFor(scenarios.GenEBPF); o.ClusterCIDR6.String() != "fd10::/104" || o.NodeMask6 != 116 {
		t.Errorf("options %+v", o)
	}
	if o := ok.OptionsFor(scenarios.GenVLAN); o.ClusterCIDR6.IsValid() {
		t.Errorf("vlan's options have gen 3's cluster_cidr6: %+v", o)
	}
}

// TestVLANRangeTooSmall: a VLAN range that cannot hold the scenario's
// networks names the option and the range it would need.
func TestVLANRangeTooSmall(t *testing.T) {
	s, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "options:\n  vlan:\n    vlans: 4093-4094")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = scenarios.Run(context.Background(), s, scenarios.GenVLAN, simBackend(t, 1), scenarios.Options{})
	const want = "wide.yaml:7: options.vlan.vlans: 4093-4094 holds 2 VLANs, the scenario has 3 networks: it needs 3, like 4092-4094"
	if err == nil || err.Error() != want {
		t.Errorf("run: %v\nwant: %s", err, want)
	}
	ok, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, "options:\n  default: {vlans: 200-299, vnis: 5000-5999}")))
	if err != nil {
		t.Fatal(err)
	}
	if seg := scenarios.SegmentsFor(ok.Networks, ok.OptionsFor(scenarios.GenEVPN)); seg[2].VLAN != 202 || seg[2].VNI != 5002 {
		t.Errorf("third network: VLAN %d VNI %d, want 202 and 5002", seg[2].VLAN, seg[2].VNI)
	}
}

// TestGenOptionsMalformed: every malformed option is an error at its
// file, line and field.
func TestGenOptionsMalformed(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{"options:\n  ebpf: {cluster_cidr: 10.0.0.0}", `wide.yaml:6: options.ebpf.cluster_cidr: "10.0.0.0" is not a CIDR (like 10.0.0.0/12)`},
		{"options:\n  ebpf:\n    cluster_cidr: 10.0.0.1/16", "wide.yaml:7: options.ebpf.cluster_cidr: 10.0.0.1/16 has host bits set; did you mean 10.0.0.0/16?"},
		{"options:\n  ebpf: {cluster_cidr: 'fd00::/48'}", "wide.yaml:6: options.ebpf.cluster_cidr: fd00::/48: want an IPv4 CIDR from /8 to /30"},
		{"options:\n  default: {node_mask: 31}", "wide.yaml:6: options.default.node_mask: 31: want a prefix length from 8 to 30 (24: a /24 per node, 253 pods)"},
		{"options:\n  ebpf: {cluster_cidr6: 'fd10::'}", `wide.yaml:6: options.ebpf.cluster_cidr6: "fd10::" is not a CIDR (like fd10::/104)`},
		{"options:\n  ebpf: {cluster_cidr6: 10.0.0.0/16}", "wide.yaml:6: options.ebpf.cluster_cidr6: 10.0.0.0/16: want an IPv6 CIDR from /16 to /126, like fd10::/104"},
		{"options:\n  ebpf:\n    cluster_cidr6: 'fd10::1/104'", "wide.yaml:7: options.ebpf.cluster_cidr6: fd10::1/104 has host bits set; did you mean fd10::/104?"},
		{"options:\n  ebpf: {cluster_cidr6: 'fd10::/104', node_mask6: 64}", "wide.yaml:6: options.ebpf.node_mask6: 64: want a prefix length from 104 to 126 (120: a /120 per node, 254 pods)"},
		{"options:\n  evpn:\n    vnis: 0-10", `wide.yaml:7: options.evpn.vnis: "0-10": VNIs run from 1 to 16777215`},
		{"options:\n  vlan:\n\n    vlans: 300-200", `wide.yaml:8: options.vlan.vlans: "300-200" runs backwards; write first-last, first ≤ last`},
		{"options:\n  vlan: {vlans: 100-5000}", `wide.yaml:6: options.vlan.vlans: "100-5000": VLAN IDs run from 1 to 4094`},
		{"options:\n  vlan: {vlans: lots}", `wide.yaml:6: options.vlan.vlans: "lots" is not a range; write first-last, like 100-199`},
		{"options:\n  gen4: {vlans: 1-2}", "wide.yaml:6: options.gen4: not a generation; use default or one of [vlan vlan-stock evpn ebpf ebpf-direct vpc hybrid]"},
		{"options:\n  ebpf: {cluster: 10.0.0.0/8}", "wide.yaml:6: options.ebpf.cluster"},
	} {
		_, err := scenarios.Parse("wide.yaml", []byte(fmt.Sprintf(wide, c.opts)))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant: %s", c.opts, err, c.want)
		}
	}
}

type topologyT = topologies.Topology
