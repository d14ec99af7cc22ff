package cloud_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/vpc/cloud"
)

// TestSched: actors run one at a time in wake-up order, and time jumps.
func TestSched(t *testing.T) {
	var s cloud.Sched
	var log []string
	ctx := context.Background()
	for _, c := range []struct {
		name string
		naps []time.Duration
	}{{"a", []time.Duration{3, 3}}, {"b", []time.Duration{2, 5}}, {"c", []time.Duration{3}}} {
		s.Go(func() {
			for _, d := range c.naps {
				_ = s.Sleep(ctx, d*time.Second)
				log = append(log, c.name+"@"+s.Now().String())
			}
		})
	}
	s.Run()
	want := []string{"b@2s", "a@3s", "c@3s", "a@6s", "b@7s"}
	if !slices.Equal(log, want) {
		t.Errorf("order %v, want %v", log, want)
	}
}
