package cnc_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/topologies"
)

// memService is an in-memory Service, to measure the CNC alone.
type memService struct {
	mu    sync.Mutex
	ports map[string]controller.Port
	seg   controller.Segment
}

func (m *memService) GetPort(_ context.Context, name string) (controller.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.ports[name]
	if !ok {
		return p, controller.ErrNotFound
	}
	return p, nil
}

func (m *memService) GetNetwork(context.Context, string) (controller.Network, error) {
	return controller.Network{ID: "net", Segment: m.seg}, nil
}

func (m *memService) SetOverlayState(_ context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.ports[name]
	p.OverlayState = u.State
	m.ports[name] = p
	return p, nil
}

func (m *memService) bind(name, host string) controller.Port {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.ports[name]
	if !ok {
		i := len(m.ports)
		p = controller.Port{ID: "id-" + name, Name: name, Network: "net", MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
			IPs: []controller.FixedIP{{Address: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}}}
	}
	p.Host = host
	m.ports[name] = p
	return p
}

func benchTopology(b *testing.B) *topologies.Topology {
	t, err := topologies.SpineLeaf(topologies.SpineLeafParams{Spines: 4, Leaves: 32, HostsPerLeaf: 16, DualHomed: true})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkCNCBind measures the CNC alone (in-memory service and leaves)
// programming first bindings on a 4-spine, 32-leaf, 512-host dual-homed
// fabric: each port is configured on its host's two leaves.
func BenchmarkCNCBind(b *testing.B) {
	topo := benchTopology(b)
	hosts := topo.NodesByRole(topologies.RoleHost)
	svc := &memService{ports: map[string]controller.Port{}, seg: controller.Segment{Type: controller.SegmentVXLAN, ID: 100}}
	drv := cnc.NewMemoryDriver()
	c := cnc.New(topo, drv, svc, cnc.Options{})
	defer c.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		p := svc.bind(fmt.Sprintf("p%d", i), hosts[i%len(hosts)].Name)
		c.PortBound(context.Background(), p, "")
	}
	if err := c.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ports/s")
}

// BenchmarkCNCDrift measures moves: b.N ports bound first, then each
// moved once to a host on another leaf pair (remove from two leaves, apply
// on two).
func BenchmarkCNCDrift(b *testing.B) {
	topo := benchTopology(b)
	hosts := topo.NodesByRole(topologies.RoleHost)
	svc := &memService{ports: map[string]controller.Port{}, seg: controller.Segment{Type: controller.SegmentVXLAN, ID: 100}}
	c := cnc.New(topo, cnc.NewMemoryDriver(), svc, cnc.Options{})
	defer c.Close()
	ports := make([]controller.Port, b.N)
	for i := range ports {
		ports[i] = svc.bind(fmt.Sprintf("p%d", i), hosts[i%len(hosts)].Name)
		c.PortBound(context.Background(), ports[i], "")
	}
	if err := c.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i, old := range ports {
		p := svc.bind(old.Name, hosts[(i+len(hosts)/2)%len(hosts)].Name)
		c.PortBound(context.Background(), p, old.Host)
	}
	if err := c.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "moves/s")
}

// BenchmarkBindDurable measures the whole seed step 7–9 path in process:
// EnsurePort with a host on the real service over a durable bbolt store,
// the CNC's hook, leaf programming and the overlay report (another durable
// write), from 16 concurrent callers, until every port's overlay is
// ACTIVE.
func BenchmarkBindDurable(b *testing.B) {
	st, svc, c := durableEnv(b, benchTopology(b))
	_ = st
	hosts := benchTopology(b).NodesByRole(topologies.RoleHost)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("p%d", i)
				if _, _, err := svc.EnsurePort(context.Background(), controller.PortRequest{Name: name, Network: "blue", DeviceOwner: controller.OwnerPod, Host: hosts[i%len(hosts)].Name}); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for {
		ports, err := svc.ListPorts(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		active := 0
		for _, p := range ports {
			if p.OverlayState == controller.StateActive {
				active++
			}
		}
		if active == b.N {
			break
		}
		if err := c.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ports/s")
}

func durableEnv(b *testing.B, topo *topologies.Topology) (any, *controller.Service, *cnc.CNC) {
	b.Helper()
	st, err := openStore(b)
	if err != nil {
		b.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	c := cnc.New(topo, cnc.NewMemoryDriver(), svc, cnc.Options{})
	svc.SetOverlay(c)
	b.Cleanup(func() {
		svc.Close()
		c.Close()
		st.Close()
	})
	if _, err := svc.CreateNetwork(context.Background(), controller.NetworkRequest{Name: "blue", Segment: controller.Segment{Type: controller.SegmentVXLAN, ID: 100}}); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateSubnet(context.Background(), controller.SubnetRequest{Network: "blue", CIDR: netip.MustParsePrefix("10.0.0.0/8")}); err != nil {
		b.Fatal(err)
	}
	return st, svc, c
}
