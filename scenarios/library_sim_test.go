package scenarios_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

func simBackend(t testing.TB, seed int64) *scenarios.FabricBackend {
	return scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: simrt.New(seed), StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency})
}

// TestLibraryOnSim replays every shipped scenario for every generation it
// names on the sim backend: every expectation must hold.
func TestLibraryOnSim(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range s.Generations {
			t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml")+"/"+string(gen), func(t *testing.T) {
				run, err := scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range run.Checks {
					if !c.Passed {
						t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
					}
				}
				if len(run.Checks) == 0 {
					t.Error("no checks ran")
				}
				if n := run.Counters["unexplained_drops"]; n != 0 {
					t.Errorf("%d unexplained drops", n)
				}
			})
		}
	}
}
