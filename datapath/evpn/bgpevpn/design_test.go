package bgpevpn

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/topologies"
)

// TestFabricASN: the fabric's one AS comes from its switches' netbed.asn
// labels, or is the default; a bad or disagreeing label is an error
// naming the node and the label.
func TestFabricASN(t *testing.T) {
	topo := func(labels ...string) *topologies.Topology {
		tp := &topologies.Topology{Name: "t"}
		for i, role := range []topologies.Role{topologies.RoleSpine, topologies.RoleLeaf, topologies.RoleHost} {
			n := &topologies.Node{Name: fmt.Sprintf("n%d", i), Role: role}
			if i < len(labels) && labels[i] != "" {
				n.Labels = map[string]string{LabelASN: labels[i]}
			}
			tp.Nodes = append(tp.Nodes, n)
		}
		return tp
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   uint32
		err    string
	}{
		{"default", nil, DefaultASN, ""},
		{"labelled", []string{"64512", "64512"}, 64512, ""},
		{"one labelled", []string{"", "64600"}, 64600, ""},
		{"a host's label is not the fabric's", []string{"", "", "7"}, DefaultASN, ""},
		{"disagree", []string{"64512", "64513"}, 0, "node n1: label netbed.asn: AS 64513, but n0 has AS 64512"},
		{"zero", []string{"0"}, 0, `node n0: label netbed.asn: "0" is not an AS number 1..65535`},
		{"four bytes", []string{"4200000000"}, 0, `node n0: label netbed.asn: "4200000000" is not an AS number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := FabricASN(topo(c.labels...))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("AS %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

// TestNewDesign: spines then leaves in topology order, router IDs from
// the loopbacks, a session per leaf–spine link with the /31s of
// SessionPool in link order; iBGP: one AS, the spines one cluster (the
// first spine's router ID); eBGP: the spines' AS and one per leaf, no
// cluster, route targets in the spines' AS. A node without a loopback or
// without a leaf–spine link is an error naming it.
func TestNewDesign(t *testing.T) {
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]netip.Addr{"spine1": netip.MustParseAddr("10.255.0.1"), "spine2": netip.MustParseAddr("10.255.0.2"),
		"leaf1": netip.MustParseAddr("10.255.1.1"), "leaf2": netip.MustParseAddr("10.255.1.2")}
	lo := func(n string) (netip.Addr, bool) { a, ok := ids[n]; return a, ok }
	for _, ebgp := range []bool{false, true} {
		d, err := NewDesign(topo, ebgp, lo)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range d.Speakers {
			got = append(got, fmt.Sprintf("%s/%d/%v/%v/%v", s.Node, s.ASN, s.Leaf, s.RouterID, s.ClusterID))
		}
		want := []string{"spine1/65000/false/10.255.0.1/10.255.0.1", "spine2/65000/false/10.255.0.2/10.255.0.1",
			"leaf1/65000/true/10.255.1.1/invalid IP", "leaf2/65000/true/10.255.1.2/invalid IP"}
		if ebgp {
			want = []string{"spine1/65000/false/10.255.0.1/invalid IP", "spine2/65000/false/10.255.0.2/invalid IP",
				"leaf1/65001/true/10.255.1.1/invalid IP", "leaf2/65002/true/10.255.1.2/invalid IP"}
		}
		if !slices.Equal(got, want) || d.EBGP != ebgp || d.RouteTargetASN != 65000 {
			t.Errorf("ebgp %v: speakers %v (route targets in AS %d), want %v", ebgp, got, d.RouteTargetASN, want)
		}
		if len(d.Sessions) != 4 {
			t.Fatalf("sessions %+v, want 4", d.Sessions)
		}
		s0 := d.Sessions[0]
		if s0.A.Node != "spine1" || s0.B.Node != "leaf1" || !s0.Spine() || s0.BClient == ebgp || s0.AddrA != netip.MustParseAddr("169.254.0.0") ||
			s0.AddrB != netip.MustParseAddr("169.254.0.1") || d.Sessions[3].AddrB != netip.MustParseAddr("169.254.0.7") {
			t.Errorf("sessions %+v", d.Sessions)
		}
	}
	delete(ids, "leaf2")
	if _, err := NewDesign(topo, false, lo); err == nil || !strings.Contains(err.Error(), "node leaf2: no loopback") {
		t.Errorf("without leaf2's loopback: %v", err)
	}
}

// TestNewDesignZones: with two availability zones, each zone's spines
// are one cluster (the zone's first spine's router ID), and the border
// leaves joined across the zones have a session over that link in which
// each reflects for the other, in a cluster of its own; the eBGP design
// refuses the zones, naming the link.
func TestNewDesignZones(t *testing.T) {
	topo, err := topologies.MultiAZ(topologies.MultiAZParams{Fabric: topologies.SpineLeafParams{Spines: 2, Leaves: 1, HostsPerLeaf: 1}, BorderLeaves: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]netip.Addr{}
	for i, n := range topo.Nodes {
		ids[n.Name] = netip.AddrFrom4([4]byte{10, 255, 0, byte(i + 1)})
	}
	lo := func(n string) (netip.Addr, bool) { a, ok := ids[n]; return a, ok }
	d, err := NewDesign(topo, false, lo)
	if err != nil {
		t.Fatal(err)
	}
	cluster := map[string]netip.Addr{}
	for _, s := range d.Speakers {
		cluster[s.Node] = s.ClusterID
	}
	if cluster["az1-spine2"] != ids["az1-spine1"] || cluster["az2-spine2"] != ids["az2-spine1"] ||
		cluster["az1-border1"] != ids["az1-border1"] || cluster["az2-border1"] != ids["az2-border1"] || cluster["az1-leaf1"].IsValid() {
		t.Errorf("clusters %v", cluster)
	}
	var inter []DesignSession
	for _, s := range d.Sessions {
		if !s.Spine() {
			inter = append(inter, s)
		}
	}
	if len(inter) != 1 || inter[0].A.Node != "az1-border1" || inter[0].B.Node != "az2-border1" || !inter[0].AClient || !inter[0].BClient {
		t.Errorf("sessions between the zones %+v, want az1-border1 – az2-border1, each reflecting for the other", inter)
	}
	if len(d.Sessions) != 2*(2*1+2*1)+1 {
		t.Errorf("%d sessions, want 9", len(d.Sessions))
	}
	if _, err := NewDesign(topo, true, lo); err == nil || !strings.Contains(err.Error(), "joins availability zones az1 and az2") {
		t.Errorf("eBGP across zones: %v", err)
	}
}
