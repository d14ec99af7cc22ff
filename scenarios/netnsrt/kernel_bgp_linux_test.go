package netnsrt_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/kernel/bridge"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestKernelBGP runs shipped gen 2 scenarios with control_plane: bgp on
// the kernel backend: GoBGP speakers in the leaves' and spines'
// namespaces, their sessions over the kernel's underlay, and each leaf's
// bridge and VXLAN devices programmed from its own speaker's best paths.
// Every check passes; every probe (but a background stream's, whose
// outages are real time on the kernel and virtual time on sim) has the
// same outcome as on sim with the BGP model, and every speaker ends with
// the same routes as sim's. After every fail, restore and drift step,
// and at the end, each running leaf's kernel (its VXLAN devices' FDB,
// the bridge's extern_learn entries towards them and its static entries
// on the access ports, and its bridges' extern_learn neighbours, read
// with netlink as `bridge fdb` and `ip neigh` show them) holds exactly
// what its speaker's routes say, remote and local; once a leaf has failed no other leaf's kernel points at its VTEP;
// once an instance has drifted every other leaf's kernel points its MAC
// at its new leaf's VTEP only (kernelBGPScenarios).
func TestKernelBGP(t *testing.T) {
	testutil.RequireRoot(t)
	names := kernelBGPScenarios
	if os.Getenv("NETNSRT_LIBRARY") != "" {
		names = libraryScenarios
	}
	for _, name := range names {
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Generations, scenarios.GenEVPN) || s.Controller.Replicas > 1 {
			continue // replicas: each hands out addresses from its own cursor, so runs differ route by route (TestBGPLibrary)
		}
		t.Run(name, func(t *testing.T) {
			s.ControlPlane = scenarios.ControlPlaneBGP
			start := time.Now()
			kRun, speakers := runKernelBGP(t, s)
			t.Logf("kernel run: %v wall time (test so far %v)", kRun.Elapsed, time.Since(start).Round(time.Millisecond))
			simRun, simSpeakers := simBGP(t, s)
			for _, n := range slices.Sorted(mapKeys(speakers)) {
				if got, want := speakers[n], simSpeakers[n]; !slices.Equal(got, want) {
					t.Errorf("%s's speaker at the end, on kernel:\n  %s\non sim:\n  %s", n, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
			if len(speakers) != len(simSpeakers) {
				t.Errorf("%d speakers on kernel, %d on sim", len(speakers), len(simSpeakers))
			}
			sameProbes(t, s, kRun, simRun)
		})
	}
}

// kernelBGPScenarios are TestKernelBGP's scenarios in make test: a
// leaf's failure and restore, a pod's drift to another leaf, and three
// tenants routed between subnets (symmetric IRB) with a leaf failed.
// NETNSRT_LIBRARY=a,b,... runs those of the named shipped scenarios that
// name gen 2 instead.
var kernelBGPScenarios = []string{"leaf-failure", "pod-drift-keeps-ip", "three-tenants"}

// runKernelBGP runs s (control_plane: bgp) for gen 2 on the kernel
// backend, checking each leaf's kernel against its speaker as the
// steps go (kernelWatch), and returns the report and every speaker's
// final routes (finalSpeakers).
func runKernelBGP(t *testing.T, s *scenarios.Scenario) (*reports.Run, map[string][]string) {
	t.Helper()
	rt := shortKernelRuntime(t, s.Name)
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
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("%s on kernel with control_plane bgp: %v", s.Name, err)
	}
	if run.Backend != "kernel" {
		t.Errorf("the run says backend %q, want kernel", run.Backend)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Checks) == 0 {
		t.Error("kernel: no checks ran")
	}
	if len(speakers) == 0 {
		t.Error("no speakers read at the end of the kernel run")
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	for _, want := range w.wantChecks() {
		if !w.done[want] {
			t.Errorf("the kernel was never checked %s", want)
		}
	}
	return run, speakers
}

// shortKernelRuntime is a kernel runtime whose state root is short: a
// speaker's socket path there must fit a unix socket address (108
// bytes) under a long scenario's name.
func shortKernelRuntime(t *testing.T, scenario string) *netnsrt.Runtime {
	t.Helper()
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true})
}

