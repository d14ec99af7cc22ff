package netnsrt

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// setup is one generation on a small topology with two instances on hosts
// under different leaves (or racks), in different subnets where the
// generation has subnets.
type setup struct {
	name       string
	topo       func() (*topologies.Topology, error)
	fabric     func(*topologies.Topology) (datapath.Fabric, error)
	networks   []datapath.NetworkSpec
	insts      []datapath.InstanceSpec
	hops       int // expected, per the seed (0: not checked)
	switchHops int
}

func mac(b byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x10, 0, 0, 0, b} }

var setups = []setup{
	{
		name: "evpn",
		topo: func() (*topologies.Topology, error) {
			return topologies.SpineLeaf(topologies.SpineLeafParams{Name: "sl", Spines: 2, Leaves: 2, HostsPerLeaf: 1})
		},
		fabric: func(t *topologies.Topology) (datapath.Fabric, error) { return evpn.New(t, evpn.Options{TapSlots: 4}) },
		networks: []datapath.NetworkSpec{
			{Name: "red1", Tenant: "red", Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"), VLAN: 10, VNI: 10010},
			{Name: "red2", Tenant: "red", Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.2.1"), VLAN: 20, VNI: 10020},
		},
		insts: []datapath.InstanceSpec{
			{Name: "vm-a", Host: "host1", Network: "red1", MAC: mac(1), IP: netip.MustParsePrefix("10.0.1.10/24")},
			{Name: "vm-b", Host: "host2", Network: "red2", MAC: mac(2), IP: netip.MustParsePrefix("10.0.2.10/24")},
		},
		switchHops: 3,
	},
	{
		name: "vlan",
		topo: func() (*topologies.Topology, error) {
			return topologies.ThreeTier(topologies.ThreeTierParams{Name: "tt", RacksPerPod: 2, HostsPerRack: 1})
		},
		fabric: func(t *topologies.Topology) (datapath.Fabric, error) { return vlan.New(t, vlan.Options{TapSlots: 4}) },
		networks: []datapath.NetworkSpec{
			{Name: "net-a", Subnet: netip.MustParsePrefix("10.0.1.0/24"), VLAN: 100},
			{Name: "net-b", Subnet: netip.MustParsePrefix("10.0.2.0/24"), VLAN: 200},
		},
		insts: []datapath.InstanceSpec{
			{Name: "vm-a", Host: "host1", Network: "net-a", MAC: mac(1), IP: netip.MustParsePrefix("10.0.1.11/24")},
			{Name: "vm-b", Host: "host2", Network: "net-b", MAC: mac(2), IP: netip.MustParsePrefix("10.0.2.21/24")},
		},
		hops: 18,
	},
	{
		name: "ebpf",
		topo: func() (*topologies.Topology, error) {
			return topologies.SpineLeaf(topologies.SpineLeafParams{Name: "sl3", Spines: 1, Leaves: 2, HostsPerLeaf: 1})
		},
		fabric: func(t *topologies.Topology) (datapath.Fabric, error) {
			return ebpf.New(t, ebpf.Options{Mode: ebpf.Direct, PodsPerNode: 4})
		},
		insts: []datapath.InstanceSpec{
			{Name: "pod-a", Host: "host1", Labels: map[string]string{"app": "web"}},
			{Name: "pod-b", Host: "host2", Labels: map[string]string{"app": "db"}},
		},
		switchHops: 3,
	},
}

func (s setup) build(t *testing.T) (datapath.Fabric, *topologies.Topology) {
	t.Helper()
	topo, err := s.topo()
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.fabric(topo)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.networks {
		if err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	return f, topo
}

// start loads the setup on a netns runtime capturing only the instances,
// with every instance added; the runtime closes with the test.
func (s setup) start(t *testing.T, scenario string) (*Runtime, datapath.Fabric) {
	t.Helper()
	f, topo := s.build(t)
	rt := New(Options{Scenario: scenario, StateRoot: t.TempDir(), InstancesOnly: true})
	t.Cleanup(func() { rt.Close() })
	ctx := context.Background()
	if err := rt.Load(ctx, f, topo); err != nil {
		t.Fatal(err)
	}
	for _, in := range s.insts {
		if err := rt.AddInstance(ctx, f, in); err != nil {
			t.Fatal(err)
		}
	}
	return rt, f
}

// simPaths runs the setup in the simulator: one probe of each protocol
// from the first instance to the second, in order, with IDs 1, 2, 3.
func (s setup) simPaths(t *testing.T, protos []string) ([]sim.Result, []netip.Addr) {
	t.Helper()
	f, _ := s.build(t)
	e := sim.New(1)
	if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for _, in := range s.insts {
		n, err := e.AddInstance(f, in)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, n.(*stack.Instance).Addr().Addr())
	}
	var out []sim.Result
	for i, p := range protos {
		spec := stack.ProbeSpec{Proto: protos2[p], Dst: addrs[1], ID: uint64(i + 1)}
		if _, err := e.Probe(e.Now(), s.insts[0].Name, spec); err != nil {
			t.Fatal(err)
		}
		if err := e.RunUntilIdle(); err != nil {
			t.Fatal(err)
		}
		r, err := e.Result(spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out, addrs
}

var protos2 = map[string]stack.Proto{"icmp": stack.ICMP, "udp": stack.UDP, "tcp": stack.TCP}

func leakedNamespaces(prefix string) []string {
	ents, _ := os.ReadDir(netns.NetnsDir)
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSameAsSim runs each generation's setup on sim and on netns and
// checks that the probes (ICMP, UDP, TCP) are delivered and answered on
// both, with the same path (so the same hop and switch-hop counts), and
// the seed's counts; then that Close leaves no namespace or goroutine.
func TestSameAsSim(t *testing.T) {
	testutil.RequireRoot(t)
	protos := []string{"icmp", "udp", "tcp"}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			want, addrs := s.simPaths(t, protos)
			goroutines := runtime.NumGoroutine()
			f, topo := s.build(t)
			out := t.TempDir()
			rt := New(Options{Scenario: "test-" + s.name, OutDir: out, StateRoot: t.TempDir()})
			closed := false
			defer func() {
				if !closed {
					rt.Close()
				}
			}()
			ctx := context.Background()
			if err := rt.Load(ctx, f, topo); err != nil {
				t.Fatal(err)
			}
			lab := rt.LabName()
			if !strings.HasPrefix(lab, LabPrefix) {
				t.Errorf("lab %q does not start with %q", lab, LabPrefix)
			}
			for _, in := range s.insts {
				if err := rt.AddInstance(ctx, f, in); err != nil {
					t.Fatal(err)
				}
			}
			for i, p := range protos {
				got, err := rt.Probe(ctx, scenarios.RuntimeProbe{From: s.insts[0].Name, To: s.insts[1].Name, Dst: addrs[1], Proto: p, Timeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				w := want[i]
				if !w.Replied {
					t.Fatalf("%s: sim did not answer the probe: %+v", p, w)
				}
				if !got.Delivered || !got.Replied {
					t.Errorf("%s: netns delivered %v replied %v (dropped at %s: %s %s); path %v", p, got.Delivered, got.Replied, got.DropAt, got.Reason, got.Rule, got.Path)
					continue
				}
				if !slices.Equal(got.Path, w.Forward.Devices()) {
					t.Errorf("%s: netns path\n  %v\nsim path\n  %v", p, got.Path, w.Forward.Devices())
				}
				if got.Hops != w.Hops || got.SwitchHops != w.SwitchHops {
					t.Errorf("%s: netns hops %d/%d, sim %d/%d", p, got.Hops, got.SwitchHops, w.Hops, w.SwitchHops)
				}
				if s.hops != 0 && got.Hops != s.hops {
					t.Errorf("%s: %d hops, the seed says %d", p, got.Hops, s.hops)
				}
				if s.switchHops != 0 && got.SwitchHops != s.switchHops {
					t.Errorf("%s: %d switch hops, the seed says %d", p, got.SwitchHops, s.switchHops)
				}
				if got.OneWay <= 0 || got.RTT < got.OneWay {
					t.Errorf("%s: one way %v, RTT %v", p, got.OneWay, got.RTT)
				}
			}
			pcaps, _ := filepath.Glob(filepath.Join(out, "pcap", lab, "*.pcapng"))
			if len(pcaps) < len(topo.Nodes)+len(s.insts) {
				t.Errorf("%d pcapng files for %d namespaces", len(pcaps), len(topo.Nodes)+len(s.insts))
			}
			if err := rt.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			closed = true
			if left := leakedNamespaces(lab); len(left) > 0 {
				t.Errorf("namespaces left after Close: %v", left)
			}
			deadline := time.Now().Add(2 * time.Second)
			for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > goroutines {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines after Close, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// TestDropAndFailures checks verdicts that end in a drop: a probe to an
// address nobody has, a failed leaf, then the leaf restored.
func TestDropAndFailures(t *testing.T) {
	testutil.RequireRoot(t)
	s := setups[0]
	_, addrs := s.simPaths(t, nil)
	rt, _ := s.start(t, "fail")
	ctx := context.Background()
	probe := func() (pr struct {
		Delivered bool
		DropAt    string
		Reason    string
	}) {
		t.Helper()
		got, err := rt.Probe(ctx, scenarios.RuntimeProbe{From: s.insts[0].Name, To: s.insts[1].Name, Dst: addrs[1], Proto: "icmp", Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		pr.Delivered, pr.DropAt, pr.Reason = got.Delivered, got.DropAt, got.Reason
		return pr
	}
	if p := probe(); !p.Delivered {
		t.Fatalf("healthy fabric: not delivered (%s at %s)", p.Reason, p.DropAt)
	}
	if err := rt.SetNodeState(ctx, "leaf2", false); err != nil {
		t.Fatal(err)
	}
	p := probe()
	if p.Delivered {
		t.Error("delivered through a failed leaf")
	}
	if p.DropAt == "" || p.Reason == "" {
		t.Errorf("no drop verdict through a failed leaf: %+v", p)
	}
	if err := rt.SetNodeState(ctx, "leaf2", true); err != nil {
		t.Fatal(err)
	}
	if p := probe(); !p.Delivered {
		t.Errorf("leaf restored: not delivered (%s at %s)", p.Reason, p.DropAt)
	}
	// The second leaf's only link to host2 down, then up.
	ep := topologies.Endpoint{}
	for _, l := range rt.topo.Links {
		if l.A.Node == "host2" {
			ep = l.B
		} else if l.B.Node == "host2" {
			ep = l.A
		}
	}
	if err := rt.SetLinkState(ctx, ep, false); err != nil {
		t.Fatal(err)
	}
	if p := probe(); p.Delivered {
		t.Error("delivered over a link that is down")
	}
	if err := rt.SetLinkState(ctx, ep, true); err != nil {
		t.Fatal(err)
	}
	if p := probe(); !p.Delivered {
		t.Errorf("link restored: not delivered (%s at %s)", p.Reason, p.DropAt)
	}
	drops, _ := rt.Stats()
	if len(drops) == 0 {
		t.Error("no drops counted")
	}
}

// TestKilledRunIsCleaned deploys a lab with an instance in a child process
// that is then killed, and checks that netns.DestroyAll removes every
// namespace it left, instances included.
func TestKilledRunIsCleaned(t *testing.T) {
	testutil.RequireRoot(t)
	if os.Getenv("NETNSRT_CHILD") == "1" {
		t.Skip("child")
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestChildRun$", "-test.v")
	cmd.Env = append(os.Environ(), "NETNSRT_CHILD=1", "NETNSRT_STATE="+root)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lab := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "LAB "); ok {
			lab = l
			break
		}
	}
	if lab == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child did not deploy a lab")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if left := leakedNamespaces(lab); len(left) == 0 {
		t.Fatalf("the killed run left nothing to clean (lab %s)", lab)
	}
	rep, err := netns.DestroyAll(&netns.Options{StateRoot: root, Match: func(l string) bool { return l == lab }})
	if err != nil {
		t.Fatal(err)
	}
	if left := leakedNamespaces(lab); len(left) > 0 {
		t.Errorf("left after DestroyAll (%v): %v", rep, left)
	}
}

// TestChildRun is the killed child of TestKilledRunIsCleaned.
func TestChildRun(t *testing.T) {
	if os.Getenv("NETNSRT_CHILD") != "1" {
		t.Skip("run by TestKilledRunIsCleaned")
	}
	s := setups[0]
	f, topo := s.build(t)
	rt := New(Options{Scenario: "killed", StateRoot: os.Getenv("NETNSRT_STATE"), InstancesOnly: true})
	if err := rt.Load(context.Background(), f, topo); err != nil {
		t.Fatal(err)
	}
	if err := rt.AddInstance(context.Background(), f, s.insts[0]); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LAB %s\n", rt.LabName())
	time.Sleep(time.Minute)
}

// TestMoveInstance removes an instance and adds it again on another host
// with the same identity (a drift): its namespace and veth are replaced,
// and probes reach it at its new place, along the new path.
func TestMoveInstance(t *testing.T) {
	testutil.RequireRoot(t)
	s := setups[0]
	_, addrs := s.simPaths(t, nil)
	rt, f := s.start(t, "move")
	ctx := context.Background()
	probe := func() []string {
		t.Helper()
		got, err := rt.Probe(ctx, scenarios.RuntimeProbe{From: s.insts[0].Name, To: s.insts[1].Name, Dst: addrs[1], Proto: "udp", Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Replied {
			t.Fatalf("not answered: %s at %s (%s)", got.Reason, got.DropAt, got.Rule)
		}
		return got.Path
	}
	before := probe()
	moved := s.insts[1]
	moved.Host = "host1"
	if err := rt.RemoveInstance(ctx, f, moved.Name); err != nil {
		t.Fatal(err)
	}
	if err := rt.AddInstance(ctx, f, moved); err != nil {
		t.Fatal(err)
	}
	after := probe()
	if slices.Equal(before, after) || !slices.Contains(after, "host1/tap-"+moved.Name) || slices.Contains(after, "leaf2") {
		t.Errorf("path before the move %v, after %v: want a path on host1 only", before, after)
	}
}

// TestResolutionAcrossRestore: a probe sent right after its destination
// came back is answered, although the probe before it, sent while the
// destination was cut off, left its source's ARP resolution failing.
// Linux asks three times a second apart and drops what waits when the
// third goes unanswered: a second probe sent when the first's 2 s timeout
// ran out waited for no request of its own and was dropped with the
// first's (NEIGH_FAILED), as leaf-failure/evpn's probe after the leaf's
// restore was on the kernel backend. An instance's resolution ends
// within a probe's timeout (resolveWithinProbe), so the second probe
// starts its own.
func TestResolutionAcrossRestore(t *testing.T) {
	testutil.RequireRoot(t)
	var ns [2]vnetns.NsHandle
	var hs [2]*netlink.Handle
	for i := range ns {
		name := testutil.Name("nbtest-")
		h, err := makeNamespace(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(); removeNamespace(name) })
		if hs[i], err = netlink.NewHandleAt(h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hs[i].Close)
		ns[i] = h
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = stack.Port
	if err := hs[0].LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "peer", PeerNamespace: netlink.NsFd(ns[1])}); err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	var links [2]netlink.Link
	for i, name := range []string{stack.Port, "peer"} {
		l, err := hs[i].LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := hs[i].LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		links[i] = l
	}
	addAddr := func(i int, a netip.Addr) {
		t.Helper()
		if err := hs[i].AddrAdd(links[i], &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	addAddr(0, src)
	if err := netns.DoIn(ns[0], func() error { return resolveWithinProbe(stack.Port) }); err != nil {
		t.Fatal(err)
	}
	send := func() {
		t.Helper()
		err := netns.DoIn(ns[0], func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(dst, 9).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("probe"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The destination is not there yet: the first probe's resolution
	// goes unanswered for the probe's whole timeout; the second probe
	// goes once the destination is back, a moment later (the restore).
	send()
	time.Sleep(2*time.Second + 300*time.Millisecond)
	addAddr(1, dst)
	send()
	state := func() int {
		ns, err := hs[0].NeighList(links[0].Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.IP.Equal(dst.AsSlice()) {
				return n.State
			}
		}
		return 0
	}
	deadline := time.Now().Add(3 * time.Second)
	for state()&netlink.NUD_REACHABLE == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the destination back: its neighbour entry is in state %#x after 3 s, want REACHABLE", state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
