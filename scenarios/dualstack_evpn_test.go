package scenarios_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

// Gen 2 carries both families on sim (library/dual-stack-evpn.yaml): every
// probe answers, IPv6 ones among them; each pair's IPv6 probe crosses the
// same devices as its IPv4 one (same hop and switch-hop counts, the same
// leaves; the spine may differ, ECMP hashing each flow); the drifted VM
// keeps both addresses.
func TestDualStackEVPNOnSim(t *testing.T) {
	s, err := scenarios.Load("library/dual-stack-evpn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if !slices.ContainsFunc(run.Checks, func(c reports.Check) bool { return c.Passed && c.What == "ip unchanged db-1" }) {
		t.Error("no passed check that db-1 kept its addresses")
	}
	type pair struct{ tag, from, to, proto string }
	byFamily := map[string]map[pair]reports.Probe{}
	for _, p := range run.Probes {
		if !p.Replied {
			t.Errorf("%s -> %s (%s, %s) not answered: %s at %s", p.From, p.To, p.Tag, p.Family, p.Reason, p.DropAt)
		}
		if byFamily[p.Family] == nil {
			byFamily[p.Family] = map[pair]reports.Probe{}
		}
		byFamily[p.Family][pair{p.Tag, p.From, p.To, p.Proto}] = p
	}
	if len(byFamily["ipv6"]) < 12 {
		t.Fatalf("%d distinct IPv6 probes, want every pair of the matrix", len(byFamily["ipv6"]))
	}
	leaves := func(path []string) []string {
		var out []string
		for _, n := range path {
			if strings.HasPrefix(n, "leaf") && (len(out) == 0 || out[len(out)-1] != n) {
				out = append(out, n)
			}
		}
		return out
	}
	compared := 0
	for k, p6 := range byFamily["ipv6"] {
		p4, ok := byFamily[""][k]
		if !ok {
			continue
		}
		compared++
		if p6.Hops != p4.Hops || p6.SwitchHops != p4.SwitchHops || !slices.Equal(leaves(p6.Path), leaves(p4.Path)) {
			t.Errorf("%s -> %s (%s): IPv6 %d hops (%d switch) via %v, IPv4 %d (%d) via %v", k.from, k.to, k.tag,
				p6.Hops, p6.SwitchHops, p6.Path, p4.Hops, p4.SwitchHops, p4.Path)
		}
	}
	if compared < 12 {
		t.Errorf("compared %d pairs over both families, want at least the matrix's 12", compared)
	}
}
