package sim

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
)

// Tiny nodes for engine tests.

// wireNode forwards port 0 to 1 and back, like a patch cable with a name.
type wireNode struct {
	name  string
	state []string // "port:up" for every SetPortState
}

func (w *wireNode) Name() string    { return w.name }
func (w *wireNode) Ports() []string { return []string{"p0", "p1"} }
func (w *wireNode) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	out.Trace(datapath.Event{Node: w.name, Device: w.name, Kind: datapath.KindSwitch,
		InPort: w.Ports()[port], OutPort: w.Ports()[1-port], Action: datapath.ActForward})
	out.Send(1-port, b)
}
func (w *wireNode) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {
	w.state = append(w.state, fmt.Sprintf("%d:%v@%v", port, up, now))
}

// endpoint consumes every frame and remembers when it arrived.
type endpoint struct {
	name  string
	got   []time.Duration
	sizes []int
	state []string
}

func (n *endpoint) Name() string    { return n.name }
func (n *endpoint) Ports() []string { return []string{"eth0"} }
func (n *endpoint) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	n.got = append(n.got, now)
	n.sizes = append(n.sizes, len(b))
	out.Trace(datapath.Event{Node: n.name, Device: "eth0", Kind: datapath.KindNIC, InPort: "eth0", Action: datapath.ActDeliver})
}
func (n *endpoint) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {
	n.state = append(n.state, fmt.Sprintf("%d:%v@%v", port, up, now))
}

// hub repeats every frame on every other port.
type hub struct {
	name  string
	ports []string
}

func newHub(name string, n int) *hub {
	h := &hub{name: name}
	for i := range n {
		h.ports = append(h.ports, fmt.Sprintf("p%d", i))
	}
	return h
}
func (h *hub) Name() string    { return h.name }
func (h *hub) Ports() []string { return h.ports }
func (h *hub) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	out.Trace(datapath.Event{Node: h.name, Device: h.name, Kind: datapath.KindSwitch, InPort: h.ports[port], Action: datapath.ActFlood})
	for p := range h.ports {
		if p != port {
			out.Send(p, b)
		}
	}
}
func (h *hub) SetPortState(time.Duration, int, bool, datapath.Output) {}

// learning is a MAC-learning switch that floods unknown destinations.
type learning struct {
	name  string
	ports []string
	fdb   map[[6]byte]int
	up    []bool
}

func newLearning(name string, n int) *learning {
	s := &learning{name: name, fdb: map[[6]byte]int{}, up: make([]bool, n)}
	for i := range n {
		s.ports = append(s.ports, fmt.Sprintf("p%d", i))
		s.up[i] = true
	}
	return s
}
func (s *learning) Name() string    { return s.name }
func (s *learning) Ports() []string { return s.ports }
func (s *learning) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	if !frame.IsBroadcastOrMulticast(b[6:]) {
		s.fdb[frame.SrcMAC(b)] = port
	}
	ev := datapath.Event{Node: s.name, Device: s.name, Kind: datapath.KindSwitch, InPort: s.ports[port]}
	if p, ok := s.fdb[frame.DstMAC(b)]; ok && !frame.IsBroadcastOrMulticast(b) {
		if p == port {
			ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonSplitHorizon
			out.Trace(ev)
			return
		}
		ev.Action, ev.OutPort, ev.Rule = datapath.ActForward, s.ports[p], "fdb"
		out.Trace(ev)
		out.Send(p, b)
		return
	}
	ev.Action = datapath.ActFlood
	out.Trace(ev)
	for p := range s.ports {
		if p != port && s.up[p] {
			out.Send(p, b)
		}
	}
}
func (s *learning) SetPortState(now time.Duration, port int, up bool, out datapath.Output) {
	s.up[port] = up
	if !up {
		for m, p := range s.fdb {
			if p == port {
				delete(s.fdb, m)
			}
		}
	}
}

// lanFabric is a datapath.Fabric: one learning switch with room for
// instances on ports 0..n-1, every instance in 10.0.0.0/24.
type lanFabric struct {
	sw   *learning
	used map[string]int
}

func newLAN(n int) *lanFabric { return &lanFabric{sw: newLearning("sw", n), used: map[string]int{}} }

func (f *lanFabric) Generation() string                    { return "test-lan" }
func (f *lanFabric) Nodes() []datapath.Node                { return []datapath.Node{f.sw} }
func (f *lanFabric) Wires() []datapath.Wire                { return nil }
func (f *lanFabric) AddNetwork(datapath.NetworkSpec) error { return nil }
func (f *lanFabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	for p := range f.sw.ports {
		free := true
		for _, q := range f.used {
			if q == p {
				free = false
			}
		}
		if free {
			f.used[s.Name] = p
			in := stack.New(s.Name, s.MAC, s.IP, s.Gateway)
			return in, datapath.Wire{A: datapath.PortRef{Node: s.Name}, B: datapath.PortRef{Node: "sw", Port: p}, Delay: time.Microsecond}, nil
		}
	}
	return nil, datapath.Wire{}, fmt.Errorf("no free port")
}
func (f *lanFabric) RemoveInstance(name string) error {
	p, ok := f.used[name]
	if !ok {
		return fmt.Errorf("no instance %q", name)
	}
	delete(f.used, name)
	f.sw.SetPortState(0, p, false, nil)
	f.sw.up[p] = true
	return nil
}

func instSpec(i int) datapath.InstanceSpec {
	return datapath.InstanceSpec{Name: fmt.Sprintf("vm%d", i), MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)},
		IP: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 24)}
}

func netip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
