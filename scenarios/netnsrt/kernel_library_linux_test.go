package netnsrt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestLibraryOnKernel runs every shipped scenario on the kernel backend
// for every generation it names that the kernel backend runs, and checks
// that it passes and agrees with sim on what reached its destination, what
// was answered and the verdicts. Hops and paths may differ by design (the
// kernel counts the devices it really crossed); the test logs where.
// A cell of knownKernelDifferences is run and its differences logged,
// not failed.
func TestLibraryOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	kernelGens := netnsrt.KernelGenerations()
	dualStack := netnsrt.KernelIPv6Generations()
	ran := 0
	for _, name := range libraryScenarios {
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			if !slices.Contains(kernelGens, string(gen)) || s.ControlPlane == scenarios.ControlPlaneBGP {
				continue
			}
			if probesIPv6(s) && !slices.Contains(dualStack, string(gen)) {
				t.Logf("%s/%s: left out: the kernel backend runs %s over IPv4 only", name, gen, gen)
				continue
			}
			ran++
			cell := name + "/" + string(gen)
			t.Run(cell, func(t *testing.T) {
				if why, slow := slowKernelCells[cell]; slow && os.Getenv("NETNSRT_LIBRARY") == "" {
					t.Skipf("%s: run it with NETNSRT_LIBRARY=%s", why, name)
				}
				errorf := t.Errorf
				if why, known := knownKernelDifferences[cell]; known {
					errorf = func(format string, args ...any) {
						t.Logf("known kernel difference (%s): "+format, append([]any{why}, args...)...)
					}
				}
				ctx := context.Background()
				simRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
					Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				rt := newKernelRuntime(t, name)
				kRun, err := scenarios.Run(ctx, s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
					Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("kernel run: %v wall time (sim: %v)", kRun.Elapsed, simRun.Elapsed)
				if left := namespacesOf(rt.LabName()); len(left) > 0 {
					t.Errorf("namespaces left after the run: %v", left)
				}
				if kRun.Backend != "kernel" {
					t.Errorf("the run says backend %q, want kernel", kRun.Backend)
				}
				for _, c := range kRun.Checks {
					if !c.Passed {
						errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
					}
				}
				if len(kRun.Probes) != len(simRun.Probes) {
					errorf("kernel sent %d probes, sim %d", len(kRun.Probes), len(simRun.Probes))
					return
				}
				for i, sp := range simRun.Probes {
					kp := kRun.Probes[i]
					if sp.Delivered != kp.Delivered || sp.Replied != kp.Replied || sp.Verdict() != kp.Verdict() {
						errorf("probe %d %s -> %s (%s): kernel delivered %v replied %v (dropped at %s: %s), sim delivered %v replied %v (dropped at %s: %s)",
							i, sp.From, sp.To, sp.Tag, kp.Delivered, kp.Replied, kp.DropAt, kp.Reason, sp.Delivered, sp.Replied, sp.DropAt, sp.Reason)
					}
					// The host's stack refusing a frame OVS takes on is
					// not where a probe is lost (TestKernelCutProbeLeavesItsHost).
					if !kp.Delivered && sp.SwitchHops > 0 && kp.SwitchHops == 0 && kp.Reason == string(datapath.ReasonNotForMe) {
						errorf("probe %d %s -> %s dropped on kernel at %s (%s) before any switch, on sim at %s past %d switches",
							i, sp.From, sp.To, kp.DropAt, kp.Reason, sp.DropAt, sp.SwitchHops)
					}
					if kp.Delivered && len(kp.Path) == 0 {
						t.Errorf("probe %d %s -> %s delivered on kernel with no path", i, sp.From, sp.To)
					}
					if kp.Delivered && kp.Hops != sp.Hops && i == 0 {
						t.Logf("hops differ by design: kernel %d (%v), sim %d (%v)", kp.Hops, kp.Path, sp.Hops, sp.Path)
					}
				}
			})
		}
	}
	if ran == 0 {
		t.Fatalf("no shipped scenario names a generation the kernel backend runs (%v)", kernelGens)
	}
}

// slowKernelCells are left out of TestLibraryOnKernel unless
// NETNSRT_LIBRARY names the scenario, each with why: make test runs
// this test, and these cells alone would take minutes.
// None today: pod-spawn-storm/evpn (300 pods through the CNI plugin and
// the controller, each plugged into its host's OVS and synced to the
// leaves) joined make test once ports went over OVSDB and the plugin's
// BUILD report rode on its port request: 47-56 s at load 11-15 on 2
// vCPUs, against 74-89 s before (docs/benchmarks.md).
var slowKernelCells = map[string]string{}

