package netns

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/netbed/netbed/topologies"
)

func TestCheckTopology(t *testing.T) {
	base := func() *topologies.Topology {
		tp := &topologies.Topology{Name: "lab"}
		tp.AddNode("a", topologies.RoleHost)
		tp.AddNode("b", topologies.RoleLeaf)
		tp.Connect("a", "eth1", "b", "eth1")
		return tp
	}
	cases := []struct {
		name   string
		mutate func(*topologies.Topology)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*topologies.Topology) {}, ""},
		{"no role is fine here", func(tp *topologies.Topology) { tp.Nodes[0].Role = "" }, ""},
		{"empty lab name", func(tp *topologies.Topology) { tp.Name = "" }, "lab name"},
		{"slash in lab name", func(tp *topologies.Topology) { tp.Name = "a/b" }, "lab name"},
		{"duplicate node", func(tp *topologies.Topology) { tp.AddNode("a", topologies.RoleHost) }, "defined twice"},
		{"dangling end", func(tp *topologies.Topology) { tp.Connect("a", "eth2", "zz", "eth1") }, `node "zz" does not exist`},
		{"long iface", func(tp *topologies.Topology) { tp.Links[0].A.Iface = "ethernet-1-49-1234" }, "1 to 15 characters"},
		{"colon iface", func(tp *topologies.Topology) { tp.Links[0].B.Iface = "e1:1" }, "1 to 15 characters"},
		{"lo iface", func(tp *topologies.Topology) { tp.Links[0].B.Iface = "lo" }, "1 to 15 characters"},
		{"iface used twice", func(tp *topologies.Topology) { tp.Connect("a", "eth1", "b", "eth2") }, "already used by link 0"},
		{"bad MTU", func(tp *topologies.Topology) { tp.Links[0].MTU = 70000 }, "MTU 70000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := base()
			c.mutate(tp)
			err := checkTopology(tp)
			if c.want == "" {
				if err != nil {
					t.Fatalf("checkTopology: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("checkTopology error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestNewLabNames(t *testing.T) {
	empty, custom := "", "dc1"
	cases := []struct {
		prefix *string
		want   string
	}{
		{nil, "clab-lab-leaf1"},
		{&empty, "leaf1"},
		{&custom, "dc1-lab-leaf1"},
	}
	for _, c := range cases {
		tp := &topologies.Topology{Name: "lab", Prefix: c.prefix}
		tp.AddNode("leaf1", topologies.RoleLeaf)
		tp.AddNode("h1", topologies.RoleHost)
		tp.Connect("h1", "eth1", "leaf1", "eth3")
		l := newLab(tp, func(n string) string { return tp.LabPrefix() + n })
		n, err := l.Node("leaf1")
		if err != nil {
			t.Fatal(err)
		}
		if n.Netns != c.want || n.Path() != "/run/netns/"+c.want {
			t.Errorf("prefix %v: namespace %q (%s), want %q", c.prefix, n.Netns, n.Path(), c.want)
		}
		if !reflect.DeepEqual(n.Ifaces, []string{"eth3"}) {
			t.Errorf("leaf1 ifaces = %v", n.Ifaces)
		}
		if _, err := l.Node("nope"); !errors.Is(err, ErrUnknownNode) {
			t.Errorf("unknown node error = %v", err)
		}
	}
}

const clabSample = `{
  "name": "srl02",
  "type": "clab",
  "clab": {"config": {"prefix": "clab", "mgmt": {"network": "clab"}}},
  "nodes": {
    "srl2": {"index": "1", "shortname": "srl2", "longname": "clab-srl02-srl2", "kind": "nokia_srlinux",
             "image": "ghcr.io/nokia/srlinux", "labels": {"clab-node-kind": "srl", "netbed.role": "spine"}},
    "srl1": {"index": "0", "shortname": "srl1", "longname": "clab-srl02-srl1", "kind": "nokia_srlinux",
             "labels": {"containerlab": "srl02", "num": 3}}
  },
  "links": [
    {"a": {"node": "srl1", "interface": "e1-1", "mac": "aa:c1:ab:00:00:01", "peer": "z"},
     "z": {"node": "srl2", "interface": "e1-1", "mac": "aa:c1:ab:00:00:02", "peer": "a"}},
    {"a": {"node": "srl1", "interface": "e1-2"}, "z": {"node": "host", "interface": "srl1-e1-2"}}
  ]
}`

func TestParseClabData(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		wantErr   string
		wantNodes []string
		wantNetns map[string]string
		wantLinks int
		skipped   int
	}{
		{name: "containerlab sample", in: clabSample,
			wantNodes: []string{"srl1", "srl2"},
			wantNetns: map[string]string{"srl1": "clab-srl02-srl1", "srl2": "clab-srl02-srl2"},
			wantLinks: 1, skipped: 1},
		{name: "no longname uses prefix", in: `{"name":"x","clab":{"config":{"prefix":""}},"nodes":{"n1":{"index":"0"}}}`,
			wantNodes: []string{"n1"}, wantNetns: map[string]string{"n1": "n1"}},
		{name: "not json", in: `name: x`, wantErr: "parse topology-data.json"},
		{name: "no name", in: `{"nodes":{"a":{}}}`, wantErr: "no lab name"},
		{name: "no nodes", in: `{"name":"x"}`, wantErr: "has no nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := ParseClabData([]byte(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range cl.Topology.Nodes {
				names = append(names, n.Name)
			}
			if !reflect.DeepEqual(names, c.wantNodes) {
				t.Errorf("nodes %v, want %v", names, c.wantNodes)
			}
			if !reflect.DeepEqual(cl.Netns, c.wantNetns) {
				t.Errorf("netns %v, want %v", cl.Netns, c.wantNetns)
			}
			if len(cl.Topology.Links) != c.wantLinks || len(cl.Skipped) != c.skipped {
				t.Errorf("links %d skipped %v, want %d and %d", len(cl.Topology.Links), cl.Skipped, c.wantLinks, c.skipped)
			}
		})
	}
	cl, err := ParseClabData([]byte(clabSample))
	if err != nil {
		t.Fatal(err)
	}
	if r := cl.Topology.Node("srl2").Role; r != topologies.RoleSpine {
		t.Errorf("srl2 role %q from netbed.role label, want spine", r)
	}
	if got := cl.Topology.Node("srl1").Labels["containerlab"]; got != "srl02" {
		t.Errorf("srl1 label containerlab = %q", got)
	}
	if cl.Topology.Prefix != nil || cl.Topology.LabPrefix() != "clab-srl02-" {
		t.Errorf("prefix %q", cl.Topology.LabPrefix())
	}
}

func FuzzParseClabData(f *testing.F) {
	f.Add([]byte(clabSample))
	f.Add([]byte(`{"name":"x","nodes":{"a":{"index":"zz"}},"links":[{"a":{"node":"a","interface":"e1"},"z":{"node":"a","interface":"e1"}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cl, err := ParseClabData(b)
		if err != nil {
			return
		}
		for _, l := range cl.Topology.Links {
			if cl.Topology.Node(l.A.Node) == nil || cl.Topology.Node(l.B.Node) == nil {
				t.Fatalf("link %s--%s to a node that does not exist", l.A, l.B)
			}
		}
		for _, n := range cl.Topology.Nodes {
			if cl.Netns[n.Name] == "" {
				t.Fatalf("node %s without namespace name", n.Name)
			}
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	root := t.TempDir()
	tp, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: "rt", Spines: 1, Leaves: 2, HostsPerLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Lab: "rt", Namespaces: []string{"clab-rt-spine1", "clab-rt-leaf1"}}
	if err := writeState(root, st, tp); err != nil {
		t.Fatal(err)
	}
	got, gotT, err := readState(root, "rt")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Namespaces, st.Namespaces) || got.Complete || got.PID != os.Getpid() {
		t.Errorf("state %+v, want %+v", got, st)
	}
	if !reflect.DeepEqual(gotT, tp) {
		t.Errorf("topology did not survive the round trip:\n got %v\nwant %v", gotT, tp)
	}
	labs, err := listStates(root)
	if err != nil || !reflect.DeepEqual(labs, []string{"rt"}) {
		t.Errorf("listStates = %v, %v", labs, err)
	}
	if err := removeState(root, "rt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "rt")); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
	if labs, err := listStates(filepath.Join(root, "none")); err != nil || labs != nil {
		t.Errorf("listStates of a missing root = %v, %v", labs, err)
	}
}

func TestPool(t *testing.T) {
	cases := []struct {
		name     string
		n, w     int
		failAt   map[int]bool
		wantRuns int64 // -1: at most n
		wantErrs int
	}{
		{"all run", 100, 4, nil, 100, 0},
		{"one worker", 10, 1, nil, 10, 0},
		{"empty", 0, 3, nil, 0, 0},
		{"errors collected", 20, 2, map[int]bool{3: true, 7: true}, 20, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var runs, starts, dones atomic.Int64
			seen := make([]atomic.Int32, c.n)
			err := pool(context.Background(), c.n, c.w, func() (func(int) error, func(), error) {
				starts.Add(1)
				return func(i int) error {
					runs.Add(1)
					seen[i].Add(1)
					if c.failAt[i] {
						return errors.New("boom")
					}
					return nil
				}, func() { dones.Add(1) }, nil
			})
			if runs.Load() != c.wantRuns {
				t.Errorf("runs %d, want %d", runs.Load(), c.wantRuns)
			}
			for i := range seen {
				if seen[i].Load() != 1 {
					t.Errorf("job %d ran %d times", i, seen[i].Load())
				}
			}
			if starts.Load() != dones.Load() || starts.Load() != int64(c.w) {
				t.Errorf("workers started %d, done %d, want %d", starts.Load(), dones.Load(), c.w)
			}
			got := 0
			if err != nil {
				got = strings.Count(err.Error(), "boom")
			}
			if got != c.wantErrs {
				t.Errorf("errors %d (%v), want %d", got, err, c.wantErrs)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pool(ctx, 5, 2, simple(func(int) error { return nil })); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pool error = %v", err)
	}
}

func TestReport(t *testing.T) {
	r := &Report{Lab: "x", Nodes: 10, NamespacesPresent: 10, Links: 4, LinksPresent: 4}
	if r.Changed() {
		t.Error("all-present report says changed")
	}
	r.LinksFixed = 1
	if !r.Changed() {
		t.Error("report with a fixed link says unchanged")
	}
	if !strings.Contains(r.String(), "10 nodes") {
		t.Errorf("String() = %q", r.String())
	}
}
