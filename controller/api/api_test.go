package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

type fixture struct {
	st  *store.Bolt
	svc *controller.Service
	srv *httptest.Server
	c   *Client
}

// newFixture serves a service over a real, durable bbolt store in a temp
// directory.
func newFixture(t testing.TB, ov controller.Overlay) *fixture {
	return newFixtureOpts(t, ov, store.BoltOptions{})
}

func newFixtureOpts(t testing.TB, ov controller.Overlay, o store.BoltOptions) *fixture {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "api.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, ov, nil)
	srv := httptest.NewServer(NewServer(svc))
	t.Cleanup(func() { srv.Close(); svc.Close(); st.Close() })
	return &fixture{st: st, svc: svc, srv: srv, c: NewClient(srv.URL, nil)}
}

func (f *fixture) network(t testing.TB, name string, vni uint32, labels []string, cidrs ...string) controller.Network {
	t.Helper()
	ctx := context.Background()
	n, err := f.c.CreateNetwork(ctx, controller.NetworkRequest{Name: name, Labels: labels, Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: vni}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cidrs {
		if _, err := f.c.CreateSubnet(ctx, controller.SubnetRequest{Network: name, CIDR: netip.MustParsePrefix(c)}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (f *fixture) dump(t testing.TB) map[string]map[string]string {
	t.Helper()
	d, err := store.Dump(context.Background(), f.st, controller.Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) mustCheck(t testing.TB) {
	t.Helper()
	probs, err := f.c.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error("store check:", p)
	}
}

// TestBadInputOverHTTP: each bad request gets the right status and code,
// the client's error matches the service's sentinel, and the store is
// unchanged.
func TestBadInputOverHTTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.network(t, "n1", 100, []string{"prod-env"}, "10.0.0.0/30") // one address
	if _, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "p1", Network: "n1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		do     func() error
		is     error
		status int
		code   string
	}{
		{"unknown label", func() error {
			_, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "x", Label: "nope-env"})
			return err
		}, controller.ErrNotFound, 404, "not_found"},
		{"exhausted pool", func() error {
			_, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "x", Label: "prod-env"})
			return err
		}, ipam.ErrPoolExhausted, 409, "pool_exhausted"},
		{"exhausted batch", func() error {
			_, err := f.c.AllocateBatch(ctx, controller.AllocRequest{Network: "n1", Count: 2, Holder: "h"})
			return err
		}, ipam.ErrPoolExhausted, 409, "pool_exhausted"},
		{"overlapping subnets", func() error {
			_, err := f.c.CreateSubnet(ctx, controller.SubnetRequest{Network: "n1", CIDR: netip.MustParsePrefix("10.0.0.0/16")})
			return err
		}, controller.ErrOverlap, 409, "subnet_overlap"},
		{"vlan 4095", func() error {
			_, err := f.c.CreateNetwork(ctx, controller.NetworkRequest{Name: "v", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 4095}})
			return err
		}, controller.ErrInvalid, 400, "invalid"},
		{"duplicate port", func() error {
			_, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "p1", Network: "n1"})
			return err
		}, controller.ErrExists, 409, "already_exists"},
		{"unknown port", func() error {
			_, err := f.c.DeletePort(ctx, "ghost")
			return err
		}, controller.ErrNotFound, 404, "not_found"},
		{"illegal transition", func() error {
			_, err := f.c.SetOverlayState(ctx, "p1", controller.StateUpdate{State: controller.StateActive})
			return err
		}, controller.ErrIllegalTransition, 409, "illegal_transition"},
		{"unknown JSON field", func() error {
			resp, err := http.Post(f.srv.URL+"/v1/networks", "application/json", bytes.NewBufferString(`{"name":"x","vlan":5}`))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return &Error{Status: 400, Code: "invalid"}
		}, controller.ErrInvalid, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.dump(t)
			err := tc.do()
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want one matching %v", err, tc.is)
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Errorf("error %#v, want status %d code %q", err, tc.status, tc.code)
			}
			if !reflect.DeepEqual(before, f.dump(t)) {
				t.Error("failed request changed the store")
			}
		})
	}
	// The VLAN error names its field across the wire.
	_, err := f.c.CreateNetwork(ctx, controller.NetworkRequest{Name: "v", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 4095}})
	var ae *Error
	if !errors.As(err, &ae) || ae.Field != "segment.id" {
		t.Errorf("VLAN 4095 error %v does not name segment.id", err)
	}
	f.mustCheck(t)
}

