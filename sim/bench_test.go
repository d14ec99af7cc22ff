package sim

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/frame"
	"github.com/netbed/netbed/datapath/stack"
)

// A benchmark fabric of simple nodes: spine-leaf, leaves routing by
// destination IP from a static table (ECMP over the spines by flow hash),
// answering every ARP with the anycast gateway MAC. It stands in for a
// generation's fabric so that the engine's own cost is measured.

var gwMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}

type hostLoc struct {
	leaf, port int
	mac        [6]byte
}

type benchTables struct {
	hosts  map[[4]byte]hostLoc
	spines int
	leaves int
	per    int
}

type benchLeaf struct {
	name    string
	id      int
	ports   []string
	t       *benchTables
	scratch []byte
}

func (l *benchLeaf) Name() string                                           { return l.name }
func (l *benchLeaf) Ports() []string                                        { return l.ports }
func (l *benchLeaf) SetPortState(time.Duration, int, bool, datapath.Output) {}
func (l *benchLeaf) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	ev := datapath.Event{Node: l.name, Device: l.name, Kind: datapath.KindRouter, InPort: l.ports[port]}
	et := binary.BigEndian.Uint16(b[12:14])
	if et == 0x0806 && len(b) >= 42 && binary.BigEndian.Uint16(b[20:22]) == 1 {
		// Proxy ARP: every address is behind the gateway MAC.
		spa, tpa := netip.AddrFrom4([4]byte(b[28:32])), netip.AddrFrom4([4]byte(b[38:42]))
		ev.Action, ev.Rule = datapath.ActDeliver, "arp:proxy"
		out.Trace(ev)
		out.Send(port, frame.ARPReply(gwMAC, tpa, net.HardwareAddr(b[22:28]), spa))
		return
	}
	if et != 0x0800 || len(b) < 34 {
		ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonMalformed
		out.Trace(ev)
		return
	}
	dst := [4]byte(b[30:34])
	h, ok := l.t.hosts[dst]
	if !ok {
		ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonNoRoute
		out.Trace(ev)
		return
	}
	l.scratch = append(l.scratch[:0], b...)
	var p int
	if h.leaf == l.id {
		copy(l.scratch[0:6], h.mac[:])
		copy(l.scratch[6:12], gwMAC)
		p = h.port
	} else {
		src := binary.BigEndian.Uint32(b[26:30])
		p = l.t.per + int((src^binary.BigEndian.Uint32(dst[:]))%uint32(l.t.spines))
	}
	ev.Action, ev.OutPort = datapath.ActRoute, l.ports[p]
	out.Trace(ev)
	out.Send(p, l.scratch)
}

type benchSpine struct {
	name  string
	ports []string
	t     *benchTables
}

func (s *benchSpine) Name() string                                           { return s.name }
func (s *benchSpine) Ports() []string                                        { return s.ports }
func (s *benchSpine) SetPortState(time.Duration, int, bool, datapath.Output) {}
func (s *benchSpine) Receive(now time.Duration, port int, b []byte, out datapath.Output) {
	ev := datapath.Event{Node: s.name, Device: s.name, Kind: datapath.KindRouter, InPort: s.ports[port]}
	h, ok := s.t.hosts[[4]byte(b[30:34])]
	if !ok {
		ev.Action, ev.Reason = datapath.ActDrop, datapath.ReasonNoRoute
		out.Trace(ev)
		return
	}
	ev.Action, ev.OutPort = datapath.ActRoute, s.ports[h.leaf]
	out.Trace(ev)
	out.Send(h.leaf, b)
}

// benchFabric is a datapath.Fabric: spines x leaves, per hosts a leaf,
// one instance per host port (hosts are folded into the instances).
type benchFabric struct {
	t     *benchTables
	nodes []datapath.Node
	wires []datapath.Wire
	next  []int
}

