package ipam

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrPoolExhausted: no free address is left where one was asked for.
	// The error carrying it is an *ExhaustedError naming where.
	ErrPoolExhausted = errors.New("address pool exhausted")
	// ErrAddressInUse: a specific address asked for already has a holder.
	ErrAddressInUse = errors.New("address already in use")
	// ErrNotAllocated: an address to release has no holder.
	ErrNotAllocated = errors.New("address not allocated")
	// ErrNotHolder: an address to release is held by someone else.
	ErrNotHolder = errors.New("address held by another holder")
	// ErrOutOfRange: an address is outside the subnet or node CIDR asked for.
	ErrOutOfRange = errors.New("address outside the pool")
)

// ExhaustedError says which label, network and pools ran out. It matches
// ErrPoolExhausted with errors.Is.
type ExhaustedError struct {
	Label   string   // the label asked for, if any
	Network string   // the network (name or ID), if one was chosen
	Pools   []string // the pool ranges searched, e.g. "10.0.0.2-10.0.0.254"
	Wanted  int      // addresses wanted (batch size), 0 or 1 for one
}

func (e *ExhaustedError) Error() string {
	var b strings.Builder
	b.WriteString("address pool exhausted")
	if e.Label != "" {
		fmt.Fprintf(&b, " for label %q", e.Label)
	}
	if e.Network != "" {
		fmt.Fprintf(&b, " in network %q", e.Network)
	}
	if len(e.Pools) > 0 {
		fmt.Fprintf(&b, " (pools %s)", strings.Join(e.Pools, ", "))
	}
	if e.Wanted > 1 {
		fmt.Fprintf(&b, " while allocating %d addresses", e.Wanted)
	}
	b.WriteString("; add a subnet or release addresses")
	return b.String()
}

// Unwrap makes errors.Is(err, ErrPoolExhausted) hold.
func (e *ExhaustedError) Unwrap() error { return ErrPoolExhausted }
