//go:build !linux

package netns

import (
	"context"
	"time"

	"github.com/netbed/netbed/topologies"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

type nodeSys struct{}

// Deploy needs Linux; elsewhere it returns ErrUnsupported.
func Deploy(ctx context.Context, t *topologies.Topology, opt *Options) (*Lab, *Report, error) {
	return nil, nil, ErrUnsupported
}

// Destroy needs Linux; elsewhere it returns ErrUnsupported.
func Destroy(lab string, opt *Options) (*DestroyReport, error) { return nil, ErrUnsupported }

// DestroyAll needs Linux; elsewhere it returns ErrUnsupported.
func DestroyAll(opt *Options) (*DestroyReport, error) { return nil, ErrUnsupported }

// Attach needs Linux; elsewhere it returns ErrUnsupported.
func Attach(t *topologies.Topology) (*Lab, error) { return nil, ErrUnsupported }

// AttachLab needs Linux; elsewhere it returns ErrUnsupported.
func AttachLab(name string, opt *Options) (*Lab, error) { return nil, ErrUnsupported }

// AttachClab needs Linux; elsewhere it returns ErrUnsupported.
func AttachClab(path string) (*Lab, error) { return nil, ErrUnsupported }

// Close does nothing outside Linux.
func (l *Lab) Close() error { return nil }

// Destroy needs Linux; elsewhere it returns ErrUnsupported.
func (l *Lab) Destroy() (*DestroyReport, error) { return nil, ErrUnsupported }

// Do needs Linux; elsewhere it returns ErrUnsupported.
func (l *Lab) Do(node string, fn func() error) error { return ErrUnsupported }

// Handle needs Linux; elsewhere it returns ErrUnsupported.
func (l *Lab) Handle(node string) (*netlink.Handle, error) { return nil, ErrUnsupported }

// NsHandle needs Linux; elsewhere it returns ErrUnsupported.
func (l *Lab) NsHandle(node string) (netns.NsHandle, error) { return netns.None(), ErrUnsupported }

// DoIn needs Linux; elsewhere it returns ErrUnsupported.
func DoIn(ns netns.NsHandle, fn func() error) error { return ErrUnsupported }

// SetLinks needs Linux; elsewhere it returns ErrUnsupported.
func (l *Lab) SetLinks(node string, names []string, up bool) error { return ErrUnsupported }

// WaitUp is not supported off Linux.
func (l *Lab) WaitUp(ctx context.Context, timeout time.Duration) error { return ErrUnsupported }

// Labs needs Linux; elsewhere it returns ErrUnsupported.
func Labs(opt *Options) ([]LabInfo, error) { return nil, ErrUnsupported }