// sameProbes compares every probe of the kernel run with sim's: whether
// it reached its destination, was answered, and its verdict. A
// background stream's probes are left out: on the kernel a move or a
// failure costs the real time BGP takes to converge, on sim the model's.
func sameProbes(t *testing.T, s *scenarios.Scenario, kRun, simRun *reports.Run) {
	t.Helper()
	background := map[string]bool{}
	for _, st := range s.Steps {
		if st.Traffic != nil && st.Traffic.Background {
			background[st.Traffic.Tag] = true
		}
	}
	if len(kRun.Probes) != len(simRun.Probes) {
		t.Fatalf("kernel sent %d probes, sim %d", len(kRun.Probes), len(simRun.Probes))
	}
	compared := 0
	for i, sp := range simRun.Probes {
		kp := kRun.Probes[i]
		if background[sp.Tag] {
			continue
		}
		compared++
		if sp.From != kp.From || sp.To != kp.To || sp.Tag != kp.Tag {
			t.Errorf("probe %d: kernel %s -> %s (%s), sim %s -> %s (%s)", i, kp.From, kp.To, kp.Tag, sp.From, sp.To, sp.Tag)
			continue
		}
		if sp.Delivered != kp.Delivered || sp.Replied != kp.Replied || sp.Verdict() != kp.Verdict() {
			t.Errorf("probe %d %s -> %s (%s): kernel delivered %v replied %v (dropped at %s: %s), sim delivered %v replied %v (dropped at %s: %s)",
				i, sp.From, sp.To, sp.Tag, kp.Delivered, kp.Replied, kp.DropAt, kp.Reason, sp.Delivered, sp.Replied, sp.DropAt, sp.Reason)
		}
		if kp.Delivered && len(kp.Path) == 0 {
			t.Errorf("probe %d %s -> %s delivered on kernel with no path", i, sp.From, sp.To)
		}
	}
	if compared == 0 {
		t.Error("no probe compared with sim")
	}
}

// stepMsg is the runner's progress message as a step starts.
var stepMsg = regexp.MustCompile(`^step (\d+)/\d+ \S+$`)

// kernelWatch follows a kernel run's steps: before a fail or drift step
// it reads what the kernel holds, and as the next step starts it checks
// that the kernel followed BGP (settle, failed, drifted).
type kernelWatch struct {
	t  *testing.T
	s  *scenarios.Scenario
	rt *netnsrt.Runtime
	// prev is the step that ran last, -1 before the first.
	prev   int
	inited bool
	// before is every leaf's kernel view as a fail or drift step began.
	before map[string]kernelView
	// failed are the leaves failed and not restored.
	failed map[string]bool
	// done names the checks that ran (wantChecks).
	done map[string]bool
}

// wantChecks are the checks the scenario's steps call for.
func (w *kernelWatch) wantChecks() []string {
	var out []string
	for _, st := range w.s.Steps {
		switch {
		case st.Fail != nil && strings.HasPrefix(st.Fail.Node, "leaf"):
			out = append(out, "after "+st.Fail.Node+" failed")
		case st.Drift != nil:
			for _, in := range st.Drift.Instances {
				out = append(out, "after "+in+" drifted to "+st.Drift.To)
			}
		}
	}
	return out
}

func (w *kernelWatch) progress(msg string) {
	m := stepMsg.FindStringSubmatch(msg)
	if m == nil {
		return
	}
	if !w.inited {
		w.inited, w.prev, w.failed, w.done = true, -1, map[string]bool{}, map[string]bool{}
	}
	i, _ := strconv.Atoi(m[1])
	i-- // the runner counts steps from 1
	if w.prev >= 0 {
		w.after(&w.s.Steps[w.prev])
	}
	w.prev = i
	st := &w.s.Steps[i]
	if st.Fail != nil || st.Drift != nil {
		w.before = map[string]kernelView{}
		for _, l := range w.leaves() {
			w.before[l] = readKernel(w.t, w.rt, l)
		}
	}
}

