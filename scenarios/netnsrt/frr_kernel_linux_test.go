package netnsrt_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// frrKernelRuntime is a kernel runtime whose short state root the frr
// user can enter (FRR's daemons run as that user, their sockets there);
// frr are its FRR leaves when Load is called directly (a scenario run
// sets them from the scenario).
func frrKernelRuntime(t testing.TB, scenario string, frr ...string) *netnsrt.Runtime {
	t.Helper()
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true, FRRLeaves: frr})
}

// BenchmarkFRRKernelLabStart measures the start of a gen 2 lab on the
// kernel backend with control_plane bgp (2 spines, 4 leaves, a host per
// leaf: the fabric of leaf-failure), from the start of Load (deploy, the
// bridge fabric's build with its Open vSwitch daemons, the speakers)
// until every BGP session is established: start-s with every leaf
// netbed's, frr-start-s with leaf3 FRR's zebra and bgpd (its own
// vswitch, its sessions from bgpd, 'connect 1'), frr-extra-s the
// difference; load1 is the machine's load average as it ended.
func BenchmarkFRRKernelLabStart(b *testing.B) {
	testutil.RequireRoot(b)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(b, err.Error())
	}
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "frrstart", Spines: 2, Leaves: 4, HostsPerLeaf: 1})
	if err != nil {
		b.Fatal(err)
	}
	start := func(frr ...string) time.Duration {
		f, err := evpn.New(topo, evpn.Options{LeafTables: true})
		if err != nil {
			b.Fatal(err)
		}
		rt := frrKernelRuntime(b, "frrstart", frr...)
		t0 := time.Now()
		if err := rt.Load(context.Background(), f, topo); err != nil {
			rt.Close()
			b.Fatalf("load with FRR leaves %v: %v", frr, err)
		}
		d := time.Since(t0)
		if err := rt.Close(); err != nil {
			b.Fatal(err)
		}
		return d
	}
	var plain, frr time.Duration
	for range b.N {
		plain += start()
		frr += start("leaf3")
	}
	n := float64(b.N)
	b.ReportMetric(plain.Seconds()/n, "start-s")
	b.ReportMetric(frr.Seconds()/n, "frr-start-s")
	b.ReportMetric((frr-plain).Seconds()/n, "frr-extra-s")
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		var load1 float64
		fmt.Sscan(string(l), &load1)
		b.ReportMetric(load1, "load1")
	}
}

// TestFRRLeavesOnKernel runs the shipped leaf-failure scenario (gen 2,
// control_plane bgp) on the kernel backend with one leaf realised as FRR:
// zebra and bgpd in the leaf's namespace over the kernel's bridge and
// VXLAN devices, which the bridge fabric leaves to them, peering with
// the spines' GoBGP speakers, whose kernels route VXLAN to the leaf's
// loopback. leaf3 is FRR's beside the failure of netbed's leaf1; leaf1
// is FRR's and fails (carrier lost, zebra and bgpd killed, its devices
// gone) and is restored. Every check passes, and every probe is
// delivered, answered and judged as on sim (all leaves netbed's: sim has
// no FRR). While the lab is held (after the restore): an instance behind
// FRR's leaf and one behind each netbed leaf reach each other both ways;
// FRR's kernel holds, from zebra, an FDB entry (extern_learn) towards
// the right VTEP and a neighbour entry for every instance of netbed's
// leaves, and a flood entry per netbed leaf (read with netlink);
// netbed's leaves' speakers hold FRR's type 3 and a type 2 for each
// instance behind FRR's leaf, and a netbed leaf's kernel points their
// MACs at its VTEP. After the run no FRR process and no namespace of
// the lab is left.
func TestFRRLeavesOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	s, err := scenarios.Load("../library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var simRun *reports.Run
	for _, leaf := range []string{"leaf3", "leaf1"} {
		t.Run(leaf, func(t *testing.T) {
			if simRun == nil {
				base := *s
				simRun, _ = simBGP(t, &base)
			}
			frrOnKernel(t, s, leaf, simRun)
		})
	}
}

