package api

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netbed/netbed/controller"
)

// TestEnsurePortReportsUnderlay: a get-or-create carrying the host's
// underlay report records it with the binding, in process and over HTTP
// alike: a new port comes back BUILD with the report's reason among its
// transitions; the same call on that port once it is ACTIVE takes it back
// to BUILD; a report without a host, for another host, or a transition
// the state machine forbids is refused naming the field, and a refused new port is not
// created.
func TestEnsurePortReportsUnderlay(t *testing.T) {
	for _, side := range []string{"service", "client"} {
		t.Run(side, func(t *testing.T) {
			f := newFixture(t, nil)
			var a controller.API = f.svc
			if side == "client" {
				a = f.c
			}
			ctx := context.Background()
			if _, err := a.CreateNetwork(ctx, controller.NetworkRequest{Name: "n", Labels: []string{"k8s"}, Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 5000}}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.CreateSubnet(ctx, controller.SubnetRequest{Network: "n", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
				t.Fatal(err)
			}
			build := controller.StateUpdate{State: controller.StateBuild, Reason: "wiring veth1"}
			req := controller.PortRequest{Name: "pod-1", Label: "k8s", Host: "host-a", DeviceOwner: controller.OwnerPod, Underlay: build}
			p, created, err := a.EnsurePort(ctx, req)
			if err != nil || !created {
				t.Fatalf("EnsurePort: created %v, %v", created, err)
			}
			last := p.Transitions[len(p.Transitions)-1]
			if p.UnderlayState != controller.StateBuild || last.Plane != controller.PlaneUnderlay || last.To != controller.StateBuild || last.Reason != "wiring veth1" {
				t.Errorf("new port: underlay %s, last transition %+v; want BUILD by the report", p.UnderlayState, last)
			}
			if got, err := a.GetPort(ctx, "pod-1"); err != nil || got.UnderlayState != controller.StateBuild {
				t.Errorf("stored port: underlay %s, %v; want BUILD", got.UnderlayState, err)
			}
			if _, err := a.SetUnderlayState(ctx, "pod-1", controller.StateUpdate{State: controller.StateActive, Host: "host-a"}); err != nil {
				t.Fatal(err)
			}
			if p, created, err = a.EnsurePort(ctx, req); err != nil || created || p.UnderlayState != controller.StateBuild {
				t.Errorf("again on the ACTIVE port: created %v, underlay %s, %v; want BUILD", created, p.UnderlayState, err)
			}

			for _, c := range []struct {
				name  string
				req   controller.PortRequest
				field string // the FieldError's, or "" for ErrIllegalTransition
			}{
				{"no host", controller.PortRequest{Name: "pod-2", Label: "k8s", Underlay: build}, "underlay"},
				{"another host", controller.PortRequest{Name: "pod-2", Label: "k8s", Host: "host-a",
					Underlay: controller.StateUpdate{State: controller.StateBuild, Host: "host-b"}}, "underlay.host"},
				{"bad state", controller.PortRequest{Name: "pod-2", Label: "k8s", Host: "host-a",
					Underlay: controller.StateUpdate{State: "UP"}}, "underlay.state"},
				{"DOWN to ACTIVE", controller.PortRequest{Name: "pod-2", Label: "k8s", Host: "host-a",
					Underlay: controller.StateUpdate{State: controller.StateActive}}, ""},
			} {
				_, _, err := a.EnsurePort(ctx, c.req)
				switch {
				case c.field == "" && !errors.Is(err, controller.ErrIllegalTransition):
					t.Errorf("%s: %v, want ErrIllegalTransition", c.name, err)
				case c.field != "" && (!errors.Is(err, controller.ErrInvalid) || !strings.Contains(err.Error(), "invalid "+c.field+" ")):
					t.Errorf("%s: %v, want invalid %s", c.name, err, c.field)
				}
				if _, err := a.GetPort(ctx, "pod-2"); !errors.Is(err, controller.ErrNotFound) {
					t.Errorf("%s: the refused port exists (%v)", c.name, err)
				}
			}
		})
	}
}
