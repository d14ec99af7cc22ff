package cnc_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/topologies"
)

// fabric is a small spine-leaf: two spines, four leaves; host-a single-homed
// to leaf1, host-b dual-homed to leaf2 and leaf3, host-c dual-homed to
// leaf3 and leaf4, host-d single-homed to leaf4; leaf4 has a single uplink
// (to spine2).
func fabric() *topologies.Topology {
	t := &topologies.Topology{Name: "cnc-test"}
	for _, s := range []string{"spine1", "spine2"} {
		t.AddNode(s, topologies.RoleSpine)
	}
	for _, l := range []string{"leaf1", "leaf2", "leaf3", "leaf4"} {
		t.AddNode(l, topologies.RoleLeaf)
	}
	for _, h := range []string{"host-a", "host-b", "host-c", "host-d", "host-lonely"} {
		t.AddNode(h, topologies.RoleHost)
	}
	for i, l := range []string{"leaf1", "leaf2", "leaf3"} {
		t.Connect("spine1", "e"+string(rune('1'+i)), l, "up1")
		t.Connect("spine2", "e"+string(rune('1'+i)), l, "up2")
	}
	t.Connect("spine2", "e4", "leaf4", "up2")
	t.Connect("host-a", "eth0", "leaf1", "e10")
	t.Connect("host-b", "eth0", "leaf2", "e11")
	t.Connect("host-b", "eth1", "leaf3", "e11")
	t.Connect("host-c", "eth0", "leaf3", "e12")
	t.Connect("host-c", "eth1", "leaf4", "e12")
	t.Connect("host-d", "eth0", "leaf4", "e13")
	return t
}

type env struct {
	svc *controller.Service
	cnc *cnc.CNC
	drv *cnc.MemoryDriver
	st  *store.Bolt
}

func newEnv(t *testing.T, o cnc.Options) *env {
	t.Helper()
	drv := cnc.NewMemoryDriver()
	e := newEnvWith(t, drv, o)
	e.drv = drv
	return e
}

