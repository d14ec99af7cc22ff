package controller

import "context"

// A PortGuard vets a change to an existing port inside the transaction
// that makes it, given the port as it is there: an authorization decided
// on the port's current host cannot be raced by another writer moving it
// in between. A non-nil error aborts the change and is returned, wrapped
// with the operation, to the caller.
type PortGuard func(op string, cur Port) error

type guardKey struct{}

// WithPortGuard returns ctx carrying g: EnsurePort (of an existing port),
// BindPort, DeletePort, SetUnderlayState and SetOverlayState under it call
// g before they change anything.
func WithPortGuard(ctx context.Context, g PortGuard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

// guard runs ctx's port guard, if any, on cur.
func guard(ctx context.Context, op string, cur Port) error {
	if g, ok := ctx.Value(guardKey{}).(PortGuard); ok && g != nil {
		return g(op, cur)
	}
	return nil
}
