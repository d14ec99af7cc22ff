package evpndriver_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/evpn/evpndriver"
	"github.com/netbed/netbed/topologies"
)

// fabric: two spines; host-a single-homed to leaf1, host-b dual-homed to
// leaf2 (its active NIC) and leaf3.
func fabric() *topologies.Topology {
	t := &topologies.Topology{Name: "evpndriver-test"}
	t.AddNode("spine1", topologies.RoleSpine)
	t.AddNode("spine2", topologies.RoleSpine)
	for _, l := range []string{"leaf1", "leaf2", "leaf3"} {
		t.AddNode(l, topologies.RoleLeaf)
		t.Connect("spine1", "to-"+l, l, "up1")
		t.Connect("spine2", "to-"+l, l, "up2")
	}
	t.AddNode("host-a", topologies.RoleHost)
	t.AddNode("host-b", topologies.RoleHost)
	t.Connect("host-a", "eth0", "leaf1", "e10")
	t.Connect("host-b", "eth0", "leaf2", "e11")
	t.Connect("host-b", "eth1", "leaf3", "e11")
	return t
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// place gets or creates the port on host as the CNI does, reports the
// underlay up and waits for the CNC to finish the overlay.
func place(t *testing.T, svc *controller.Service, c *cnc.CNC, name, host string) controller.Port {
	t.Helper()
	if _, _, err := svc.EnsurePort(ctx(t), controller.PortRequest{Name: name, Network: "blue", DeviceOwner: controller.OwnerPod, Host: host}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []controller.State{controller.StateBuild, controller.StateActive} {
		if _, err := svc.SetUnderlayState(ctx(t), name, controller.StateUpdate{State: s, Host: host}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := svc.WaitPort(ctx(t), name, controller.StatusActiveActive)
	if err != nil {
		t.Fatalf("%v; steps %+v", err, c.Steps(p.ID))
	}
	if err := c.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return p
}

// The CNC driving the generation 2 fabric model: the leaf behind the
// port's host binds its MAC and advertises it; after a drift the route
// points at the new host's leaf and the old leaf no longer holds it; after
// the port's deletion nothing is left.
func TestDriverDrift(t *testing.T) {
	f, err := evpn.New(fabric(), evpn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := evpndriver.New(f, nil)
	const vni, vlan = 5001, 100
	if err := d.AddNetwork(datapath.NetworkSpec{Name: "blue", Tenant: "t1", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
		Gateway: netip.MustParseAddr("10.1.0.1"), VLAN: vlan, VNI: vni}); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ctl.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	c, err := cnc.Attach(ctx(t), svc, fabric(), d, cnc.Options{AccessVLAN: d.AccessVLAN, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); c.Close(); st.Close() })
	if _, err := svc.CreateNetwork(ctx(t), controller.NetworkRequest{Name: "blue", Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: vni}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSubnet(ctx(t), controller.SubnetRequest{Network: "blue", CIDR: netip.MustParsePrefix("10.1.0.0/24")}); err != nil {
		t.Fatal(err)
	}

	leaf := func(name string) *evpn.Leaf {
		l, ok := f.Leaf(name)
		if !ok {
			t.Fatalf("no leaf %s", name)
		}
		return l
	}
	mac := func(p controller.Port) evpn.MAC {
		hw, err := net.ParseMAC(p.MAC)
		if err != nil {
			t.Fatal(err)
		}
		return evpn.MACOf(hw)
	}
	check := func(p controller.Port, owner string, others ...string) {
		t.Helper()
		d.Lock.Lock()
		defer d.Lock.Unlock()
		r, ok := f.Table().Lookup(vni, mac(p), p.IPs[0].Address)
		if !ok || r.VTEP != leaf(owner).VTEP() {
			t.Errorf("type-2 route of %s: %v (found %v), want via %s (%v)", p.Name, r, ok, owner, leaf(owner).VTEP())
		}
		if fdb, ok := leaf(owner).LookupMAC(vni, mac(p)); !ok || !fdb.Local || fdb.VLAN != vlan {
			t.Errorf("%s FDB for %s: %+v %v, want local on VLAN %d", owner, p.MAC, fdb, ok, vlan)
		}
		for _, o := range others {
			if fdb, ok := leaf(o).LookupMAC(vni, mac(p)); ok && fdb.Local {
				t.Errorf("%s still holds %s locally", o, p.MAC)
			}
		}
	}

	p := place(t, svc, c, "pod:default:db-0", "host-a")
	check(p, "leaf1", "leaf2", "leaf3")
	moved := place(t, svc, c, "pod:default:db-0", "host-b")
	if moved.IPs[0].Address != p.IPs[0].Address {
		t.Fatalf("drift changed the address %v -> %v", p.IPs[0].Address, moved.IPs[0].Address)
	}
	check(moved, "leaf2", "leaf1", "leaf3")

	if _, err := svc.DeletePort(ctx(t), moved.Name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(c.BoundPorts()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("CNC never released the port")
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	d.Lock.Lock()
	defer d.Lock.Unlock()
	if r, ok := f.Table().Lookup(vni, mac(p), p.IPs[0].Address); ok {
		t.Errorf("route survives the port's deletion: %v; steps %+v", r, c.Steps(p.ID))
	}
	for _, l := range []string{"leaf1", "leaf2", "leaf3"} {
		if fdb, ok := leaf(l).LookupMAC(vni, mac(p)); ok && fdb.Local {
			t.Errorf("%s still binds the deleted port's MAC", l)
		}
	}
}