func newEnvWith(t *testing.T, drv cnc.LeafDriver, o cnc.Options) *env {
	t.Helper()
	st, err := openStore(t)
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	c := cnc.New(fabric(), drv, svc, o)
	svc.SetOverlay(c)
	t.Cleanup(func() {
		svc.Close()
		c.Close()
		st.Close()
	})
	return &env{svc: svc, cnc: c, st: st}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) network(t *testing.T, name string, seg controller.Segment, cidr string) controller.Network {
	t.Helper()
	n, err := e.svc.CreateNetwork(ctx(t), controller.NetworkRequest{Name: name, Segment: seg, Labels: []string{"prod-env"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateSubnet(ctx(t), controller.SubnetRequest{Network: name, CIDR: netip.MustParsePrefix(cidr)}); err != nil {
		t.Fatal(err)
	}
	return n
}

// place gets or creates port name on host as the CNI does, reports the
// underlay ACTIVE and waits for the overlay to settle in want.
func (e *env) place(t *testing.T, name, network, host string, want controller.State) controller.Port {
	t.Helper()
	p, _, err := e.svc.EnsurePort(ctx(t), controller.PortRequest{Name: name, Network: network, DeviceOwner: controller.OwnerPod, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUnderlayState(ctx(t), name, controller.StateUpdate{State: controller.StateBuild, Host: host}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUnderlayState(ctx(t), name, controller.StateUpdate{State: controller.StateActive, Host: host}); err != nil {
		t.Fatal(err)
	}
	return e.settle(t, p.Name, want)
}

// settle waits until the port's overlay is in want and the CNC is idle.
func (e *env) settle(t *testing.T, name string, want controller.State) controller.Port {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
		p, err := e.svc.GetPort(wctx, name)
		if err == nil && p.OverlayState == want {
			err = e.cnc.Wait(wctx)
			cancel()
			if err == nil {
				if p, err = e.svc.GetPort(ctx(t), name); err == nil && p.OverlayState == want {
					return p
				}
			}
		} else {
			// Let the hook run; WaitPort wakes on any change of the port.
			_, _ = e.svc.WaitPort(wctx, name, "never")
			cancel()
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %q overlay: got %s (err %v), want %s; steps %+v", name, p.OverlayState, err, want, e.cnc.Steps(p.ID))
		}
	}
}

func TestDriftMovesLeafConfigAndKeepsIP(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	n := e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 5001}, "10.1.0.0/24")

	p1 := e.place(t, "pod:default:web-0", "blue", "host-a", controller.StateActive)
	p2 := e.place(t, "pod:default:web-1", "blue", "host-a", controller.StateActive)
	if p1.Status() != controller.StatusActiveActive {
		t.Fatalf("port status %s, want ACTIVE_ACTIVE", p1.Status())
	}
	vlan, ok := e.cnc.AccessVLAN("leaf1", 5001)
	if !ok || vlan == 0 {
		t.Fatalf("leaf1 has no access VLAN for VNI 5001")
	}
	l1 := e.drv.Leaf("leaf1")
	if !l1.HasEntry(p1.ID) || !l1.HasEntry(p2.ID) || !l1.HasMapping("e10", vlan, 5001) {
		t.Fatalf("leaf1 after binding to host-a: %+v", l1)
	}

	// web-0 drifts to host-b (dual-homed to leaf2 and leaf3): same port,
	// same IP; leaf1 keeps the mapping web-1 still needs.
	moved := e.place(t, "pod:default:web-0", "blue", "host-b", controller.StateActive)
	if moved.ID != p1.ID || !slices.Equal(moved.Addrs(), p1.Addrs()) || moved.MAC != p1.MAC {
		t.Fatalf("drift changed the port: before %s %v %s, after %s %v %s", p1.ID, p1.Addrs(), p1.MAC, moved.ID, moved.Addrs(), moved.MAC)
	}
	l1 = e.drv.Leaf("leaf1")
	if l1.HasEntry(p1.ID) {
		t.Errorf("old leaf1 still advertises the moved port: %+v", l1)
	}
	if !l1.HasEntry(p2.ID) || !l1.HasMapping("e10", vlan, 5001) {
		t.Errorf("old leaf1 lost what web-1 needs: %+v", l1)
	}
	for _, leaf := range []string{"leaf2", "leaf3"} {
		s := e.drv.Leaf(leaf)
		v, _ := e.cnc.AccessVLAN(leaf, 5001)
		if !s.HasEntry(p1.ID) || !s.HasMapping("e11", v, 5001) {
			t.Errorf("new %s lacks the moved port's config: %+v", leaf, s)
		}
		for _, en := range s.Entries {
			if en.Port == p1.ID && (!slices.Equal(en.IPs, p1.Addrs()) || en.MAC != p1.MAC || en.VNI != n.Segment.ID) {
				t.Errorf("%s advertises %+v, want %v %s in VNI %d", leaf, en, p1.Addrs(), p1.MAC, n.Segment.ID)
			}
		}
	}

	// web-1 follows: now nothing on leaf1 needs the mapping.
	e.place(t, "pod:default:web-1", "blue", "host-b", controller.StateActive)
	if l1 := e.drv.Leaf("leaf1"); len(l1.Entries) != 0 || len(l1.Mappings) != 0 {
		t.Errorf("leaf1 keeps config after every port left: %+v", l1)
	}
	if _, ok := e.cnc.AccessVLAN("leaf1", 5001); ok {
		t.Errorf("leaf1 still holds an access VLAN for VNI 5001")
	}

	// The recorded steps follow the seed's order on a drift: lookup, remove
	// from the old leaf, apply on the new ones, report.
	var kinds []string
	for _, s := range e.cnc.Steps(p1.ID) {
		if s.End.Before(s.Start) {
			t.Errorf("step %+v ends before it starts", s)
		}
		kinds = append(kinds, s.Kind+":"+s.Leaf)
	}
	want := []string{"lookup:", "remove:leaf1", "apply:leaf2", "apply:leaf3", "report:"}
	if i := indexOf(kinds, "remove:leaf1"); i < 1 || !slices.Equal(kinds[i-1:i-1+len(want)], want) {
		t.Errorf("drift steps %v, want a run %v", kinds, want)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestDeleteRemovesLeafConfig(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 7}, "10.2.0.0/24")
	p := e.place(t, "vm-1", "blue", "host-c", controller.StateActive)
	for _, leaf := range []string{"leaf3", "leaf4"} {
		if !e.drv.Leaf(leaf).HasEntry(p.ID) {
			t.Fatalf("%s lacks the port after binding", leaf)
		}
	}
	if _, err := e.svc.DeletePort(ctx(t), "vm-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(e.drv.Leaves()) > 0 || len(e.cnc.BoundPorts()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("leaves keep config after the port's deletion: %v %+v", e.drv.Leaves(), e.drv.Leaf("leaf3"))
		}
		_ = e.cnc.Wait(ctx(t))
		time.Sleep(time.Millisecond)
	}
}

func TestDriverFailureRetriesThenErrors(t *testing.T) {
	cases := []struct {
		name      string
		failures  int // -1: always
		want      controller.State
		minFailed int
	}{
		{"recovers after two failures", 2, controller.StateActive, 2},
		{"stays in error", -1, controller.StateError, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, cnc.Options{Attempts: 3})
			e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 9}, "10.3.0.0/24")
			e.drv.Fail("leaf1", tc.failures)
			p := e.place(t, "vm-1", "blue", "host-a", tc.want)
			failed := 0
			for _, s := range e.cnc.Steps(p.ID) {
				if s.Kind == "apply" && s.Err != "" {
					failed++
				}
			}
			if failed < tc.minFailed {
				t.Errorf("%d failed apply steps recorded, want >= %d", failed, tc.minFailed)
			}
			var sawError bool
			for _, tr := range p.Transitions {
				sawError = sawError || (tr.Plane == controller.PlaneOverlay && tr.To == controller.StateError)
			}
			if !sawError {
				t.Errorf("overlay never went through ERROR: %+v", p.Transitions)
			}
			if got := e.drv.Leaf("leaf1").HasEntry(p.ID); got != (tc.want == controller.StateActive) {
				t.Errorf("leaf1 has entry = %v with overlay %s", got, tc.want)
			}
		})
	}
}

