package scenarios_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/sim"
)

// TestStockCostsMoreOnSim replays cross-subnet-hops for gen 1 and stock
// OpenStack on sim: stock's extra devices on each host (the Linux bridge
// qbr with its security-group chain, the veth pair qvb/qvo) cost time, so
// its round trips are longer, and by exactly what those devices' per-hop
// times add up to, since the per-hop times of a path sum to its one-way
// time. The report says the latencies are modelled, and from which
// calibration.
func TestStockCostsMoreOnSim(t *testing.T) {
	s, err := scenarios.Load("library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runs := map[scenarios.Generation]*reports.Run{}
	for _, gen := range []scenarios.Generation{scenarios.GenVLAN, scenarios.GenVLANStock} {
		run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if run.Failed() {
			t.Fatalf("%s: %+v", gen, run.Checks)
		}
		want := cost.Default()
		if run.Latency.Kind != reports.LatencyModelled || run.Latency.Calibration != want.Date || run.Latency.Machine != want.Machine {
			t.Errorf("%s: latency %+v, want modelled with the calibration of %s", gen, run.Latency, want.Source())
		}
		runs[gen] = run
	}
	plain, stock := runs[scenarios.GenVLAN], runs[scenarios.GenVLANStock]
	if p, q := reports.Summarize(plain).RTTp50, reports.Summarize(stock).RTTp50; !(q > p) {
		t.Errorf("RTT p50: vlan-stock %v, vlan %v: stock's extra bridge and security groups must cost more", q, p)
	}
	if len(plain.Probes) != len(stock.Probes) || len(plain.Probes) == 0 {
		t.Fatalf("%d vlan probes, %d vlan-stock probes", len(plain.Probes), len(stock.Probes))
	}
	for i := range stock.Probes {
		p, q := plain.Probes[i], stock.Probes[i]
		if !p.Replied || !q.Replied {
			t.Fatalf("probe %d: replied vlan %v, vlan-stock %v", i, p.Replied, q.Replied)
		}
		var sum, extra time.Duration
		for k := 1; k < len(q.HopAt); k++ {
			d := q.HopAt[k] - q.HopAt[k-1]
			sum += d
			dev := q.Path[k][strings.Index(q.Path[k], "/")+1:]
			if strings.HasPrefix(dev, "qbr-") || strings.HasPrefix(dev, "qvb-") || strings.HasPrefix(dev, "qvo-") {
				extra += d
			}
		}
		if sum != q.OneWay {
			t.Errorf("probe %d: per-hop times sum to %v, one-way %v", i, sum, q.OneWay)
		}
		if q.OneWay <= p.OneWay {
			t.Errorf("probe %d: one-way vlan-stock %v, vlan %v", i, q.OneWay, p.OneWay)
		}
		if i == 0 {
			// The first probe waits at the core for db-1's ARP reply,
			// which crosses stock's devices too.
			continue
		}
		if extra <= 0 || q.OneWay-p.OneWay != extra {
			t.Errorf("probe %d: stock's one-way %v - gen 1's %v = %v, want the time of qbr, qvb and qvo on its path, %v",
				i, q.OneWay, p.OneWay, q.OneWay-p.OneWay, extra)
		}
	}
}

// TestEmittedKindsAreCosted replays cross-subnet-hops for every
// generation on sim and checks that every device kind on the trace has a
// calibrated class: no device on any generation's path is free by
// omission.
func TestEmittedKindsAreCosted(t *testing.T) {
	s, err := scenarios.Load("library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range s.Generations {
		rt := simrt.New(s.Seed)
		b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency})
		// The runtime keeps one probe's trace at a time: every event is
		// looked at as it is traced.
		seen := map[string]bool{}
		rt.Engine().OnTrace(func(ev datapath.Event) {
			if ev.Kind == sim.KindLink || seen[string(ev.Kind)] {
				return
			}
			seen[string(ev.Kind)] = true
			if !slices.Contains(cost.Kinds, ev.Kind) {
				t.Errorf("%s: device kind %q (%s/%s) has no calibrated cost", gen, ev.Kind, ev.Node, ev.Device)
			}
		})
		if _, err := scenarios.Run(context.Background(), s, gen, b, scenarios.Options{}); err != nil {
			t.Fatal(err)
		}
		if len(seen) < 3 {
			t.Errorf("%s: only kinds %v on the trace", gen, seen)
		}
	}
}

// TestModelledLatencyDeterministic: the same scenario and seed give the
// same modelled latencies, hop by hop.
func TestModelledLatencyDeterministic(t *testing.T) {
	s, err := scenarios.Load("library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var probes [2][]reports.Probe
	for i := range probes {
		run, err := scenarios.Run(context.Background(), s, scenarios.GenVLANStock, simBackend(t, s.Seed), scenarios.Options{})
		if err != nil {
			t.Fatal(err)
		}
		probes[i] = run.Probes
	}
	if !reflect.DeepEqual(probes[0], probes[1]) {
		t.Errorf("two runs with seed %d differ:\n%+v\n%+v", s.Seed, probes[0], probes[1])
	}
}
