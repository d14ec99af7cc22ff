package bgpevpn

import (
	"fmt"
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
