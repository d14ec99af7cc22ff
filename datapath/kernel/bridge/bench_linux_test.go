package bridge

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/datapath/evpn"
	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/ovs"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// BenchmarkLabStart measures starting gen 2 on kernel devices: deploying
// the shipped scenarios' spine-leaf topology (2 spines, 4 leaves, 2 hosts
// per leaf: 14 nodes) and building it with two networks of one tenant (a
// private OVS per host and per leaf, the underlay's routes, the first
// Sync). Tearing down is not timed. Metrics: the whole start, the
// deploy, the build.
func BenchmarkLabStart(b *testing.B) {
	testutil.RequireRoot(b)
	if err := ovs.Available(); err != nil {
		testutil.Unavailable(b, err.Error())
	}
	var deploy, build time.Duration
	nodes := 0
	for b.Loop() {
		b.StopTimer()
		topo, err := topologies.SpineLeaf(topologies.SpineLeafParams{Name: testutil.Name(testPrefix)})
		if err != nil {
			b.Fatal(err)
		}
		nodes = len(topo.Nodes)
		m, err := evpn.New(topo, evpn.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []datapath.NetworkSpec{net1, net2} {
			if err := m.AddNetwork(n); err != nil {
				b.Fatal(err)
			}
		}
		opt := &netns.Options{StateRoot: b.TempDir()}
		state, err := os.MkdirTemp("", testPrefix)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.StartTimer()
		start := time.Now()
		lab, _, err := netns.Deploy(ctx, topo, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.WaitUp(ctx, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		deploy += time.Since(start)
		f := New(Options{})
		err = f.Build(ctx, kernel.Env{Lab: lab, Topology: topo, Model: m, StateDir: state})
		b.StopTimer()
		build += f.BuildTook()
		if cerr := f.Close(); cerr != nil {
			b.Error(cerr)
		}
		lab.Close()
		if _, derr := netns.Destroy(topo.Name, opt); derr != nil {
			b.Error(derr)
		}
		os.RemoveAll(state)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric((deploy+build).Seconds()/n, "s/start")
	b.ReportMetric(deploy.Seconds()/n, "s/deploy")
	b.ReportMetric(build.Seconds()/n, "s/build")
	b.ReportMetric(float64(nodes), "nodes")
}
