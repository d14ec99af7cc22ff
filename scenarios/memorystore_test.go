package scenarios_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// TestMemoryStoreSameRun replays the scenarios that lean on the
// controller (a restart among them) with its store in memory
// (FabricOptions.MemoryStore, as netbed plan runs it) and in a bbolt
// file: the two runs must be the same to the byte but for the wall time.
func TestMemoryStoreSameRun(t *testing.T) {
	for _, f := range []string{"library/controller-restart.yaml", "library/pod-drift-keeps-ip.yaml", "library/vm-spawn.yaml"} {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range []scenarios.Generation{scenarios.GenVLAN, scenarios.GenEVPN} {
			if !slices.Contains(s.Generations, gen) {
				continue
			}
			t.Run(filepath.Base(f)+"/"+string(gen), func(t *testing.T) {
				var out [2][]byte
				for i, mem := range []bool{false, true} {
					b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: t.TempDir(),
						ControllerLatency: simrt.ControllerLatency, StoreNoSync: true, MemoryStore: mem})
					run, err := scenarios.Run(context.Background(), s, gen, b, scenarios.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if len(run.Timeline) == 0 {
						t.Fatal("no spawn timeline: the scenario did not use the controller")
					}
					run.Elapsed = 0
					if out[i], err = json.Marshal(run); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(out[0], out[1]) {
					a, b := string(out[0]), string(out[1])
					i := 0
					for i < len(a) && i < len(b) && a[i] == b[i] {
						i++
					}
					t.Errorf("runs differ at byte %d: bbolt %q, memory %q", i, a[max(0, i-80):min(len(a), i+80)], b[max(0, i-80):min(len(b), i+80)])
				}
			})
		}
	}
}
