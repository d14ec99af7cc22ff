package plan

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/netbed/netbed/scenarios"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// tiny is two zones of four hosts (two leaves of two, two spines, a
// border leaf a zone), 8 instances a zone in networks of 4, 2 pods a node.
// Spread placement puts network n1's instances on az1's hosts 1-4, n2's
// on az2's, n3's on az1's, n4's on az2's: two instances a host, each
// zone's leaves holding two networks.
var tiny = Params{Zones: 2, NodesPerZone: 4, InstancesPerZone: 8, PodsPerNode: 2, Spines: 2, HostsPerLeaf: 2,
	BorderLeaves: 1, InstancesPerNetwork: 4}

func tinyPlan(t *testing.T) *Plan {
	t.Helper()
	p, err := Run(context.Background(), tiny, DefaultProfiles(),
		[]scenarios.Generation{scenarios.GenVLAN, scenarios.GenEVPN, scenarios.GenEBPF}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Gens {
		p.Gens[i].Elapsed = 0
	}
	return p
}

func table(t *testing.T, g Gen, name, role string) Table {
	t.Helper()
	for _, x := range g.Tables {
		if x.Name == name && x.Role == role {
			return x
		}
	}
	t.Fatalf("%s: no table %s on %s", g.Generation, name, role)
	return Table{}
}

// TestTinyPlanByHand checks the tiny plan against numbers worked out by
// hand from the placement above.
func TestTinyPlanByHand(t *testing.T) {
	p := tinyPlan(t)
	vlan, evpn, ebpf := p.Gens[0], p.Gens[1], p.Gens[2]
	for _, g := range p.Gens {
		if g.Error != "" || g.Hosts != 8 || g.Instances != 16 {
			t.Fatalf("%s: %d hosts, %d instances, error %q; want 8, 16, none", g.Generation, g.Hosts, g.Instances, g.Error)
		}
	}
	// Four networks of four: four VLANs; in gen 2 four VNIs too.
	if vlan.VLANs != 4 || vlan.VNIs != 0 || evpn.VLANs != 4 || evpn.VNIs != 4 || ebpf.VLANs != 0 {
		t.Errorf("segments: vlan %d/%d, evpn %d/%d, ebpf %d", vlan.VLANs, vlan.VNIs, evpn.VLANs, evpn.VNIs, ebpf.VLANs)
	}
	// Gen 2: every leaf holds a host route (and type-2 route) for each of
	// the tenant's 16 instances; MACs and ARP entries for its 2 networks'
	// 8; 2 VNIs; each VNI flooded to the zone's other leaf: 2 VTEPs.
	for _, c := range []struct {
		name     string
		min, max int
	}{{"host routes", 16, 16}, {"macs", 8, 8}, {"arp suppression", 8, 8}, {"l2 vnis", 2, 2}, {"flood vteps", 2, 2}} {
		if x := table(t, evpn, c.name, "leaf"); x.Devices != 4 || x.Min != c.min || x.Max != c.max {
			t.Errorf("evpn %s on leaves: %d devices, %d to %d; want 4, %d to %d", c.name, x.Devices, x.Min, x.Max, c.min, c.max)
		}
	}
	if evpn.FloodDomain != 2 {
		t.Errorf("evpn flood domain %d, want 2", evpn.FloodDomain)
	}
	// Gen 3: 2 endpoints a node; the ipcache holds the 16 pods, the 8
	// nodes and the world: 25.
	if x := table(t, ebpf, "endpoints", "host"); x.Min != 2 || x.Max != 2 || x.Devices != 8 {
		t.Errorf("ebpf endpoints: %+v; want 2 on each of 8 hosts", x)
	}
	if x := table(t, ebpf, "ipcache", "host"); x.Min != 25 || x.Max != 25 {
		t.Errorf("ebpf ipcache: %+v; want 25 on every host", x)
	}
	if ebpf.FloodDomain != 0 {
		t.Errorf("ebpf flood domain %d, want 0", ebpf.FloodDomain)
	}
	// The storm: gens 1 and 2 ask the controller for each of 16 addresses
	// and bind each port, 32 calls (16 a zone); gen 3 allocates locally.
	for _, g := range []Gen{vlan, evpn} {
		if s := g.Storm; s.IPAMCalls != 16 || s.ControllerCalls != 32 || s.PerZoneCalls != 16 || s.AtNeutron != 32*NeutronLatency || s.Duration <= 0 {
			t.Errorf("%s storm %+v", g.Generation, s)
		}
	}
	if s := ebpf.Storm; s.IPAMCalls != 0 || s.ControllerCalls != 0 || s.LocalAllocations != 16 {
		t.Errorf("ebpf storm %+v", s)
	}
	// Blast radius: a leaf's two single-homed hosts and their 4
	// instances; a host its 2; a spine nothing; the one border leaf of a
	// zone parts the zones: the other zone's 8 are cut off from it (and
	// it holds no host's port). Gen 1's hosts
	// are dual-homed: a ToR cuts no one off but touches its 2 hosts' 4.
	blast := func(g Gen, role string) Blast {
		for _, b := range g.Blast {
			if b.Role == role {
				return b
			}
		}
		t.Fatalf("%s: no blast radius of %s", g.Generation, role)
		return Blast{}
	}
	for _, c := range []struct {
		g             Gen
		role          string
		cutOff, ports int
	}{{evpn, "leaf", 4, 4}, {evpn, "host", 2, 2}, {evpn, "spine", 0, 0}, {evpn, "border", 8, 0}, {ebpf, "leaf", 4, 4},
		{vlan, "tor", 0, 4}, {vlan, "host", 2, 2}, {vlan, "core", 0, 0}} {
		if b := blast(c.g, c.role); b.CutOff != c.cutOff || b.Ports != c.ports {
			t.Errorf("%s %s: %+v; want %d cut off, %d ports", c.g.Generation, c.role, b, c.cutOff, c.ports)
		}
	}
	// Gen 2's leaves run out first of host routes (every instance of the
	// tenant on every leaf), linearly from 16 at 2 instances a host to
	// 160,000: 20,000 a host.
	if e := evpn.RunsOutFirst; e == nil || e.Role != "leaf" || e.Table != "host routes" || e.Density != 20000 {
		t.Errorf("evpn runs out first: %+v", e)
	}
}

// TestPlanGolden: the tiny plan for seed 1 is byte-identical to
// testdata/tiny.plan.json (go test -update rewrites it).
func TestPlanGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, tinyPlan(t)); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tiny.plan.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("plan differs from %s:\n%s", golden, b.String())
	}
}

// TestProfiles: the shipped profiles parse; a malformed file is an error
// naming it.
func TestProfiles(t *testing.T) {
	if len(DefaultProfiles()) == 0 {
		t.Fatal("no shipped profiles")
	}
	if _, err := ParseProfiles("p.yaml", []byte("profiles:\n  - {name: x, roles: [leaf], limits: {macs: 0}}\n")); err == nil {
		t.Error("a zero limit was accepted")
	}
	if _, err := ParseProfiles("p.yaml", []byte("profiles:\n  - {name: x, role: [leaf]}\n")); err == nil {
		t.Error("an unknown field was accepted")
	}
}
