package netnsrt_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/l3"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/topologies"
)

// directRun is one ebpf-direct run on netns: its report, every router's
// final routes, and what a check on the held lab found wrong.
type directRun struct {
	run    *reports.Run
	routes map[string][]string
}

// runDirect runs s for ebpf-direct on netns with the control plane cp;
// held, if set, looks at the lab once the run is measured.
func runDirect(t *testing.T, s *scenarios.Scenario, cp scenarios.ControlPlane, watch func(msg string, rt *netnsrt.Runtime), held func(*netnsrt.Runtime)) directRun {
	t.Helper()
	sc := *s
	sc.ControlPlane = cp
	// A short state root: a speaker's socket path there must fit a unix
	// socket address (108 bytes) under a long subtest's name.
	root, err := os.MkdirTemp("", "nb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	rt := netnsrt.New(netnsrt.Options{Scenario: sc.Name, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable)})
	out := directRun{routes: map[string][]string{}}
	opts := scenarios.Options{Hold: func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
		if held != nil {
			held(rt)
		}
		return rt.Mutate(func() error {
			for _, n := range rt.Lab().Nodes() {
				node, ok := rt.Node(n)
				if !ok {
					continue
				}
				if r, ok := node.(*l3.Router); ok {
					for _, x := range r.Routes() {
						out.routes[n] = append(out.routes[n], fmt.Sprint(x))
					}
					slices.Sort(out.routes[n])
				}
			}
			return nil
		})
	}}
	if watch != nil {
		opts.Progress = func(msg string) { watch(msg, rt) }
	}
	run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEBPFDirect, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("%s with control_plane %s: %v", sc.Name, cp, err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("control_plane %s: step %d (line %d) %s: %s", cp, c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Checks) == 0 {
		t.Errorf("control_plane %s: no checks ran", cp)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	out.run = run
	return out
}

// leafPrefixes returns the best IPv4 paths of every running leaf
// speaker, by leaf.
func leafPrefixes(t testing.TB, rt *netnsrt.Runtime) map[string][]netip.Prefix {
	t.Helper()
	out := map[string][]netip.Prefix{}
	for _, n := range rt.Speakers() {
		if !strings.HasPrefix(n, "leaf") {
			continue
		}
		c, ok := rt.Speaker(n)
		if !ok {
			continue
		}
		ps, err := c.Prefixes(context.Background())
		if err != nil {
			t.Fatalf("prefixes of %s's speaker: %v", n, err)
		}
		for _, p := range ps {
			out[n] = append(out[n], p.Prefix)
		}
	}
	return out
}

// podCIDRsOnLeaves checks the held lab: every leaf's speaker holds, as
// best paths, exactly the pod CIDRs of the hosts on its links (each
// learnt from the host's own speaker), and the host's speakers run.
func podCIDRsOnLeaves(t *testing.T) func(*netnsrt.Runtime) {
	return func(rt *netnsrt.Runtime) {
		var want map[string][]netip.Prefix
		rt.Mutate(func() error {
			want = attachedCIDRs(rt)
			return nil
		})
		got := leafPrefixes(t, rt)
		for leaf, w := range want {
			if !slices.Equal(got[leaf], w) {
				t.Errorf("%s's speaker holds %v, want its hosts' pod CIDRs %v", leaf, got[leaf], w)
			}
		}
		hosts := 0
		for _, n := range rt.Speakers() {
			if strings.HasPrefix(n, "host") {
				hosts++
			}
		}
		if hosts == 0 {
			t.Error("no host runs a speaker")
		}
	}
}

// attachedCIDRs returns, by leaf, the pod CIDRs of the hosts on its
// links, sorted.
func attachedCIDRs(rt *netnsrt.Runtime) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	topo := rt.Topology()
	for _, n := range rt.Lab().Nodes() {
		node, ok := rt.Node(n)
		if !ok {
			continue
		}
		h, ok := node.(*ebpf.Node)
		if !ok {
			continue
		}
		for _, ifn := range topo.Interfaces(n) {
			if p, _, ok := topo.Peer(topologies.Endpoint{Node: n, Iface: ifn}); ok {
				out[p.Node] = append(out[p.Node], h.Config().NodeCIDR)
			}
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	}
	return out
}

// TestBGPDirectLibrary runs the shipped scenarios that run ebpf-direct
// with control_plane: bgp on netns: a speaker on every host advertises
// its pod CIDR to its leaf, each leaf routes what its speaker learnt.
// Every check passes; on the held lab every leaf's speaker holds its
// hosts' pod CIDRs; every router's final routes are the shared run's
// (where the pod CIDRs are computed, not learnt).
func TestBGPDirectLibrary(t *testing.T) {
	testutil.RequireRoot(t)
	for _, name := range libraryScenarios {
		s, err := scenarios.Load("../library/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Generations, scenarios.GenEBPFDirect) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			shared := runDirect(t, s, scenarios.ControlPlaneShared, nil, nil)
			bgp := runDirect(t, s, scenarios.ControlPlaneBGP, nil, podCIDRsOnLeaves(t))
			if len(bgp.routes) == 0 {
				t.Fatal("no router's routes read")
			}
			for r, want := range shared.routes {
				if got := bgp.routes[r]; !slices.Equal(got, want) {
					t.Errorf("%s's final routes with BGP:\n  %s\nwith the shared control plane:\n  %s", r, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}

// directFailure fails host1 by power and host3 silently on ebpf-direct
// with BGP and a 3 s hold time: a pod on each is unreachable once its
// host's pod CIDR is withdrawn, and reachable again after the restore.
const directFailure = `name: direct-failure
topology: {builder: spine-leaf, params: {spines: 2, leaves: 2, hosts_per_leaf: 2}}
generations: [ebpf-direct]
control_plane: bgp
bgp: {hold: 3s, keepalive: 1s}
networks:
  - {name: pods, subnet: 10.8.0.0/24}
steps:
  - spawn: {name: p, kind: pod, count: 4, network: pods, hosts: [host1, host2, host3, host4]}
  - traffic: {from: [p-2], to: [p-1, p-3, p-4], tag: before}
  - expect: {tag: before, all_reachable: true}
  - fail: {node: host1}
  - fail: {node: host3, mode: silent}
  - traffic: {from: [p-2], to: [p-1, p-3, p-4], tag: during}
  - expect: {tag: during, reachable: ["p-2 -> p-4"], unreachable: ["p-2 -> p-1", "p-2 -> p-3"]}
  - restore: {node: host1}
  - restore: {node: host3}
  - traffic: {from: [p-2], to: [p-1, p-3, p-4], tag: after}
  - expect: {tag: after, all_reachable: true}
`

// TestBGPDirectHostFailure: a host that loses power has its pod CIDR
// withdrawn from its leaf's speaker at once (carrier loss), a host that
// fails silently only after the leaf's hold timer expired (at least
// hold − keepalive, 2 s, after the fault); the leaf stops routing each
// CIDR with the withdrawal; the pods are unreachable meanwhile and
// reachable again after the restore.
func TestBGPDirectHostFailure(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Parse("direct-failure.yaml", []byte(directFailure))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gone := map[string]time.Duration{}
	runDirect(t, s, scenarios.ControlPlaneBGP, func(msg string, rt *netnsrt.Runtime) {
		var host string
		switch {
		case strings.HasPrefix(msg, "step 4/"): // fail: {node: host1}
			host = "host1"
		case strings.HasPrefix(msg, "step 5/"): // fail: {node: host3, mode: silent}
			host = "host3"
		default:
			return
		}
		// Progress announces the step before it runs: watch the leaf's
		// speaker from now on until the host's CIDR is gone.
		var cidr netip.Prefix
		var leaf string
		rt.Mutate(func() error {
			for l, ps := range attachedCIDRs(rt) {
				n, _ := rt.Node(host)
				c := n.(*ebpf.Node).Config().NodeCIDR
				if slices.Contains(ps, c) {
					cidr, leaf = c, l
				}
			}
			return nil
		})
		start := time.Now()
		if !slices.Contains(leafPrefixes(t, rt)[leaf], cidr) {
			t.Errorf("before %s failed, its leaf %s's speaker lacks its pod CIDR %s", host, leaf, cidr)
			return
		}
		wg.Go(func() {
			for time.Since(start) < 20*time.Second {
				if !slices.Contains(leafPrefixes(t, rt)[leaf], cidr) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			took := time.Since(start)
			mu.Lock()
			gone[host] = took
			mu.Unlock()
			// The leaf's route follows its speaker.
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				routed := false
				rt.Mutate(func() error {
					n, _ := rt.Node(leaf)
					r, _, ok := n.(*l3.Router).Lookup(cidr.Addr().Next())
					routed = ok && r.Prefix == cidr
					return nil
				})
				if !routed {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s still routes %s of the failed %s after its speaker withdrew it", leaf, cidr, host)
					break
				}
			}
		})
	}, nil)
	wg.Wait()
	t.Logf("pod CIDR withdrawn from the leaf's speaker: power loss (host1) after %v, silent failure (host3) after %v", gone["host1"], gone["host3"])
	if gone["host3"] < 2*time.Second || gone["host3"] <= gone["host1"] {
		t.Errorf("silent failure withdrawn after %v, power loss after %v: the silent one should wait for the hold timer (3 s, keepalive 1 s)", gone["host3"], gone["host1"])
	}
}