// knownKernelDifferences are the cells of TestLibraryOnKernel whose
// failures are logged rather than failed, each with why; an entry goes
// when its cause is fixed.
var knownKernelDifferences = map[string]string{
	// The foreground probes after each move pass since every vswitch
	// drops its cached flows before a migrated VM announces itself
	// (kernel.FlowCache; 0 of 12 runs at load 30-39, against 1 of 10
	// and the one in four noted before, each dropped at the old host's
	// ToR or br-bond). What fails is the background stream's recovery:
	// 2 of 8 runs at load 25-31 before that change, 3 of 12 at load
	// 30-39 after it, each time one peer's flow lost every probe from
	// a move to the stream's end, 8 to 153 of them: fewer than the 200
	// of the two seconds the stream runs past the second move's start,
	// which on a machine that loaded the move itself (unplug, veth,
	// plug, OVS reconfiguring) can take.
	"drift-ping-pong/vlan": "under load the background stream can end before the second move has finished, and its flow never recovers",
}

// probesIPv6 reports whether a traffic step of s probes over IPv6.
func probesIPv6(s *scenarios.Scenario) bool {
	for _, st := range s.Steps {
		if st.Traffic != nil && st.Traffic.Family != "" && st.Traffic.Family != scenarios.FamilyIPv4 {
			return true
		}
	}
	return false
}

// dualStackSG is stock OpenStack dual-stack with a security group
// compiled from a NetworkPolicy (dualStackNetpol): the db takes TCP on
// 5432 from the web pods and from the web network's IPv6 subnet only.
// %s is the topology file.
const dualStackSG = `
name: dual-stack-sg
topology: {file: %s}
generations: [vlan-stock]
seed: 6
networks:
  - {name: web, subnet: 10.0.1.0/24, subnet6: "fd00:1::/64"}
  - {name: db, subnet: 10.0.2.0/24, subnet6: "fd00:2::/64"}
steps:
  - spawn: {name: web, kind: vm, count: 1, network: web, hosts: [host1], labels: {app: web}}
  - spawn: {name: db, kind: vm, count: 1, network: db, hosts: [host4], labels: {app: db}}
  - spawn: {name: batch, kind: vm, count: 1, network: db, hosts: [host2], labels: {app: batch}}
  - policy: {file: netpol.yaml}
  - at: 1s
    traffic: {proto: tcp, port: 5432, from: [web-1, batch-1], to: [db-1], family: dual, tag: sql}
  - expect: {tag: sql, reachable: ["web-1 -> db-1"], unreachable: ["batch-1 -> db-1"]}
`

// dualStackNetpol: a pod peer compiles into a rule of its IPv4 address
// (docs/scenarios.md), so the web's IPv6 is admitted by the ipBlock.
const dualStackNetpol = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {app: web}}
        - ipBlock: {cidr: "fd00:1::/64"}
      ports:
        - {protocol: TCP, port: 5432}
