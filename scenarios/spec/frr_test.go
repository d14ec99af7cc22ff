package spec_test

import (
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios/spec"
	"github.com/netbed/netbed/topologies"
)

const frrHead = `name: frr
topology: {builder: spine-leaf, params: {spines: 2, leaves: 3, hosts_per_leaf: 1}}
generations: [evpn, ebpf]
`

const frrTail = `networks: [{name: n, subnet: 10.0.0.0/24}]
steps:
  - spawn: {name: a, count: 2, network: n}
`

// TestFRRLeavesParse: frr_leaves is a list of names, each once, in a
// scenario with control_plane: bgp (ibgp design) on netns, kernel or auto; every
// other use is an error naming the file, line and field.
func TestFRRLeavesParse(t *testing.T) {
	cases := []struct {
		name, mid, want string
	}{
		{"good", "backend: netns\ncontrol_plane: bgp\nfrr_leaves: [leaf3]\n", ""},
		{"auto backend", "control_plane: bgp\nfrr_leaves:\n  - leaf2\n  - leaf3\n", ""},
		{"shared control plane", "backend: netns\nfrr_leaves: [leaf3]\n",
			"frr.yaml:5: frr_leaves: FRR leaves are BGP speakers: they need control_plane: bgp (this scenario's control plane is shared)"},
		{"sim backend", "backend: sim\ncontrol_plane: bgp\nfrr_leaves: [leaf3]\n",
			"frr.yaml:6: frr_leaves: FRR leaves run on the netns and kernel backends only (this scenario says backend: sim)"},
		{"kernel backend", "backend: kernel\ncontrol_plane: bgp\nfrr_leaves: [leaf3]\n", ""},
		{"ebgp design", "control_plane: bgp\nbgp: {design: ebgp}\nfrr_leaves: [leaf3]\n",
			"frr.yaml:6: frr_leaves: FRR leaves join the ibgp design"},
		{"duplicate", "control_plane: bgp\nfrr_leaves:\n  - leaf3\n  - leaf3\n",
			`frr.yaml:7: frr_leaves[1]: missing or duplicate leaf name "leaf3"`},
		{"empty", "control_plane: bgp\nfrr_leaves: []\n", "frr.yaml:5: frr_leaves: an empty list changes nothing"},
		{"not a list", "control_plane: bgp\nfrr_leaves: leaf3\n", "frr.yaml:5: frr_leaves: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := spec.Parse("frr.yaml", []byte(frrHead+c.mid+frrTail))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(s.BGP.FRRLeaves) == 0 {
					t.Errorf("FRRLeaves empty")
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n got %v\nwant prefix %q", err, c.want)
			}
		})
	}
}

// TestFRRLeavesReferences: a name that is not a leaf of the gen 2
// topology is reported by CheckReferences (for evpn only: ebpf has no
// gen 2 leaves) and by FRRError, which also refuses every backend but
// netns and kernel.
func TestFRRLeavesReferences(t *testing.T) {
	s, err := spec.Parse("frr.yaml", []byte(frrHead+"control_plane: bgp\nfrr_leaves:\n  - leaf3\n  - spine1\n  - leaf9\n"+frrTail))
	if err != nil {
		t.Fatal(err)
	}
	topo := func(g spec.Generation) (*topologies.Topology, error) { return s.TopologyFor(g).Build(s.File) }
	err = s.CheckReferences(topo)
	want := `frr.yaml:7: frr_leaves[1]: spine1 is a spine of topology spine-leaf, not a leaf: FRR stands in for a gen 2 leaf (generation evpn)
frr.yaml:8: frr_leaves[2]: no node "leaf9" in topology spine-leaf (generation evpn)`
	if err == nil || err.Error() != want {
		t.Errorf("CheckReferences:\n got %v\nwant %s", err, want)
	}
	tp, _ := topo(spec.GenEVPN)
	if err := s.FRRError(spec.GenEBPF, tp, "sim"); err != nil {
		t.Errorf("FRRError for ebpf: %v, want none (frr_leaves does not apply)", err)
	}
	if err := s.FRRError(spec.GenEVPN, tp, "netns"); err == nil || !strings.HasPrefix(err.Error(), "frr.yaml:7: frr_leaves[1]: spine1 is a spine") {
		t.Errorf("FRRError on netns: %v", err)
	}
	s.BGP.FRRLeaves = []string{"leaf3"}
	if err := s.FRRError(spec.GenEVPN, tp, "sim"); err == nil || err.Error() != "frr.yaml:5: frr_leaves: FRR leaves run on the netns and kernel backends only (this run is on sim)" {
		t.Errorf("FRRError on sim: %v", err)
	}
	for _, b := range []string{"netns", "kernel"} {
		if err := s.FRRError(spec.GenEVPN, tp, b); err != nil {
			t.Errorf("FRRError for leaf3 on %s: %v", b, err)
		}
	}
}

// TestBFDSetting: bgp: {bfd: true} is parsed, and refused on any backend
// but netns, kernel and sim with the file, line and field.
func TestBFDSetting(t *testing.T) {
	s, err := spec.Parse("bfd.yaml", []byte(frrHead+"control_plane: bgp\nbgp:\n  bfd: true\n"+frrTail))
	if err != nil {
		t.Fatal(err)
	}
	if !s.BGP.BFD {
		t.Fatal("bgp.bfd not set")
	}
	for _, backend := range []string{"netns", "kernel", "sim"} {
		if err := s.BFDError(spec.GenEVPN, backend); err != nil {
			t.Errorf("on %s: %v", backend, err)
		}
	}
	want := "bfd.yaml:6: bgp.bfd: BFD runs beside the netns, kernel and sim backends' speakers only (this run is on scripted)"
	if err := s.BFDError(spec.GenEVPN, "scripted"); err == nil || err.Error() != want {
		t.Errorf("on another backend: %v, want %s", err, want)
	}
	if err := s.BFDError(spec.GenVLAN, "sim"); err != nil {
		t.Errorf("gen 1 has no speakers, nothing to refuse: %v", err)
	}
	if _, err := spec.Parse("bfd.yaml", []byte(frrHead+"bgp: {bfd: true}\n"+frrTail)); err == nil || !strings.Contains(err.Error(), "bgp: session settings need control_plane: bgp") {
		t.Errorf("bfd without control_plane bgp: %v", err)
	}
}
