package scenarios

import (
	"net/netip"
	"strings"
	"testing"
)

// A network takes an IPv6 subnet beside its IPv4 one (subnet6), and a
// traffic step an address family; a wrong one is an error at its line,
// naming the field.
func TestParseDualStack(t *testing.T) {
	in := strings.Replace(good, "{name: db, subnet: 10.0.2.0/24}", `{name: db, subnet: 10.0.2.0/24, subnet6: "fd00:2::/64"}`, 1)
	in = strings.Replace(in, "tag: x}", "tag: x, family: dual}", 1)
	s, err := Parse("good.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Networks[1].Subnet6; got != netip.MustParsePrefix("fd00:2::/64") {
		t.Errorf("subnet6 = %v", got)
	}
	if s.Networks[0].Subnet6.IsValid() {
		t.Errorf("web got subnet6 %v", s.Networks[0].Subnet6)
	}
	if got := s.Steps[2].Traffic.Families(); len(got) != 2 || got[0] != FamilyIPv4 || got[1] != FamilyIPv6 {
		t.Errorf("families = %v", got)
	}
	if segs := SegmentsFor(s.Networks, DefaultGenOptions); segs[1].Gateway6 != netip.MustParseAddr("fd00:2::1") || segs[0].Gateway6.IsValid() {
		t.Errorf("IPv6 gateways %v %v", segs[0].Gateway6, segs[1].Gateway6)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"v4 in subnet6", "{name: db, subnet: 10.0.2.0/24}", "{name: db, subnet: 10.0.2.0/24, subnet6: 10.0.9.0/24}",
			"good.yaml:10: networks[1].subnet6: 10.0.9.0/24 is not IPv6"},
		{"bad subnet6", "{name: db, subnet: 10.0.2.0/24}", `{name: db, subnet: 10.0.2.0/24, subnet6: "fd00::/129"}`,
			`good.yaml:10: networks[1].subnet6: "fd00::/129" is not an IPv6 CIDR`},
		{"tiny subnet6", "{name: db, subnet: 10.0.2.0/24}", `{name: db, subnet: 10.0.2.0/24, subnet6: "fd00::/126"}`,
			"good.yaml:10: networks[1].subnet6: fd00::/126 leaves fewer than 8 host bits"},
		{"v6 in subnet", "{name: db, subnet: 10.0.2.0/24}", `{name: db, subnet: "fd00::/64"}`,
			"good.yaml:10: networks[1].subnet: fd00::/64 is IPv6: put it in subnet6"},
		{"overlapping subnet6", "{name: web, subnet: 10.0.1.0/24, labels: [prod-env]}\n  - {name: db, subnet: 10.0.2.0/24}",
			"{name: web, subnet: 10.0.1.0/24, subnet6: \"fd00::/64\"}\n  - {name: db, subnet: 10.0.2.0/24, subnet6: \"fd00::/48\"}",
			"good.yaml:10: networks[1].subnet6: fd00::/48 overlaps networks[0]"},
		{"bad family", "tag: x}", "tag: x, family: ipv5}", `good.yaml:17: steps[2].traffic.family: "ipv5": use ipv4, ipv6 or dual`},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Replace(good, c.from, c.to, 1)
			if in == good {
				t.Fatalf("edit %q did not apply", c.from)
			}
			_, err := Parse("good.yaml", []byte(in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
