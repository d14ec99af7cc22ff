package netnsrt_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// TestBGPDualStack runs gen 2's dual-stack scenario with control_plane:
// bgp on netns: real GoBGP speakers carry the instances' IPv6 type-2
// routes, so that while the run holds, a leaf's speaker holds one
// MAC/IPv6 route per instance, the pod the CNI plugin attached among them
// (each with its L3 VNI's route target, for
// symmetric IRB) beside the MAC/IPv4 ones, its leaf's table imports them
// and every probe over IPv6, within and between subnets and after the
// drift, is answered (runGen2 fails on any failed check).
func TestBGPDualStack(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/dual-stack-evpn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	subnets := []netip.Prefix{netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("fd00:2::/64")}
	var speaker6, table6 map[netip.Addr]bool
	var problems []string
	held := func(rt *netnsrt.Runtime) {
		speaker6, table6 = map[netip.Addr]bool{}, map[netip.Addr]bool{}
		c, ok := rt.Speaker("leaf4")
		if !ok {
			problems = append(problems, "leaf4 runs no speaker")
			return
		}
		paths, err := c.Paths(context.Background())
		if err != nil {
			problems = append(problems, err.Error())
			return
		}
		for _, p := range paths {
			r := p.Route
			if r.Type != evpn.MACIP || !r.IP.Is6() {
				continue
			}
			if !subnets[0].Contains(r.IP) && !subnets[1].Contains(r.IP) {
				problems = append(problems, fmt.Sprintf("leaf4's speaker holds %s, outside the scenario's subnet6s", r))
			}
			if rt := fmt.Sprintf("%d:%d", netnsrt.DefaultASN, r.L3VNI); r.L3VNI == 0 || !slices.Contains(p.RouteTargets, rt) {
				problems = append(problems, fmt.Sprintf("leaf4's speaker holds %s with route targets %v, want %s", r, p.RouteTargets, rt))
			}
			speaker6[r.IP] = true
		}
		_ = rt.Mutate(func() error {
			node, ok := rt.Node("leaf4")
			if l, isLeaf := node.(*evpn.Leaf); ok && isLeaf {
				for _, r := range l.Table().Routes() {
					if r.Type == evpn.MACIP && r.IP.Is6() {
						table6[r.IP] = true
					}
				}
			}
			return nil
		})
	}
	run := runGen2(t, s, scenarios.ControlPlaneBGP, nil, held)
	for _, p := range problems {
		t.Error(p)
	}
	if len(speaker6) != 5 || len(table6) != 5 {
		t.Errorf("leaf4's speaker holds MAC/IPv6 routes of %v and its table of %v, want the 5 instances' (4 VMs, a pod)", speaker6, table6)
	}
	v6 := 0
	for _, p := range run.run.Probes {
		if p.Family == scenarios.FamilyIPv6 {
			v6++
		}
	}
	if v6 < 12 {
		t.Errorf("%d probes over IPv6, want the matrix's 12 at least", v6)
	}
}
