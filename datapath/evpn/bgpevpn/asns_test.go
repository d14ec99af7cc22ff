package bgpevpn

import (
	"strings"
	"testing"

	"github.com/netbed/netbed/topologies"
)

// TestDesignASNs: iBGP puts every switch in one AS; eBGP (RFC 7938) the
// spines in one, every leaf in its own (labels first, defaults around
// them), and refuses AS 0, spines in different ASes, a leaf in the
// spines' AS or two leaves in one, naming the node and the label.
func TestDesignASNs(t *testing.T) {
	topo := func(labels map[string]string) *topologies.Topology {
		tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 2, Leaves: 3, HostsPerLeaf: 1})
		if err != nil {
			t.Fatal(err)
		}
		for n, v := range labels {
			node := tp.Node(n)
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			node.Labels[LabelASN] = v
		}
		return tp
	}
	asns, rt, err := DesignASNs(topo(nil), false)
	if err != nil || rt != DefaultASN || asns["spine2"] != DefaultASN || asns["leaf3"] != DefaultASN || asns["host1"] != 0 {
		t.Errorf("iBGP: %v, route targets in AS %d, %v", asns, rt, err)
	}
	asns, rt, err = DesignASNs(topo(nil), true)
	if err != nil || rt != DefaultASN || asns["spine1"] != 65000 || asns["spine2"] != 65000 ||
		asns["leaf1"] != 65001 || asns["leaf2"] != 65002 || asns["leaf3"] != 65003 {
		t.Errorf("eBGP defaults: %v, route targets in AS %d, %v", asns, rt, err)
	}
	asns, rt, err = DesignASNs(topo(map[string]string{"spine1": "64600", "spine2": "64600", "leaf3": "65001"}), true)
	if err != nil || rt != 64600 || asns["leaf3"] != 65001 || asns["leaf1"] != 65002 || asns["leaf2"] != 65003 {
		t.Errorf("eBGP with labels: %v, route targets in AS %d, %v", asns, rt, err)
	}
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"leaf2": "0"}, `node leaf2: label netbed.asn: "0" is not an AS number`},
		{map[string]string{"spine2": "64601"}, "node spine2: label netbed.asn: AS 64601, but spine spine1 has AS 65000"},
		{map[string]string{"leaf1": "65000"}, "node leaf1: label netbed.asn: AS 65000 is the spines'"},
		{map[string]string{"leaf1": "65010", "leaf2": "65010"}, "node leaf2: label netbed.asn: AS 65010 is also leaf leaf1's"},
		{map[string]string{"spine1": "4200000000", "spine2": "4200000000"}, "node spine1: label netbed.asn: AS 4200000000: the spines' AS numbers the route targets"},
	} {
		if _, _, err := DesignASNs(topo(c.labels), true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("labels %v: %v, want %q", c.labels, err, c.want)
		}
	}
}