// frrOnKernel is TestFRRLeavesOnKernel with leaf as FRR's; simRun is s
// on sim.
func frrOnKernel(t *testing.T, s *scenarios.Scenario, leaf string, simRun *reports.Run) {
	sc := *s
	sc.ControlPlane = scenarios.ControlPlaneBGP
	sc.BGP.FRRLeaves = []string{leaf}
	rt := frrKernelRuntime(t, sc.Name)
	var pids []netns.Process
	held := false
	opts := scenarios.Options{Hold: func(ctx context.Context, b scenarios.Backend, live []scenarios.Instance) error {
		held = true
		dir, ok := rt.FRRLeaf(leaf)
		if !ok {
			return fmt.Errorf("%s is not an FRR leaf", leaf)
		}
		st, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(dir)), "state.json"))
		if err != nil {
			return err
		}
		var state netns.State
		if err := json.Unmarshal(st, &state); err != nil {
			return err
		}
		pids = state.Processes
		checkFRRKernel(ctx, t, rt, b, live, leaf)
		return nil
	}}
	run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("leaf-failure on kernel with frr_leaves [%s]: %v", leaf, err)
	}
	if run.Backend != "kernel" {
		t.Errorf("the run says backend %q, want kernel", run.Backend)
	}
	if !held {
		t.Error("the lab was never held")
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("kernel with FRR: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Checks) == 0 {
		t.Error("no checks ran")
	}
	var daemons []string
	for _, p := range pids {
		daemons = append(daemons, p.What)
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID)); err == nil {
			t.Errorf("FRR process %d (%s) still runs after the run", p.PID, p.What)
		}
	}
	slices.Sort(daemons)
	if want := []string{leaf + " bgpd", leaf + " zebra"}; !slices.Equal(daemons, want) {
		t.Errorf("processes recorded with the lab: %v, want %v", daemons, want)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	sameProbes(t, &sc, run, simRun)
	behind := 0
	for i, kp := range run.Probes {
		sp := simRun.Probes[i]
		if !slices.Contains(kp.Path, leaf) {
			continue
		}
		if kp.Replied {
			behind++
		}
		if kp.SwitchHops != sp.SwitchHops || !slices.Equal(kp.Path, sp.Path) {
			t.Logf("probe %d %s -> %s through FRR's %s: kernel %d switch hops %v; sim %d %v",
				i, kp.From, kp.To, leaf, kp.SwitchHops, kp.Path, sp.SwitchHops, sp.Path)
		}
	}
	if behind == 0 {
		t.Errorf("no answered probe crossed %s", leaf)
	}
}

