package controller

import "context"

// Overlay programs the fabric for bound ports (the CNC implements it).
type Overlay interface {
	// PortBound is called after a port's host binding is committed; oldHost is
	// "" for a first binding. It runs asynchronously; the overlay reports back
	// with Service.SetOverlayState.
	PortBound(ctx context.Context, p Port, oldHost string)
	// PortUnbound is called after a port is deleted or unbound from host.
	PortUnbound(ctx context.Context, p Port, host string)
}
