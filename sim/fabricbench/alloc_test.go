package fabricbench

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/ebpf"
	"github.com/netbed/netbed/datapath/stack"
	"github.com/netbed/netbed/sim"
	"github.com/netbed/netbed/topologies"
)

// capture is an Output that keeps the frames sent to it.
type capture struct{ frames [][]byte }

func (c *capture) Forward(port int, b []byte) { c.Send(port, b) }
func (c *capture) Send(_ int, b []byte)       { c.frames = append(c.frames, append([]byte(nil), b...)) }
func (c *capture) Trace(ev datapath.Event)    {}

// TestSteadyStateHopsDoNotAllocate: once a fabric has learnt its
// addresses (ARP, MAC tables, conntrack), a packet-hop event allocates
// nothing, on every generation's fabric: the engine's queue, wires and
// frame buffers, and every node's Receive. Each round sends, between
// every ordered pair of instances, the ICMP echo request the source's
// stack builds (the echo's reply comes back too), as the all-pairs
// benchmarks do, but without the probes' own bookkeeping (the probe
// table and reply log grow with the number of probes, not of events).
func TestSteadyStateHopsDoNotAllocate(t *testing.T) {
	sl := topologies.SpineLeafParams{Spines: 2, Leaves: 2, HostsPerLeaf: 2}
	fabrics := []struct {
		name  string
		build func(testing.TB) (*sim.Engine, []string, []*stack.Instance)
	}{
		{"vlan", func(tb testing.TB) (*sim.Engine, []string, []*stack.Instance) {
			return vlanFabric(tb, topologies.ThreeTierParams{Pods: 2, RacksPerPod: 1, HostsPerRack: 2})
		}},
		{"evpn", func(tb testing.TB) (*sim.Engine, []string, []*stack.Instance) { return evpnFabric(tb, sl, nil) }},
		{"ebpf-tunnel", func(tb testing.TB) (*sim.Engine, []string, []*stack.Instance) {
			return ebpfFabric(tb, sl, ebpf.Tunnel)
		}},
		{"ebpf-direct", func(tb testing.TB) (*sim.Engine, []string, []*stack.Instance) {
			return ebpfFabric(tb, sl, ebpf.Direct)
		}},
	}
	for _, fc := range fabrics {
		t.Run(fc.name, func(t *testing.T) {
			e, names, insts := fc.build(t)
			e.SetRecord(false)
			n := len(names)
			// A round of probes resolves every address.
			at := e.Now() + time.Millisecond
			for i := range n {
				for j := range n {
					if i != j {
						if _, err := e.Probe(at, names[i], stack.ProbeSpec{Proto: stack.ICMP, Dst: insts[j].Addr().Addr()}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if err := e.RunUntilIdle(); err != nil {
				t.Fatal(err)
			}
			// The echo requests each stack sends, and functions sending
			// them from their instances.
			var sends []func(time.Duration, datapath.Output)
			var from []string
			for i := range n {
				for j := range n {
					if i == j {
						continue
					}
					var c capture
					insts[i].Probe(e.Now(), &c, stack.ProbeSpec{Proto: stack.ICMP, Dst: insts[j].Addr().Addr(), ID: 1<<40 + uint64(i*n+j)})
					if len(c.frames) != 1 || !isEchoRequest(c.frames[0], insts[j].Addr().Addr()) {
						t.Fatalf("%s to %s: the stack sent %d frames, want an echo request (address unresolved?)", names[i], names[j], len(c.frames))
					}
					f := c.frames[0]
					sends = append(sends, func(_ time.Duration, out datapath.Output) { out.Send(0, f) })
					from = append(from, names[i])
				}
			}
			hops := func() uint64 { c, _ := e.Conservation(); return c.Hops }
			delivered := func() uint64 { c, _ := e.Conservation(); return c.Delivered }
			round := func() {
				at := e.Now() + time.Millisecond
				for k, f := range sends {
					if err := e.Do(at, from[k], 0, f); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.RunUntilIdle(); err != nil {
					t.Fatal(err)
				}
			}
			round() // the first reply to each request answers its probe
			h0, d0 := hops(), delivered()
			round()
			perRound := hops() - h0
			if got := delivered() - d0; got != uint64(len(sends)) {
				c, _ := e.Conservation()
				t.Fatalf("%d of %d echo replies delivered in a round; drops %v", got, len(sends), c.Dropped)
			}
			// Request and reply cross at least the two hosts and a leaf.
			if perRound < uint64(6*len(sends)) {
				t.Fatalf("%d packet-hop events in a round of %d requests, want at least 6 a request", perRound, len(sends))
			}
			// Every allocation counts (testing.AllocsPerRun would round
			// the mean down); the least of three tries, since the count
			// is the process's (a stray allocation of another goroutine
			// shows in one, one of the rounds' in every one).
			least := ^uint64(0)
			for range 3 {
				m0 := mallocs()
				for range 20 {
					round()
				}
				least = min(least, mallocs()-m0)
			}
			if least != 0 {
				t.Errorf("%d allocations in 20 rounds of %d packet-hop events, want 0", least, perRound)
			}
		})
	}
}

// isEchoRequest reports whether b is an untagged IPv4 ICMP echo request
// to dst.
func isEchoRequest(b []byte, dst netip.Addr) bool {
	return len(b) >= 42 && b[12] == 0x08 && b[13] == 0x00 && b[23] == 1 &&
		netip.AddrFrom4([4]byte(b[30:34])) == dst && b[34] == 8
}
