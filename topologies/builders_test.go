package topologies

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// degree counts the links on node.
func degree(t *Topology, node string) int { return len(t.Interfaces(node)) }

// checkCommon asserts what every builder promises: a valid topology, eth1..ethN
// on every node in link order, rate and MTU set on every link, determinism.
func checkCommon(t *testing.T, topo *Topology, rebuild func() *Topology) {
	t.Helper()
	if err := topo.Validate(); err != nil {
		t.Fatalf("built topology does not validate:\n%v", err)
	}
	for _, n := range topo.Nodes {
		for i, name := range topo.Interfaces(n.Name) {
			if want := fmt.Sprintf("eth%d", i+1); name != want {
				t.Errorf("node %s: interface %d is %q, want %q", n.Name, i, name, want)
			}
		}
		if n.Kind == "" || n.Image == "" {
			t.Errorf("node %s: kind %q image %q, want both set", n.Name, n.Kind, n.Image)
		}
	}
	for i, l := range topo.Links {
		if l.Rate <= 0 || l.MTU <= 0 {
			t.Errorf("link %d %s--%s: rate %d MTU %d, want both set", i, l.A, l.B, l.Rate, l.MTU)
		}
	}
	if again := rebuild(); !reflect.DeepEqual(topo, again) {
		t.Errorf("two builds with the same parameters differ")
	}
}

func roleCounts(topo *Topology) map[Role]int {
	m := map[Role]int{}
	for _, n := range topo.Nodes {
		m[n.Role]++
	}
	return m
}

func TestThreeTier(t *testing.T) {
	cases := []ThreeTierParams{
		{},
		{Pods: 2, RacksPerPod: 3, HostsPerRack: 4},
		{Pods: 3, RacksPerPod: 1, HostsPerRack: 1, Firewalls: 2},
	}
	for _, p := range cases {
		t.Run(fmt.Sprintf("pods%d-racks%d-hosts%d-fw%d", p.Pods, p.RacksPerPod, p.HostsPerRack, p.Firewalls), func(t *testing.T) {
			topo, err := ThreeTier(p)
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, topo, func() *Topology { x, _ := ThreeTier(p); return x })
			q := p
			if err := q.defaults(); err != nil {
				t.Fatal(err)
			}
			racks := q.Pods * q.RacksPerPod
			want := map[Role]int{
				RoleCore: 2, RoleFirewall: q.Firewalls, RoleAggregation: 2 * q.Pods,
				RoleToR: 2 * racks, RoleHost: racks * q.HostsPerRack,
			}
			if got := roleCounts(topo); !reflect.DeepEqual(got, want) {
				t.Errorf("roles: got %v, want %v", got, want)
			}
			wantLinks := 2*racks*q.HostsPerRack + 2*2*racks + 2*2*q.Pods + 1 + 2*q.Firewalls
			if len(topo.Links) != wantLinks {
				t.Errorf("links: got %d, want %d", len(topo.Links), wantLinks)
			}
			wantDeg := map[Role]int{
				RoleHost: 2, RoleToR: q.HostsPerRack + 2, RoleAggregation: 2*q.RacksPerPod + 2,
				RoleCore: 2*q.Pods + 1 + q.Firewalls, RoleFirewall: 2,
			}
			for _, n := range topo.Nodes {
				if d := degree(topo, n.Name); d != wantDeg[n.Role] {
					t.Errorf("%s (%s): degree %d, want %d", n.Name, n.Role, d, wantDeg[n.Role])
				}
			}
			// Every host hangs off the two ToRs of its own rack.
			for _, h := range topo.NodesByRole(RoleHost) {
				nb := topo.Neighbors(h.Name)
				if len(nb) != 2 {
					t.Fatalf("host %s has neighbours %v, want two ToRs", h.Name, nb)
				}
				for _, x := range nb {
					if tor := topo.Node(x); tor.Role != RoleToR || tor.Rack != h.Rack {
						t.Errorf("host %s (rack %s) linked to %s (%s, rack %s)", h.Name, h.Rack, x, tor.Role, tor.Rack)
					}
				}
			}
			// ToRs reach only the aggregation pair of their pod above them.
			for _, tor := range topo.NodesByRole(RoleToR) {
				for _, x := range topo.Neighbors(tor.Name) {
					nb := topo.Node(x)
					if nb.Role == RoleAggregation && nb.Labels[LabelPod] != tor.Labels[LabelPod] {
						t.Errorf("%s (%s) linked to %s of %s", tor.Name, tor.Labels[LabelPod], x, nb.Labels[LabelPod])
					}
				}
			}
			for _, fw := range topo.NodesByRole(RoleFirewall) {
				if got := topo.Neighbors(fw.Name); !reflect.DeepEqual(got, []string{"core1", "core2"}) {
					t.Errorf("firewall %s beside %v, want both cores", fw.Name, got)
				}
			}
		})
	}
}

