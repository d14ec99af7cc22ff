package spec

import (
	"net/netip"
	"strings"
	"testing"
)

const hybridHead = `name: h
topology: {builder: hybrid}
sites:
  - {name: dc, generation: evpn}
  - {name: vpc1, generation: vpc, cidr: 10.100.0.0/16}
  - {name: vpc2, generation: vpc, cidr: 10.101.0.0/16}
networks:
`

const hybridSteps = `steps:
  - spawn: {name: p, kind: pod, count: 1, network: a}
`

// TestAddressPlan: a hybrid scenario's ranges (each VPC's CIDR, every
// network's subnet) must lie apart across sites; an overlap names both
// ranges, their sites and where each comes from (file:line: field).
func TestAddressPlan(t *testing.T) {
	for _, c := range []struct{ name, nets, want string }{
		{"dc network inside a VPC's CIDR",
			"  - {name: a, subnet: 10.20.0.0/20, site: dc}\n  - {name: b, subnet: 10.100.4.0/24, site: dc}\n",
			"h.yaml:9: networks[1].subnet: address plan: 10.100.4.0/24 of site dc overlaps 10.100.0.0/16 of site vpc1 (h.yaml:5: sites[1].cidr)"},
		{"two VPCs' CIDRs",
			"  - {name: a, subnet: 10.20.0.0/20, site: dc}\n",
			""},
		{"dc networks overlap each other: one site, allowed (tenants)",
			"  - {name: a, subnet: 10.20.0.0/20, site: dc}\n  - {name: b, subnet: 10.20.0.0/24, site: dc, tenant: t2}\n",
			""},
		{"VPC network outside its CIDR",
			"  - {name: a, subnet: 10.20.0.0/20, site: dc}\n  - {name: b, subnet: 10.102.0.0/24, site: vpc1}\n",
			"h.yaml:9: networks[1].subnet: 10.102.0.0/24 (b) is not inside VPC vpc1's CIDR 10.100.0.0/16 (h.yaml:5: sites[1].cidr)"},
		{"VPC network overlapping a dc network",
			"  - {name: a, subnet: 10.100.0.0/24, site: dc}\n  - {name: b, subnet: 10.100.0.0/20, site: vpc1}\n",
			"h.yaml:8: networks[0].subnet: address plan: 10.100.0.0/24 of site dc overlaps 10.100.0.0/16 of site vpc1 (h.yaml:5: sites[1].cidr)"},
		{"network of no site",
			"  - {name: a, subnet: 10.20.0.0/20, site: dc2}\n",
			`h.yaml:8: networks[0].site: "dc2" is not a site; sites: [dc vpc1 vpc2]`},
		{"network without a site",
			"  - {name: a, subnet: 10.20.0.0/20}\n",
			`h.yaml:8: networks[0].site: missing: in a hybrid network every network names its site (one of [dc vpc1 vpc2])`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("h.yaml", []byte(hybridHead+c.nets+hybridSteps))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	// Two VPCs whose CIDRs overlap.
	src := strings.Replace(hybridHead, "10.101.0.0/16", "10.100.128.0/17", 1) + "  - {name: a, subnet: 10.20.0.0/20, site: dc}\n" + hybridSteps
	_, err := Parse("h.yaml", []byte(src))
	if want := "h.yaml:6: sites[2].cidr: address plan: 10.100.128.0/17 of site vpc2 overlaps 10.100.0.0/16 of site vpc1 (h.yaml:5: sites[1].cidr)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// TestSitesErrors: what sites: and generations must say.
func TestSitesErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{strings.Replace(hybridHead, "generation: evpn", "generation: hybrid", 1) + "  - {name: a, subnet: 10.20.0.0/20, site: dc}\n" + hybridSteps,
			`h.yaml:4: sites[0].generation: "hybrid": a site runs one of`},
		{strings.Replace(hybridHead, ", cidr: 10.100.0.0/16", "", 1) + "  - {name: a, subnet: 10.20.0.0/20, site: dc}\n" + hybridSteps,
			"h.yaml:5: sites[1].cidr: missing: a VPC (vpc) has a CIDR"},
		{strings.Replace(hybridHead, "sites:", "generations: [evpn]\nsites:", 1) + "  - {name: a, subnet: 10.20.0.0/20, site: dc}\n" + hybridSteps,
			"h.yaml:3: generations: a scenario with sites runs the hybrid network: generations: [hybrid]"},
		{"name: h\ntopology: {builder: spine-leaf}\ngenerations: [hybrid]\nnetworks:\n  - {name: a, subnet: 10.20.0.0/20}\n" + hybridSteps,
			"h.yaml:3: generations: hybrid needs sites:"},
		{"name: h\ntopology: {builder: spine-leaf}\nnetworks:\n  - {name: a, subnet: 10.20.0.0/20, site: dc}\n" + hybridSteps,
			`h.yaml:4: networks[0].site: "dc": the scenario has no sites`},
	} {
		_, err := Parse("h.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	s, err := Parse("h.yaml", []byte(hybridHead+"  - {name: a, subnet: 10.20.0.0/20, site: dc}\n"+hybridSteps))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Generations) != 1 || s.Generations[0] != GenHybrid || len(s.Sites) != 3 || s.Sites[1].CIDR.String() != "10.100.0.0/16" {
		t.Errorf("generations %v, sites %+v", s.Generations, s.Sites)
	}
}

// TestSecurityGroupStep: a security_group step's rule, and its errors at
// their lines.
func TestSecurityGroupStep(t *testing.T) {
	head := "name: s\ntopology: {builder: vpc}\ngenerations: [vpc]\nnetworks:\n  - {name: a, subnet: 10.20.0.0/20}\nsteps:\n"
	s, err := Parse("s.yaml", []byte(head+"  - security_group: {group: sg-web, add: {proto: tcp, port: 443, from: 10.20.0.0/20}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := SecurityGroupChange{Group: "sg-web", Action: "add", Proto: "tcp", Port: 443, From: netip.MustParsePrefix("10.20.0.0/20")}
	if got := s.Steps[0].SecurityGroup; got == nil || *got != want || s.Steps[0].Kind() != "security_group" {
		t.Fatalf("step %+v, want %+v", got, want)
	}
	for _, c := range []struct{ step, want string }{
		{"  - security_group: {remove: {from: 0.0.0.0/0}}\n", ""},
		{"  - security_group: {add: {from: 0.0.0.0/0}, remove: {from: 0.0.0.0/0}}\n", "s.yaml:7: steps[0].security_group: give one rule to add or to remove"},
		{"  - security_group: {add: {proto: sctp, from: 0.0.0.0/0}}\n", `s.yaml:7: steps[0].security_group.add.proto: "sctp": use all, icmp, tcp or udp`},
		{"  - security_group: {add: {proto: icmp, port: 8, from: 0.0.0.0/0}}\n", "s.yaml:7: steps[0].security_group.add.port: ICMP has no ports"},
		{"  - security_group:\n      add: {proto: tcp, port: 80}\n", "s.yaml:8: steps[0].security_group.add.from: missing"},
		{"  - security_group: {add: {proto: tcp, from: 10.20.0.1/20}}\n", "s.yaml:7: steps[0].security_group.add.from: 10.20.0.1/20 has host bits set; did you mean 10.20.0.0/20?"},
	} {
		_, err := Parse("s.yaml", []byte(head+c.step))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.step, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want %q", c.step, err, c.want)
		}
	}
}
