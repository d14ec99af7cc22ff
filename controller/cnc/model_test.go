package cnc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"testing"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
)

// modelService holds ports and networks in memory and lets the test move
// them at will, so that the CNC can be checked against a model.
type modelService struct {
	mu    sync.Mutex
	ports map[string]controller.Port
	nets  map[string]controller.Segment
}

func (m *modelService) GetPort(_ context.Context, name string) (controller.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.ports[name]
	if !ok {
		return p, controller.ErrNotFound
	}
	return p, nil
}

func (m *modelService) GetNetwork(_ context.Context, ref string) (controller.Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return controller.Network{ID: ref, Segment: m.nets[ref]}, nil
}

func (m *modelService) SetOverlayState(_ context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.ports[name]
	if !ok {
		return p, controller.ErrNotFound
	}
	if u.Host != "" && u.Host != p.Host {
		return p, controller.ErrStale
	}
	p.OverlayState = u.State
	m.ports[name] = p
	return p, nil
}

// TestDifferentialAgainstModel drives the CNC with random bindings, moves,
// unbindings and deletions of ports in three VXLAN networks and compares
// the leaves (MemoryDriver) with what the final bindings call for: every
// bound port's entry on each leaf port of its host and nowhere else; a
// VLAN → VNI mapping on a leaf port exactly while a port there needs it;
// one access VLAN per VNI per leaf, distinct VNIs on distinct VLANs.
func TestDifferentialAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			topo := fabric()
			svc := &modelService{ports: map[string]controller.Port{}, nets: map[string]controller.Segment{
				"n1": {Type: controller.SegmentVXLAN, ID: 1001},
				"n2": {Type: controller.SegmentVXLAN, ID: 1002},
				"n3": {Type: controller.SegmentVXLAN, ID: 1003},
			}}
			drv := cnc.NewMemoryDriver()
			c := cnc.New(topo, drv, svc, cnc.Options{})
			defer c.Close()
			hosts := []string{"host-a", "host-b", "host-c", "host-d", "host-lonely", ""}
			for step := range 400 {
				name := fmt.Sprintf("p%d", rng.IntN(24))
				svc.mu.Lock()
				p, exists := svc.ports[name]
				old := p.Host
				switch {
				case exists && rng.IntN(5) == 0:
					delete(svc.ports, name)
					p.Host = ""
				default:
					if !exists {
						i := len(svc.ports) + 100*step
						p = controller.Port{ID: fmt.Sprintf("id-%s-%d", name, step), Name: name, Network: fmt.Sprintf("n%d", 1+rng.IntN(3)),
							MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8&0xff, i&0xff), IPs: []controller.FixedIP{{Address: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}}}
					}
					p.Host = hosts[rng.IntN(len(hosts))]
					svc.ports[name] = p
				}
				svc.mu.Unlock()
				if p.Host == "" {
					c.PortUnbound(context.Background(), p, old)
				} else {
					c.PortBound(context.Background(), p, old)
				}
				if rng.IntN(8) == 0 {
					if err := c.Wait(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := c.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareWithModel(t, c, drv, svc)
		})
	}
}

func compareWithModel(t *testing.T, c *cnc.CNC, drv *cnc.MemoryDriver, svc *modelService) {
	t.Helper()
	type entry struct{ leaf, iface, port string }
	type mapping struct {
		leaf, iface string
		vni         uint32
	}
	wantE, wantM := map[entry]bool{}, map[mapping]bool{}
	for _, p := range svc.ports {
		for _, a := range c.Attachments(p.Host) {
			wantE[entry{a.Leaf, a.Iface, p.ID}] = true
			wantM[mapping{a.Leaf, a.Iface, svc.nets[p.Network].ID}] = true
		}
	}
	if len(wantE) == 0 || len(wantM) == 0 {
		t.Fatal("the run left no port bound: the model checks nothing")
	}
	gotE, gotM := map[entry]bool{}, map[mapping]bool{}
	for _, leaf := range []string{"leaf1", "leaf2", "leaf3", "leaf4"} {
		s := drv.Leaf(leaf)
		for _, e := range s.Entries {
			gotE[entry{leaf, e.Iface, e.Port}] = true
		}
		vlanOf := map[uint32]uint16{}
		vniOf := map[uint16]uint32{}
		for _, m := range s.Mappings {
			gotM[mapping{leaf, m.Iface, m.VNI}] = true
			if v, ok := vlanOf[m.VNI]; ok && v != m.VLAN {
				t.Errorf("%s maps VNI %d to VLANs %d and %d", leaf, m.VNI, v, m.VLAN)
			}
			if n, ok := vniOf[m.VLAN]; ok && n != m.VNI {
				t.Errorf("%s uses VLAN %d for VNIs %d and %d", leaf, m.VLAN, n, m.VNI)
			}
			vlanOf[m.VNI], vniOf[m.VLAN] = m.VLAN, m.VNI
		}
	}
	diff := func(what string, want, got map[string]bool) {
		for k := range want {
			if !got[k] {
				t.Errorf("%s missing: %s", what, k)
			}
		}
		for k := range got {
			if !want[k] {
				t.Errorf("%s unexpected: %s", what, k)
			}
		}
	}
	str := func(m any) map[string]bool {
		out := map[string]bool{}
		switch x := m.(type) {
		case map[entry]bool:
			for k := range x {
				out[fmt.Sprint(k)] = true
			}
		case map[mapping]bool:
			for k := range x {
				out[fmt.Sprint(k)] = true
			}
		}
		return out
	}
	diff("entry", str(wantE), str(gotE))
	diff("mapping", str(wantM), str(gotM))
	var bound []string
	for _, p := range svc.ports {
		if len(c.Attachments(p.Host)) > 0 {
			bound = append(bound, p.ID)
		}
	}
	sort.Strings(bound)
	got := c.BoundPorts()
	if fmt.Sprint(got) != fmt.Sprint(bound) {
		t.Errorf("bound ports %v, want %v", got, bound)
	}
}