func newBenchFabric(spines, leaves, per int) *benchFabric {
	t := &benchTables{hosts: map[[4]byte]hostLoc{}, spines: spines, leaves: leaves, per: per}
	f := &benchFabric{t: t, next: make([]int, leaves)}
	for s := range spines {
		sp := &benchSpine{name: fmt.Sprintf("spine%d", s), t: t}
		for l := range leaves {
			sp.ports = append(sp.ports, fmt.Sprintf("leaf%d", l))
		}
		f.nodes = append(f.nodes, sp)
	}
	for l := range leaves {
		lf := &benchLeaf{name: fmt.Sprintf("leaf%d", l), id: l, t: t}
		for h := range per {
			lf.ports = append(lf.ports, fmt.Sprintf("h%d", h))
		}
		for s := range spines {
			lf.ports = append(lf.ports, fmt.Sprintf("spine%d", s))
			f.wires = append(f.wires, datapath.Wire{A: datapath.PortRef{Node: lf.name, Port: per + s},
				B: datapath.PortRef{Node: fmt.Sprintf("spine%d", s), Port: l}, Rate: 100e9, Delay: 500 * time.Nanosecond})
		}
		f.nodes = append(f.nodes, lf)
	}
	return f
}

func (f *benchFabric) Generation() string                    { return "bench" }
func (f *benchFabric) Nodes() []datapath.Node                { return f.nodes }
func (f *benchFabric) Wires() []datapath.Wire                { return f.wires }
func (f *benchFabric) AddNetwork(datapath.NetworkSpec) error { return nil }
func (f *benchFabric) RemoveInstance(string) error           { return nil }
func (f *benchFabric) AddInstance(s datapath.InstanceSpec) (datapath.Node, datapath.Wire, error) {
	l := int(s.IP.Addr().As4()[2])
	if l >= f.t.leaves || f.next[l] >= f.t.per {
		return nil, datapath.Wire{}, fmt.Errorf("no port for %s", s.IP)
	}
	p := f.next[l]
	f.next[l]++
	f.t.hosts[s.IP.Addr().As4()] = hostLoc{leaf: l, port: p, mac: [6]byte(s.MAC)}
	return stack.New(s.Name, s.MAC, s.IP, s.Gateway),
		datapath.Wire{A: datapath.PortRef{Node: s.Name}, B: datapath.PortRef{Node: fmt.Sprintf("leaf%d", l), Port: p}, Rate: 25e9, Delay: 200 * time.Nanosecond}, nil
}

func benchInstance(l, h int) datapath.InstanceSpec {
	ip := netip.AddrFrom4([4]byte{10, 0, byte(l), byte(h + 1)})
	return datapath.InstanceSpec{Name: fmt.Sprintf("vm-%d-%d", l, h), MAC: net.HardwareAddr{2, 0, 0, 0, byte(l), byte(h + 1)},
		IP: netip.PrefixFrom(ip, 24), Gateway: netip.AddrFrom4([4]byte{10, 0, byte(l), 254})}
}

// buildBench loads a spines x leaves x per fabric with one instance per
// host port.
func buildBench(tb testing.TB, spines, leaves, per int) (*Engine, *benchFabric, []string) {
	e := New(1)
	f := newBenchFabric(spines, leaves, per)
	if err := e.Load(f, UniformDelay(time.Microsecond), LinkOpts{QueueFrames: 1024}); err != nil {
		tb.Fatal(err)
	}
	var names []string
	for l := range leaves {
		for h := range per {
			s := benchInstance(l, h)
			if _, err := e.AddInstance(f, s); err != nil {
				tb.Fatal(err)
			}
			names = append(names, s.Name)
		}
	}
	return e, f, names
}

