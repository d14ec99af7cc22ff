package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/ipam"
)

// script drives an API through a spawn, a drift, bad input and teardown and
// returns what it saw, with IDs and times left out so that two runs compare.
func script(t *testing.T, a controller.API) []string {
	ctx := context.Background()
	var out []string
	note := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	errIs := func(err error, targets ...error) string {
		for _, tg := range targets {
			if errors.Is(err, tg) {
				return tg.Error()
			}
		}
		return fmt.Sprintf("unexpected %v", err)
	}
	sentinels := []error{controller.ErrInvalid, controller.ErrNotFound, controller.ErrExists, controller.ErrOverlap,
		controller.ErrIllegalTransition, controller.ErrStale, controller.ErrInUse, ipam.ErrPoolExhausted, ipam.ErrAddressInUse, ipam.ErrNotHolder}

	_, err := a.CreateNetwork(ctx, controller.NetworkRequest{Name: "v", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 4095}})
	note("vlan 4095: %s", errIs(err, sentinels...))
	for i, cidr := range []string{"10.0.0.0/29", "10.0.1.0/29"} {
		name := fmt.Sprintf("prod-%d", i)
		if _, err := a.CreateNetwork(ctx, controller.NetworkRequest{Name: name, Labels: []string{"prod-env"}, Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: uint32(5000 + i)}}); err != nil {
			t.Fatal(err)
		}
		sub, err := a.CreateSubnet(ctx, controller.SubnetRequest{Network: name, CIDR: netip.MustParsePrefix(cidr)})
		if err != nil {
			t.Fatal(err)
		}
		note("subnet %v gw %v pools %v", sub.CIDR, sub.Gateway, sub.AllocationPools)
	}
	_, err = a.CreateSubnet(ctx, controller.SubnetRequest{Network: "prod-0", CIDR: netip.MustParsePrefix("10.0.0.0/24")})
	note("overlap: %s", errIs(err, sentinels...))
	for i := range 7 {
		p, err := a.CreatePort(ctx, controller.PortRequest{Name: fmt.Sprintf("pod-%d", i), Label: "prod-env", Host: "host-a", DeviceOwner: controller.OwnerPod})
		if err != nil {
			t.Fatal(err)
		}
		note("port %s %v %s/%s", p.Name, p.Addrs(), p.UnderlayState, p.OverlayState)
	}
	as, err := a.AllocateBatch(ctx, controller.AllocRequest{Label: "prod-env", Count: 4, Holder: "vips"})
	note("batch of 4 with 3 free: %v %s", as, errIs(err, sentinels...))
	as, err = a.AllocateBatch(ctx, controller.AllocRequest{Label: "prod-env", Count: 3, Holder: "vips"})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range as {
		note("vip %v", x.Address)
	}
	_, err = a.CreatePort(ctx, controller.PortRequest{Name: "late", Label: "prod-env"})
	note("full label: %s", errIs(err, sentinels...))
	_, err = a.CreatePort(ctx, controller.PortRequest{Name: "x", Label: "staging-env"})
	note("unknown label: %s", errIs(err, sentinels...))
	for _, st := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := a.SetUnderlayState(ctx, "pod-0", controller.StateUpdate{State: st, Host: "host-a"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.SetOverlayState(ctx, "pod-0", controller.StateUpdate{State: controller.StateActive, Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	p, err := a.WaitPort(wctx, "pod-0", controller.StatusActiveActive)
	cancel()
	note("wait: %s %v", p.Status(), err)
	p, created, err := a.EnsurePort(ctx, controller.PortRequest{Name: "pod-0", Label: "prod-env", Host: "host-b"})
	note("drift: created=%v %v %s/%s %v", created, p.Addrs(), p.UnderlayState, p.OverlayState, err)
	_, err = a.SetUnderlayState(ctx, "pod-0", controller.StateUpdate{State: controller.StateBuild, Host: "host-a"})
	note("stale: %s", errIs(err, sentinels...))
	for _, h := range []string{"host-a", "host-b"} {
		ps, _ := a.PortsOnHost(ctx, h)
		note("%s has %d ports", h, len(ps))
	}
	err = a.Release(ctx, "prod-0", p.Addrs(), "")
	note("release a port's address: %s", errIs(err, sentinels...))
	for i := range 7 {
		if _, err := a.DeletePort(ctx, fmt.Sprintf("pod-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a.DeletePort(ctx, "pod-0")
	note("delete twice: %s", errIs(err, sentinels...))
	_, err = a.DeleteNetwork(ctx, "prod-1")
	note("delete network with subnets: %s", errIs(err, sentinels...))
	subs, _ := a.ListSubnets(ctx, "prod-1")
	_, err = a.DeleteSubnet(ctx, subs[0].ID)
	note("delete subnet with vips held: %s", errIs(err, sentinels...))
	var vips []netip.Addr
	for _, x := range as {
		vips = append(vips, x.Address)
	}
	if err := a.Release(ctx, "prod-1", vips, "vips"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		if _, err := a.DeleteSubnet(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
	}
	n, err := a.DeleteNetwork(ctx, "prod-1")
	note("delete emptied network: %s %v", n.Name, err)
	ns, _ := a.ListNetworks(ctx, "prod-env")
	note("networks left with the label: %d", len(ns))
	// The segment and name are free again.
	_, err = a.CreateNetwork(ctx, controller.NetworkRequest{Name: "prod-1", Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 5001}})
	note("recreate: %v", err)
	probs, err := a.Check(ctx)
	note("check: %v %v", probs, err)
	return out
}

// TestServiceAndClientAgree runs one script in process and over HTTP: the
// same results, the same errors.
func TestServiceAndClientAgree(t *testing.T) {
	local := newFixture(t, nil)
	remote := newFixture(t, nil)
	got := map[string][]string{
		"service": script(t, local.svc),
		"client":  script(t, remote.c),
	}
	if !reflect.DeepEqual(got["service"], got["client"]) {
		for i := range max(len(got["service"]), len(got["client"])) {
			var s, c string
			if i < len(got["service"]) {
				s = got["service"][i]
			}
			if i < len(got["client"]) {
				c = got["client"][i]
			}
			if s != c {
				t.Errorf("step %d:\n service %s\n client  %s", i, s, c)
			}
		}
	}
	for _, line := range got["client"] {
		t.Log(line)
	}
}
