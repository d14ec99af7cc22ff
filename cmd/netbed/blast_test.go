package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// TestBlast asks a real controller (HTTP, bbolt) which ports a spine-leaf
// fabric's devices carry: host-a single-homed to leaf1, host-b dual-homed to
// leaf1 and leaf2.
func TestBlast(t *testing.T) {
	dir := t.TempDir()
	topo := &topologies.Topology{Name: "blast"}
	topo.AddNode("spine1", topologies.RoleSpine)
	topo.AddNode("leaf1", topologies.RoleLeaf)
	topo.AddNode("leaf2", topologies.RoleLeaf)
	topo.AddNode("host-a", topologies.RoleHost)
	topo.AddNode("host-b", topologies.RoleHost)
	topo.Connect("spine1", "eth1", "leaf1", "eth1")
	topo.Connect("spine1", "eth2", "leaf2", "eth1")
	topo.Connect("host-a", "eth1", "leaf1", "eth2")
	topo.Connect("host-b", "eth1", "leaf1", "eth3")
	topo.Connect("host-b", "eth2", "leaf2", "eth2")
	for _, n := range topo.Nodes {
		n.Kind = "linux"
	}
	topoPath := filepath.Join(dir, "blast.clab.yml")
	if err := clab.WriteFile(topoPath, topo); err != nil {
		t.Fatal(err)
	}

	st, err := store.OpenBolt(filepath.Join(dir, "ctl.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	srv := httptest.NewServer(api.NewServer(svc))
	t.Cleanup(func() { srv.Close(); svc.Close(); st.Close() })
	ctx := context.Background()
	if _, err := svc.CreateNetwork(ctx, controller.NetworkRequest{Name: "blue", Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSubnet(ctx, controller.SubnetRequest{Network: "blue", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, host string }{{"a1", "host-a"}, {"a2", "host-a"}, {"b1", "host-b"}, {"idle", ""}} {
		if _, err := svc.CreatePort(ctx, controller.PortRequest{Name: p.name, Network: "blue", Host: p.host}); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := runCLI("blast", "--topology", topoPath, "--controller", srv.URL, "--json", "leaf1", "leaf2", "spine1", "host-b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []blastRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	want := []blastRow{
		{"leaf1", "leaf", []string{"a1", "a2", "b1"}, []string{"a1", "a2"}},
		{"leaf2", "leaf", []string{"b1"}, []string{}},
		{"spine1", "spine", []string{"a1", "a2", "b1"}, []string{"a1", "a2", "b1"}},
		{"host-b", "host", []string{"b1"}, []string{"b1"}},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i, w := range want {
		g := rows[i]
		slices.Sort(g.Dependent)
		slices.Sort(g.Isolated)
		if g.Device != w.Device || g.Role != w.Role || !slices.Equal(g.Dependent, w.Dependent) || !slices.Equal(g.Isolated, w.Isolated) {
			t.Errorf("row %d: got %+v, want %+v", i, g, w)
		}
	}

	code, out, _ = runCLI("blast", "--topology", topoPath, "--controller", srv.URL, "--ports", "leaf1")
	if code != 0 || !strings.Contains(out, "DEPENDENT") || !strings.Contains(out, "isolated:  a1, a2") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"blast", "leaf1"},                // no topology
		{"blast", "--topology", topoPath}, // no device
		{"blast", "--topology", topoPath, "--controller", srv.URL, "nope"}, // unknown device
	} {
		if code, _, errOut := runCLI(bad...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want a failure that says why", bad, code, errOut)
		}
	}
}
