package scenarios

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
)

// TestFabricProblems runs fabric_consistent's logic over hand-made route
// sets: a healthy fabric has no problem, and each fault is found and
// named with its nodes and route.
func TestFabricProblems(t *testing.T) {
	id := netip.MustParseAddr
	vtep1, vtep2, vtep3 := id("10.255.0.11"), id("10.255.0.12"), id("10.255.0.13")
	speakers := func() []BGPSpeaker {
		return []BGPSpeaker{
			{Node: "spine1", RouterID: id("10.255.0.1"), Running: true},
			{Node: "leaf1", RouterID: vtep1, Leaf: true, Running: true},
			{Node: "leaf2", RouterID: vtep2, Leaf: true, Running: true},
			{Node: "leaf3", RouterID: vtep3, Leaf: true, Running: true},
		}
	}
	t3 := func(vtep netip.Addr, vni uint32) BGPRoute {
		return BGPRoute{Route: evpn.Route{Type: evpn.InclusiveMulticast, VNI: vni, VTEP: vtep}, RouteTargets: []string{"65000:" + itoa(vni)}}
	}
	t2 := func(vtep netip.Addr, vni uint32, mac byte, ip string, l3 uint32) BGPRoute {
		return BGPRoute{Route: evpn.Route{Type: evpn.MACIP, VNI: vni, L3VNI: l3, MAC: evpn.MAC{0x52, 0, 0, 0, 0, mac}, IP: id(ip), VTEP: vtep,
			RouterMAC: evpn.MAC{2, 0, 0, 0, 0, 1}}, RouteTargets: []string{"65000:" + itoa(vni), "65000:" + itoa(l3)}}
	}
	// healthy: leaf1 and leaf2 have vni 10100 (vm behind each), leaf3
	// has vni 10101; every speaker holds every route.
	healthy := func() []BGPRoute {
		return []BGPRoute{t3(vtep1, 10100), t3(vtep2, 10100), t3(vtep3, 10101),
			t2(vtep1, 10100, 1, "10.0.0.5", 50001), t2(vtep2, 10100, 2, "10.0.0.6", 50001)}
	}
	all := func(rs []BGPRoute) map[string][]BGPRoute {
		m := map[string][]BGPRoute{}
		for _, s := range speakers() {
			m[s.Node] = slices.Clone(rs)
		}
		return m
	}
	cases := []struct {
		name     string
		speakers func([]BGPSpeaker) []BGPSpeaker
		routes   func(map[string][]BGPRoute)
		want     []string // substrings of the one problem; none: consistent
	}{
		{name: "healthy"},
		{name: "router ID conflict",
			speakers: func(ss []BGPSpeaker) []BGPSpeaker { ss[3].RouterID = vtep2; return ss },
			want:     []string{"router ID conflict", "10.255.0.12", "leaf2 and leaf3"}},
		{name: "duplicate IP with two MACs",
			routes: func(m map[string][]BGPRoute) {
				for n := range m {
					m[n] = append(m[n], t2(vtep3, 10101, 9, "10.0.0.5", 50001))
				}
			},
			want: []string{"duplicate address", "10.0.0.5", "52:00:00:00:00:01 from leaf1", "52:00:00:00:00:09 from leaf3"}},
		{name: "VNI in two networks",
			routes: func(m map[string][]BGPRoute) {
				for n := range m {
					m[n] = append(m[n], t2(vtep2, 10100, 3, "10.0.0.7", 50002))
				}
			},
			want: []string{"VNI inconsistency", "vni 10100", "l3vni 50001 on leaf1", "l3vni 50002 on leaf2"}},
		{name: "route targets differ",
			routes: func(m map[string][]BGPRoute) {
				for n, rs := range m {
					for i := range rs {
						if rs[i].Type == evpn.InclusiveMulticast && rs[i].VTEP == vtep2 {
							rs[i].RouteTargets = []string{"65001:10100"}
						}
					}
					m[n] = rs
				}
			},
			want: []string{"route-target inconsistency", "vni 10100", "[65000:10100] from leaf1", "[65001:10100] from leaf2"}},
		{name: "VNI not imported",
			routes: func(m map[string][]BGPRoute) {
				m["leaf2"] = slices.DeleteFunc(m["leaf2"], func(r BGPRoute) bool { return r.VTEP == vtep1 && r.Type == evpn.MACIP })
			},
			want: []string{"VNI import", "leaf2 lacks type-2 vni 10100 52:00:00:00:00:01 10.0.0.5", "of leaf1"}},
		{name: "a VNI the other leaf lacks is not an import fault",
			routes: func(m map[string][]BGPRoute) {
				m["leaf3"] = slices.DeleteFunc(m["leaf3"], func(r BGPRoute) bool { return r.VNI == 10100 })
			}},
		{name: "a failed leaf's routes are not owed",
			speakers: func(ss []BGPSpeaker) []BGPSpeaker { ss[1].Running = false; return ss },
			routes: func(m map[string][]BGPRoute) {
				m["leaf1"] = nil
				for n := range m {
					m[n] = slices.DeleteFunc(m[n], func(r BGPRoute) bool { return r.VTEP == vtep1 })
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ss := speakers()
			if c.speakers != nil {
				ss = c.speakers(ss)
			}
			rs := all(healthy())
			if c.routes != nil {
				c.routes(rs)
			}
			got := fabricProblems(ss, rs)
			if len(c.want) == 0 {
				if len(got) != 0 {
					t.Errorf("problems %q, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("problems %q, want one", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem %q does not say %q", got[0], w)
				}
			}
		})
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