func TestHostWithoutLeafIsError(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 10}, "10.4.0.0/24")
	for _, host := range []string{"host-lonely", "no-such-host"} {
		p := e.place(t, "vm-"+host, "blue", host, controller.StateError)
		if steps := e.cnc.Steps(p.ID); len(steps) == 0 || steps[0].Err == "" {
			t.Errorf("host %s: lookup step carries no error: %+v", host, steps)
		}
	}
	if l := e.drv.Leaves(); len(l) != 0 {
		t.Errorf("leaves configured for hosts without leaves: %v", l)
	}
}

func TestVLANPerLeafAndSegmentTypes(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "x1", controller.Segment{Type: controller.SegmentVXLAN, ID: 100}, "10.5.0.0/24")
	e.network(t, "x2", controller.Segment{Type: controller.SegmentVXLAN, ID: 200}, "10.6.0.0/24")
	e.network(t, "v", controller.Segment{Type: controller.SegmentVLAN, ID: 300}, "10.7.0.0/24")
	e.network(t, "routed", controller.Segment{}, "10.8.0.0/24")

	a := e.place(t, "a", "x1", "host-a", controller.StateActive)
	b := e.place(t, "b", "x2", "host-a", controller.StateActive)
	c := e.place(t, "c", "v", "host-a", controller.StateActive)
	d := e.place(t, "d", "routed", "host-a", controller.StateActive)
	v1, _ := e.cnc.AccessVLAN("leaf1", 100)
	v2, _ := e.cnc.AccessVLAN("leaf1", 200)
	if v1 == 0 || v2 == 0 || v1 == v2 {
		t.Fatalf("access VLANs on leaf1: VNI 100 -> %d, VNI 200 -> %d; want two distinct non-zero", v1, v2)
	}
	s := e.drv.Leaf("leaf1")
	cases := []struct {
		port       controller.Port
		vlan       uint16
		vni        uint32
		configured bool
	}{
		{a, v1, 100, true},
		{b, v2, 200, true},
		{c, 300, 0, true}, // generation 1: the network's VLAN, no VNI
		{d, 0, 0, false},  // routed: nothing to program
	}
	for _, tc := range cases {
		if got := s.HasEntry(tc.port.ID); got != tc.configured {
			t.Errorf("port %s: entry present = %v, want %v", tc.port.Name, got, tc.configured)
		}
		if tc.configured && !s.HasMapping("e10", tc.vlan, tc.vni) {
			t.Errorf("port %s: leaf1 lacks mapping VLAN %d -> VNI %d: %+v", tc.port.Name, tc.vlan, tc.vni, s.Mappings)
		}
	}
	// d still counts for the blast radius.
	if got := e.cnc.DependentPorts("leaf1"); !slices.Contains(got, d.ID) {
		t.Errorf("routed port missing from leaf1's dependents %v", got)
	}
}

