package netnsrt_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/speaker"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// TestBGPEBGPDesign runs the shipped leaf-failure scenario with
// control_plane: bgp in the eBGP design (RFC 7938): every check passes
// and every leaf's final table is the iBGP design's run's, so the EVPN
// routes kept their VTEP next hops through the spines; on the held lab spine1's
// sessions go to four leaves in four ASes other than its own, every
// EVPN route carries a route target in the spines' AS whichever leaf
// originated it, and every leaf's speaker holds the other leaves'
// loopbacks in IPv4 unicast; on sim, in the same design, every speaker
// ends with the same routes (sameAsSim).
func TestBGPEBGPDesign(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The reference is the default iBGP design's run: like the eBGP run
	// it settles before each traffic step (the shared table's run, with
	// fixed timing, can miss the ARP after the restore on a loaded
	// machine). sameFinal's messages call it the shared table.
	ibgp := runGen2(t, s, scenarios.ControlPlaneBGP, nil)
	sc := *s
	sc.BGP.Design = scenarios.DesignEBGP
	bgp := runGen2(t, &sc, scenarios.ControlPlaneBGP, nil, func(rt *netnsrt.Runtime) {
		ctx := context.Background()
		c, _ := rt.Speaker("spine1")
		ss, err := c.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var asns []uint32
		for _, x := range ss {
			if !x.Established || x.ASN == 65000 || slices.Contains(asns, x.ASN) {
				t.Errorf("spine1's session %+v: want established, to a leaf in an AS of its own", x)
			}
			asns = append(asns, x.ASN)
		}
		if len(asns) != 4 {
			t.Errorf("spine1 has %d sessions, want 4", len(asns))
		}
		var loopbacks []netip.Prefix
		for _, n := range rt.Speakers() {
			if strings.HasPrefix(n, "leaf") {
				id, _ := rt.Speaker(n)
				rid, _ := id.RouterID(ctx)
				loopbacks = append(loopbacks, netip.PrefixFrom(rid, 32))
			}
		}
		for _, n := range rt.Speakers() {
			if !strings.HasPrefix(n, "leaf") {
				continue
			}
			c, _ := rt.Speaker(n)
			ps, err := c.Paths(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 0 {
				t.Errorf("%s's speaker holds no EVPN routes", n)
			}
			for _, p := range ps {
				if len(p.RouteTargets) == 0 || slices.ContainsFunc(p.RouteTargets, func(rt string) bool { return !strings.HasPrefix(rt, "65000:") }) {
					t.Errorf("%s holds %s with route targets %v, want them in the spines' AS 65000", n, p.Route, p.RouteTargets)
				}
			}
			pfx, err := c.Prefixes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, lo := range loopbacks {
				if !slices.ContainsFunc(pfx, func(r speaker.PrefixRoute) bool { return r.Prefix == lo }) {
					t.Errorf("%s's speaker lacks the loopback %s in IPv4 unicast (holds %v)", n, lo, pfx)
				}
			}
		}
	})
	sameFinal(t, ibgp, bgp)
	sameAsSim(t, &sc, bgp)
}