func TestSpineLeaf(t *testing.T) {
	cases := []SpineLeafParams{
		{},
		{Spines: 2, Leaves: 4, HostsPerLeaf: 2},
		{Spines: 4, Leaves: 6, HostsPerLeaf: 3, DualHomed: true},
		{Spines: 1, Leaves: 1, HostsPerLeaf: -1},
	}
	for _, p := range cases {
		t.Run(fmt.Sprintf("s%d-l%d-h%d-dual%v", p.Spines, p.Leaves, p.HostsPerLeaf, p.DualHomed), func(t *testing.T) {
			topo, err := SpineLeaf(p)
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, topo, func() *Topology { x, _ := SpineLeaf(p); return x })
			q := p
			if err := q.defaults(); err != nil {
				t.Fatal(err)
			}
			homes := 1
			if q.DualHomed {
				homes = 2
			}
			hosts := q.Leaves * q.HostsPerLeaf
			want := map[Role]int{RoleSpine: q.Spines, RoleLeaf: q.Leaves}
			if hosts > 0 {
				want[RoleHost] = hosts
			}
			if got := roleCounts(topo); !reflect.DeepEqual(got, want) {
				t.Errorf("roles: got %v, want %v", got, want)
			}
			if wantLinks := hosts*homes + q.Leaves*q.Spines; len(topo.Links) != wantLinks {
				t.Errorf("links: got %d, want %d", len(topo.Links), wantLinks)
			}
			wantDeg := map[Role]int{RoleSpine: q.Leaves, RoleLeaf: q.Spines + q.HostsPerLeaf*homes, RoleHost: homes}
			for _, n := range topo.Nodes {
				if d := degree(topo, n.Name); d != wantDeg[n.Role] {
					t.Errorf("%s (%s): degree %d, want %d", n.Name, n.Role, d, wantDeg[n.Role])
				}
			}
			// Full mesh: every leaf next to every spine.
			for _, leaf := range topo.NodesByRole(RoleLeaf) {
				for _, s := range topo.NodesByRole(RoleSpine) {
					if _, _, ok := peerNode(topo, leaf.Name, s.Name); !ok {
						t.Errorf("leaf %s not linked to spine %s", leaf.Name, s.Name)
					}
				}
			}
			for _, h := range topo.NodesByRole(RoleHost) {
				for _, x := range topo.Neighbors(h.Name) {
					if leaf := topo.Node(x); leaf.Role != RoleLeaf || leaf.Rack != h.Rack || h.Rack == "" {
						t.Errorf("host %s (rack %q) linked to %s (%s, rack %q)", h.Name, h.Rack, x, leaf.Role, leaf.Rack)
					}
				}
			}
		})
	}
}

// peerNode reports whether a and b share a link.
func peerNode(t *Topology, a, b string) (Endpoint, *Link, bool) {
	for _, ifc := range t.Interfaces(a) {
		if e, l, ok := t.Peer(Endpoint{a, ifc}); ok && e.Node == b {
			return e, l, true
		}
	}
	return Endpoint{}, nil, false
}

