//go:build !linux

package bpf

import (
	"context"
	"errors"

	"github.com/netbed/netbed/datapath/kernel"
)

// ErrUnsupported: gen 3 on kernel devices needs Linux.
var ErrUnsupported = errors.New("gen 3 on kernel devices needs Linux")

// Options tune a Fabric (see the Linux build).
type Options struct {
	VXLANPort, EventsSize, MaxFlows, MapEntries int
}

// Fabric is unavailable on this platform: every method fails.
type Fabric struct{}

var _ kernel.Fabric = (*Fabric)(nil)

// New returns a fabric whose methods fail with ErrUnsupported.
func New(Options) *Fabric { return &Fabric{} }

func (*Fabric) Build(context.Context, kernel.Env) error   { return ErrUnsupported }
func (*Fabric) Plug(context.Context, kernel.Port) error   { return ErrUnsupported }
func (*Fabric) Unplug(context.Context, kernel.Port) error { return ErrUnsupported }
func (*Fabric) Sync(context.Context) error                { return ErrUnsupported }
func (*Fabric) Close() error                              { return nil }

// PodMTU is 0 on this platform.
func (*Fabric) PodMTU() int { return 0 }

// LastDrop finds nothing on this platform.
func (*Fabric) LastDrop(DropKey) (FlowEvent, bool) { return FlowEvent{}, false }

// FlushFlows fails on this platform.
func (*Fabric) FlushFlows(context.Context) error { return ErrUnsupported }

// Flows returns nothing on this platform.
func (*Fabric) Flows() []FlowEvent { return nil }
