package netnsrt_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// pluginDir holds the binaries TestMain builds: netbed-cni, which
// attaches pods on the netns runtime, and netbed, which serves the
// controller as its own process.
var pluginDir string

func TestMain(m *testing.M) {
	if dir := os.Getenv(childPlugins); dir != "" {
		// A child of a test that kills it: its parent's binaries.
		pluginDir = dir
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "netnsrt-cni-")
	if err != nil {
		panic(err)
	}
	// The plugin, and netbed, which serves the controller as its own
	// process.
	for _, b := range []struct{ name, pkg string }{{netnsrt.PluginType, "cmd/netbed-cni"}, {netnsrt.Executable, "cmd/netbed"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.name), "github.com/netbed/netbed/"+b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic("go build " + b.name + ": " + err.Error() + "\n" + string(out))
		}
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newRuntime is netnsrt.New with the test's plugin and temporary
// directories.
func newRuntime(t testing.TB, scenario string) *netnsrt.Runtime {
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: t.TempDir(), OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable)})
}

// newKernelRuntime is newRuntime on the kernel backend, capturing only the
// instances' namespaces (what the results need).
func newKernelRuntime(t testing.TB, scenario string) *netnsrt.Runtime {
	return netnsrt.New(netnsrt.Options{Scenario: scenario, StateRoot: t.TempDir(), OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true, InstancesOnly: true})
}

// Without the plugin a pod cannot be attached, and the error says what
// is missing and where it was looked for; nothing of the run is left.
func TestPodWithoutPluginFails(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/pod-drift-keeps-ip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	rt := netnsrt.New(netnsrt.Options{Scenario: s.Name, StateRoot: t.TempDir(), OutDir: t.TempDir(), CNIPath: []string{empty}})
	_, err = scenarios.Run(context.Background(), s, scenarios.GenEBPF, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt}), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), netnsrt.PluginType) || !strings.Contains(err.Error(), empty) {
		t.Fatalf("run without the plugin: %v; want an error naming %s and %s", err, netnsrt.PluginType, empty)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}
