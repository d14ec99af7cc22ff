package ovs

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkPlugPort measures putting one instance's veth end on br-int as
// an access port, as Plug and PlugAccess do, until ovs-vswitchd has it:
// "vsctl" starts `ovs-vsctl add-port … -- set interface …` (how netbed
// plugged before), "ovsdb" sends the same change over the vswitch's open
// OVSDB connection (addPort). One private vswitch in a namespace serves
// both; creating the veth and deleting the port are not timed. Metric:
// ms/plug.
func BenchmarkPlugPort(b *testing.B) {
	testutil.RequireRoot(b)
	if err := Available(); err != nil {
		testutil.Unavailable(b, err.Error())
	}
	ns := testPrefix + "-plugb"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	base, err := os.MkdirTemp("", testPrefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(base) })
	ctx := context.Background()
	v, err := startVswitch(ctx, nsLab{}, ns, filepath.Join(base, "v"), "--", "add-br", DevBrInt, "--", "set", "bridge", DevBrInt, "datapath_type=netdev")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.stop() })
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	plugs := map[string]func(dev string) error{
		"vsctl": func(dev string) error {
			_, err := v.vsctl(ctx, "--", "add-port", DevBrInt, dev, "tag=10", "--", "set", "interface", dev,
				"external_ids:iface-id=inst-"+dev, fmt.Sprintf("external_ids:attached-mac=%q", mac.String()))
			return err
		},
		"ovsdb": func(dev string) error {
			_, err := v.addPort(ctx, DevBrInt, dev, 10, accessIDs("inst-"+dev, mac))
			return err
		},
	}
	for _, name := range []string{"vsctl", "ovsdb"} {
		plug := plugs[name]
		b.Run(name, func(b *testing.B) {
			var took time.Duration
			i := 0
			for b.Loop() {
				b.StopTimer()
				dev := fmt.Sprintf("b%s%d", name[:2], i)
				i++
				if out, err := exec.Command("ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", dev+"p").CombinedOutput(); err != nil {
					b.Fatalf("ip link add: %v: %s", err, out)
				}
				b.StartTimer()
				start := time.Now()
				if err := plug(dev); err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
				b.StopTimer()
				if err := v.dropPort(ctx, DevBrInt, dev); err != nil {
					b.Fatal(err)
				}
				exec.Command("ip", "-n", ns, "link", "del", dev).Run()
				b.StartTimer()
			}
			b.ReportMetric(float64(took.Microseconds())/1000/float64(i), "ms/plug")
		})
	}
}
