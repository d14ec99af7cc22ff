package scenarios_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

func simBackend(t testing.TB, seed int64) *scenarios.FabricBackend {
	return scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: simrt.New(seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
}

// TestLibraryOnSim replays every shipped scenario for every generation it
// names on the sim backend: every expectation must hold.
func TestLibraryOnSim(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml")+"/"+string(gen), func(t *testing.T) {
				run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range run.Checks {
					if !c.Passed {
						t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
					}
				}
				if len(run.Checks) == 0 {
					t.Error("no checks ran")
				}
				if n := run.Counters["unexplained_drops"]; n != 0 {
					t.Errorf("%d unexplained drops", n)
				}
				testutil.CheckHopTimes(t, run.Probes, true)
				for _, term := range reports.TermsOf(run) {
					if _, ok := reports.LookupTerm(term.Kind, term.Name); !ok {
						t.Errorf("the report names %s %q, which has no glossary entry (reports.Glossary)", term.Kind, term.Name)
					}
				}
			})
		}
	}
}

// TestControllerOverHTTP replays the scenarios that lean on the controller
// with every call of the spawn flow going through the HTTP API, as the
// netns backend does.
func TestControllerOverHTTP(t *testing.T) {
	for _, f := range []string{"library/controller-restart.yaml", "library/pod-drift-keeps-ip.yaml", "library/vm-spawn.yaml"} {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range []scenarios.Generation{scenarios.GenVLAN, scenarios.GenEVPN} {
			if !slices.Contains(s.Generations, gen) {
				continue
			}
			t.Run(filepath.Base(f)+"/"+string(gen), func(t *testing.T) {
				b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), HTTP: true})
				run, err := scenarios.Run(context.Background(), s, gen, b, scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if run.Failed() || len(run.Checks) == 0 {
					t.Errorf("checks %+v", run.Checks)
				}
			})
		}
	}
}

// TestSpawnProgress: a long spawn step, and a long traffic step, report
// how far they are.
func TestSpawnProgress(t *testing.T) {
	s, err := scenarios.Load("library/pod-spawn-storm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	if _, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, s.Seed),
		scenarios.Options{Progress: func(m string) { msgs = append(msgs, m) }}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"step 1/4 spawn", "step 1/4 spawn 150/300", "step 1/4 spawn 300/300"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("progress lacks %q: %q", want, msgs)
		}
	}
	x, err := scenarios.Parse("many.yaml", []byte(`name: many
topology: {builder: spine-leaf, params: {spines: 1, leaves: 2, hosts_per_leaf: 1}}
generations: [ebpf]
networks: [{name: pods, subnet: 10.8.0.0/20}]
steps:
  - spawn: {name: p, kind: pod, count: 16, network: pods}
  - traffic: {from: [p], to: [p], matrix: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	msgs = nil
	if _, err := scenarios.Run(context.Background(), x, scenarios.GenEBPF, simBackend(t, 1),
		scenarios.Options{Progress: func(m string) { msgs = append(msgs, m) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(msgs, "step 2/2 traffic 200/240 probes") {
		t.Errorf("traffic progress: %q", msgs)
	}
}

// TestTableSizes: after 300 pods, the tables say so. Gen 2: a type-2
// route per pod (MAC/IP) and the leaves' MAC tables hold them; gen 3:
// every pod is an endpoint on one node and in the ipcache of the others.
func TestTableSizes(t *testing.T) {
	s, err := scenarios.Load("library/pod-spawn-storm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const pods = 300
	sum := func(run *reports.Run, name string) (total, largest int, nodes int) {
		for _, tb := range run.Tables {
			if tb.Name == name {
				total += tb.Entries
				largest = max(largest, tb.Entries)
				nodes++
			}
		}
		return
	}
	evpn, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := sum(evpn, "type-2 routes"); n < pods {
		t.Errorf("evpn: %d type-2 routes for %d pods", n, pods)
	}
	if _, largest, leaves := sum(evpn, "macs"); leaves == 0 || largest < pods/leaves {
		t.Errorf("evpn: largest leaf MAC table %d over %d leaves for %d pods", largest, leaves, pods)
	}
	ebpf, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eps, _, nodes := sum(ebpf, "endpoints")
	ipc, _, _ := sum(ebpf, "ipcache")
	if eps != pods || nodes == 0 || ipc < pods*(nodes-1) {
		t.Errorf("ebpf: %d endpoints on %d nodes, %d ipcache entries; want %d endpoints and at least %d remote entries", eps, nodes, ipc, pods, pods*(nodes-1))
	}
	// Gen 1: the core, the gateway of both subnets, learnt both VMs.
	x, err := scenarios.Load("library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vlan, err := scenarios.Run(context.Background(), x, scenarios.GenVLAN, simBackend(t, x.Seed), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, arp, _ := sum(vlan, "arp"); arp < 2 {
		t.Errorf("vlan: the core's ARP table holds %d entries, want both VMs", arp)
	}
	if macs, _, _ := sum(vlan, "macs"); macs == 0 {
		t.Error("vlan: no MAC learnt anywhere")
	}
}

// TestBGPLibraryOnSim runs every shipped gen 2 scenario with
// control_plane: bgp on sim (the BGP model, package sim/bgpmodel): every
// check passes, and a failed or restored leaf's or spine's fault reports
// its convergence, in either design (iBGP, eBGP); gen 3 ignores the
// setting.
func TestBGPLibraryOnSim(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Generations, scenarios.GenEVPN) {
			continue
		}
		s.ControlPlane = scenarios.ControlPlaneBGP
		for _, design := range []string{scenarios.DesignIBGP, scenarios.DesignEBGP} {
			s := *s
			s.BGP.Design = design
			t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml")+"/"+design, func(t *testing.T) {
				rt := simrt.New(s.Seed)
				b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
				run, err := scenarios.Run(context.Background(), &s, scenarios.GenEVPN, b, scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range run.Checks {
					if !c.Passed {
						t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
					}
				}
				if rt.BGP() == nil {
					t.Fatal("no BGP model")
				}
				if err := rt.BGP().Err(); err != nil {
					t.Error(err)
				}
				for _, ft := range run.Faults {
					if (strings.HasPrefix(ft.Target, "node leaf") || strings.HasPrefix(ft.Target, "node spine")) && ft.Convergence <= 0 {
						t.Errorf("fault %s reports no convergence", ft)
					}
					t.Logf("%s", ft)
				}
			})
		}
	}
	s, err := scenarios.Load("library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.ControlPlane = scenarios.ControlPlaneBGP
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEBPF, simBackend(t, s.Seed), scenarios.Options{})
	if err != nil || run.Failed() {
		t.Errorf("gen 3 with control_plane bgp on sim: %v", err)
	}
	// The scenario's session timers reach the model.
	s.BGP = scenarios.BGPSettings{Hold: 3 * time.Second, Keepalive: time.Second}
	rt := simrt.New(s.Seed)
	if _, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt,
		StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency, StoreNoSync: true}), scenarios.Options{}); err != nil {
		t.Fatal(err)
	}
	if tm := rt.BGP().Timers(); tm.Hold != 3*time.Second || tm.Keepalive != time.Second {
		t.Errorf("the model's timers %+v, want the scenario's hold 3s, keepalive 1s", tm)
	}
}
