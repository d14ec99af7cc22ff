package simrt

import (
	"context"
	"fmt"

	"github.com/netbed/netbed/scenarios"
)

var _ scenarios.SilentFailer = (*Runtime)(nil)

// FailSilently implements scenarios.SilentFailer: node hangs as a line
// card does, as on netns. Its links keep carrier and its neighbours are
// told nothing (sim.Engine.HangNode): it drops every frame that reaches
// it, and with control_plane: bgp its speaker neither sends nor hears
// anything (bgpmodel.Model.SetSilent), so its peers learn of it only when
// their hold timers expire, or BFD's detection time with bgp: {bfd:
// true}. SetNodeState(node, true) reboots it.
func (r *Runtime) FailSilently(_ context.Context, node string) error {
	if _, ok := r.e.Node(node); !ok {
		return fmt.Errorf("sim runtime: fail %s silently: no fabric node %q", node, node)
	}
	return r.Mutate(func() error {
		if err := r.e.HangNode(r.e.Now(), node); err != nil {
			return fmt.Errorf("sim runtime: fail %s silently: %w", node, err)
		}
		if r.bgp != nil {
			r.bgp.SetSilent(node, true)
		}
		if r.hung == nil {
			r.hung = map[string]bool{}
		}
		r.hung[node] = true
		return nil
	})
}
