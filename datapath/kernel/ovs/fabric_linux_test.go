package ovs

import (
	"context"
	"errors"
	"testing"

	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/topologies"
)

func TestPriority(t *testing.T) {
	cases := []struct {
		role  topologies.Role
		index int
		gw    bool
		want  int
	}{
		{topologies.RoleCore, 0, true, 0},
		{topologies.RoleCore, 1, false, 4097},
		{topologies.RoleAggregation, 3, false, 8195},
		{topologies.RoleToR, 5, false, 12293},
		{topologies.RoleAccess, 9999, false, 3*4096 + 4095},
	}
	for _, c := range cases {
		if got := Priority(c.role, c.index, c.gw); got != c.want {
			t.Errorf("Priority(%s, %d, %v) = %d, want %d", c.role, c.index, c.gw, got, c.want)
		}
	}
}

// TestBuildRefusesOtherModels: a model that is not gen 1's is refused
// before anything starts, and Close after it succeeds.
func TestBuildRefusesOtherModels(t *testing.T) {
	f := New()
	err := f.Build(context.Background(), kernel.Env{})
	if !errors.Is(err, ErrModel) {
		t.Errorf("Build with no model: %v, want ErrModel", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after a failed Build: %v", err)
	}
	if err := f.Sync(context.Background()); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Sync before Build: %v, want ErrNotBuilt", err)
	}
}
