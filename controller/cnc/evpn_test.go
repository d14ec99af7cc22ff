package cnc_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
)

// The CNC driving the generation 2 fabric model: the leaf behind the
// port's host binds its MAC and advertises it; after a drift the route
// points at the new host's leaf and the old leaf no longer holds it.
func TestEVPNDriverDrift(t *testing.T) {
	f, err := evpn.New(fabric(), evpn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := cnc.NewEVPNDriver(f, nil)
	const vni, vlan = 5001, 100
	if err := d.AddNetwork(datapath.NetworkSpec{Name: "blue", Tenant: "t1", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
		Gateway: netip.MustParseAddr("10.1.0.1"), VLAN: vlan, VNI: vni}); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, d, cnc.Options{AccessVLAN: d.AccessVLAN})
	e.network(t, "blue", controller.Segment{Type: controller.SegmentVXLAN, ID: vni}, "10.1.0.0/24")

	leaf := func(name string) *evpn.Leaf {
		l, ok := f.Leaf(name)
		if !ok {
			t.Fatalf("no leaf %s", name)
		}
		return l
	}
	check := func(p controller.Port, owner string, others ...string) {
		t.Helper()
		hw, _ := net.ParseMAC(p.MAC)
		mac := evpn.MACOf(hw)
		d.Lock.Lock()
		defer d.Lock.Unlock()
		r, ok := f.Table().Lookup(vni, mac, p.IPs[0].Address)
		if !ok || r.VTEP != leaf(owner).VTEP() {
			t.Errorf("type-2 route of %s: %v (found %v), want via %s (%v)", p.Name, r, ok, owner, leaf(owner).VTEP())
		}
		if fdb, ok := leaf(owner).LookupMAC(vni, mac); !ok || !fdb.Local || fdb.VLAN != vlan {
			t.Errorf("%s FDB for %s: %+v %v, want local on VLAN %d", owner, p.MAC, fdb, ok, vlan)
		}
		for _, o := range others {
			if fdb, ok := leaf(o).LookupMAC(vni, mac); ok && fdb.Local {
				t.Errorf("%s still holds %s locally", o, p.MAC)
			}
		}
	}

	p := e.place(t, "pod:default:db-0", "blue", "host-a", controller.StateActive)
	check(p, "leaf1", "leaf2", "leaf3")
	moved := e.place(t, "pod:default:db-0", "blue", "host-b", controller.StateActive)
	if moved.IPs[0].Address != p.IPs[0].Address {
		t.Fatalf("drift changed the address %v -> %v", p.IPs[0].Address, moved.IPs[0].Address)
	}
	check(moved, "leaf2", "leaf1", "leaf3") // host-b's active NIC is on leaf2
	if _, err := e.svc.DeletePort(ctx(t), moved.Name); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, e)
	hw, _ := net.ParseMAC(p.MAC)
	d.Lock.Lock()
	defer d.Lock.Unlock()
	if r, ok := f.Table().Lookup(vni, evpn.MACOf(hw), p.IPs[0].Address); ok {
		t.Errorf("route survives the port's deletion: %v; leaf1 %v leaf2 %v leaf3 %v; steps %+v", r, leaf("leaf1").VTEP(), leaf("leaf2").VTEP(), leaf("leaf3").VTEP(), e.cnc.Steps(p.ID))
	}
}

// waitIdle waits until the CNC has no bound port left and has finished
// the removals that follow.
func waitIdle(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(e.cnc.BoundPorts()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("CNC never released the port")
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.cnc.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
