package netnsrt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/topologies/netns"
)

// runFRR runs s for gen 2 on netns with control_plane bgp and the FRR
// leaves frr; held, if set, runs while the lab is held after the steps.
func runFRR(t *testing.T, s *scenarios.Scenario, frr []string, held func(context.Context, *netnsrt.Runtime, []scenarios.Instance) error) *reports.Run {
	t.Helper()
	sc := *s
	sc.ControlPlane = scenarios.ControlPlaneBGP
	sc.BGP.FRRLeaves = frr
	// FRR runs as the frr user: its directory's parents must let it in.
	root := t.TempDir()
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rt := netnsrt.New(netnsrt.Options{Scenario: sc.Name, StateRoot: root, OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable)})
	opts := scenarios.Options{}
	if held != nil {
		opts.Hold = func(ctx context.Context, _ scenarios.Backend, live []scenarios.Instance) error {
			return held(ctx, rt, live)
		}
	}
	run, err := scenarios.Run(context.Background(), &sc, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: rt, StoreDir: t.TempDir()}), opts)
	if err != nil {
		t.Fatalf("%s with frr_leaves %v: %v", sc.Name, frr, err)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("frr_leaves %v: step %d (line %d) %s: %s", frr, c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Checks) == 0 {
		t.Errorf("frr_leaves %v: no checks ran", frr)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	return run
}

// TestFRRLeavesLibrary runs the shipped leaf-failure scenario (gen 2,
// control_plane bgp) on netns twice: every leaf netbed's, then with
// leaf3 realised as FRR (zebra and bgpd on the kernel's bridge and VXLAN
// devices). Instances behind FRR's leaf are spawned and probed both
// ways, leaf1's failure and restore happen beside it, and every probe's
// verdict (delivered, answered) and switch hop count equal the all-netbed
// run's. While the lab is held, FRR's kernel holds netbed's instances
// (bridge fdb, zebra's entries towards netbed's VTEPs); after the run no
// FRR process is left.
func TestFRRLeavesLibrary(t *testing.T) {
	testutil.RequireRoot(t)
	if err := netnsrt.FRRAvailable(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	s, err := scenarios.Load("../library/leaf-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := runFRR(t, s, nil, nil)
	var pids []int
	frr := runFRR(t, s, []string{"leaf3"}, func(ctx context.Context, rt *netnsrt.Runtime, live []scenarios.Instance) error {
		dir, ok := rt.FRRLeaf("leaf3")
		if !ok {
			return fmt.Errorf("leaf3 is not an FRR leaf")
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(dir)), "state.json"))
		if err != nil {
			return err
		}
		var st netns.State
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		for _, p := range st.Processes {
			pids = append(pids, p.PID)
		}
		ns, err := rt.Lab().NetnsName("leaf3")
		if err != nil {
			return err
		}
		out, err := exec.Command("ip", "netns", "exec", ns, "bridge", "fdb", "show").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bridge fdb: %v: %s", err, out)
		}
		fdb := strings.ToLower(string(out))
		remote := 0
		for _, in := range live {
			if in.Host == "host5" || in.Host == "host6" {
				continue // behind leaf3 itself
			}
			if strings.Contains(fdb, strings.ToLower(in.MAC)) {
				remote++
			}
		}
		if remote == 0 {
			t.Errorf("FRR's kernel on leaf3 holds none of netbed's instances' MACs:\n%s", out)
		}
		if !strings.Contains(fdb, "extern_learn") {
			t.Errorf("no zebra (extern_learn) entry in leaf3's FDB:\n%s", out)
		}
		return nil
	})
	if len(pids) != 2 {
		t.Errorf("FRR processes recorded with the lab: %v, want zebra's and bgpd's", pids)
	}
	for _, p := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil {
			t.Errorf("FRR process %d still runs after the run", p)
		}
	}
	if len(frr.Probes) != len(base.Probes) {
		t.Fatalf("with FRR %d probes, without %d", len(frr.Probes), len(base.Probes))
	}
	behind := 0
	for i, b := range base.Probes {
		f := frr.Probes[i]
		if f.Delivered != b.Delivered || f.Replied != b.Replied || f.SwitchHops != b.SwitchHops {
			t.Errorf("probe %d %s -> %s: with FRR delivered %v replied %v %d switch hops; all netbed: %v %v %d",
				i, b.From, b.To, f.Delivered, f.Replied, f.SwitchHops, b.Delivered, b.Replied, b.SwitchHops)
		}
		if strings.Contains(strings.Join(f.Path, " "), "leaf3") && f.Replied {
			behind++
		}
	}
	if behind == 0 {
		t.Error("no answered probe crossed leaf3")
	}
}