func TestBlastRadius(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 11}, "10.9.0.0/24")
	ids := map[string]string{}
	for _, pl := range []struct{ name, host string }{{"pa", "host-a"}, {"pb", "host-b"}, {"pc", "host-c"}, {"pd", "host-d"}} {
		ids[pl.name] = e.place(t, pl.name, "blue", pl.host, controller.StateActive).ID
	}
	ports := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, ids[n])
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		device             string
		dependent, isolate []string
	}{
		{"host-a", ports("pa"), ports("pa")},
		{"leaf1", ports("pa"), ports("pa")},                    // single-homed
		{"leaf2", ports("pb"), nil},                            // host-b has leaf3 too
		{"leaf3", ports("pb", "pc"), nil},                      // both dual-homed
		{"leaf4", ports("pc", "pd"), ports("pd")},              // host-c has leaf3 too
		{"spine1", ports("pa", "pb", "pc"), nil},               // every leaf it links has spine2 too
		{"spine2", ports("pa", "pb", "pc", "pd"), ports("pd")}, // leaf4 is cut; host-c keeps leaf3
		{"no-such-device", nil, nil},
	}
	all, err := e.svc.ListPorts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.device, func(t *testing.T) {
			r, err := cnc.BlastRadius(fabric(), all, tc.device)
			if tc.device == "no-such-device" {
				if !errors.Is(err, cnc.ErrUnknownDevice) {
					t.Errorf("BlastRadius of an unknown device: %v", err)
				}
			} else if err != nil || !slices.Equal(r.Dependent, tc.dependent) || !slices.Equal(r.Isolated, tc.isolate) {
				t.Errorf("BlastRadius(%s) = %+v, %v; want dependent %v isolated %v", tc.device, r, err, tc.dependent, tc.isolate)
			}
			if got := e.cnc.DependentPorts(tc.device); !slices.Equal(got, tc.dependent) {
				t.Errorf("DependentPorts(%s) = %v, want %v", tc.device, got, tc.dependent)
			}
			if got := e.cnc.IsolatedPorts(tc.device); !slices.Equal(got, tc.isolate) {
				t.Errorf("IsolatedPorts(%s) = %v, want %v", tc.device, got, tc.isolate)
			}
		})
	}
}

// Hooks delivered out of order (a stale PortBound after a newer one)
// converge on the binding the store holds.
func TestStaleHookConverges(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 12}, "10.10.0.0/24")
	e.place(t, "p", "blue", "host-a", controller.StateActive)
	p := e.place(t, "p", "blue", "host-b", controller.StateActive)
	stale := p
	stale.Host = "host-a"
	e.cnc.PortBound(context.Background(), stale, "host-b")
	if err := e.cnc.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e.drv.Leaf("leaf1").HasEntry(p.ID) || !e.drv.Leaf("leaf2").HasEntry(p.ID) {
		t.Errorf("stale hook moved the config: leaf1 %+v leaf2 %+v", e.drv.Leaf("leaf1"), e.drv.Leaf("leaf2"))
	}
	got, err := e.svc.GetPort(ctx(t), "p")
	if err != nil || got.Status() != controller.StatusActiveActive {
		t.Errorf("port after stale hook: %s, %v", got.Status(), err)
	}
}

func TestMemoryDriverIdempotent(t *testing.T) {
	d := cnc.NewMemoryDriver()
	cfg := cnc.LeafConfig{Iface: "e1", VLAN: 3, VNI: 30, Port: "p1", MAC: "02:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	for range 2 {
		if err := d.Apply(context.Background(), "leaf", cfg); err != nil {
			t.Fatal(err)
		}
	}
	if s := d.Leaf("leaf"); len(s.Entries) != 1 || len(s.Mappings) != 1 {
		t.Fatalf("after two applies: %+v", s)
	}
	cfg.RemoveMapping = true
	for range 2 {
		if err := d.Remove(context.Background(), "leaf", cfg); err != nil {
			t.Fatal(err)
		}
	}
	if s := d.Leaf("leaf"); len(s.Entries) != 0 || len(s.Mappings) != 0 {
		t.Fatalf("after two removes: %+v", s)
	}
	d.Fail("leaf", 1)
	if err := d.Apply(context.Background(), "leaf", cfg); !errors.Is(err, cnc.ErrInjected) {
		t.Fatalf("injected failure: got %v", err)
	}
	if err := d.Apply(context.Background(), "leaf", cfg); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}
}

