package controller

import "errors"

// Sentinels callers test with errors.Is; the HTTP API maps each to a code.
var (
	// ErrNotFound: no network, subnet, port or label by that name or ID.
	ErrNotFound = errors.New("not found")
	// ErrExists: a network or port of that name, or a MAC in that network,
	// already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a request's field is malformed or out of range.
	ErrInvalid = errors.New("invalid request")
	// ErrOverlap: a subnet overlaps another of its network.
	ErrOverlap = errors.New("subnet overlaps")
	// ErrIllegalTransition: a port state change the state machine forbids.
	ErrIllegalTransition = errors.New("illegal state transition")
	// ErrInUse: something still depends on what is being deleted or
	// released (an address held by a port).
	ErrInUse = errors.New("in use")
	// ErrStale: a state report from a host the port is no longer bound to.
	ErrStale = errors.New("stale report")
)

// FieldError is an ErrInvalid naming the field at fault.
type FieldError struct {
	Field  string // e.g. "segment.id"
	Value  any
	Reason string // what is wrong and what to do
}

func (e *FieldError) Error() string {
	return "invalid " + e.Field + " " + quoteValue(e.Value) + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func quoteValue(v any) string {
	switch x := v.(type) {
	case string:
		return `"` + x + `"`
	case nil:
		return "(none)"
	default:
		return fmtAny(x)
	}
}