// BenchmarkEngineHops measures the engine's inner loop: prebuilt frames
// between every pair of instances, sent from the instances' ports straight
// into the fabric (no stack work), one op per packet-hop event.
func BenchmarkEngineHops(b *testing.B) {
	e, _, names := buildBench(b, 4, 16, 16)
	e.SetRecord(false)
	n := len(names)
	addrs := make([]netip.Addr, n)
	for i, name := range names {
		nd, _ := e.Node(name)
		addrs[i] = nd.(*stack.Instance).Addr().Addr()
	}
	// One frame per ordered pair, built once.
	frames := make([][][]byte, n)
	for i := range n {
		frames[i] = make([][]byte, n)
		for j := range n {
			nd, _ := e.Node(names[i])
			frames[i][j] = frame.UDP(frame.IPv4{SrcMAC: nd.(*stack.Instance).MAC(), DstMAC: gwMAC, Src: addrs[i], Dst: addrs[j]}, 40000, 7, make([]byte, 8))
		}
	}
	// Instances would answer; make the destinations silent sinks instead
	// by sending to the discard port of a stack that echoes: use UDP to
	// an ephemeral port, which the stack delivers without answering.
	for i := range n {
		for j := range n {
			binary.BigEndian.PutUint16(frames[i][j][36:38], 40001)
			binary.BigEndian.PutUint16(frames[i][j][40:42], 0) // no checksum
		}
	}
	sendRound := make([]func(time.Duration, datapath.Output), n)
	shift := 1
	for i := range n {
		sendRound[i] = func(now time.Duration, out datapath.Output) {
			out.Send(0, frames[i][(i+shift)%n])
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	hops0 := e.Counts().Hops
	for e.counts.Hops-hops0 < uint64(b.N) {
		t := e.Now() + time.Microsecond
		for i := range n {
			_ = e.Do(t, names[i], 0, sendRound[i])
		}
		if err := e.RunUntilIdle(); err != nil {
			b.Fatal(err)
		}
		shift = shift%(n-1) + 1
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	reportRate(b, e.counts.Hops-hops0, el, cpu)
	if _, err := e.Conservation(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAllPairsProbes runs ICMP probes between every ordered pair of
// the 256 instances of a 4x16x16 fabric, with the instances' real stacks
// (ARP, gopacket parse and build), trace recording off. One op is one
// packet-hop event.
func BenchmarkAllPairsProbes(b *testing.B) {
	for _, rec := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", rec), func(b *testing.B) {
			e, _, names := buildBench(b, 4, 16, 16)
			e.SetRecord(rec)
			n := len(names)
			addrs := make([]netip.Addr, n)
			for i, name := range names {
				nd, _ := e.Node(name)
				addrs[i] = nd.(*stack.Instance).Addr().Addr()
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			hops0, trace0 := e.counts.Hops, e.counts.Trace
			round := 0
			for e.counts.Hops-hops0 < uint64(b.N) {
				round++
				if rec {
					e.ResetTrace()
				}
				t := e.Now() + time.Microsecond
				for i := range n {
					for j := range n {
						if i == j {
							continue
						}
						if _, err := e.Probe(t, names[i], stack.ProbeSpec{Proto: stack.ICMP, Dst: addrs[j]}); err != nil {
							b.Fatal(err)
						}
						t += 10 * time.Nanosecond
					}
				}
				if err := e.RunUntilIdle(); err != nil {
					b.Fatal(err)
				}
			}
			el, cpu := time.Since(start), cpuTime()-cpu0
			hops := e.counts.Hops - hops0
			reportRate(b, hops, el, cpu)
			b.ReportMetric(float64(e.counts.Trace-trace0)/cpu.Seconds(), "trace-events/s")
			b.ReportMetric(float64(hops)/float64(round*n*(n-1)), "hops/probe")
			if _, err := e.Conservation(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// cpuTime is the CPU time the process has used (user + system). The
// benchmarks divide by it rather than by wall time: the machine is shared,
// and a per-core rate is what the goal names.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports events per CPU second ("events/s") and per wall
// second.
func reportRate(b *testing.B, events uint64, wall, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/s")
	}
	b.ReportMetric(float64(events)/wall.Seconds(), "events/wall-s")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory reports the heap per simulated fabric node (engine state
// plus the bench node model) and per instance (stack, engine state, wire).
func BenchmarkMemory(b *testing.B) {
	const spines, leaves, per = 4, 16, 16
	for range b.N {
		h0 := heapInUse()
		e := New(1)
		f := newBenchFabric(spines, leaves, per)
		if err := e.Load(f, UniformDelay(time.Microsecond), LinkOpts{QueueFrames: 64}); err != nil {
			b.Fatal(err)
		}
		h1 := heapInUse()
		for l := range leaves {
			for h := range per {
				if _, err := e.AddInstance(f, benchInstance(l, h)); err != nil {
					b.Fatal(err)
				}
			}
		}
		h2 := heapInUse()
		b.ReportMetric(float64(h1-h0)/float64(spines+leaves), "B/node")
		b.ReportMetric(float64(h2-h1)/float64(leaves*per), "B/instance")
		runtime.KeepAlive(e)
	}
}
