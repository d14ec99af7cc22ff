package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/netbed/netbed/controller"
)

// fakeClient is an in-memory controller for plumbing tests; the real one
// runs in realctl_test.go.
type fakeClient struct {
	mu     sync.Mutex
	ports  map[string]controller.Port
	next   int
	calls  []string
	down   bool // every call fails as unreachable
	states []string
	nodes  map[string]netip.Prefix // node blocks, 10.244.<n>.0/24 in order
}

func newFakeClient() *fakeClient { return &fakeClient{ports: map[string]controller.Port{}} }

var errFakeDown = fmt.Errorf("dial tcp: %w", context.DeadlineExceeded)

func (f *fakeClient) EnsurePort(_ context.Context, r controller.PortRequest) (controller.Port, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "ensure "+r.Name+" "+r.Host)
	if f.down {
		return controller.Port{}, false, errFakeDown
	}
	if p, ok := f.ports[r.Name]; ok {
		if r.Host != "" && p.Host != r.Host {
			p.Host, p.UnderlayState = r.Host, controller.StateDown
		}
		p = f.report(p, r)
		f.ports[r.Name] = p
		return p, false, nil
	}
	f.next++
	addr := netip.AddrFrom4([4]byte{10, 9, 0, byte(1 + f.next)})
	if r.IP.IsValid() {
		addr = r.IP
	}
	p := controller.Port{ID: fmt.Sprintf("port-%d", f.next), Name: r.Name, Network: "net-1", Host: r.Host,
		MAC: fmt.Sprintf("02:00:00:00:00:%02x", f.next), UnderlayState: controller.StateDown, OverlayState: controller.StateBuild,
		IPs: []controller.FixedIP{{Address: addr, Prefix: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1")}}}
	p = f.report(p, r)
	f.ports[r.Name] = p
	return p, true, nil
}

// report records r's underlay report on p, as the service does with the
// binding.
func (f *fakeClient) report(p controller.Port, r controller.PortRequest) controller.Port {
	if r.Underlay.State != "" {
		f.states = append(f.states, p.Name+" "+string(r.Underlay.State))
		p.UnderlayState = r.Underlay.State
	}
	return p
}

func (f *fakeClient) GetPort(_ context.Context, name string) (controller.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "get "+name)
	if f.down {
		return controller.Port{}, errFakeDown
	}
	p, ok := f.ports[name]
	if !ok {
		return p, fmt.Errorf("port %q: %w", name, controller.ErrNotFound)
	}
	return p, nil
}

func (f *fakeClient) DeletePort(_ context.Context, name string) (controller.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+name)
	p, ok := f.ports[name]
	if !ok {
		return p, fmt.Errorf("port %q: %w", name, controller.ErrNotFound)
	}
	delete(f.ports, name)
	return p, nil
}

func (f *fakeClient) SetUnderlayState(_ context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "underlay "+name+" "+string(u.State))
	f.states = append(f.states, name+" "+string(u.State))
	p, ok := f.ports[name]
	if !ok {
		return p, fmt.Errorf("port %q: %w", name, controller.ErrNotFound)
	}
	if u.Host != p.Host {
		return p, controller.ErrStale
	}
	p.UnderlayState = u.State
	f.ports[name] = p
	return p, nil
}

func (f *fakeClient) EnsureNode(_ context.Context, name string) (controller.Node, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "node "+name)
	if f.down {
		return controller.Node{}, false, errFakeDown
	}
	if f.nodes == nil {
		f.nodes = map[string]netip.Prefix{}
	}
	if b, ok := f.nodes[name]; ok {
		return controller.Node{Name: name, PodCIDR: b}, false, nil
	}
	b := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(len(f.nodes)), 0}), 24)
	f.nodes[name] = b
	return controller.Node{Name: name, PodCIDR: b}, true, nil
}

func (f *fakeClient) Ping(context.Context) error {
	if f.down {
		return errFakeDown
	}
	return nil
}

// fakeLinker records the wirings instead of touching the kernel.
type fakeLinker struct {
	mu    sync.Mutex
	links map[string]wiring // host-side name -> wiring
	fail  error
}

func newFakeLinker() *fakeLinker { return &fakeLinker{links: map[string]wiring{}} }

func (l *fakeLinker) Setup(w wiring) (wired, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return wired{}, l.fail
	}
	l.links[w.HostIf] = w
	return wired{HostMAC: []byte{2, 0xee, 0, 0, 0, 1}, PodMAC: w.MAC}, nil
}

func (l *fakeLinker) Teardown(_, _, hostIf string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.links, hostIf)
	return nil
}

func (l *fakeLinker) Check(w wiring) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	got, ok := l.links[w.HostIf]
	if !ok {
		return fmt.Errorf("%s: no such link", w.HostIf)
	}
	for _, a := range w.Addrs {
		found := false
		for _, b := range got.Addrs {
			found = found || a == b
		}
		if !found {
			return fmt.Errorf("%s lacks %v", w.IfName, a)
		}
	}
	return nil
}