// checkFRRKernel checks a held kernel lab with leaf as FRR's (see
// TestFRRLeavesOnKernel).
func checkFRRKernel(ctx context.Context, t *testing.T, rt *netnsrt.Runtime, b scenarios.Backend, live []scenarios.Instance, leaf string) {
	t.Helper()
	ins, ok := b.(scenarios.ControlPlaneInspector)
	if !ok {
		t.Fatal("the kernel backend has no control-plane inspector")
	}
	ss, err := ins.BGPSpeakers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vtep := map[string]netip.Addr{}
	for _, s := range ss {
		if s.Leaf {
			vtep[s.Node] = s.RouterID
		}
	}
	sessions, err := ins.BGPSessions(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 {
		t.Errorf("FRR's sessions on %s: %v, want one to each spine", leaf, sessions)
	}
	for _, s := range sessions {
		if !s.Established {
			t.Errorf("FRR's session to %s (%s) is %s", s.PeerNode, s.Peer, s.State)
		}
	}
	var frr, netbed []scenarios.Instance
	for _, in := range live {
		if leafOfHost(rt, in.Host) == leaf {
			frr = append(frr, in)
		} else {
			netbed = append(netbed, in)
		}
	}
	if len(frr) == 0 || len(netbed) == 0 {
		t.Fatalf("instances behind FRR's leaf %v, behind netbed's %v: want both", frr, netbed)
	}
	// Both ways, between FRR's leaf and each netbed leaf.
	probed := map[string]bool{}
	for _, nb := range netbed {
		l := leafOfHost(rt, nb.Host)
		if probed[l] {
			continue
		}
		probed[l] = true
		for _, pair := range [][2]scenarios.Instance{{frr[0], nb}, {nb, frr[0]}} {
			p, err := b.Probe(ctx, scenarios.ProbeRequest{From: pair[0].Name, To: pair[1].Name, Proto: "icmp", Tag: "frr", Timeout: 2 * time.Second})
			if err != nil {
				t.Fatalf("probe %s -> %s: %v", pair[0].Name, pair[1].Name, err)
			}
			if !p.Delivered || !p.Replied {
				t.Errorf("%s (%s) -> %s (%s) on kernel: delivered %v replied %v, dropped at %s: %s",
					pair[0].Name, pair[0].Host, pair[1].Name, pair[1].Host, p.Delivered, p.Replied, p.DropAt, p.Reason)
			}
		}
	}
	// FRR's kernel: zebra's entries for netbed's instances.
	kv := readKernel(t, rt, leaf)
	for _, in := range netbed {
		mac := strings.ToLower(in.MAC)
		want := vtep[leafOfHost(rt, in.Host)]
		if !slices.Contains(kv.macAt[mac], want) {
			t.Errorf("FRR's kernel on %s: %s (%s) at %v, want towards %v (bridge fdb: %v)", leaf, in.Name, mac, kv.macAt[mac], want, kv.fdb)
		}
		if !slices.ContainsFunc(kv.neigh, func(e string) bool { return strings.HasSuffix(e, " "+in.IP.String()+" "+mac) }) {
			t.Errorf("FRR's kernel on %s has no neighbour %s lladdr %s (%s): %v", leaf, in.IP, mac, in.Name, kv.neigh)
		}
		if !slices.ContainsFunc(kv.fdb, func(e string) bool { return strings.HasSuffix(e, " "+mac+" master") }) {
			t.Errorf("FRR's kernel on %s: no bridge entry (extern_learn) for %s (%s): %v", leaf, in.Name, mac, kv.fdb)
		}
	}
	var others []string
	for l, a := range vtep {
		if l == leaf {
			continue
		}
		others = append(others, l)
		if !slices.ContainsFunc(kv.fdb, func(e string) bool { return strings.HasSuffix(e, " 00:00:00:00:00:00 dst "+a.String()) }) {
			t.Errorf("FRR's kernel on %s has no flood entry towards %s (%v): %v", leaf, l, a, kv.fdb)
		}
	}
	slices.Sort(others)
	// netbed's speakers: FRR's type 3 and type 2 routes.
	for _, l := range others {
		c, ok := rt.Speaker(l)
		if !ok {
			t.Errorf("%s's speaker does not run", l)
			continue
		}
		ps, err := c.Paths(ctx)
		if err != nil {
			t.Fatal(err)
		}
		type3 := false
		macs := map[string]bool{}
		for _, p := range ps {
			if p.Route.VTEP != vtep[leaf] {
				continue
			}
			switch p.Route.Type {
			case evpn.InclusiveMulticast:
				type3 = true
			case evpn.MACIP:
				macs[p.Route.MAC.String()] = true
			}
		}
		if !type3 {
			t.Errorf("%s's speaker holds no type 3 route of FRR's %s", l, leaf)
		}
		for _, in := range frr {
			if !macs[strings.ToLower(in.MAC)] {
				t.Errorf("%s's speaker holds no type 2 route of FRR's %s for %s (%s): %v", l, leaf, in.Name, in.MAC, macs)
			}
		}
	}
	// A netbed leaf's kernel sends FRR's instances to FRR's VTEP.
	kv2 := readKernel(t, rt, others[0])
	for _, in := range frr {
		if mac := strings.ToLower(in.MAC); !slices.Contains(kv2.macAt[mac], vtep[leaf]) {
			t.Errorf("%s's kernel: %s (%s) at %v, want towards FRR's %s (%v)", others[0], in.Name, mac, kv2.macAt[mac], leaf, vtep[leaf])
		}
	}
}

// childPlugins, in a test's child process, names its parent's pluginDir
// (TestMain builds nothing then: a killed child would leave its own).
const childPlugins = "NETNSRT_CHILD_PLUGINS"

// TestKilledFRRKernelRunIsCleaned is TestKilledRunIsCleaned with an FRR
// leaf on the kernel backend: a child process loads a gen 2 lab with
// control_plane bgp and leaf1 as FRR on the kernel backend and is killed
// with SIGKILL; FRR's zebra and bgpd (recorded with the lab), the Open
// vSwitch daemons and the speakers outlive it. netns.Destroy, what
// 'netbed down --lab' runs, then leaves no process of the lab (none
// whose command line names its state directory, FRR's included) and no
// namespace.
func TestKilledFRRKernelRunIsCleaned(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFRRKernelChild$", "-test.v")
	cmd.Env = append(os.Environ(), "NETNSRT_FRR_CHILD=1", "NETNSRT_STATE="+root, childPlugins+"="+pluginDir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lab := ""
	sc := bufio.NewScanner(stdout)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if l, ok := strings.CutPrefix(sc.Text(), "LAB "); ok {
			lab = l
			break
		}
	}
	if lab == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child did not load a lab:\n%s", strings.Join(out, "\n"))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	opt := &netns.Options{StateRoot: root}
	t.Cleanup(func() { netns.Destroy(lab, opt) }) // if the test stops before its own
	b, err := os.ReadFile(filepath.Join(opt.LabDir(lab), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st netns.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var frr []string
	for _, p := range st.Processes {
		frr = append(frr, p.What)
		if !running(p.PID) {
			t.Errorf("%s (%d) did not outlive the killed run: nothing to clean", p.What, p.PID)
		}
	}
	slices.Sort(frr)
	if want := []string{"leaf1 bgpd", "leaf1 zebra"}; !slices.Equal(frr, want) {
		t.Errorf("processes recorded with the lab: %v, want %v", frr, want)
	}
	if left := processesNaming(root); len(left) == 0 {
		t.Error("no process of the killed run names its state directory: the check below would prove nothing")
	}
	if _, err := netns.Destroy(lab, opt); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Processes {
		if running(p.PID) {
			t.Errorf("%s (%d) still runs after netns.Destroy", p.What, p.PID)
		}
	}
	if left := processesNaming(root); len(left) > 0 {
		t.Errorf("processes left after netns.Destroy: %v", left)
	}
	if left := namespacesOf(lab); len(left) > 0 {
		t.Errorf("namespaces left after netns.Destroy: %v", left)
	}
}

// running reports whether pid runs: it exists and is no zombie (a killed
// orphan waits in /proc until init reaps it).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// processesNaming lists the running processes whose command line names
// dir (the daemons a lab under dir started: FRR's, Open vSwitch's, the
// speakers').
func processesNaming(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		out = append(out, e.Name()+" "+strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	return out
}

// TestFRRKernelChild is the killed child of
// TestKilledFRRKernelRunIsCleaned.
func TestFRRKernelChild(t *testing.T) {
	if os.Getenv("NETNSRT_FRR_CHILD") != "1" {
		t.Skip("run by TestKilledFRRKernelRunIsCleaned")
	}
	topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "frrkill", Spines: 2, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := evpn.New(topo, evpn.Options{LeafTables: true})
	if err != nil {
		t.Fatal(err)
	}
	rt := netnsrt.New(netnsrt.Options{Scenario: "frrkill", StateRoot: os.Getenv("NETNSRT_STATE"), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true, FRRLeaves: []string{"leaf1"}})
	if err := rt.Load(context.Background(), f, topo); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LAB %s\n", rt.LabName())
	time.Sleep(time.Minute)
}

// TestFRRSilentLeafBFD fails FRR's leaf silently with bgp: {bfd: true}
// and BGP's default timers (hold 9 s, keepalive 3 s), on netns and on the
// kernel backend: the silent-failure scenario with leaf2 as FRR. The
// spines' BFD withdraws it before BGP's hold timer could have (hold −
// keepalive = 6 s after the fault), and its restore brings its sessions
// back: FRR's bfdd runs a single-hop session with each spine from its
// start (bfdd.conf), so that a spine that took the leaf's BGP session
// down on BFD's word, and takes it back only once BFD is up, gets its
// BFD up before any TCP connection (bgpd asks bfdd for a session only
// after one: an iBGP peer counts as multihop until it saw it connected).
// Every check of the run passes, and bfdd's peers are up at the end.
func TestFRRSilentLeafBFD(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	s, err := scenarios.Load("../testdata/silent-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.BGP.Hold, s.BGP.Keepalive, s.BGP.BFD = 0, 0, true
	bfdPeers := func(ctx context.Context, rt *netnsrt.Runtime) []string {
		dir, _ := rt.FRRLeaf("leaf2")
		out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", dir, "-c", "show bfd peers json").CombinedOutput()
		if err != nil {
			t.Errorf("vtysh show bfd peers: %v: %s", err, out)
			return nil
		}
		var ps []struct {
			Peer   string `json:"peer"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &ps); err != nil {
			t.Errorf("show bfd peers json: %v: %s", err, out)
		}
		var up []string
		for _, p := range ps {
			if p.Status == "up" {
				up = append(up, p.Peer)
			}
		}
		return up
	}
	check := func(t *testing.T, run *reports.Run, up []string) {
		if len(up) != 2 {
			t.Errorf("FRR's bfdd peers up at the end: %v; want both spines", up)
		}
		c := silentConvergence(t, run, "leaf2")
		t.Logf("silent failure of FRR's leaf2 with BFD on %s: converged in %v", run.Backend, c)
		if c >= 6*time.Second {
			t.Errorf("FRR's leaf2 failed silently withdrawn after %v: no sooner than BGP's hold timer would have", c)
		}
	}
	t.Run("netns", func(t *testing.T) {
		var up []string
		run := runFRR(t, s, []string{"leaf2"}, func(ctx context.Context, rt *netnsrt.Runtime, _ []scenarios.Instance) error {
			up = bfdPeers(ctx, rt)
			return nil
		})
		check(t, run, up)
	})
	t.Run("kernel", func(t *testing.T) {
		sc := *s
		sc.BGP.FRRLeaves = []string{"leaf2"}
		rt := frrKernelRuntime(t, sc.Name)
		var up []string
		opts := scenarios.Options{Hold: func(ctx context.Context, _ scenarios.Backend, _ []scenarios.Instance) error {
			up = bfdPeers(ctx, rt)
			return nil
		}}
		run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
			Runtime: rt, StoreDir: t.TempDir()}), opts)
		if err != nil {
			t.Fatalf("silent-failure on kernel with frr_leaves [leaf2] and BFD: %v", err)
		}
		for _, c := range run.Checks {
			if !c.Passed {
				t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
			}
		}
		if left := namespacesOf(rt.LabName()); len(left) > 0 {
			t.Errorf("namespaces left after the run: %v", left)
		}
		check(t, run, up)
	})
}