// after checks the kernel once step st has run.
func (w *kernelWatch) after(st *scenarios.Step) {
	t := w.t
	switch {
	case st.Fail != nil:
		node := st.Fail.Node
		if !strings.HasPrefix(node, "leaf") {
			w.settle("after " + node + " failed")
			return
		}
		w.failed[node] = true
		v := vtepOf(t, w.rt, node)
		pointing := 0
		for l, kv := range w.before {
			if l != node {
				pointing += kv.at(v)
			}
		}
		if pointing == 0 {
			t.Errorf("before %s failed, no other leaf's kernel pointed at its VTEP %s: nothing to check", node, v)
		}
		what := "after " + node + " failed"
		w.poll(what, func() string {
			for _, l := range w.leaves() {
				if n := readKernel(t, w.rt, l).at(v); n > 0 {
					return fmt.Sprintf("%s's kernel still holds %d FDB or neighbour entries pointing at %s's VTEP %s", l, n, node, v)
				}
			}
			return ""
		})
		t.Logf("%s: %d entries of the other leaves' kernels pointed at %s before", what, pointing, v)
		w.settle(what)
		w.done[what] = true
	case st.Restore != nil:
		delete(w.failed, st.Restore.Node)
		w.settle("after " + st.Restore.Node + " was restored")
	case st.Drift != nil:
		for _, in := range st.Drift.Instances {
			w.drifted(in, st.Drift.To)
		}
		w.settle("after a drift")
	}
}

// drifted checks that every leaf's kernel points instance in's MAC at
// the VTEP of host's leaf and nowhere else, and that one did before at
// another VTEP.
func (w *kernelWatch) drifted(in, host string) {
	t := w.t
	what := "after " + in + " drifted to " + host
	mac := instanceMAC(t, w.rt, in)
	leaf := leafOfHost(w.rt, host)
	v := vtepOf(t, w.rt, leaf)
	moved := false
	for _, kv := range w.before {
		for _, d := range kv.macAt[mac] {
			if d != v {
				moved = true
			}
		}
	}
	if !moved {
		t.Errorf("%s: before the drift no leaf's kernel pointed %s's MAC %s at another VTEP than %s's %s", what, in, mac, leaf, v)
	}
	w.poll(what, func() string {
		seen := 0
		for _, l := range w.leaves() {
			for _, d := range readKernel(t, w.rt, l).macAt[mac] {
				if d != v || l == leaf {
					return fmt.Sprintf("%s's kernel points %s's MAC %s at %s, want %s's VTEP %s", l, in, mac, d, leaf, v)
				}
				seen++
			}
		}
		if seen == 0 {
			return fmt.Sprintf("no leaf's kernel points %s's MAC %s at %s's VTEP %s", in, mac, leaf, v)
		}
		return ""
	})
	w.done[what] = true
}

// settle checks that every running leaf's kernel holds what its
// speaker's best paths say (kernelView.want).
func (w *kernelWatch) settle(what string) {
	t := w.t
	entries := 0
	for _, l := range w.leaves() {
		w.poll(what+": "+l, func() string {
			c, ok := w.rt.Speaker(l)
			if !ok {
				return "no speaker"
			}
			rs, err := c.Routes(context.Background())
			if err != nil {
				return fmt.Sprintf("routes of the speaker: %v", err)
			}
			kv := readKernel(t, w.rt, l)
			want := kv.want(rs, vtepOf(t, w.rt, l))
			if d := diff(kv.fdb, want.fdb); d != "" {
				return "FDB of the VXLAN devices against the speaker's routes: " + d
			}
			if d := diff(kv.neigh, want.neigh); d != "" {
				return "extern_learn neighbours against the speaker's routes: " + d
			}
			entries += len(kv.dsts)
			return ""
		})
	}
	if entries == 0 {
		t.Errorf("%s: no leaf's kernel holds an FDB entry, neighbour or route towards another VTEP", what)
	}
}

