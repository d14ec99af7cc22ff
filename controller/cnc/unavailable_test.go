package cnc_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/store"
)

// flaky is the service whose store is away for its first `fail` calls of
// each kind (as a replica's is while etcd elects a new leader).
type flaky struct {
	*controller.Service
	gets, reports, nets atomic.Int32
	fail                int32
}

func (f *flaky) GetPort(ctx context.Context, name string) (controller.Port, error) {
	if f.gets.Add(1) <= f.fail {
		return controller.Port{}, store.ErrUnreachable
	}
	return f.Service.GetPort(ctx, name)
}

func (f *flaky) GetNetwork(ctx context.Context, ref string) (controller.Network, error) {
	if f.nets.Add(1) <= f.fail {
		return controller.Network{}, store.ErrUnreachable
	}
	return f.Service.GetNetwork(ctx, ref)
}

func (f *flaky) SetOverlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	if f.reports.Add(1) <= f.fail {
		return controller.Port{}, store.ErrUnreachable
	}
	return f.Service.SetOverlayState(ctx, name, u)
}

// TestStoreAwayRetried: a CNC whose service cannot answer (the store
// unreachable) for a while keeps asking, then configures the leaves and
// reports the overlay ACTIVE, instead of leaving the port in BUILD.
func TestStoreAwayRetried(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	f := &flaky{Service: e.svc, fail: 3}
	e.cnc.SetService(f)
	e.network(t, "n", controller.Segment{Type: controller.SegmentVXLAN, ID: 5000}, "10.0.0.0/24")
	p := e.place(t, "p", "n", "host-a", controller.StateActive)
	if !e.drv.Leaf("leaf1").HasEntry(p.ID) {
		t.Error("leaf1 lacks the port's entry")
	}
	if f.gets.Load() <= 3 || f.reports.Load() <= 3 || f.nets.Load() <= 3 {
		t.Errorf("calls: %d gets, %d network reads, %d reports; want each retried past the 3 failures", f.gets.Load(), f.nets.Load(), f.reports.Load())
	}
}
