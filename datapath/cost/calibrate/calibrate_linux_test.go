package calibrate

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/internal/testutil"
)

// TestRunKernelDevices builds every kernel path (veth, tc BPF, bridge,
// iptables-nft, VXLAN) on real namespaces and derives a table from a few
// round trips each: it parses, each path got its samples, and nothing is
// left behind. (Open vSwitch is left out: netbed calibrate measures it.)
// The figures themselves are not checked: a loaded machine moves them.
func TestRunKernelDevices(t *testing.T) {
	testutil.RequireRoot(t)
	for _, bin := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			testutil.Unavailable(t, bin+" is not installed")
		}
	}
	before := calibrationNamespaces(t)
	tab, err := Run(context.Background(), Options{Samples: 200, Rounds: 2, Machine: "test", Command: "netbed calibrate"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tab.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cost.Parse(b); err != nil {
		t.Fatalf("the measured table does not parse: %v", err)
	}
	if len(tab.Paths) != 13 {
		t.Errorf("%d paths measured, want 13: %v", len(tab.Paths), tab.Paths)
	}
	for name, rtt := range tab.Paths {
		if rtt <= 0 {
			t.Errorf("path %s: median round trip %v", name, rtt)
		}
	}
	if f := tab.Figures[cost.IptablesRule]; !f.Measured || f.Samples != 200 {
		t.Errorf("iptables-rule: %+v", f)
	}
	for ns := range calibrationNamespaces(t) {
		if !before[ns] {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}

// calibrationNamespaces lists the namespaces calibrations name (another
// calibration may be running beside the test).
func calibrationNamespaces(t *testing.T) map[string]bool {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "nbcal-") {
			m[f[0]] = true
		}
	}
	return m
}