// poll retries check until it returns "" or 10 s have passed (then it
// fails the test with what check said last).
func (w *kernelWatch) poll(what string, check func() string) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		bad := check()
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("%s: %s", what, bad)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaves are the topology's leaves that have not failed.
func (w *kernelWatch) leaves() []string {
	var out []string
	for _, n := range w.rt.Lab().Nodes() {
		if strings.HasPrefix(n, "leaf") && !w.failed[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// kernelView is what a leaf's kernel holds of the overlay: the remote
// entries of its VXLAN devices' FDB (`bridge fdb show dev vx<VNI>`:
// self with a dst, and the bridge's extern_learn entries) and its
// bridges' extern_learn neighbours (`ip neigh
// show dev br<VNI>`).
type kernelView struct {
	// fdb is "vni V MAC dst VTEP" (the VXLAN device's, self), "vni V
	// MAC master" (the bridge's, extern_learn) and "vni V MAC local"
	// (static on an access port), sorted; L2 VNIs.
	fdb   []string
	neigh []string // "vni V IP MAC", sorted; L2 VNIs
	// l2 are the VNIs with a bridge holding an anycast gateway
	// address (an L3 VNI's bridge has none).
	l2 map[uint32]bool
	// dsts counts by VTEP the entries pointing at it: every VXLAN
	// device's FDB entries (L3 VNIs' too) by dst, every bridge's
	// neighbours by the VTEP of their MAC (an L3 VNI's VTEP neighbour
	// by its address), and the tenants' routes by gateway.
	dsts  map[netip.Addr]int
	macAt map[string][]netip.Addr // MAC → the dsts of its FDB entries
}

// at counts the entries pointing at vtep.
func (kv kernelView) at(vtep netip.Addr) int { return kv.dsts[vtep] }

func readKernel(t testing.TB, rt *netnsrt.Runtime, leaf string) kernelView {
	t.Helper()
	kv := kernelView{l2: map[uint32]bool{}, dsts: map[netip.Addr]int{}, macAt: map[string][]netip.Addr{}}
	h, err := rt.Lab().Handle(leaf)
	if err != nil {
		t.Fatalf("%s: %v", leaf, err)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("%s: links: %v", leaf, err)
	}
	macVTEP := map[string]netip.Addr{}
	var bridges []netlink.Link
	for _, lk := range links {
		name := lk.Attrs().Name
		if vx, ok := lk.(*netlink.Vxlan); ok {
			fdb, err := h.NeighList(lk.Attrs().Index, unix.AF_BRIDGE)
			if err != nil {
				t.Fatalf("%s: fdb of %s: %v", leaf, name, err)
			}
			var master []string
			for _, n := range fdb {
				// The bridge's entries come with its index
				// (NDA_MASTER), not NTF_MASTER, in a dump.
				if n.MasterIndex != 0 && n.Flags&netlink.NTF_SELF == 0 && n.Flags&netlink.NTF_EXT_LEARNED != 0 && len(n.HardwareAddr) == 6 {
					master = append(master, n.HardwareAddr.String())
					kv.fdb = append(kv.fdb, fmt.Sprintf("vni %d %s master", vx.VxlanId, n.HardwareAddr))
					continue
				}
				if n.Flags&netlink.NTF_SELF == 0 || n.IP == nil || len(n.HardwareAddr) != 6 {
					continue
				}
				d, _ := netip.AddrFromSlice(n.IP)
				d = d.Unmap()
				kv.dsts[d]++
				mac := n.HardwareAddr.String()
				kv.fdb = append(kv.fdb, fmt.Sprintf("vni %d %s dst %s", vx.VxlanId, mac, d))
				if mac != "00:00:00:00:00:00" {
					kv.macAt[mac] = append(kv.macAt[mac], d)
					macVTEP[mac] = d
				}
			}
			// The bridge's entries towards the VXLAN device count
			// for the VTEP their MAC's own entry points at.
			for _, mac := range master {
				if d, ok := macVTEP[mac]; ok {
					kv.dsts[d]++
				}
			}
			continue
		}
		if _, ok := lk.(*netlink.Bridge); ok && strings.HasPrefix(name, bridge.PrefixBridge) {
			bridges = append(bridges, lk)
		}
	}
	for _, br := range bridges {
		vni, err := strconv.ParseUint(strings.TrimPrefix(br.Attrs().Name, bridge.PrefixBridge), 10, 32)
		if err != nil {
			continue
		}
		addrs, err := h.AddrList(br, netlink.FAMILY_V4)
		if err != nil {
			t.Fatalf("%s: addresses of %s: %v", leaf, br.Attrs().Name, err)
		}
		if len(addrs) > 0 {
			kv.l2[uint32(vni)] = true
			// The access ports' static entries: the MACs bound on
			// this leaf.
			for _, lk := range links {
				if lk.Attrs().MasterIndex != br.Attrs().Index || lk.Type() == "vxlan" {
					continue
				}
				fdb, err := h.NeighList(lk.Attrs().Index, unix.AF_BRIDGE)
				if err != nil {
					t.Fatalf("%s: fdb of %s: %v", leaf, lk.Attrs().Name, err)
				}
				for _, n := range fdb {
					if n.MasterIndex != 0 && n.Flags&netlink.NTF_SELF == 0 && n.State&netlink.NUD_NOARP != 0 && len(n.HardwareAddr) == 6 {
						kv.fdb = append(kv.fdb, fmt.Sprintf("vni %d %s local", vni, n.HardwareAddr))
					}
				}
			}
		}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			ns, err := h.NeighList(br.Attrs().Index, fam)
			if err != nil {
				t.Fatalf("%s: neighbours of %s: %v", leaf, br.Attrs().Name, err)
			}
			for _, n := range ns {
				if n.Flags&netlink.NTF_EXT_LEARNED == 0 || len(n.HardwareAddr) != 6 {
					continue
				}
				mac := n.HardwareAddr.String()
				ip, _ := netip.AddrFromSlice(n.IP)
				if d, ok := macVTEP[mac]; ok {
					kv.dsts[d]++
				} else {
					kv.dsts[ip.Unmap()]++ // an L3 VNI's VTEP with its router MAC
				}
				if kv.l2[uint32(vni)] {
					kv.neigh = append(kv.neigh, fmt.Sprintf("vni %d %s %s", vni, ip.Unmap(), mac))
				}
			}
		}
	}
	// Routes through a VTEP (the tenants' tables: host routes and
	// type-5 prefixes over br<L3VNI>), IPv4 or IPv4-mapped.
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("%s: routes: %v", leaf, err)
	}
	for _, r := range routes {
		if r.Gw == nil {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		if r.Table != unix.RT_TABLE_MAIN && r.Table != unix.RT_TABLE_LOCAL {
			kv.dsts[gw.Unmap()]++
		}
	}
	// Keep the L2 VNIs' entries only in fdb (the L3 VNIs' router MACs
	// are counted in dsts).
	kv.fdb = slices.DeleteFunc(kv.fdb, func(e string) bool {
		var vni uint32
		fmt.Sscanf(e, "vni %d", &vni)
		return !kv.l2[vni]
	})
	slices.Sort(kv.fdb)
	slices.Sort(kv.neigh)
	return kv
}

// want is what kv's L2 VNIs should hold from a leaf's speaker's best
// paths rs (the leaf's own VTEP self): per remote type 2 an FDB entry
// towards its VTEP, the bridge's entry sending its MAC to the VXLAN
// device and, with an IP, a neighbour; per local type 2 a static entry
// on an access port; per remote type 3 an
// all-zero entry (head-end replication).
func (kv kernelView) want(rs []evpn.Route, self netip.Addr) kernelView {
	var out kernelView
	for _, r := range rs {
		if !kv.l2[r.VNI] {
			continue
		}
		if r.VTEP == self {
			if e := fmt.Sprintf("vni %d %s local", r.VNI, r.MAC); r.Type == evpn.MACIP && !slices.Contains(out.fdb, e) {
				out.fdb = append(out.fdb, e)
			}
			continue
		}
		switch r.Type {
		case evpn.MACIP:
			for _, e := range []string{fmt.Sprintf("vni %d %s dst %s", r.VNI, r.MAC, r.VTEP), fmt.Sprintf("vni %d %s master", r.VNI, r.MAC)} {
				if !slices.Contains(out.fdb, e) {
					out.fdb = append(out.fdb, e)
				}
			}
			if r.IP.IsValid() {
				out.neigh = append(out.neigh, fmt.Sprintf("vni %d %s %s", r.VNI, r.IP, r.MAC))
			}
		case evpn.InclusiveMulticast:
			out.fdb = append(out.fdb, fmt.Sprintf("vni %d 00:00:00:00:00:00 dst %s", r.VNI, r.VTEP))
		}
	}
	slices.Sort(out.fdb)
	slices.Sort(out.neigh)
	return out
}

// diff says what have lacks and holds beyond want, or "".
func diff(have, want []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("missing %v, stale %v", missing, extra)
}

// instanceMAC reads instance in's MAC in its namespace.
func instanceMAC(t testing.TB, rt *netnsrt.Runtime, in string) string {
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
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("links of %s: %v", in, err)
	}
	for _, lk := range links {
		if lk.Attrs().Name != "lo" && len(lk.Attrs().HardwareAddr) == 6 {
			return lk.Attrs().HardwareAddr.String()
		}
	}
	t.Fatalf("%s has no Ethernet interface", in)
	return ""
}

// leafOfHost is the leaf host hangs from.
func leafOfHost(rt *netnsrt.Runtime, host string) string {
	for _, n := range rt.Topology().Neighbors(host) {
		if strings.HasPrefix(n, "leaf") {
			return n
		}
	}
	return ""
}

// TestKernelBGPDirect runs cross-subnet-hops (NETNSRT_LIBRARY=a,b,...:
// the named shipped scenarios that name ebpf-direct; policy-verdicts and
// spine-failure pass too, 9 and 6 s more at load 15) for ebpf-direct
// with control_plane: bgp on the kernel backend: a speaker per host
// advertises its pod CIDR to its leaves, and each leaf's kernel routes
// the CIDRs its speaker learnt (kernel.ModelRoutes from the model's
// router, which the speaker's best paths fill). Every check passes,
// every probe has the same outcome as on sim (whose ebpf-direct
// computes the pod CIDRs: the settled state BGP must reach), every
// leaf's speaker holds its hosts' pod CIDRs and its kernel's main table
// routes each of them.
func TestKernelBGPDirect(t *testing.T) {
	testutil.RequireRoot(t)
	names := []string{"cross-subnet-hops"}
	if os.Getenv("NETNSRT_LIBRARY") != "" {
		names = libraryScenarios
	}
	for _, name := range names {
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Generations, scenarios.GenEBPFDirect) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			sc := *s
			sc.ControlPlane = scenarios.ControlPlaneBGP
			rt := shortKernelRuntime(t, sc.Name)
			opts := scenarios.Options{Hold: func(context.Context, scenarios.Backend, []scenarios.Instance) error {
				podCIDRsOnLeaves(t)(rt)
				kernelRoutesCIDRs(t, rt)
				return nil
			}}
			kRun, err := scenarios.Run(context.Background(), &sc, scenarios.GenEBPFDirect, scenarios.NewFabricBackend(scenarios.FabricOptions{
				Runtime: rt, StoreDir: t.TempDir()}), opts)
			if err != nil {
				t.Fatalf("%s on kernel with control_plane bgp: %v", sc.Name, err)
			}
			for _, c := range kRun.Checks {
				if !c.Passed {
					t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
				}
			}
			if left := namespacesOf(rt.LabName()); len(left) > 0 {
				t.Errorf("namespaces left after the run: %v", left)
			}
			simRun := simDirect(t, s)
			t.Logf("kernel run: %v wall time (sim: %v)", kRun.Elapsed, simRun.Elapsed)
			sameProbes(t, s, kRun, simRun)
		})
	}
}