// asyncOverlay reports overlay ACTIVE for every bound port, as the CNC
// would once the leaf is configured.
type asyncOverlay struct{ svc *controller.Service }

func (o *asyncOverlay) PortBound(ctx context.Context, p controller.Port, _ string) {
	_, _ = o.svc.SetOverlayState(ctx, p.Name, controller.StateUpdate{State: controller.StateActive, Host: p.Host, Reason: "leaf configured"})
}

func (o *asyncOverlay) PortUnbound(context.Context, controller.Port, string) {}

func TestAsyncCreateAndWait(t *testing.T) {
	ctx := context.Background()
	ov := &asyncOverlay{}
	f := newFixture(t, ov)
	ov.svc = f.svc
	f.network(t, "n1", 1, nil, "10.0.0.0/24")
	p, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "vm-1", Network: "n1", Host: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status() == controller.StatusActiveActive {
		t.Fatal("create returned an ACTIVE_ACTIVE port before the host agent reported")
	}
	// The host agent wires the port.
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := f.c.SetUnderlayState(ctx, "vm-1", controller.StateUpdate{State: s, Host: "h1"}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p, err = f.c.WaitPort(wctx, "vm-1", controller.StatusActiveActive)
	if err != nil || p.Status() != controller.StatusActiveActive {
		t.Fatalf("wait: %s %v", p.Status(), err)
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := f.c.WaitPort(short, "vm-1", controller.StatusError); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait for a status never reached: %v", err)
	}
	st, err := f.c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, e := range st {
		counts[e.Endpoint] = e.Count
		if e.P50ms > e.P99ms || e.P99ms > e.Maxms {
			t.Errorf("%s: p50 %v p99 %v max %v out of order", e.Endpoint, e.P50ms, e.P99ms, e.Maxms)
		}
	}
	if counts["POST /v1/ports"] != 1 || counts["PUT /v1/ports/{name}/underlay"] != 2 {
		t.Errorf("stats counts %v", counts)
	}
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`netbed_controller_request_seconds_count{endpoint="POST /v1/ports"} 1`,
		`netbed_controller_request_seconds_count{endpoint="PUT /v1/ports/{name}/underlay"} 2`,
		`netbed_controller_request_seconds{endpoint="POST /v1/ports",quantile="0.99"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestConcurrentAllocateRelease: 64 clients create and delete ports and
// allocate and release batches over HTTP against a small pool; afterwards
// the store holds exactly what was acknowledged and not freed: no address
// twice, nothing leaked.
func TestConcurrentAllocateRelease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	net1 := f.network(t, "pods-a", 1, []string{"pods"}, "10.0.0.0/23") // 509 addresses
	net2 := f.network(t, "pods-b", 2, []string{"pods"}, "10.0.2.0/23")
	const clients, rounds = 64, 12
	type held struct {
		net  string
		addr netip.Addr
	}
	var mu sync.Mutex
	live := map[held]string{} // -> holder: port name or batch holder
	var exhausted, ops int
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []controller.Port
			for i := range rounds {
				name := fmt.Sprintf("pod-%02d-%02d", g, i)
				p, err := f.c.CreatePort(ctx, controller.PortRequest{Name: name, Label: "pods", DeviceOwner: controller.OwnerPod, Host: fmt.Sprintf("node-%d", g%8)})
				mu.Lock()
				ops++
				switch {
				case errors.Is(err, ipam.ErrPoolExhausted):
					exhausted++
				case err != nil:
					t.Errorf("create %s: %v", name, err)
				default:
					mine = append(mine, p)
					for _, a := range p.Addrs() {
						k := held{p.Network, a}
						if other, dup := live[k]; dup {
							t.Errorf("%v given to %s while held by %s", a, name, other)
						}
						live[k] = name
					}
				}
				mu.Unlock()
				holder := fmt.Sprintf("batch-%02d", g)
				as, err := f.c.AllocateBatch(ctx, controller.AllocRequest{Label: "pods", Count: 3, Holder: holder})
				mu.Lock()
				ops++
				if errors.Is(err, ipam.ErrPoolExhausted) {
					exhausted++
				} else if err != nil {
					t.Errorf("batch: %v", err)
				}
				for _, a := range as {
					k := held{a.Network, a.Address}
					if other, dup := live[k]; dup {
						t.Errorf("%v batch-allocated while held by %s", a.Address, other)
					}
					live[k] = holder
				}
				mu.Unlock()
				// Release the batch but its first address, delete every other port.
				byNet := map[string][]netip.Addr{}
				for _, a := range as[min(1, len(as)):] {
					byNet[a.Network] = append(byNet[a.Network], a.Address)
				}
				// An address leaves the live set before it is freed: from
				// then on another client may get it.
				for n, addrs := range byNet {
					mu.Lock()
					for _, a := range addrs {
						delete(live, held{n, a})
					}
					mu.Unlock()
					if err := f.c.Release(ctx, n, addrs, holder); err != nil {
						t.Errorf("release: %v", err)
					}
				}
				if i%2 == 1 && len(mine) > 0 {
					victim := mine[0]
					mine = mine[1:]
					mu.Lock()
					for _, a := range victim.Addrs() {
						delete(live, held{victim.Network, a})
					}
					mu.Unlock()
					if _, err := f.c.DeletePort(ctx, victim.Name); err != nil {
						t.Errorf("delete %s: %v", victim.Name, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations, %d refused for exhaustion, %d addresses held", ops, exhausted, len(live))
	// The store holds exactly the live set.
	got := map[held]string{}
	for _, n := range []controller.Network{net1, net2} {
		subs, err := f.svc.ListSubnets(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			if err := f.st.View(ctx, func(tx store.Tx) error {
				return ipam.ForEach(tx, sub.ID, func(a netip.Addr, h string) bool {
					got[held{n.ID, a}] = h
					return true
				})
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ports, err := f.c.ListPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	portID := map[string]string{}
	for _, p := range ports {
		portID[p.Name] = p.ID
	}
	if len(got) != len(live) {
		t.Errorf("store holds %d addresses, clients were acknowledged %d", len(got), len(live))
	}
	for k, h := range live {
		want := h
		if id, isPort := portID[h]; isPort {
			want = "port:" + id
		}
		if got[k] != want {
			t.Errorf("%v in %s: store holder %q, want %q", k.addr, k.net, got[k], want)
		}
	}
	f.mustCheck(t)
}

func portReq(name, network, host string) controller.PortRequest {
	return controller.PortRequest{Name: name, Network: network, Host: host}
}

// TestNodesOverHTTP: node blocks of the cluster pool through the client,
// with the pool's exhaustion as a 409 that still matches
// ipam.ErrPoolExhausted, and an unknown node as a 404.
func TestNodesOverHTTP(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.svc.SetClusterPool(ctx, controller.ClusterPool{CIDR: netip.MustParsePrefix("10.244.0.0/23"), MaskBits: 24}); err != nil {
		t.Fatal(err)
	}
	a, created, err := f.c.EnsureNode(ctx, "host1")
	if err != nil || !created || a.PodCIDR.String() != "10.244.0.0/24" {
		t.Fatalf("host1: %+v created=%v %v", a, created, err)
	}
	if again, created, err := f.c.EnsureNode(ctx, "host1"); err != nil || created || again.PodCIDR != a.PodCIDR {
		t.Errorf("host1 again: %+v created=%v %v", again, created, err)
	}
	if _, _, err := f.c.EnsureNode(ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.c.EnsureNode(ctx, "host3"); !errors.Is(err, ipam.ErrPoolExhausted) || !strings.Contains(err.Error(), "cluster pool 10.244.0.0/23") {
		t.Errorf("host3 in a full pool: %v", err)
	}
	nodes, err := f.c.ListNodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Errorf("list: %+v %v", nodes, err)
	}
	if _, err := f.c.DeleteNode(ctx, "nope"); !errors.Is(err, controller.ErrNotFound) {
		t.Errorf("delete unknown node: %v", err)
	}
	if n, err := f.c.DeleteNode(ctx, "host1"); err != nil || n.PodCIDR != a.PodCIDR {
		t.Errorf("delete host1: %+v %v", n, err)
	}
}
