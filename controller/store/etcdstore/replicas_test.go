package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store/etcdstore"
	"github.com/netbed/netbed/internal/etcdtest"
)

// TestServiceReplicasShareAPool: two replicas' services on one etcd fill a
// small pool together, each replica keeping its own part of the pool's
// count and its own MAC sequence: the pool is exhausted for both at its
// size, an address one replica took and the other released is free again
// for either, and the consistency check (the parts' sum against the
// addresses held) passes throughout.
func TestServiceReplicasShareAPool(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	var svcs []*controller.Service
	for i := range 2 {
		st, err := etcdstore.Open(etcdstore.Options{Endpoints: c.Endpoints(), Prefix: "/share/", Name: fmt.Sprint("r", i), DialTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		svc := controller.New(st, nil, nil)
		t.Cleanup(func() { svc.Close(); st.Close() })
		svcs = append(svcs, svc)
	}
	a, b := svcs[0], svcs[1]
	if _, err := a.CreateNetwork(ctx, controller.NetworkRequest{Name: "n", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 7}}); err != nil {
		t.Fatal(err)
	}
	// 10.0.0.0/29: .2-.6 allocatable (.1 the gateway).
	if _, err := a.CreateSubnet(ctx, controller.SubnetRequest{Network: "n", CIDR: netip.MustParsePrefix("10.0.0.0/29")}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i, s := range svcs {
			if p, err := s.Check(ctx); err != nil || len(p) > 0 {
				t.Errorf("%s: replica %d's check: %v %v", when, i, p, err)
			}
		}
	}
	macs := map[string]bool{}
	held := map[netip.Addr]bool{}
	for i := range 5 {
		p, err := svcs[i%2].CreatePort(ctx, controller.PortRequest{Name: fmt.Sprint("p", i), Network: "n"})
		if err != nil {
			t.Fatalf("port %d of 5: %v", i, err)
		}
		if macs[p.MAC] || held[p.IPs[0].Address] {
			t.Errorf("port %d: MAC %s or address %v given twice", i, p.MAC, p.IPs[0].Address)
		}
		macs[p.MAC], held[p.IPs[0].Address] = true, true
	}
	check("full")
	for i, s := range svcs {
		if _, err := s.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprint("over", i), Network: "n"}); !errors.Is(err, ipam.ErrPoolExhausted) {
			t.Errorf("replica %d, sixth port: %v, want ErrPoolExhausted", i, err)
		}
	}
	// a made p0, p2 and p4 (and b two); b deletes a's three: b's part of
	// the count goes below zero, the sum to 2.
	for _, n := range []string{"p0", "p2", "p4"} {
		if _, err := b.DeletePort(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	check("after cross-replica releases")
	for i := range 3 {
		if _, err := a.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprint("again", i), Network: "n"}); err != nil {
			t.Errorf("port %d after the releases: %v", i, err)
		}
	}
	check("refilled")
	if _, err := b.AllocateBatch(ctx, controller.AllocRequest{Network: "n", Count: 1, Holder: "x"}); !errors.Is(err, ipam.ErrPoolExhausted) {
		t.Errorf("allocation in the full pool: %v, want ErrPoolExhausted", err)
	}
}
