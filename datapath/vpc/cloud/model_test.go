package cloud_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// world is a model on a step clock with one /24 subnet and one instance.
type world struct {
	clock *cloud.StepClock
	m     *cloud.Model
	sub   cloud.Subnet
	inst  cloud.Instance
}

func newWorld(t *testing.T, typ string) *world {
	t.Helper()
	w := &world{clock: &cloud.StepClock{}}
	w.m = cloud.New(w.clock, nil)
	var err error
	ctx := context.Background()
	if w.sub, err = w.m.CreateSubnet(ctx, netip.MustParsePrefix("10.1.0.0/24"), "az-a"); err != nil {
		t.Fatal(err)
	}
	if w.inst, err = w.m.RunInstance(ctx, cloud.RunInstanceInput{Name: "node-1", Type: typ, Subnet: w.sub.ID}); err != nil {
		t.Fatal(err)
	}
	return w
}

// wantCode fails unless err carries code and its message names every one
// of names.
func wantCode(t *testing.T, err error, code cloud.Code, names ...string) {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%q does not name %q", err, n)
		}
	}
}

func TestAttachmentLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "t3.small") // 3 ENIs
	for i := range 3 {
		e, err := w.m.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{Subnet: w.sub.ID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.m.AttachNetworkInterface(ctx, cloud.AttachNetworkInterfaceInput{ENI: e.ID, Instance: w.inst.ID, DeviceIndex: -1})
		if i < 2 && err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
		if i == 2 {
			wantCode(t, err, cloud.AttachmentLimitExceeded, string(w.inst.ID), "node-1", "t3.small")
		}
	}
}
