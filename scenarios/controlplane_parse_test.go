package scenarios

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/scenarios/spec"
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
	want := BGPRouteExpect{PresentOn: []string{"leaf2", "leaf3"}, AbsentFrom: []string{"leaf4"}, Type: spec.MACIP, MAC: "web-1", IP: "10.0.1.5", Network: "web", Line: 23}
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

// bgpScenario is good with control_plane: bgp, the bgp: block given
// (none when empty) and its first step replaced by step.
func bgpScenario(block, step string) []byte {
	s := strings.Replace(good, "seed: 7\n", "seed: 7\ncontrol_plane: bgp\n"+block, 1)
	if step != "" {
		s = strings.Replace(s, "  - at: 0s\n    spawn: {name: web, kind: vm, count: 2, network: web}\n", step, 1)
	}
	return []byte(s)
}

// TestParseBGPSettings: hold and keepalive as given, hold 0 as no hold
// timer, and the fail modes.
func TestParseBGPSettings(t *testing.T) {
	cases := []struct {
		block string
		want  BGPSettings
	}{
		{"", BGPSettings{}},
		{"bgp: {hold: 3s, keepalive: 1s}\n", BGPSettings{Hold: 3 * time.Second, Keepalive: time.Second}},
		{"bgp: {hold: 0s}\n", BGPSettings{Hold: NoHoldTimer}},
		{"bgp: {keepalive: 2s}\n", BGPSettings{Keepalive: 2 * time.Second}},
		{"bgp: {hold: 1m30s}\n", BGPSettings{Hold: 90 * time.Second}},
		{"bgp: {design: ebgp}\n", BGPSettings{Design: DesignEBGP}},
		{"bgp: {design: ibgp}\n", BGPSettings{}},
	}
	for _, c := range cases {
		s, err := Parse("good.yaml", bgpScenario(c.block, ""))
		if err != nil {
			t.Errorf("%q: %v", c.block, err)
			continue
		}
		if !reflect.DeepEqual(s.BGP, c.want) {
			t.Errorf("%q: BGP = %+v, want %+v", c.block, s.BGP, c.want)
		}
	}
	for _, c := range []struct{ step, mode string }{
		{"  - fail: {node: leaf1}\n", ""},
		{"  - fail: {node: leaf1, mode: power}\n", ""},
		{"  - fail: {role: leaf, mode: silent}\n", FailSilent},
	} {
		s, err := Parse("good.yaml", bgpScenario("", c.step))
		if err != nil {
			t.Errorf("%q: %v", c.step, err)
			continue
		}
		if got := s.Steps[0].Fail.Mode; got != c.mode {
			t.Errorf("%q: mode %q, want %q", c.step, got, c.mode)
		}
	}
}

func TestParseBGPSettingsErrors(t *testing.T) {
	cases := []struct{ name, block, step, want string }{
		{"hold below 3s", "bgp: {hold: 2s}\n", "", `good.yaml:9: bgp.hold: 2s: a hold time is 0 (none) or at least 3s`},
		{"hold fraction", "bgp:\n  hold: 3500ms\n", "", `good.yaml:10: bgp.hold: 3.5s: BGP counts its timers in whole seconds`},
		{"hold not a duration", "bgp: {hold: 9}\n", "", `good.yaml:9: bgp.hold: "9" is not a duration`},
		{"keepalive not below hold", "bgp:\n  hold: 3s\n  keepalive: 3s\n", "", `good.yaml:11: bgp.keepalive: 3s is not below the hold time 3s`},
		{"keepalive not below default hold", "bgp: {keepalive: 10s}\n", "", `good.yaml:9: bgp.keepalive: 10s is not below the hold time 9s`},
		{"keepalive with hold 0", "bgp: {hold: 0s, keepalive: 1s}\n", "", `good.yaml:9: bgp.keepalive: with hold 0 no keepalives are sent`},
		{"keepalive 0", "bgp: {keepalive: 0s}\n", "", `good.yaml:9: bgp.keepalive: 0: give an interval`},
		{"unknown field", "bgp: {hold: 3s, keepalives: 1s}\n", "", `good.yaml:9: bgp.keepalives: unknown field`},
		{"design", "bgp: {design: ospf}\n", "", `good.yaml:9: bgp.design: "ospf": use ibgp`},
		{"mode unknown", "", "  - fail: {node: leaf1, mode: quiet}\n", `good.yaml:13: steps[0].fail.mode: "quiet": use power`},
		{"mode on a link", "", "  - fail: {link: \"leaf1:eth1\", mode: silent}\n", `good.yaml:13: steps[0].fail.mode: only a node`},
		{"mode on restore", "", "  - restore: {node: leaf1, mode: silent}\n", `good.yaml:13: steps[0].restore.mode: a restore undoes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("good.yaml", bgpScenario(c.block, c.step))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error:\n got %v\nwant prefix %q", err, c.want)
			}
		})
	}
	_, err := Parse("good.yaml", []byte(strings.Replace(good, "seed: 7\n", "seed: 7\nbgp: {hold: 3s}\n", 1)))
	if want := "good.yaml:8: bgp: session settings need control_plane: bgp"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("bgp without control_plane bgp:\n got %v\nwant prefix %q", err, want)
	}
}
