package bgpevpn

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/netbed/netbed/datapath/evpn"
)

var (
	vtep1 = netip.MustParseAddr("10.255.0.1")
	vtep2 = netip.MustParseAddr("10.255.0.2")
	mac1  = evpn.MAC{2, 0, 0, 0, 0, 1}
	rmac1 = evpn.MAC{2, 0xaa, 0, 0, 0, 1}
)

// wire serialises msg and parses it back, as a peer would receive it.
func wire(t *testing.T, msg *bgp.BGPMessage) *bgp.BGPMessage {
	t.Helper()
	b, err := msg.Serialize()
	if err != nil {
		t.Fatalf("serialize: %v", err)
	}
	back, err := bgp.ParseBGPMessage(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return back
}

func TestRoundTripOnTheWire(t *testing.T) {
	cases := []struct {
		name string
		r    evpn.Route
	}{
		{"type2-mac-only", evpn.Route{Type: evpn.MACIP, VNI: 10010, MAC: mac1, VTEP: vtep1}},
		{"type2-mac-ip-irb", evpn.Route{Type: evpn.MACIP, VNI: 10010, L3VNI: 50001, MAC: mac1, IP: netip.MustParseAddr("10.0.1.10"), VTEP: vtep1, RouterMAC: rmac1}},
		{"type2-large-vni", evpn.Route{Type: evpn.MACIP, VNI: 1<<24 - 1, L3VNI: 1 << 20, MAC: mac1, IP: netip.MustParseAddr("10.0.1.10"), VTEP: vtep2, RouterMAC: rmac1}},
		{"type3", evpn.Route{Type: evpn.InclusiveMulticast, VNI: 70000, VTEP: vtep2}},
		{"type5", evpn.Route{Type: evpn.IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.0.0/16"), VTEP: vtep1, RouterMAC: rmac1}},
		{"type5-default", evpn.Route{Type: evpn.IPPrefix, L3VNI: 50002, Prefix: netip.MustParsePrefix("0.0.0.0/0"), VTEP: vtep2, RouterMAC: rmac1}},
		// Gen 2's dual-stack routes: a type-2 route with an IPv6 address
		// and type-5 IPv6 prefixes, over the IPv4 next hop.
		{"type2-mac-ipv6-irb", evpn.Route{Type: evpn.MACIP, VNI: 10010, L3VNI: 50001, MAC: mac1, IP: netip.MustParseAddr("fd00:1::a"), VTEP: vtep1, RouterMAC: rmac1}},
		{"type5-ipv6", evpn.Route{Type: evpn.IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("fd99::/48"), VTEP: vtep1, RouterMAC: rmac1}},
		{"type5-ipv6-default", evpn.Route{Type: evpn.IPPrefix, L3VNI: 50002, Prefix: netip.MustParsePrefix("::/0"), VTEP: vtep2, RouterMAC: rmac1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := Update([]evpn.Route{c.r}, nil, 65001)
			if err != nil {
				t.Fatal(err)
			}
			adds, wd, err := Routes(wire(t, msg))
			if err != nil {
				t.Fatal(err)
			}
			if len(adds) != 1 || len(wd) != 0 || adds[0] != c.r {
				t.Fatalf("advertised %v, received adds %v withdraws %v", c.r, adds, wd)
			}
			msg, err = Update(nil, []evpn.Route{c.r}, 65001)
			if err != nil {
				t.Fatal(err)
			}
			adds, wd, err = Routes(wire(t, msg))
			if err != nil {
				t.Fatal(err)
			}
			// A withdrawal carries the key and the VTEP (from the RD or the
			// originating router), which is what RouteTable.Withdraw needs.
			want := c.r
			want.RouterMAC = evpn.MAC{}
			if len(adds) != 0 || len(wd) != 1 || wd[0] != want {
				t.Fatalf("withdrew %v, received adds %v withdraws %v", want, adds, wd)
			}
		})
	}
}

func TestApplyFillsTable(t *testing.T) {
	routes := []evpn.Route{
		{Type: evpn.MACIP, VNI: 10010, L3VNI: 50001, MAC: mac1, IP: netip.MustParseAddr("10.0.1.10"), VTEP: vtep1, RouterMAC: rmac1},
		{Type: evpn.MACIP, VNI: 10020, MAC: evpn.MAC{2, 0, 0, 0, 0, 2}, VTEP: vtep1},
		{Type: evpn.InclusiveMulticast, VNI: 10010, VTEP: vtep1},
		{Type: evpn.InclusiveMulticast, VNI: 10020, VTEP: vtep1},
	}
	tb := evpn.NewRouteTable()
	msg, err := Update(routes, nil, 65001)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(tb, wire(t, msg)); err != nil {
		t.Fatal(err)
	}
	got := tb.Routes()
	if fmt.Sprint(got) != fmt.Sprint(routes) {
		t.Fatalf("table after one update:\n got %v\nwant %v", got, routes)
	}
	// The MAC moves to vtep2 and vtep1 withdraws its old advertisement
	// late: the newer route stays.
	moved := routes[0]
	moved.VTEP = vtep2
	for _, m := range []func() (*bgp.BGPMessage, error){
		func() (*bgp.BGPMessage, error) { return Update([]evpn.Route{moved}, nil, 65001) },
		func() (*bgp.BGPMessage, error) { return Update(nil, []evpn.Route{routes[0]}, 65001) },
	} {
		msg, err := m()
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(tb, wire(t, msg)); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := tb.Lookup(10010, mac1, routes[0].IP); !ok || r.VTEP != vtep2 {
		t.Errorf("after move and late withdraw: %v %v, want next hop %s", r, ok, vtep2)
	}
	if _, err := Update(routes[:1], nil, 65001); err != nil {
		t.Fatal(err)
	}
	if _, err := Update([]evpn.Route{routes[0], moved}, nil, 65001); err == nil {
		t.Error("one update with two next hops accepted")
	}
}

func TestRoutesRejectsOtherMessages(t *testing.T) {
	if _, _, err := Routes(bgp.NewBGPKeepAliveMessage()); !errors.Is(err, ErrNotEVPN) {
		t.Errorf("keepalive: %v", err)
	}
	// An IPv4 unicast update carries no EVPN route and is not an error.
	msg := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("10.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "10.1.0.0")})
	adds, wd, err := Routes(wire(t, msg))
	if err != nil || len(adds)+len(wd) != 0 {
		t.Errorf("IPv4 update: %v %v %v", adds, wd, err)
	}
}

// FuzzRoutes feeds arbitrary bytes through GoBGP's parser and the EVPN
// decoder: no panic, and every decoded route is valid.
func FuzzRoutes(f *testing.F) {
	for _, r := range []evpn.Route{
		{Type: evpn.MACIP, VNI: 10010, L3VNI: 50001, MAC: mac1, IP: netip.MustParseAddr("10.0.1.10"), VTEP: vtep1, RouterMAC: rmac1},
		{Type: evpn.InclusiveMulticast, VNI: 10010, VTEP: vtep1},
		{Type: evpn.IPPrefix, L3VNI: 50001, Prefix: netip.MustParsePrefix("192.168.0.0/16"), VTEP: vtep1, RouterMAC: rmac1},
	} {
		for _, wd := range []bool{false, true} {
			var msg *bgp.BGPMessage
			var err error
			if wd {
				msg, err = Update(nil, []evpn.Route{r}, 65001)
			} else {
				msg, err = Update([]evpn.Route{r}, nil, 65001)
			}
			if err != nil {
				f.Fatal(err)
			}
			b, err := msg.Serialize()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := parse(b)
		if err != nil {
			return
		}
		adds, wd, err := Routes(msg)
		if err != nil {
			return
		}
		for _, r := range append(adds, wd...) {
			if err := r.Validate(); err != nil {
				t.Fatalf("decoded an invalid route %v: %v", r, err)
			}
		}
	})
}

// parse is bgp.ParseBGPMessage with GoBGP's own panics on malformed input
// turned into errors (they are GoBGP's to fix, not this package's).
func parse(b []byte) (msg *bgp.BGPMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gobgp parser panicked: %v", p)
		}
	}()
	return bgp.ParseBGPMessage(b)
}
