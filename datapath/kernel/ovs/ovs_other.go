//go:build !linux

package ovs

import (
	"context"
	"errors"

	"github.com/netbed/netbed/datapath/kernel"
)

// ErrUnsupported: Open vSwitch hosts in namespaces need Linux.
var ErrUnsupported = errors.New("ovs: needs Linux")

// Fabric is gen 1 on kernel devices; elsewhere than Linux every call fails.
type Fabric struct{}

var _ kernel.Fabric = (*Fabric)(nil)

// New returns an unbuilt fabric.
func New() *Fabric { return &Fabric{} }

// Available reports that Open vSwitch cannot run here.
func Available() error { return ErrUnsupported }

func (f *Fabric) Build(context.Context, kernel.Env) error   { return ErrUnsupported }
func (f *Fabric) Plug(context.Context, kernel.Port) error   { return ErrUnsupported }
func (f *Fabric) Unplug(context.Context, kernel.Port) error { return ErrUnsupported }
func (f *Fabric) Sync(context.Context) error                { return ErrUnsupported }
func (f *Fabric) Close() error                              { return nil }
