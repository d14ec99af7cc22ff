//go:build !linux

package ktrace

import (
	"context"
	"errors"

	"github.com/netbed/netbed/datapath/kernel"
)

// Tracer needs Linux.
type Tracer struct{}

var errUnsupported = errors.New("ktrace: kernel tracing needs Linux")

func New(Options) (*Tracer, error)           { return nil, errUnsupported }
func (*Tracer) Watch(Key, uint64) error      { return errUnsupported }
func (*Tracer) Unwatch(Key) error            { return errUnsupported }
func (*Tracer) Sync(context.Context) error   { return errUnsupported }
func (*Tracer) Events(uint64) []kernel.Event { return nil }
func (*Tracer) Take(uint64) []kernel.Event   { return nil }
func (*Tracer) Lost() (uint64, error)        { return 0, errUnsupported }
func (*Tracer) Close() error                 { return nil }
