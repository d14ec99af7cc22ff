//go:build !linux

package netnsrt

import (
	"context"
	"errors"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/topologies"
)

// ErrUnsupported: the netns runtime needs Linux network namespaces.
var ErrUnsupported = errors.New("the netns runtime needs Linux network namespaces; use the sim backend")

// Runtime is the netns runtime; off Linux every call fails.
type Runtime struct{ opts Options }

var _ scenarios.PodAttacher = (*Runtime)(nil)

// New returns a runtime whose Load fails with ErrUnsupported.
func New(opts Options) *Runtime { return &Runtime{opts: opts} }

// Name implements scenarios.Runtime.
func (r *Runtime) Name() string { return "netns" }

// Load implements scenarios.Runtime.
func (r *Runtime) Load(context.Context, datapath.Fabric, *topologies.Topology) error {
	return ErrUnsupported
}

// AddInstance implements scenarios.Runtime.
func (r *Runtime) AddInstance(context.Context, datapath.Fabric, datapath.InstanceSpec) error {
	return ErrUnsupported
}

// AttachPod implements scenarios.PodAttacher.
func (r *Runtime) AttachPod(_ context.Context, s datapath.InstanceSpec, _ []byte) (datapath.InstanceSpec, error) {
	return s, ErrUnsupported
}

// RemoveInstance implements scenarios.Runtime.
func (r *Runtime) RemoveInstance(context.Context, datapath.Fabric, string) error {
	return ErrUnsupported
}

// SetNodeState implements scenarios.Runtime.
func (r *Runtime) SetNodeState(context.Context, string, bool) error { return ErrUnsupported }

// SetLinkState implements scenarios.Runtime.
func (r *Runtime) SetLinkState(context.Context, topologies.Endpoint, bool) error {
	return ErrUnsupported
}

// Probe implements scenarios.Runtime.
func (r *Runtime) Probe(context.Context, scenarios.RuntimeProbe) (reports.Probe, error) {
	return reports.Probe{}, ErrUnsupported
}

// Mutate implements scenarios.Runtime.
func (r *Runtime) Mutate(f func() error) error { return f() }

// Pause implements scenarios.Runtime.
func (r *Runtime) Pause() func() { return func() {} }

// Sleep implements scenarios.Runtime.
func (r *Runtime) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Now implements scenarios.Runtime.
func (r *Runtime) Now() time.Duration { return 0 }

// Stats implements scenarios.Runtime.
func (r *Runtime) Stats() (map[string]int, int) { return map[string]int{}, 0 }

// Close implements scenarios.Runtime.
func (r *Runtime) Close() error { return nil }

// InstanceNamespace needs Linux.
func (r *Runtime) InstanceNamespace(string) (string, bool) { return "", false }

// FindPlugin needs Linux.
func FindPlugin([]string) (string, error) { return "", ErrUnsupported }

// Announce implements scenarios.Runtime.
func (r *Runtime) Announce(context.Context, string, bool) error { return ErrUnsupported }
