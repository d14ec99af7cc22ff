package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// fakeClock advances one second per reading, so every transition has its
// own, predictable time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// hookCall is one Overlay call seen by recorder.
type hookCall struct {
	bound   bool // PortBound, else PortUnbound
	port    string
	host    string // the port's host (PortBound) or the host left (PortUnbound)
	oldHost string
}

// recorder is an Overlay that records its calls (a unit-test twin of the CNC).
type recorder struct{ calls chan hookCall }

func (r *recorder) PortBound(_ context.Context, p Port, oldHost string) {
	r.calls <- hookCall{bound: true, port: p.Name, host: p.Host, oldHost: oldHost}
}

func (r *recorder) PortUnbound(_ context.Context, p Port, host string) {
	r.calls <- hookCall{port: p.Name, host: host}
}

func (r *recorder) next(t *testing.T) hookCall {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no overlay call")
		return hookCall{}
	}
}

func newTestService(t *testing.T, ov Overlay) (*Service, *store.Bolt) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "c.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(st, ov, &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	t.Cleanup(func() { svc.Close(); st.Close() })
	return svc, st
}

func mustNet(t *testing.T, svc *Service, name string, seg Segment, labels []string, cidrs ...string) Network {
	t.Helper()
	ctx := context.Background()
	n, err := svc.CreateNetwork(ctx, NetworkRequest{Name: name, Segment: seg, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cidrs {
		if _, err := svc.CreateSubnet(ctx, SubnetRequest{Network: name, CIDR: netip.MustParsePrefix(c)}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func dump(t *testing.T, st store.Store) map[string]map[string]string {
	t.Helper()
	d, err := store.Dump(context.Background(), st, Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBadInputChangesNothing: each bad request fails with a clear error of
// the right kind and leaves the store byte-for-byte as it was.
func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	svc, st := newTestService(t, nil)
	mustNet(t, svc, "n1", Segment{Type: SegmentVLAN, ID: 100}, []string{"prod-env"}, "10.0.0.0/29")
	mustNet(t, svc, "full", Segment{Type: SegmentVXLAN, ID: 7000}, []string{"full-env"}, "10.9.0.0/30")
	if _, err := svc.CreatePort(ctx, PortRequest{Name: "taken", Network: "full"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreatePort(ctx, PortRequest{Name: "p1", Network: "n1", MAC: "02:00:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tests := []struct {
		name    string
		do      func() error
		is      error
		field   string // for ErrInvalid: the field named
		mention string // the message names this
	}{
		{"vlan 4095", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "v", Segment: Segment{Type: SegmentVLAN, ID: 4095}})
			return err
		}, ErrInvalid, "segment.id", "4095"},
		{"vlan 0", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "v", Segment: Segment{Type: SegmentVLAN}})
			return err
		}, ErrInvalid, "segment.id", "1–4094"},
		{"vni too large", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "v", Segment: Segment{Type: SegmentVXLAN, ID: MaxVNI + 1}})
			return err
		}, ErrInvalid, "segment.id", "16777215"},
		{"unknown segment type", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "v", Segment: Segment{Type: "gre", ID: 1}})
			return err
		}, ErrInvalid, "segment.type", "gre"},
		{"duplicate network name", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "n1", Segment: Segment{Type: SegmentVLAN, ID: 101}})
			return err
		}, ErrExists, "", "n1"},
		{"segment used twice", func() error {
			_, err := svc.CreateNetwork(ctx, NetworkRequest{Name: "n2", Segment: Segment{Type: SegmentVLAN, ID: 100}})
			return err
		}, ErrExists, "", "vlan:100"},
		{"overlapping subnet", func() error {
			_, err := svc.CreateSubnet(ctx, SubnetRequest{Network: "n1", CIDR: netip.MustParsePrefix("10.0.0.0/24")})
			return err
		}, ErrOverlap, "", "10.0.0.0/29"},
		{"gateway outside cidr", func() error {
			_, err := svc.CreateSubnet(ctx, SubnetRequest{Network: "n1", CIDR: netip.MustParsePrefix("10.1.0.0/24"), Gateway: ip("10.2.0.1")})
			return err
		}, ErrInvalid, "gateway", "10.2.0.1"},
		{"host bits set", func() error {
			_, err := svc.CreateSubnet(ctx, SubnetRequest{Network: "n1", CIDR: netip.MustParsePrefix("10.1.0.7/24")})
			return err
		}, ErrInvalid, "cidr", "10.1.0.0/24"},
		{"pool holds gateway", func() error {
			_, err := svc.CreateSubnet(ctx, SubnetRequest{Network: "n1", CIDR: netip.MustParsePrefix("10.1.0.0/24"),
				AllocationPools: []ipam.Range{{Start: ip("10.1.0.1"), End: ip("10.1.0.9")}}})
			return err
		}, ErrInvalid, "allocation_pools[0]", "gateway"},
		{"subnet of unknown network", func() error {
			_, err := svc.CreateSubnet(ctx, SubnetRequest{Network: "nope", CIDR: netip.MustParsePrefix("10.1.0.0/24")})
			return err
		}, ErrNotFound, "", "nope"},
		{"duplicate port name", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "p1", Network: "n1"})
			return err
		}, ErrExists, "", "p1"},
		{"unknown network", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "nope"})
			return err
		}, ErrNotFound, "", "nope"},
		{"unknown label", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Label: "staging-env"})
			return err
		}, ErrNotFound, "", "staging-env"},
		{"exhausted pool by label", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Label: "full-env"})
			return err
		}, ipam.ErrPoolExhausted, "", "10.9.0.2-10.9.0.2"},
		{"exhausted pool in batch", func() error {
			_, err := svc.AllocateBatch(ctx, AllocRequest{Network: "n1", Count: 10, Holder: "lb"})
			return err
		}, ipam.ErrPoolExhausted, "", "10 addresses"},
		{"network and label", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", Label: "prod-env"})
			return err
		}, ErrInvalid, "label", "not both"},
		{"bad device owner", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", DeviceOwner: "fridge"})
			return err
		}, ErrInvalid, "device_owner", "fridge"},
		{"multicast mac", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", MAC: "01:00:5e:00:00:01"})
			return err
		}, ErrInvalid, "mac", "multicast"},
		{"duplicate mac", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", MAC: "02:00:00:00:00:01"})
			return err
		}, ErrExists, "", "02:00:00:00:00:01"},
		{"ip outside network", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", IP: ip("192.168.0.5")})
			return err
		}, ErrInvalid, "ip", "192.168.0.5"},
		{"ip is the gateway", func() error {
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", IP: ip("10.0.0.1")})
			return err
		}, ErrInvalid, "ip", "gateway"},
		{"ip held", func() error {
			p, _ := svc.GetPort(ctx, "p1")
			_, err := svc.CreatePort(ctx, PortRequest{Name: "x", Network: "n1", IP: p.IPs[0].Address})
			return err
		}, ipam.ErrAddressInUse, "", "port:"},
		{"release a port's address", func() error {
			p, _ := svc.GetPort(ctx, "p1")
			return svc.Release(ctx, "n1", p.Addrs(), "")
		}, ErrInUse, "", "delete the port"},
		{"illegal transition", func() error {
			_, err := svc.SetUnderlayState(ctx, "p1", StateUpdate{State: StateActive})
			return err
		}, ErrIllegalTransition, "", "bind it"},
		{"delete network with subnets", func() error {
			_, err := svc.DeleteNetwork(ctx, "n1")
			return err
		}, ErrInUse, "", "delete them first"},
		{"delete subnet with a port", func() error {
			p, _ := svc.GetPort(ctx, "p1")
			_, err := svc.DeleteSubnet(ctx, p.IPs[0].Subnet)
			return err
		}, ErrInUse, "", "port:"},
		{"delete unknown subnet", func() error {
			_, err := svc.DeleteSubnet(ctx, "sub-nope")
			return err
		}, ErrNotFound, "", "sub-nope"},
		{"delete unknown port", func() error {
			_, err := svc.DeletePort(ctx, "ghost")
			return err
		}, ErrNotFound, "", "ghost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, st)
			err := tc.do()
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want one matching %v", err, tc.is)
			}
			if tc.mention != "" && !containsStr(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if tc.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Errorf("error %v does not name field %q", err, tc.field)
				}
			}
			if after := dump(t, st); !reflect.DeepEqual(before, after) {
				t.Errorf("failed request changed the store")
			}
		})
	}
	if probs, err := svc.Check(ctx); err != nil || len(probs) > 0 {
		t.Errorf("check: %v %v", probs, err)
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestLabelSpansNetworks: a label over several networks fills them in name
// order, skips a full one, and reports exhaustion naming every pool.
func TestLabelSpansNetworks(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t, nil)
	// Created out of order; each /29 gives 5 addresses (gateway .1).
	nets := map[string]Network{}
	for i, name := range []string{"prod-c", "prod-a", "other", "prod-b"} {
		labels := []string{"prod-env"}
		if name == "other" {
			labels = []string{"dev-env"}
		}
		nets[name] = mustNet(t, svc, name, Segment{Type: SegmentVXLAN, ID: uint32(100 + i)}, labels, fmt.Sprintf("10.%d.0.0/29", i))
	}
	var got []string
	for i := 0; ; i++ {
		p, err := svc.CreatePort(ctx, PortRequest{Name: fmt.Sprintf("pod-%d", i), Label: "prod-env"})
		if err != nil {
			if !errors.Is(err, ipam.ErrPoolExhausted) {
				t.Fatalf("port %d: %v", i, err)
			}
			for _, s := range []string{"prod-env", "10.0.0.2-10.0.0.6", "10.1.0.2-10.1.0.6", "10.3.0.2-10.3.0.6"} {
				if !containsStr(err.Error(), s) {
					t.Errorf("exhaustion error %q does not name %q", err, s)
				}
			}
			break
		}
		for name, n := range nets {
			if n.ID == p.Network {
				got = append(got, name)
			}
		}
	}
	want := []string{}
	for _, name := range []string{"prod-a", "prod-b", "prod-c"} {
		for range 5 {
			want = append(want, name)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("networks picked %v, want %v", got, want)
	}
	ns, _ := svc.ListNetworks(ctx, "prod-env")
	if len(ns) != 3 {
		t.Errorf("ListNetworks(prod-env) gave %d networks, want 3", len(ns))
	}
	// Free one address in prod-b: the label finds that room.
	if _, err := svc.DeletePort(ctx, "pod-7"); err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreatePort(ctx, PortRequest{Name: "late", Label: "prod-env"})
	if err != nil || p.Network != nets["prod-b"].ID {
		t.Errorf("after freeing in prod-b: %+v %v", p.Network, err)
	}
}

func TestBatchAllocateByLabelAllOrNothing(t *testing.T) {
	ctx := context.Background()
	svc, st := newTestService(t, nil)
	mustNet(t, svc, "a", Segment{Type: SegmentVXLAN, ID: 1}, []string{"lb"}, "10.0.0.0/29") // 5 free
	mustNet(t, svc, "b", Segment{Type: SegmentVXLAN, ID: 2}, []string{"lb"}, "10.0.1.0/29") // 5 free
	as, err := svc.AllocateBatch(ctx, AllocRequest{Label: "lb", Count: 7, Holder: "vip-pool"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range as {
		if seen[a.Address] {
			t.Errorf("%v handed out twice", a.Address)
		}
		seen[a.Address] = true
	}
	if len(as) != 7 {
		t.Fatalf("got %d addresses, want 7", len(as))
	}
	before := dump(t, st)
	if _, err := svc.AllocateBatch(ctx, AllocRequest{Label: "lb", Count: 4, Holder: "vip-pool"}); !errors.Is(err, ipam.ErrPoolExhausted) {
		t.Fatalf("4 more of 3 free: %v", err)
	}
	if !reflect.DeepEqual(before, dump(t, st)) {
		t.Error("a failed batch left addresses allocated")
	}
	// Release needs the holder; then the batch fits.
	if err := svc.Release(ctx, "a", []netip.Addr{as[0].Address}, "someone-else"); !errors.Is(err, ipam.ErrNotHolder) {
		t.Errorf("release by another holder: %v", err)
	}
	if err := svc.Release(ctx, "a", []netip.Addr{as[0].Address}, "vip-pool"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AllocateBatch(ctx, AllocRequest{Label: "lb", Count: 4, Holder: "vip-pool"}); err != nil {
		t.Errorf("4 of 4 free: %v", err)
	}
	if r, err := svc.Reserve(ctx, "b", netip.MustParseAddr("10.0.1.7"), "reserved"); !errors.Is(err, ErrInvalid) {
		t.Errorf("reserving the broadcast address: %+v %v", r, err)
	}
}

// TestTransitions checks the port state machine against CanTransition for
// every pair, and that each transition is recorded with the clock's time.
func TestTransitions(t *testing.T) {
	states := []State{StateDown, StateBuild, StateActive, StateError}
	for _, from := range states {
		for _, to := range states {
			p := Port{Name: "p", UnderlayState: from, OverlayState: from}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			_, err := p.transition(PlaneUnderlay, to, at, "test")
			switch {
			case from == to:
				if err != nil || len(p.Transitions) != 0 {
					t.Errorf("%s -> %s: %v, %d transitions; want a silent no-op", from, to, err, len(p.Transitions))
				}
			case CanTransition(from, to):
				if err != nil || len(p.Transitions) != 1 || p.UnderlayState != to || p.OverlayState != from {
					t.Errorf("%s -> %s: %v, state %s/%s", from, to, err, p.UnderlayState, p.OverlayState)
				} else if tr := p.Transitions[0]; tr != (Transition{Plane: PlaneUnderlay, From: from, To: to, At: at, Reason: "test"}) {
					t.Errorf("%s -> %s recorded %+v", from, to, tr)
				}
			default:
				if !errors.Is(err, ErrIllegalTransition) || p.UnderlayState != from || len(p.Transitions) != 0 {
					t.Errorf("%s -> %s: %v, state %s; want refused and unchanged", from, to, err, p.UnderlayState)
				}
			}
		}
	}
	// Every state can reach ACTIVE, and ACTIVE is only entered from BUILD.
	for _, from := range states {
		seen := map[State]bool{from: true}
		queue := []State{from}
		for len(queue) > 0 {
			s := queue[0]
			queue = queue[1:]
			for _, n := range states {
				if CanTransition(s, n) && !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
		if !seen[StateActive] {
			t.Errorf("ACTIVE unreachable from %s", from)
		}
		if from != StateBuild && CanTransition(from, StateActive) {
			t.Errorf("%s -> ACTIVE skips BUILD", from)
		}
	}
	p := Port{UnderlayState: StateActive, OverlayState: StateActive}
	if p.Status() != StatusActiveActive {
		t.Errorf("both ACTIVE: %s", p.Status())
	}
	for _, tc := range []struct {
		u, o State
		want Status
	}{{StateActive, StateBuild, StatusBuild}, {StateError, StateActive, StatusError}, {StateDown, StateDown, StatusDown}} {
		if got := DeriveStatus(tc.u, tc.o); got != tc.want {
			t.Errorf("DeriveStatus(%s, %s) = %s, want %s", tc.u, tc.o, got, tc.want)
		}
	}
}

// TestSpawnAndDrift follows a port through the seed's spawn flow and a move
// to another host: overlay calls, states, recorded times, stale reports.
func TestSpawnAndDrift(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{calls: make(chan hookCall, 16)}
	svc, _ := newTestService(t, rec)
	mustNet(t, svc, "n1", Segment{Type: SegmentVXLAN, ID: 5000}, nil, "10.0.0.0/24", "fd00::/64")
	p, err := svc.CreatePort(ctx, PortRequest{Name: "web-0", Network: "n1", DeviceOwner: OwnerPod, Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IPs) != 2 || !p.IPs[0].Address.Is4() || !p.IPs[1].Address.Is6() {
		t.Fatalf("dual-stack network gave %v", p.IPs)
	}
	if p.Status() == StatusActiveActive || p.OverlayState != StateBuild {
		t.Fatalf("new bound port: %s/%s", p.UnderlayState, p.OverlayState)
	}
	if c := rec.next(t); c != (hookCall{bound: true, port: "web-0", host: "host-a"}) {
		t.Errorf("first binding: %+v", c)
	}
	step := func(f func(context.Context, string, StateUpdate) (Port, error), u StateUpdate) Port {
		t.Helper()
		p, err := f(ctx, "web-0", u)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	step(svc.SetOverlayState, StateUpdate{State: StateActive, Host: "host-a", Reason: "leaf1 configured"})
	step(svc.SetUnderlayState, StateUpdate{State: StateBuild, Host: "host-a"})
	p = step(svc.SetUnderlayState, StateUpdate{State: StateActive, Host: "host-a"})
	if p.Status() != StatusActiveActive {
		t.Fatalf("status %s", p.Status())
	}
	for i := 1; i < len(p.Transitions); i++ {
		if !p.Transitions[i].At.After(p.Transitions[i-1].At) {
			t.Errorf("transition %d at %v not after %v", i, p.Transitions[i].At, p.Transitions[i-1].At)
		}
	}
	// Drift: the same identity on host-b keeps its addresses.
	q, created, err := svc.EnsurePort(ctx, PortRequest{Name: "web-0", Network: "n1", DeviceOwner: OwnerPod, Host: "host-b"})
	if err != nil || created {
		t.Fatalf("ensure on host-b: created=%v %v", created, err)
	}
	if !reflect.DeepEqual(q.IPs, p.IPs) || q.MAC != p.MAC {
		t.Errorf("drift changed addresses: %v %s -> %v %s", p.IPs, p.MAC, q.IPs, q.MAC)
	}
	if q.UnderlayState != StateDown || q.OverlayState != StateBuild {
		t.Errorf("after drift: %s/%s, want DOWN/BUILD", q.UnderlayState, q.OverlayState)
	}
	if c := rec.next(t); c != (hookCall{bound: true, port: "web-0", host: "host-b", oldHost: "host-a"}) {
		t.Errorf("drift: %+v", c)
	}
	if _, err := svc.SetUnderlayState(ctx, "web-0", StateUpdate{State: StateDown, Host: "host-a"}); !errors.Is(err, ErrStale) {
		t.Errorf("late report from host-a: %v, want ErrStale", err)
	}
	if hs, _ := svc.PortsOnHost(ctx, "host-a"); len(hs) != 0 {
		t.Errorf("host-a still lists %d ports", len(hs))
	}
	if hs, _ := svc.PortsOnHost(ctx, "host-b"); len(hs) != 1 {
		t.Errorf("host-b lists %d ports, want 1", len(hs))
	}
	// Same host again: nothing happens.
	if _, err := svc.BindPort(ctx, "web-0", "host-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeletePort(ctx, "web-0"); err != nil {
		t.Fatal(err)
	}
	if c := rec.next(t); c != (hookCall{port: "web-0", host: "host-b"}) {
		t.Errorf("delete: %+v", c)
	}
	select {
	case c := <-rec.calls:
		t.Errorf("unexpected overlay call %+v", c)
	default:
	}
	if probs, _ := svc.Check(ctx); len(probs) > 0 {
		t.Error(probs)
	}
}

func TestRoutedNetworkNeedsNoOverlay(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t, nil)
	mustNet(t, svc, "pods", Segment{}, nil, "10.8.0.0/24")
	p, err := svc.CreatePort(ctx, PortRequest{Name: "p", Network: "pods", Host: "node-1", DeviceOwner: OwnerPod})
	if err != nil {
		t.Fatal(err)
	}
	if p.OverlayState != StateActive {
		t.Errorf("routed network overlay %s, want ACTIVE", p.OverlayState)
	}
}

// TestEnsurePortConcurrent: 16 callers ensuring one name create it once.
func TestEnsurePortConcurrent(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t, nil)
	mustNet(t, svc, "n1", Segment{Type: SegmentVXLAN, ID: 1}, nil, "10.0.0.0/24")
	var mu sync.Mutex
	created := 0
	addrs := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, c, err := svc.EnsurePort(ctx, PortRequest{Name: "ns.pod", Network: "n1", Host: "h1"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
			addrs[p.IPs[0].Address] = true
		}()
	}
	wg.Wait()
	if created != 1 || len(addrs) != 1 {
		t.Errorf("created %d times, %d distinct addresses; want 1 and 1", created, len(addrs))
	}
	if _, _, err := svc.EnsurePort(ctx, PortRequest{Name: "ns.pod", Network: "elsewhere"}); !errors.Is(err, ErrExists) {
		t.Errorf("ensure in another network: %v", err)
	}
}

func TestWaitPort(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t, nil)
	mustNet(t, svc, "n1", Segment{Type: SegmentVXLAN, ID: 1}, nil, "10.0.0.0/24")
	if _, err := svc.CreatePort(ctx, PortRequest{Name: "p", Network: "n1", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan Port, 1)
	go func() {
		p, err := svc.WaitPort(ctx, "p", StatusActiveActive)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	for _, u := range []struct {
		f  func(context.Context, string, StateUpdate) (Port, error)
		st State
	}{{svc.SetUnderlayState, StateBuild}, {svc.SetOverlayState, StateActive}, {svc.SetUnderlayState, StateActive}} {
		if _, err := u.f(ctx, "p", StateUpdate{State: u.st}); err != nil {
			t.Fatal(err)
		}
	}
	if p := <-done; p.Status() != StatusActiveActive {
		t.Errorf("wait returned %s", p.Status())
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := svc.WaitPort(short, "p", StatusError); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait for a status never reached: %v", err)
	}
}

// TestOverlayCallsInCommitOrder: rapid moves of one port reach the overlay
// one at a time, in order, each naming the host the previous one bound.
func TestOverlayCallsInCommitOrder(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{calls: make(chan hookCall, 64)}
	svc, _ := newTestService(t, rec)
	mustNet(t, svc, "n1", Segment{Type: SegmentVXLAN, ID: 9}, nil, "10.0.0.0/24")
	if _, err := svc.CreatePort(ctx, PortRequest{Name: "mover", Network: "n1"}); err != nil {
		t.Fatal(err)
	}
	const moves = 30
	for i := range moves {
		if _, err := svc.BindPort(ctx, "mover", fmt.Sprintf("host-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.BindPort(ctx, "mover", ""); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for i := range moves {
		c := rec.next(t)
		want := hookCall{bound: true, port: "mover", host: fmt.Sprintf("host-%02d", i), oldHost: prev}
		if c != want {
			t.Fatalf("call %d: %+v, want %+v", i, c, want)
		}
		prev = c.host
	}
	if c := rec.next(t); c != (hookCall{port: "mover", host: prev}) {
		t.Errorf("unbind: %+v", c)
	}
}

// TestTransitionsBounded: a port that flaps for a long time keeps only its
// latest MaxTransitions transitions, in the store too.
func TestTransitionsBounded(t *testing.T) {
	ctx := context.Background()
	svc, _ := newTestService(t, nil)
	mustNet(t, svc, "n1", Segment{Type: SegmentVLAN, ID: 100}, nil, "10.0.0.0/24")
	if _, err := svc.CreatePort(ctx, PortRequest{Name: "flappy", Network: "n1", DeviceOwner: OwnerVM, Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	states := []State{StateBuild, StateActive, StateDown}
	for i := range 3 * MaxTransitions {
		if _, err := svc.SetUnderlayState(ctx, "flappy", StateUpdate{State: states[i%3], Host: "host-a", Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := svc.GetPort(ctx, "flappy")
	if err != nil {
		t.Fatal(err)
	}
	var under []Transition
	for _, tr := range p.Transitions {
		if tr.Plane == PlaneUnderlay {
			under = append(under, tr)
		}
	}
	if len(p.Transitions) != MaxTransitions || len(under) == 0 || under[len(under)-1].Reason != fmt.Sprint(3*MaxTransitions-1) {
		t.Fatalf("%d transitions kept, last underlay one %+v; want %d ending with report %d", len(p.Transitions), under[len(under)-1], MaxTransitions, 3*MaxTransitions-1)
	}
}
