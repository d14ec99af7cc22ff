//go:build !linux

package bridge

import (
	"context"
	"errors"

	"github.com/netbed/netbed/datapath/kernel"
)

// ErrUnsupported: gen 2 on kernel devices needs Linux.
var ErrUnsupported = errors.New("gen 2 on kernel devices needs Linux")

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
