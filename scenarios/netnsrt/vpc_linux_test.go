package netnsrt_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/netnsrt"
)

// TestVPCNotOnKernel: the kernel backend refuses vpc with an error that
// says so, and leaves nothing of the lab.
func TestVPCNotOnKernel(t *testing.T) {
	testutil.RequireRoot(t)
	s, err := scenarios.Load("../library/vpc-pods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt := netnsrt.New(netnsrt.Options{Scenario: s.Name, StateRoot: t.TempDir(), OutDir: t.TempDir(), CNIPath: []string{pluginDir},
		Netbed: filepath.Join(pluginDir, netnsrt.Executable), Kernel: true})
	_, err = scenarios.Run(context.Background(), s, scenarios.GenVPC, scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: rt, StoreDir: t.TempDir()}), scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "vpc is not built on the kernel backend yet") {
		t.Fatalf("vpc on the kernel backend: %v", err)
	}
	if left := namespacesOf(rt.LabName()); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}