func TestTimelineFollowsSpawnFlow(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 13}, "10.11.0.0/24")
	p := e.place(t, "vm-1", "blue", "host-a", controller.StateActive)
	tl := cnc.Timeline(p, e.cnc.Steps(p.ID))
	// The seed's order: bound (overlay BUILD), the CNC looks up the
	// host's leaves, applies, and reports; the overlay then turns ACTIVE.
	order := []struct{ source, prefix string }{
		{"overlay", "DOWN -> BUILD"},
		{"cnc", "lookup"},
		{"cnc", "apply leaf leaf1"},
		{"cnc", "report overlay ACTIVE"},
		{"overlay", "BUILD -> ACTIVE"},
	}
	i := 0
	for _, ev := range tl {
		if i < len(order) && ev.Source == order[i].source && strings.HasPrefix(ev.What, order[i].prefix) {
			i++
		}
		if ev.Took < 0 {
			t.Errorf("event %+v has a negative duration", ev)
		}
	}
	if i != len(order) {
		t.Errorf("timeline lacks %v in order; got:\n%s", order[i], dump(tl))
	}
	for j := 1; j < len(tl); j++ {
		if tl[j].At.Before(tl[j-1].At) {
			t.Fatalf("timeline out of order at %d:\n%s", j, dump(tl))
		}
	}
}

func dump(tl []cnc.Event) string {
	var b strings.Builder
	for _, ev := range tl {
		b.WriteString(ev.At.Format("15:04:05.000000") + " " + ev.Source + " " + ev.What + "\n")
	}
	return b.String()
}

func openStore(tb testing.TB) (*store.Bolt, error) {
	return store.OpenBolt(filepath.Join(tb.TempDir(), "ctl.db"), store.BoltOptions{})
}

// A controller restarting on its store, with leaves that lost their
// configuration: Attach re-pushes every binding the store holds.
func TestAttachResyncsAfterRestart(t *testing.T) {
	e := newEnv(t, cnc.Options{})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 14}, "10.12.0.0/24")
	var ids []string
	for i, host := range []string{"host-a", "host-b", "host-c"} {
		ids = append(ids, e.place(t, fmt.Sprintf("p%d", i), "blue", host, controller.StateActive).ID)
	}
	e.cnc.Close()
	fresh := cnc.NewMemoryDriver()
	c, err := cnc.Attach(ctx(t), e.svc, fabric(), fresh, cnc.Options{Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		leaf string
		port string
	}{{"leaf1", ids[0]}, {"leaf2", ids[1]}, {"leaf3", ids[1]}, {"leaf3", ids[2]}, {"leaf4", ids[2]}} {
		if !fresh.Leaf(want.leaf).HasEntry(want.port) {
			t.Errorf("after Attach %s lacks port %s: %+v", want.leaf, want.port, fresh.Leaf(want.leaf))
		}
	}
	if got := c.BoundPorts(); len(got) != 3 {
		t.Errorf("bound after Attach: %v", got)
	}
}

// Deleted ports keep their steps for a while, not forever.
func TestStepsOfDeletedPortsAreBounded(t *testing.T) {
	e := newEnv(t, cnc.Options{GoneHistory: 2})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: 15}, "10.13.0.0/24")
	var ids []string
	for i := range 4 {
		name := fmt.Sprintf("p%d", i)
		ids = append(ids, e.place(t, name, "blue", "host-a", controller.StateActive).ID)
		if _, err := e.svc.DeletePort(ctx(t), name); err != nil {
			t.Fatal(err)
		}
		waitUnbound(t, e, ids[i])
	}
	for i, id := range ids {
		kept := len(e.cnc.Steps(id)) > 0
		if want := i >= 2; kept != want {
			t.Errorf("deleted port %d keeps steps = %v, want %v", i, kept, want)
		}
	}
}

// waitUnbound waits until the CNC has released port and finished.
func waitUnbound(t *testing.T, e *env, port string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for slices.Contains(e.cnc.BoundPorts(), port) {
		if time.Now().After(deadline) {
			t.Fatalf("CNC never released port %s", port)
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.cnc.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