// kernelRoutesCIDRs checks that every leaf's kernel routes each pod
// CIDR of the hosts on its links (the CIDRs its speaker learnt).
func kernelRoutesCIDRs(t *testing.T, rt *netnsrt.Runtime) {
	t.Helper()
	var want map[string][]netip.Prefix
	rt.Mutate(func() error {
		want = attachedCIDRs(rt)
		return nil
	})
	for leaf, cidrs := range want {
		h, err := rt.Lab().Handle(leaf)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cidrs {
			rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: c.Addr().AsSlice(), Mask: net.CIDRMask(c.Bits(), 32)}}, netlink.RT_FILTER_DST)
			if err != nil {
				t.Fatalf("%s: routes to %v: %v", leaf, c, err)
			}
			if len(rs) == 0 {
				t.Errorf("%s's kernel has no route to the pod CIDR %v its speaker learnt", leaf, c)
			}
		}
	}
}

// kernelDirectFailure fails host1 by power on ebpf-direct with BGP: its
// pod is unreachable while its leaf has withdrawn its pod CIDR, and
// reachable again after the restore.
const kernelDirectFailure = `name: kernel-direct-failure
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 2}}
generations: [ebpf-direct]
control_plane: bgp
networks:
  - {name: pods, subnet: 10.8.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 4, network: pods, hosts: [host1, host2, host3, host4]}
  - traffic: {from: [p-2, p-4], to: [p-1, p-3], matrix: true, tag: before}
  - expect: {tag: before, all_reachable: true}
  - fail: {node: host1}
  - traffic: {from: [p-2, p-4], to: [p-1, p-3], matrix: true, tag: during}
  - expect: {tag: during, reachable: ["p-2 -> p-3", "p-4 -> p-3"], unreachable: ["p-2 -> p-1", "p-4 -> p-1"]}
  - restore: {node: host1}
  - traffic: {from: [p-2, p-4], to: [p-1, p-3], matrix: true, tag: after}
  - expect: {tag: after, all_reachable: true}
`

