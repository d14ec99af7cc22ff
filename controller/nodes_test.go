package controller

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// TestClusterPool: nodes get the pool's blocks lowest first, the same one
// again when they ask again, a freed one back; the pool's exhaustion names
// it; the blocks survive a restart; the pool cannot change under nodes.
func TestClusterPool(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := store.OpenBolt(path, store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(st, nil, SystemClock{})
	if _, _, err := svc.EnsureNode(ctx, "host1"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "--cluster-cidr") {
		t.Errorf("node without a pool: %v", err)
	}
	for _, bad := range []ClusterPool{
		{CIDR: netip.MustParsePrefix("10.244.0.0/16"), MaskBits: 12},
		{CIDR: netip.MustParsePrefix("10.244.1.0/16"), MaskBits: 24},
		{CIDR: netip.MustParsePrefix("fd00::/64"), MaskBits: 80},
		{CIDR: netip.MustParsePrefix("10.244.0.0/16"), MaskBits: 31},
	} {
		var fe *FieldError
		if err := svc.SetClusterPool(ctx, bad); !errors.As(err, &fe) {
			t.Errorf("pool %+v: %v, want a field error", bad, err)
		}
	}
	pool := ClusterPool{CIDR: netip.MustParsePrefix("10.244.0.0/22"), MaskBits: 24}
	if err := svc.SetClusterPool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"host1": "10.244.0.0/24", "host2": "10.244.1.0/24", "host3": "10.244.2.0/24"}
	for _, h := range []string{"host1", "host2", "host3"} {
		n, created, err := svc.EnsureNode(ctx, h)
		if err != nil || !created || n.PodCIDR.String() != want[h] {
			t.Fatalf("%s: %+v created=%v %v; want %s", h, n, created, err, want[h])
		}
	}
	if n, created, err := svc.EnsureNode(ctx, "host2"); err != nil || created || n.PodCIDR.String() != want["host2"] {
		t.Errorf("host2 again: %+v created=%v %v", n, created, err)
	}
	if _, err := svc.DeleteNode(ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	if n, _, err := svc.EnsureNode(ctx, "host4"); err != nil || n.PodCIDR.String() != "10.244.1.0/24" {
		t.Errorf("host4 after host2 left: %+v %v", n, err)
	}
	if _, _, err := svc.EnsureNode(ctx, "host5"); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.EnsureNode(ctx, "host6")
	var ex *ipam.ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, ipam.ErrPoolExhausted) || !strings.Contains(err.Error(), "cluster pool 10.244.0.0/22 in /24 blocks") {
		t.Errorf("a fifth node in four blocks: %v", err)
	}
	if err := svc.SetClusterPool(ctx, ClusterPool{CIDR: netip.MustParsePrefix("10.245.0.0/16"), MaskBits: 24}); !errors.Is(err, ErrInUse) {
		t.Errorf("changing the pool under nodes: %v", err)
	}
	if err := svc.SetClusterPool(ctx, pool); err != nil {
		t.Errorf("setting the same pool again: %v", err)
	}
	svc.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.OpenBolt(path, store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc = New(st, nil, SystemClock{})
	defer svc.Close()
	nodes, err := svc.ListNodes(ctx)
	if err != nil || len(nodes) != 4 {
		t.Fatalf("after a restart: %+v %v", nodes, err)
	}
	if n, created, err := svc.EnsureNode(ctx, "host1"); err != nil || created || n.PodCIDR.String() != want["host1"] {
		t.Errorf("host1 after a restart: %+v created=%v %v", n, created, err)
	}
}
