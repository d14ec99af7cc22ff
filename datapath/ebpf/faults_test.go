package ebpf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// TestFaults fails a device or link and probes all pairs of pods (one per
// host): a spine failure cuts nothing (ECMP), a leaf failure cuts its
// single-homed hosts but not dual-homed ones, and routing reconverges.
func TestFaults(t *testing.T) {
	type fault struct {
		node       string // fail this node, or
		linkA      string // the link from this node ...
		linkB      string // ... to this one
		restoreOne bool   // restore and check full reachability again
	}
	cases := []struct {
		name      string
		dual      bool
		mode      Mode
		fault     fault
		reachable int // ordered pairs (of 12) that still reach each other
	}{
		{"spine-down-tunnel", false, Tunnel, fault{node: "spine1", restoreOne: true}, 12},
		{"spine-down-direct", false, Direct, fault{node: "spine2"}, 12},
		{"leaf-spine-link-direct", false, Direct, fault{linkA: "leaf1", linkB: "spine1", restoreOne: true}, 12},
		// host1 and host2 hang off leaf1 alone: pairs with them are cut,
		// host3 <-> host4 remain (2 ordered pairs).
		{"leaf-down-single-homed", false, Tunnel, fault{node: "leaf1", restoreOne: true}, 2},
		{"leaf-down-dual-homed", true, Tunnel, fault{node: "leaf1", restoreOne: true}, 12},
		{"host-link-dual-homed", true, Direct, fault{linkA: "host1", linkB: "leaf1"}, 12},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2, DualHomed: c.dual}
			topo, err := topologies.SpineLeaf(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := New(topo, Options{Mode: c.mode, PodsPerNode: 4})
			if err != nil {
				t.Fatal(err)
			}
			e := sim.New(7)
			if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
				t.Fatal(err)
			}
			var pods []string
			for i, h := range topo.NodesByRole(topologies.RoleHost) {
				name := fmt.Sprintf("pod%d", i+1)
				if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: h.Name, Labels: map[string]string{"app": name}}); err != nil {
					t.Fatal(err)
				}
				pods = append(pods, name)
			}
			allPairs := func() *sim.Matrix {
				t.Helper()
				m, err := e.AllPairs(e.Now()+time.Millisecond, 10*time.Microsecond, pods, stack.ProbeSpec{Proto: stack.ICMP})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.Conservation(); err != nil {
					t.Fatal(err)
				}
				return m
			}
			if m := allPairs(); m.Reachable() != 12 {
				t.Fatalf("before the fault:\n%s", m)
			}
			at := e.Now() + time.Millisecond
			setState := func(up bool) {
				if c.fault.node != "" {
					if err := e.SetNodeState(at, c.fault.node, up); err != nil {
						t.Fatal(err)
					}
					return
				}
				for _, l := range topo.Links {
					if l.A.Node == c.fault.linkA && l.B.Node == c.fault.linkB || l.A.Node == c.fault.linkB && l.B.Node == c.fault.linkA {
						w, err := e.Wire(f.portOf(l.A))
						if err != nil {
							t.Fatal(err)
						}
						if err := e.SetLinkState(at, w, up); err != nil {
							t.Fatal(err)
						}
						return
					}
				}
				t.Fatalf("no link %s-%s", c.fault.linkA, c.fault.linkB)
			}
			setState(false)
			if err := e.Run(at); err != nil {
				t.Fatal(err)
			}
			if m := allPairs(); m.Reachable() != c.reachable {
				t.Errorf("after the fault %d pairs reachable, want %d:\n%s", m.Reachable(), c.reachable, m)
			}
			if c.fault.restoreOne {
				at = e.Now() + time.Millisecond
				setState(true)
				if err := e.Run(at); err != nil {
					t.Fatal(err)
				}
				if m := allPairs(); m.Reachable() != 12 {
					t.Errorf("after restoring:\n%s", m)
				}
			}
		})
	}
}

// TestMultiAZ runs gen 3 across two availability zones joined by border
// leaves: every pair reachable, cross-AZ paths go leaf, spine, border,
// border, spine, leaf.
func TestMultiAZ(t *testing.T) {
	for _, mode := range []Mode{Tunnel, Direct} {
		t.Run(mode.String(), func(t *testing.T) {
			topo, err := topologies.MultiAZ(topologies.MultiAZParams{AZs: 2, Fabric: topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 1}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := New(topo, Options{Mode: mode, PodsPerNode: 2})
			if err != nil {
				t.Fatal(err)
			}
			e := sim.New(3)
			if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
				t.Fatal(err)
			}
			var pods []string
			for i, h := range topo.NodesByRole(topologies.RoleHost) {
				name := fmt.Sprintf("pod%d", i+1)
				if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: h.Name}); err != nil {
					t.Fatal(err)
				}
				pods = append(pods, name)
			}
			m, err := e.AllPairs(time.Millisecond, 10*time.Microsecond, pods, stack.ProbeSpec{Proto: stack.ICMP})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Conservation(); err != nil {
				t.Fatal(err)
			}
			if want := len(pods) * (len(pods) - 1); m.Reachable() != want {
				t.Fatalf("%d of %d pairs reachable:\n%s", m.Reachable(), want, m)
			}
			// pod1 is in az1, the last pod in az2.
			r, err := e.Result(m.IDs[0][len(pods)-1])
			if err != nil {
				t.Fatal(err)
			}
			if r.SwitchHops != 6 {
				t.Errorf("cross-AZ switch hops %d, want 6: %v", r.SwitchHops, r.Forward.Devices())
			}
		})
	}
}

// TestDeterministic builds and runs the same scenario twice, with a fault,
// policy and all pairs; the traces must be byte-identical.
func TestDeterministic(t *testing.T) {
	run := func() string {
		topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 3, Leaves: 3, HostsPerLeaf: 2})
		if err != nil {
			t.Fatal(err)
		}
		f, err := New(topo, Options{Mode: Tunnel, PodsPerNode: 4})
		if err != nil {
			t.Fatal(err)
		}
		e := sim.New(11)
		if err := e.Load(f, sim.UniformDelay(time.Microsecond), sim.LinkOpts{}); err != nil {
			t.Fatal(err)
		}
		var pods []string
		for i, h := range topo.NodesByRole(topologies.RoleHost) {
			name := fmt.Sprintf("pod%d", i+1)
			if _, err := e.AddInstance(f, datapath.InstanceSpec{Name: name, Host: h.Name, Labels: map[string]string{"tier": fmt.Sprint(i % 3)}}); err != nil {
				t.Fatal(err)
			}
			pods = append(pods, name)
		}
		if err := f.ApplyPolicy(Policy{Name: "t0-t1", From: map[string]string{"tier": "0"}, To: map[string]string{"tier": "1"}, Allow: true}); err != nil {
			t.Fatal(err)
		}
		if err := e.SetNodeState(500*time.Microsecond, "spine2", false); err != nil {
			t.Fatal(err)
		}
		if _, err := e.AllPairs(time.Millisecond, 5*time.Microsecond, pods, stack.ProbeSpec{Proto: stack.TCP, DstPort: 80}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Conservation(); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := e.WriteTrace(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("traces differ between two runs (%d and %d bytes)", len(a), len(b))
	}
	if !strings.Contains(a, "policy:") || !strings.Contains(a, "default-deny") {
		t.Error("the scenario exercised no policy verdicts")
	}
}