`

// TestKernelDualStackSecurityGroups: on stock OpenStack's kernel host a
// security group filters IPv6 as IPv4 (ip6tables rules beside the
// iptables ones, as Neutron writes them): the kernel run agrees with sim
// on every probe of both families, and the IPv6 probe the group refuses
// is dropped by netfilter on the db's host (with no ip6tables rules it
// went through).
func TestKernelDualStackSecurityGroups(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	topo, err := filepath.Abs("../../topologies/examples/three-tier.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "dual-stack-sg.yaml")
	for name, body := range map[string]string{file: fmt.Sprintf(dualStackSG, topo), filepath.Join(dir, "netpol.yaml"): dualStackNetpol} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := scenarios.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	simRun, err := scenarios.Run(ctx, s, scenarios.GenVLANStock, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := newKernelRuntime(t, s.Name)
	kRun, err := scenarios.Run(ctx, s, scenarios.GenVLANStock, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []*reports.Run{simRun, kRun} {
		for _, c := range run.Checks {
			if !c.Passed {
				t.Errorf("%s: step %d (line %d) %s: %s", run.Backend, c.Step, c.Line, c.What, c.Detail)
			}
		}
	}
	if len(kRun.Probes) != len(simRun.Probes) || len(kRun.Probes) != 4 {
		t.Fatalf("kernel sent %d probes, sim %d; want 4", len(kRun.Probes), len(simRun.Probes))
	}
	dropped6 := 0
	for i, sp := range simRun.Probes {
		kp := kRun.Probes[i]
		if sp.Delivered != kp.Delivered || sp.Replied != kp.Replied || sp.Verdict() != kp.Verdict() {
			t.Errorf("probe %d %s -> %s (%s): kernel delivered %v replied %v (dropped at %s: %s), sim delivered %v replied %v (dropped at %s: %s)",
				i, sp.From, sp.To, sp.Family, kp.Delivered, kp.Replied, kp.DropAt, kp.Reason, sp.Delivered, sp.Replied, sp.DropAt, sp.Reason)
		}
		if kp.From == "batch-1" && kp.Family == "ipv6" {
			dropped6++
			if kp.Reason != "netfilter-drop" {
				t.Errorf("IPv6 probe %s -> %s: kernel reason %q at %s, want netfilter-drop (the ip6tables chain)", kp.From, kp.To, kp.Reason, kp.DropAt)
			}
		}
	}
	if dropped6 != 1 {
		t.Errorf("%d IPv6 probes from batch-1, want 1", dropped6)
	}
}

// TestKernelEBPFDirectRefusesIPv6: no generation the kernel backend
// runs refuses IPv6 probes any more (gen 3 carries IPv6 in tunnel mode);
// what is left is ebpf-direct, whose model routes no IPv6 across nodes
// and refuses an IPv6 cluster CIDR. On the kernel backend that refusal
// comes at the start, naming direct routing and the way out (tunnel
// mode), before any probe, and nothing of the run is left. It runs
// dual-stack-pods with its IPv6 cluster CIDR given to ebpf-direct.
func TestKernelEBPFDirectRefusesIPv6(t *testing.T) {
	testutil.RequireRoot(t)
	gen := scenarios.GenEBPFDirect
	const file = "../library/dual-stack-pods.yaml"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("generations: [ebpf]", "generations: [ebpf-direct]", "  ebpf: {cluster_cidr6", "  ebpf-direct: {cluster_cidr6").Replace(string(b))
	s, err := scenarios.Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rt := newKernelRuntime(t, s.Name)
	_, err = scenarios.Run(context.Background(), s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "ebpf-direct") || !strings.Contains(err.Error(), "with direct routing") || !strings.Contains(err.Error(), "use tunnel mode") {
		t.Fatalf("run: %v; want the refusal of IPv6 with direct routing, naming the generation", err)
	}
	t.Log(err)
	// The model refuses before the lab is made (no name yet), or else
	// the lab must be gone.
	if name := rt.LabName(); name != "" {
		if left := namespacesOf(name); len(left) > 0 {
			t.Errorf("namespaces left after the run: %v", left)
		}
	}
}

// TestKernelCutProbeLeavesItsHost: once core-failure's gateway core has
// failed, a cross-subnet probe still leaves its source's host (its
// instance holds the gateway's MAC) and dies in the fabric, where the
// switches flood a MAC that is no longer anywhere. The kernel backend
// used to blame the source host's own tap (or stock OpenStack's qvo): the
// host's stack refuses the frame there while OVS takes it on, and that
// refusal was the nearest of the flood's drops. The library names
// core-failure for vlan only (TestLibraryOnKernel checks it there);
// this runs it on the stock OpenStack host.
func TestKernelCutProbeLeavesItsHost(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/core-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []scenarios.Generation{scenarios.GenVLANStock} {
		t.Run(string(gen), func(t *testing.T) {
			rt := newKernelRuntime(t, s.Name)
			run, err := scenarios.Run(context.Background(), s, gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cut := 0
			for _, p := range run.Probes {
				if p.Tag != "cross" {
					continue
				}
				cut++
				switch {
				case p.Delivered:
					t.Errorf("%s -> %s delivered with the gateway core failed", p.From, p.To)
				case p.Reason == string(datapath.ReasonNoARP):
					// The source gave up on the gateway's MAC first: a
					// loss on the source, rightly (not seen here so far).
					t.Logf("%s -> %s: %s at %s", p.From, p.To, p.Reason, p.DropAt)
				case p.SwitchHops == 0:
					t.Errorf("%s -> %s dropped at %s (%s) after %v: want it past the source's host, in the fabric",
						p.From, p.To, p.DropAt, p.Reason, p.Path)
				}
			}
			if cut != 4 {
				t.Errorf("%d cross-subnet probes, want 4", cut)
			}
		})
	}
}