// TestKernelBGPDirectHostFailure: on the kernel backend a host that
// loses power has its pod CIDR withdrawn by its leaf's speaker, and the
// leaf's kernel route to it goes with the withdrawal (the kernel keeps a
// route whose device lost carrier, marking it linkdown); after the restore the
// speaker learns it again and the route is back. Every check passes and
// every probe has the same outcome as on sim.
func TestKernelBGPDirectHostFailure(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Parse("kernel-direct-failure.yaml", []byte(kernelDirectFailure))
	if err != nil {
		t.Fatal(err)
	}
	rt := shortKernelRuntime(t, s.Name)
	var cidr netip.Prefix
	routed := func() bool {
		h, err := rt.Lab().Handle("leaf1")
		if err != nil {
			t.Fatal(err)
		}
		rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), 32)}}, netlink.RT_FILTER_DST)
		if err != nil {
			t.Fatalf("leaf1: routes to %v: %v", cidr, err)
		}
		return len(rs) > 0
	}
	waitRouted := func(what string, want bool) {
		start := time.Now()
		for routed() != want {
			if time.Since(start) > 10*time.Second {
				t.Errorf("%s: leaf1's kernel routes host1's pod CIDR %v: %v, want %v", what, cidr, !want, want)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: leaf1's kernel routes %v: %v, %v after the step began", what, cidr, want, time.Since(start).Round(time.Millisecond))
	}
	checked := 0
	opts := scenarios.Options{Progress: func(msg string) {
		switch {
		case strings.HasPrefix(msg, "step 4/") && stepMsg.MatchString(msg): // fail: {node: host1}
			rt.Mutate(func() error {
				n, _ := rt.Node("host1")
				cidr = n.(*ebpf.Node).Config().NodeCIDR
				return nil
			})
			if !routed() {
				t.Errorf("before host1 failed, leaf1's kernel has no route to its pod CIDR %v", cidr)
			}
		case strings.HasPrefix(msg, "step 5/") && stepMsg.MatchString(msg):
			waitRouted("after host1 failed", false)
			checked++
		case strings.HasPrefix(msg, "step 8/") && stepMsg.MatchString(msg):
			waitRouted("after host1 was restored", true)
			checked++
		}
	}}
	kRun, err := scenarios.Run(context.Background(), s, scenarios.GenEBPFDirect, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("on kernel: %v", err)
	}
	if checked != 2 {
		t.Errorf("leaf1's kernel checked %d times, want 2 (after the fail and after the restore)", checked)
	}
	for _, c := range kRun.Checks {
		if !c.Passed {
			t.Errorf("kernel: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	sameProbes(t, s, kRun, simDirect(t, s))
}

// simDirect runs s for ebpf-direct on sim with the shared control plane
// (sim has no speakers for gen 3: its pod CIDRs are computed, the state
// BGP must settle in).
func simDirect(t *testing.T, s *scenarios.Scenario) *reports.Run {
	t.Helper()
	sc := *s
	sc.ControlPlane = scenarios.ControlPlaneShared
	run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEBPFDirect, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: simrt.New(sc.Seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency}), scenarios.Options{})
	if err != nil {
		t.Fatalf("%s on sim: %v", sc.Name, err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("sim: step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	return run
}
