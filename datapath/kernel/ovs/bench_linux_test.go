package ovs

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/vlan"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/netns"
)

// BenchmarkLabStart measures starting gen 1 on kernel devices: deploying
// the shipped three-tier topology (one pod, two racks of two hosts: 13
// nodes) and building it (a private OVS per host and on every switch or
// only the gateway core) until the spanning tree
// has converged; "rstp" with Open vSwitch switches (the default),
// "802.1d" with Linux bridges (Options.LinuxBridges). Tearing down is not
// timed. Metrics: the whole start, the
// deploy, the OVS and device build, and the wait for STP.
func BenchmarkLabStart(b *testing.B) {
	testutil.RequireRoot(b)
	if err := Available(); err != nil {
		testutil.Unavailable(b, err.Error())
	}
	b.Run("rstp", func(b *testing.B) { benchLabStart(b, Options{}) })
	b.Run("802.1d", func(b *testing.B) { benchLabStart(b, Options{LinuxBridges: true}) })
}

func benchLabStart(b *testing.B, fopts Options) {
	var deploy, devices, converged time.Duration
	hosts := 0
	for b.Loop() {
		b.StopTimer()
		topo, err := topologies.ThreeTier(topologies.ThreeTierParams{Name: testutil.Name(testPrefix)})
		if err != nil {
			b.Fatal(err)
		}
		hosts = len(topo.NodesByRole(topologies.RoleHost))
		m, err := vlan.New(topo, vlan.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.AddNetwork(net1); err != nil {
			b.Fatal(err)
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
		f := NewWith(fopts)
		err = f.Build(ctx, kernel.Env{Lab: lab, Topology: topo, Model: m, StateDir: state})
		b.StopTimer()
		d, c := f.BuildTook()
		devices += d
		converged += c
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
	b.ReportMetric((deploy+converged).Seconds()/n, "s/start")
	b.ReportMetric(deploy.Seconds()/n, "s/deploy")
	b.ReportMetric(devices.Seconds()/n, "s/ovs+devices")
	b.ReportMetric((converged-devices).Seconds()/n, "s/stp")
	b.ReportMetric(float64(hosts), "hosts")
}
