package netnsrt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// silentWatch is a kernel runtime that runs check right after each
// silent failure it carries out, before the runner waits for the fault's
// convergence: what the fabric looks like at the fault.
type silentWatch struct {
	*netnsrt.Runtime
	check func(node string)
}

func (w silentWatch) FailSilently(ctx context.Context, node string) error {
	if err := w.Runtime.FailSilently(ctx, node); err != nil {
		return err
	}
	w.check(node)
	return nil
}

// kernelRuntimeAt is shortKernelRuntime that also returns its state
// root, in which every daemon of the lab keeps its files (processesIn).
func kernelRuntimeAt(t testing.TB, scenario string) (*netnsrt.Runtime, string) {
	t.Helper()
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true}), root
}

// processesIn lists the processes whose command line names dir (a
// speaker's configuration, a vswitch's files): a lab's daemons.
func processesIn(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		out = append(out, e.Name()+" "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

// TestKernelSilentLeaf runs scenarios/testdata/silent-failure.yaml (leaf1
// loses power, then leaf2 hangs: links up, everything dropped, its
// speaker frozen; each restored) for gen 2 with control_plane: bgp on
// the kernel backend, with the scenario's hold time (3 s, keepalive 1 s)
// and with BFD beside BGP's default timers (hold 9 s, keepalive 3 s).
// Right after leaf2 hangs, every other leaf's speaker still holds its
// routes and its kernel still points FDB and neighbour entries at leaf2's
// VTEP: nobody was told. Later every speaker has withdrawn them and no
// other leaf's kernel points at it (kernelWatch); with BFD that happens
// before BGP's hold timer could have expired (hold − keepalive = 6 s
// after the fault), so BFD ran between the kernel's namespaces. Every
// check passes, the probes and every speaker's final routes agree with
// sim's BGP model (with BFD too), whose convergence for the hang is
// within a factor of two of the kernel's, and no namespace or daemon of
// the lab is left.
func TestKernelSilentLeaf(t *testing.T) {
	testutil.RequireRoot(t)
	for _, bfd := range []bool{false, true} {
		t.Run(fmt.Sprintf("bfd=%v", bfd), func(t *testing.T) {
			s, err := scenarios.Load("../testdata/silent-failure.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if bfd {
				s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
			}
			rt, root := kernelRuntimeAt(t, s.Name)
			held := 0
			watch := silentWatch{Runtime: rt, check: func(node string) {
				v := vtepOf(t, rt, node)
				for _, l := range []string{"leaf1", "leaf3"} {
					c, ok := rt.Speaker(l)
					if !ok {
						t.Errorf("right after %s hung, %s's speaker does not run", node, l)
						continue
					}
					rs, err := c.Routes(context.Background())
					if err != nil {
						t.Errorf("%s's routes: %v", l, err)
						continue
					}
					if !slices.ContainsFunc(rs, func(r evpn.Route) bool { return r.VTEP == v }) {
						t.Errorf("right after %s hung, %s's speaker holds no route of its VTEP %s: it was told", node, l, v)
						continue
					}
					if n := readKernel(t, rt, l).at(v); n == 0 {
						t.Errorf("right after %s hung, %s's kernel points nothing at its VTEP %s", node, l, v)
						continue
					}
					held++
				}
			}}
			w := &kernelWatch{t: t, s: s, rt: rt}
			var speakers map[string][]string
			opts := scenarios.Options{
				Progress: w.progress,
				Hold: func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
					w.settle("at the end")
					var err error
					speakers, err = finalSpeakers(ctx, b)
					return err
				},
			}
			kRun, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: watch, StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatalf("on kernel: %v", err)
			}
			if kRun.Backend != "kernel" {
				t.Errorf("the run says backend %q, want kernel", kRun.Backend)
			}
			for _, c := range kRun.Checks {
				if !c.Passed {
					t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
				}
			}
			if held != 2 {
				t.Errorf("right after leaf2 hung, %d of the other 2 leaves still held its routes in speaker and kernel", held)
			}
			for _, want := range w.wantChecks() {
				if !w.done[want] {
					t.Errorf("the kernel was never checked %s", want)
				}
			}
			c := silentConvergence(t, kRun, "leaf2")
			i := slices.IndexFunc(kRun.Faults, func(f reports.Fault) bool { return f.Target == "node leaf2" && !f.Restore })
			if !strings.HasPrefix(kRun.Faults[i].Detail, "silent") {
				t.Errorf("leaf2's fault detail %q, want silent", kRun.Faults[i].Detail)
			}
			t.Logf("leaf2 hung: withdrawn everywhere after %v (bfd %v)", c, bfd)
			// The hold timer cannot expire before hold − keepalive
			// has passed since the fault.
			if !bfd && c < 2*time.Second {
				t.Errorf("withdrawn after %v, before the hold timer (3 s, keepalive 1 s) could expire: someone was told", c)
			}
			if bfd && c >= 6*time.Second {
				t.Errorf("withdrawn after %v with BFD: no sooner than BGP's hold timer (9 s, keepalive 3 s) would have", c)
			}
			if left := namespacesOf(rt.LabName()); len(left) > 0 {
				t.Errorf("namespaces left after the run: %v", left)
			}
			if left := processesIn(root); len(left) > 0 {
				t.Errorf("processes of the lab left after the run: %v", left)
			}
			simRun, simSpeakers := simBGP(t, s)
			for _, n := range slices.Sorted(mapKeys(speakers)) {
				if got, want := speakers[n], simSpeakers[n]; !slices.Equal(got, want) {
					t.Errorf("%s's speaker at the end, on kernel:\n  %s\non sim:\n  %s", n, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
			if len(speakers) == 0 || len(speakers) != len(simSpeakers) {
				t.Errorf("%d speakers on kernel, %d on sim", len(speakers), len(simSpeakers))
			}
			sameProbes(t, s, kRun, simRun)
			simC := silentConvergence(t, simRun, "leaf2")
			ratio := float64(simC) / float64(c)
			t.Logf("leaf2 hung: convergence %v on sim, %v on kernel: ratio %.2f", simC, c, ratio)
			if ratio < 0.5 || ratio > 2 {
				t.Errorf("leaf2 hung: convergence %v on sim, %v on kernel: ratio %.2f, want within a factor of two", simC, c, ratio)
			}
		})
	}
}

// silenceCase is one run of TestKernelSilence: a scenario (%s is the
// failed node, as it names it twice) that fails node silently, sends
// probes to and through it, and restores it before sending more; insts
// are the instances that run on node.
type silenceCase struct {
	gen      scenarios.Generation
	topology string
	node     string
	insts    []string
	// early are steps run while the node hangs, before the probes;
	// during after them.
	early, during string
}

// silenceScenario: a hangs behind the node (or is on it), b and c are
// elsewhere; during the hang every probe to or from a is lost, b and c
// still talk; after the restore everything is reachable again.
const silenceScenario = `name: kernel-silence
topology: %s
generations: [%s]
networks:
  - {name: web, subnet: 10.7.0.0/24}
steps:
  - spawn: {name: a, kind: %s, count: 1, network: web, hosts: [host1]}
  - spawn: {name: b, kind: %s, count: 1, network: web, hosts: [%s]}
  - spawn: {name: c, kind: %s, count: 1, network: web, hosts: [%s]}
  - traffic: {from: [a-1, b-1, c-1], to: [a-1, b-1, c-1], matrix: true, tag: before}
  - expect: {tag: before, all_reachable: true}
  - fail: {node: %s, mode: silent}
%s  - traffic: {from: [a-1, b-1, c-1], to: [a-1, b-1, c-1], matrix: true, tag: during}
  - expect: {tag: during, reachable: ["b-1 -> c-1", "c-1 -> b-1"], unreachable: ["a-1 -> b-1", "a-1 -> c-1", "b-1 -> a-1", "c-1 -> a-1"]}
%s  - restore: {node: %s}
  - traffic: {from: [a-1, b-1, c-1], to: [a-1, b-1, c-1], matrix: true, tag: after}
  - expect: {tag: after, all_reachable: true}
`

// linkCounters are a device's packet counters.
type linkCounters struct{ rx, tx uint64 }

// TestKernelSilence fails a node silently on the kernel backend, for each
// kind of datapath a node has there: a gen 2 leaf (the Linux bridge and
// VXLAN devices, and its access bridge in Open vSwitch), a gen 2 host
// (Open vSwitch's userspace datapath, which reads its ports before tc
// ingress), a gen 3 host (tc BPF programs on its pods' veths) and a gen 1
// ToR (an Open vSwitch bridge running RSTP; host1's bond stays on it,
// its carrier up, as sim's does). While the node hangs, the far end of
// every one of its links (a neighbour's interface, an instance's eth0,
// one plugged into the hung gen 2 host included) receives nothing from
// it, though frames were sent to it: nothing the node forwards or
// answers gets out. Every probe to or from the instance behind it is
// lost, and the kernel's drop is reported as sim reports it: node-down at
// the hung node. After the restore everything is reachable again; every
// check passes, and no namespace or daemon of the lab is left.
func TestKernelSilence(t *testing.T) {
	testutil.RequireRoot(t)
	threeTier, err := filepath.Abs("../../topologies/examples/three-tier.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	spineLeaf := "{builder: spine-leaf, params: {spines: 2, leaves: 3, hosts_per_leaf: 1}}"
	for _, c := range []silenceCase{
		{gen: scenarios.GenEVPN, topology: spineLeaf, node: "leaf1"},
		// d is spawned on host1 while it hangs: its veth is silenced
		// as host1's others are (else host1's OVS, which still reads
		// what a sends, would hand a's ARP for d to d).
		{gen: scenarios.GenEVPN, topology: spineLeaf, node: "host1", insts: []string{"a-1", "d-1"}, during: `  - spawn: {name: d, kind: pod, count: 1, network: web, hosts: [host1]}
  - traffic: {from: [a-1, d-1], to: [a-1, d-1], matrix: true, tag: new}
  - expect: {tag: new, unreachable: ["a-1 -> d-1", "d-1 -> a-1"]}
`},
		// Probes first lost for 4 s: by then leaf1's neighbour entry
		// for host1 has come up for confirmation and failed, and it
		// holds the next packets for a fresh ARP (awaitNeighbour).
		{gen: scenarios.GenEBPF, topology: spineLeaf, node: "host1", insts: []string{"a-1"}, early: `  - traffic: {from: [b-1, c-1], to: [a-1], tag: early}
  - expect: {tag: early, unreachable: ["b-1 -> a-1", "c-1 -> a-1"]}
`}, {gen: scenarios.GenVLAN, topology: "{file: " + threeTier + "}", node: "tor1"},
	} {
		t.Run(string(c.gen)+"/"+c.node, func(t *testing.T) {
			kind, b, cc := "pod", "host2", "host3"
			if c.gen == scenarios.GenVLAN {
				kind, b, cc = "vm", "host3", "host4" // rack2's: a's rack hangs from tor1
			}
			src := fmt.Sprintf(silenceScenario, c.topology, c.gen, kind, kind, b, kind, cc, c.node, c.early, c.during, c.node)
			s, err := scenarios.Parse("kernel-silence.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			rt, root := kernelRuntimeAt(t, s.Name)
			// far reads the counters at the far end of every link of
			// the node: its topology links' peers and its instances'
			// eth0.
			far := func() map[string]linkCounters {
				out := map[string]linkCounters{}
				for _, ifn := range rt.Topology().Interfaces(c.node) {
					p, _, ok := rt.Topology().Peer(topologies.Endpoint{Node: c.node, Iface: ifn})
					if !ok {
						continue
					}
					h, err := rt.Lab().Handle(p.Node)
					if err != nil {
						t.Fatal(err)
					}
					out[p.String()] = countersOf(t, h, p.Iface)
				}
				for _, in := range c.insts {
					if _, ok := rt.InstanceNamespace(in); ok { // else spawned later: nothing received yet
						out[in+":eth0"] = instanceCounters(t, rt, in)
					}
				}
				return out
			}
			var before map[string]linkCounters
			watch := silentWatch{Runtime: rt, check: func(string) { before = far() }}
			checked := false
			opts := scenarios.Options{Progress: func(msg string) {
				if before == nil || checked || !stepMsg.MatchString(msg) || !strings.HasSuffix(msg, " restore") {
					return
				}
				checked = true
				after, sent := far(), 0
				for end, a := range after {
					b := before[end]
					if a.rx != b.rx {
						t.Errorf("%s received %d packets from %s while it hung", end, a.rx-b.rx, c.node)
					}
					sent += int(a.tx - b.tx)
				}
				if sent == 0 {
					t.Errorf("nothing was sent to %s while it hung: nothing checked", c.node)
				}
				t.Logf("%d packets sent to %s over %d links while it hung, none came back", sent, c.node, len(after))
			}}
			kRun, err := scenarios.Run(context.Background(), s, c.gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: watch, StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatalf("on kernel: %v", err)
			}
			if !checked {
				t.Error("the node's links were never checked while it hung")
			}
			for _, ch := range kRun.Checks {
				if !ch.Passed {
					t.Errorf("kernel: step %d (line %d) %s: %s", ch.Step, ch.Line, ch.What, ch.Detail)
				}
			}
			if left := namespacesOf(rt.LabName()); len(left) > 0 {
				t.Errorf("namespaces left after the run: %v", left)
			}
			if left := processesIn(root); len(left) > 0 {
				t.Errorf("processes of the lab left after the run: %v", left)
			}
			simRun, err := scenarios.Run(context.Background(), s, c.gen, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
			if err != nil {
				t.Fatal(err)
			}
			sameProbes(t, s, kRun, simRun)
			hung := 0
			for i, sp := range simRun.Probes {
				kp := kRun.Probes[i]
				if sp.Tag != "during" || sp.Reason != string(datapath.ReasonNodeDown) {
					continue
				}
				// A real stack confirms a neighbour entry it used
				// (STALE, DELAY, then unicast ARP): one that came
				// up for confirmation while the node hung has
				// failed, its ARP lost at the node, and the probe
				// waits at its source (the trace matches no ARP).
				// Sim's stack keeps its entries.
				if kp.Reason == string(datapath.ReasonNoARP) && kp.DropAt == sp.From+"/eth0" {
					t.Logf("probe %d %s -> %s: its source's ARP for it failed on kernel (its neighbour entry came up for confirmation while %s hung); on sim dropped at %s (%s)",
						i, sp.From, sp.To, c.node, sp.DropAt, sp.Reason)
					continue
				}
				hung++
				node := func(at string) string { n, _, _ := strings.Cut(at, "/"); return n }
				if node(kp.DropAt) != node(sp.DropAt) || kp.Reason != sp.Reason {
					t.Errorf("probe %d %s -> %s: dropped on kernel at %s (%s, %s), on sim at %s (%s)", i, sp.From, sp.To, kp.DropAt, kp.Reason, kp.Rule, sp.DropAt, sp.Reason)
				}
			}
			if hung == 0 {
				t.Errorf("no probe dropped at %s on both sim and kernel: nothing compared", c.node)
			}
		})
	}
}

// countersOf reads name's packet counters through h.
func countersOf(t testing.TB, h *netlink.Handle, name string) linkCounters {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	st := l.Attrs().Statistics
	return linkCounters{rx: st.RxPackets, tx: st.TxPackets}
}

// instanceCounters reads instance in's eth0 counters in its namespace.
func instanceCounters(t testing.TB, rt *netnsrt.Runtime, in string) linkCounters {
	t.Helper()
	name, ok := rt.InstanceNamespace(in)
	if !ok {
		t.Fatalf("no instance %s", in)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("namespace of %s: %v", in, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink in %s's namespace: %v", in, err)
	}
	defer h.Close()
	return countersOf(t, h, "eth0")
}

// TestKernelSilentDirectHost: on ebpf-direct with control_plane: bgp on
// the kernel backend (hold 3 s, keepalive 1 s), a host failed silently
// keeps its pod CIDR in its leaf's speaker and kernel right after the
// fault (nobody was told), and loses it there later, once the leaf's
// hold timer has expired; its pod is unreachable meanwhile, and after the
// restore (a reboot: the frozen speaker is killed and started afresh) the
// leaf routes it again. Every check passes and every probe has the same
// outcome as on sim.
func TestKernelSilentDirectHost(t *testing.T) {
	testutil.RequireRoot(t)
	src := strings.Replace(kernelDirectFailure, "  - fail: {node: host1}", "  - fail: {node: host1, mode: silent}", 1)
	src = strings.Replace(src, "control_plane: bgp\n", "control_plane: bgp\nbgp: {hold: 3s, keepalive: 1s}\n", 1)
	s, err := scenarios.Parse("kernel-direct-silent.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rt, root := kernelRuntimeAt(t, s.Name)
	var cidr netip.Prefix
	routed := func(what string) bool {
		h, err := rt.Lab().Handle("leaf1")
		if err != nil {
			t.Fatal(err)
		}
		rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), 32)}}, netlink.RT_FILTER_DST)
		if err != nil {
			t.Fatalf("%s: leaf1: routes to %v: %v", what, cidr, err)
		}
		return len(rs) > 0
	}
	// learnt says whether leaf1's speaker holds host1's pod CIDR.
	learnt := func() bool { return slices.Contains(leafPrefixes(t, rt)["leaf1"], cidr) }
	// The test times the withdrawal it waits for itself, from the fault,
	// beside the report's convergence (BGPSpeaker.Direct).
	atFault := false
	var faultAt time.Time
	var withdrawn time.Duration
	watch := silentWatch{Runtime: rt, check: func(string) {
		atFault, faultAt = true, time.Now()
		if !learnt() {
			t.Errorf("right after host1 hung, leaf1 no longer holds its pod CIDR %v: it was told", cidr)
		}
		if !routed("right after host1 hung") {
			t.Errorf("right after host1 hung, leaf1's kernel no longer routes its pod CIDR %v: it was told", cidr)
		}
	}}
	waitRouted := func(what string, want bool) {
		deadline := time.Now().Add(10 * time.Second)
		for routed(what) != want || learnt() != want {
			if time.Now().After(deadline) {
				t.Errorf("%s: leaf1's speaker holds and its kernel routes host1's pod CIDR %v: %v and %v, want %v", what, cidr, learnt(), routed(what), want)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	checked := 0
	opts := scenarios.Options{Progress: func(msg string) {
		switch {
		case strings.HasPrefix(msg, "step 4/") && stepMsg.MatchString(msg): // fail: {node: host1, mode: silent}
			rt.Mutate(func() error {
				n, _ := rt.Node("host1")
				cidr = n.(*ebpf.Node).Config().NodeCIDR
				return nil
			})
		case strings.HasPrefix(msg, "step 5/") && stepMsg.MatchString(msg):
			waitRouted("after host1 hung", false)
			withdrawn = time.Since(faultAt)
			checked++
		case strings.HasPrefix(msg, "step 8/") && stepMsg.MatchString(msg):
			waitRouted("after host1 was restored", true)
			checked++
		}
	}}
	kRun, err := scenarios.Run(context.Background(), s, scenarios.GenEBPFDirect, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: watch, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("on kernel: %v", err)
	}
	if !atFault || checked != 2 {
		t.Errorf("leaf1 checked at the fault: %v, and %d times after, want 2 (after the fail and after the restore)", atFault, checked)
	}
	for _, c := range kRun.Checks {
		if !c.Passed {
			t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	t.Logf("host1 hung: leaf1 withdrew its pod CIDR %v after the fault", withdrawn.Round(time.Millisecond))
	// The report's convergence: a hung host's sessions end when leaf1's
	// hold timer expires, which cannot come before hold - keepalive
	// after the last keepalive it had (it used to say 8 ms: it asked
	// gen 2's leaves, of which there are none).
	fi := slices.IndexFunc(kRun.Faults, func(f reports.Fault) bool { return f.Target == "node host1" && !f.Restore })
	switch {
	case fi < 0:
		t.Errorf("no fault of host1 in the report: %+v", kRun.Faults)
	case kRun.Faults[fi].Convergence < s.BGP.Hold-s.BGP.Keepalive:
		t.Errorf("the report says host1's hang converged after %v, before the hold timer (%v) less a keepalive (%v) could end a session", kRun.Faults[fi].Convergence, s.BGP.Hold, s.BGP.Keepalive)
	default:
		t.Logf("the report: host1's hang converged after %v", kRun.Faults[fi].Convergence)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	if left := processesIn(root); len(left) > 0 {
		t.Errorf("processes of the lab left after the run: %v", left)
	}
	sameProbes(t, s, kRun, simDirect(t, s))
}

// TestKernelBFDWithFRR is TestBFDSilentFailure on the kernel backend:
// silent-failure.yaml with bgp: {bfd: true}, BGP's default timers and
// leaf3 as FRR, whose bfdd peers with the spines' Go BFD over the
// kernel's underlay (both of its peers up at the end). leaf2, failed
// silently, is withdrawn everywhere before BGP's hold timer could have
// expired (hold − keepalive = 6 s after the fault), and every check of
// the run passes.
func TestKernelBFDWithFRR(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	s, err := scenarios.Load("../testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
	s.BGP.FRRLeaves = []string{"leaf3"}
	rt := frrKernelRuntime(t, s.Name)
	var peers []string
	opts := scenarios.Options{Hold: func(ctx context.Context, _ scenarios.Backend, _ []scenarios.Instance) error {
		dir, ok := rt.FRRLeaf("leaf3")
		if !ok {
			return fmt.Errorf("leaf3 is not an FRR leaf")
		}
		out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", dir, "-c", "show bfd peers json").CombinedOutput()
		if err != nil {
			return fmt.Errorf("vtysh show bfd peers: %v: %s", err, out)
		}
		var ps []struct {
			Peer   string `json:"peer"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &ps); err != nil {
			return fmt.Errorf("show bfd peers json: %v: %s", err, out)
		}
		for _, p := range ps {
			peers = append(peers, p.Peer+" "+p.Status)
		}
		return nil
	}}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("on kernel: %v", err)
	}
	if run.Backend != "kernel" {
		t.Errorf("the run says backend %q, want kernel", run.Backend)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(peers) != 2 || slices.ContainsFunc(peers, func(p string) bool { return !strings.HasSuffix(p, " up") }) {
		t.Errorf("FRR's bfdd peers at the end: %v; want both spines up", peers)
	}
	c := silentConvergence(t, run, "leaf2")
	t.Logf("silent failure of leaf2 with BFD beside FRR's bfdd on the kernel: converged in %v", c)
	if c >= 6*time.Second {
		t.Errorf("silent failure withdrawn after %v: no sooner than BGP's hold timer (9 s, keepalive 3 s) would have", c)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
}