func TestMultiAZ(t *testing.T) {
	cases := []MultiAZParams{
		{},
		{AZs: 3, BorderLeaves: 1, Fabric: SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1}},
		{AZs: 4, BorderLeaves: 2, Fabric: SpineLeafParams{Spines: 2, Leaves: 4, HostsPerLeaf: 1, DualHomed: true}},
	}
	for _, p := range cases {
		t.Run(fmt.Sprintf("az%d-b%d", p.AZs, p.BorderLeaves), func(t *testing.T) {
			topo, err := MultiAZ(p)
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, topo, func() *Topology { x, _ := MultiAZ(p); return x })
			q := p
			if err := q.defaults(); err != nil {
				t.Fatal(err)
			}
			f := q.Fabric
			homes := 1
			if f.DualHomed {
				homes = 2
			}
			want := map[Role]int{
				RoleSpine: q.AZs * f.Spines, RoleLeaf: q.AZs * f.Leaves,
				RoleHost: q.AZs * f.Leaves * f.HostsPerLeaf, RoleBorder: q.AZs * q.BorderLeaves,
			}
			if got := roleCounts(topo); !reflect.DeepEqual(got, want) {
				t.Errorf("roles: got %v, want %v", got, want)
			}
			perAZ := f.Leaves*f.HostsPerLeaf*homes + f.Leaves*f.Spines + q.BorderLeaves*f.Spines
			inter := q.BorderLeaves * q.AZs * (q.AZs - 1) / 2
			if len(topo.Links) != q.AZs*perAZ+inter {
				t.Errorf("links: got %d, want %d", len(topo.Links), q.AZs*perAZ+inter)
			}
			wantDeg := map[Role]int{
				RoleSpine: f.Leaves + q.BorderLeaves, RoleLeaf: f.Spines + f.HostsPerLeaf*homes,
				RoleHost: homes, RoleBorder: f.Spines + q.AZs - 1,
			}
			for _, n := range topo.Nodes {
				if d := degree(topo, n.Name); d != wantDeg[n.Role] {
					t.Errorf("%s (%s): degree %d, want %d", n.Name, n.Role, d, wantDeg[n.Role])
				}
				if !strings.HasPrefix(n.Name, n.AZ+"-") || n.AZ == "" {
					t.Errorf("node %s has AZ %q, want its name's prefix", n.Name, n.AZ)
				}
			}
			// Only border leaves cross AZs, and those links carry a delay.
			for _, l := range topo.Links {
				a, b := topo.Node(l.A.Node), topo.Node(l.B.Node)
				cross := a.AZ != b.AZ
				if cross && (a.Role != RoleBorder || b.Role != RoleBorder || l.Delay != q.InterAZDelay) {
					t.Errorf("link %s--%s crosses AZs (%s, %s roles, delay %v)", l.A, l.B, a.Role, b.Role, l.Delay)
				}
				if !cross && l.Delay != 0 {
					t.Errorf("link %s--%s inside %s has delay %v", l.A, l.B, a.AZ, l.Delay)
				}
			}
		})
	}
}

func TestBuilderBadParams(t *testing.T) {
	cases := []struct {
		name  string
		build func() (*Topology, error)
	}{
		{"three-tier negative pods", func() (*Topology, error) { return ThreeTier(ThreeTierParams{Pods: -1}) }},
		{"three-tier negative rate", func() (*Topology, error) { return ThreeTier(ThreeTierParams{HostRate: -5}) }},
		{"spine-leaf odd dual-homed", func() (*Topology, error) { return SpineLeaf(SpineLeafParams{Leaves: 3, DualHomed: true}) }},
		{"spine-leaf no spines", func() (*Topology, error) { return SpineLeaf(SpineLeafParams{Spines: -2}) }},
		{"multi-az negative AZs", func() (*Topology, error) { return MultiAZ(MultiAZParams{AZs: -1}) }},
		{"multi-az negative delay", func() (*Topology, error) { return MultiAZ(MultiAZParams{InterAZDelay: -1}) }},
		{"multi-az bad fabric", func() (*Topology, error) {
			return MultiAZ(MultiAZParams{Fabric: SpineLeafParams{Leaves: 5, DualHomed: true}})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, err := c.build()
			if !errors.Is(err, ErrBadParams) || topo != nil {
				t.Fatalf("got %v, %v; want nil and ErrBadParams", topo, err)
			}
		})
	}
}
