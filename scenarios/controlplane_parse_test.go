package scenarios

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
)

// cpScenario is good with its expect step's checks replaced by expect.
func cpScenario(expect string) []byte {
	return []byte(strings.Replace(good, "      hops: {vlan: 18}\n      max_latency: 1ms\n", expect, 1))
}

// TestParseControlPlaneExpect: bgp_sessions as established or a list,
// bgp_route as one route or a list (instance names and networks standing
// for addresses and VNIs), fabric_consistent.
func TestParseControlPlaneExpect(t *testing.T) {
	s, err := Parse("good.yaml", cpScenario(`      bgp_sessions: established
      bgp_route: {present_on: [leaf2, leaf3], absent_from: [leaf4], type: 2, mac: web-1, ip: 10.0.1.5, vni: web}
      fabric_consistent: true
      within: 5s
`))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Steps[3].Expect
	want := BGPRouteExpect{PresentOn: []string{"leaf2", "leaf3"}, AbsentFrom: []string{"leaf4"}, Type: evpn.MACIP, MAC: "web-1", IP: "10.0.1.5", Network: "web", Line: 23}
	if e.BGPSessions == nil || len(e.BGPSessions.Nodes) != 0 || !e.FabricConsistent || len(e.BGPRoutes) != 1 {
		t.Fatalf("expect = %+v", e)
	}
	if got := e.BGPRoutes[0]; !slices.Equal(got.PresentOn, want.PresentOn) || !slices.Equal(got.AbsentFrom, want.AbsentFrom) ||
		got.Type != want.Type || got.MAC != want.MAC || got.IP != want.IP || got.Network != want.Network || got.VNI != 0 || got.Line != want.Line {
		t.Errorf("bgp_route = %+v, want %+v", got, want)
	}
	s, err = Parse("good.yaml", cpScenario(`      bgp_sessions: [spine1, leaf2]
      bgp_route:
        - {absent_from: [leaf2], type: 3, vni: 10100, origin: leaf1}
        - {present_on: [leaf1], type: 5, prefix: 10.0.1.7/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	e = s.Steps[3].Expect
	if !slices.Equal(e.BGPSessions.Nodes, []string{"spine1", "leaf2"}) || len(e.BGPRoutes) != 2 ||
		e.BGPRoutes[0].VNI != 10100 || e.BGPRoutes[0].Origin != "leaf1" || e.BGPRoutes[1].Prefix != netip.MustParsePrefix("10.0.1.0/24") {
		t.Errorf("expect = %+v, routes %+v", e, e.BGPRoutes)
	}
}

func TestParseControlPlaneErrors(t *testing.T) {
	cases := []struct{ name, expect, want string }{
		{"sessions word", "      bgp_sessions: up\n", `good.yaml:22: steps[3].expect.bgp_sessions: "up": use established`},
		{"sessions empty", "      bgp_sessions: []\n", `good.yaml:22: steps[3].expect.bgp_sessions: an empty list checks nothing`},
		{"sessions mapping", "      bgp_sessions: {leaf1: up}\n", `good.yaml:22: steps[3].expect.bgp_sessions: want established or a list of node names`},
		{"route unknown field", "      bgp_route: {present_on: [leaf1], typ: 2}\n", `good.yaml:22: steps[3].expect.bgp_route.typ: unknown field`},
		{"route in list unknown field", "      bgp_route:\n        - {present_on: [leaf1], type: 2}\n        - {present: [leaf1]}\n", `good.yaml:24: steps[3].expect.bgp_route[1].present: unknown field`},
		{"route no speakers", "      bgp_route: {type: 2, mac: web-1}\n", `good.yaml:22: steps[3].expect.bgp_route: name the speakers to ask`},
		{"route nothing selected", "      bgp_route: {present_on: [leaf1]}\n", `good.yaml:22: steps[3].expect.bgp_route: say which route`},
		{"route type", "      bgp_route: {present_on: [leaf1], type: 4}\n", `good.yaml:22: steps[3].expect.bgp_route.type: 4: use 2 (MAC/IP), 3`},
		{"route mac", "      bgp_route: {present_on: [leaf1], mac: \"52:54:00\"}\n", `good.yaml:22: steps[3].expect.bgp_route.mac: "52:54:00" is not a MAC address`},
		{"route ip", "      bgp_route: {present_on: [leaf1], ip: 10.0.1.500}\n", `good.yaml:22: steps[3].expect.bgp_route.ip: "10.0.1.500" is not an address`},
		{"route prefix", "      bgp_route: {present_on: [leaf1], type: 5, prefix: 10.0.1.0/40}\n", `good.yaml:22: steps[3].expect.bgp_route.prefix: "10.0.1.0/40" is not a CIDR`},
		{"route vni", "      bgp_route: {present_on: [leaf1], vni: webb}\n", `good.yaml:22: steps[3].expect.bgp_route.vni: "webb" is neither a VNI nor a network`},
		{"route vni range", "      bgp_route: {present_on: [leaf1], vni: 16777216}\n", `good.yaml:22: steps[3].expect.bgp_route.vni: 16777216: a VNI is 1..16777215`},
		{"route type 3 mac", "      bgp_route: {present_on: [leaf1], type: 3, mac: web-1}\n", `good.yaml:22: steps[3].expect.bgp_route.type: a type-3 route has no MAC`},
		{"route both lists", "      bgp_route: {present_on: [leaf1], absent_from: [leaf1], type: 3}\n", `good.yaml:22: steps[3].expect.bgp_route.absent_from: leaf1 is also in present_on`},
		{"fabric type", "      fabric_consistent: yes please\n", `good.yaml:22: steps[3].expect.fabric_consistent: want true or false`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("good.yaml", cpScenario(c.expect))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error:\n got %v\nwant prefix %q", err, c.want)
			}
		})
	}
}
