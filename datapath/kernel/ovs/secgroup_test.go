package ovs

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netbed/netbed/datapath/vlan"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestRenderSecurityGroups(t *testing.T) {
	web := vlan.SecurityGroup{Name: "web", Rules: []vlan.SGRule{
		{Direction: vlan.Ingress, Proto: vlan.ProtoTCP, PortMin: 80, PortMax: 80, Action: vlan.Accept},
		{Direction: vlan.Ingress, Proto: vlan.ProtoICMP, Remote: netip.MustParsePrefix("10.0.9.7/24"), Action: vlan.Drop},
		{Direction: vlan.Egress, Proto: vlan.ProtoUDP, Remote: netip.MustParsePrefix("10.0.1.0/24"), Action: vlan.Drop},
		{Direction: vlan.Ingress, PortMin: 53, PortMax: 53, Action: vlan.Accept},
		{Direction: vlan.Ingress, Proto: 47, Action: vlan.Accept},
		// IPv6 only: left out of the iptables rules, as an IPv4 remote
		// is left out of the ip6tables ones (rule numbers stay the
		// model's).
		{Direction: vlan.Ingress, Proto: vlan.ProtoTCP, Remote: netip.MustParsePrefix("fd00:9::7/64"), PortMin: 22, PortMax: 22, Action: vlan.Accept},
	}}
	ports := []SGPort{
		{Instance: "vm2", Tap: "tap-vm2", DefIngress: vlan.Drop, DefEgress: vlan.Accept},
		{Instance: "vm1", Tap: "tap-vm1", Groups: []vlan.SecurityGroup{web}, DefIngress: vlan.Drop, DefEgress: vlan.Accept},
	}
	for _, c := range []struct {
		file   string
		render func([]SGPort) string
	}{
		{"secgroups.golden", RenderSecurityGroups},
		{"secgroups6.golden", RenderSecurityGroups6},
	} {
		got := c.render(ports)
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("rendered rules differ from %s:\n%s", path, got)
		}
	}
}
