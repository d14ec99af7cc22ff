package controller

import (
	"fmt"
	"time"
)

// State is one plane's state of a port.
type State string

// Port plane states.
const (
	StateDown   State = "DOWN"
	StateBuild  State = "BUILD"
	StateActive State = "ACTIVE"
	StateError  State = "ERROR"
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	return s == StateDown || s == StateBuild || s == StateActive || s == StateError
}

// legal lists the transitions the state machine allows; a report of the
// current state again is a no-op, not a transition.
var legal = map[State][]State{
	StateDown:   {StateBuild},
	StateBuild:  {StateActive, StateError, StateDown},
	StateActive: {StateBuild, StateDown, StateError},
	StateError:  {StateBuild, StateDown},
}

// CanTransition reports whether from -> to is allowed.
func CanTransition(from, to State) bool {
	for _, s := range legal[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Plane names which half of a port's state changed.
type Plane string

// Planes.
const (
	PlaneUnderlay Plane = "underlay" // wired on the host (host agent)
	PlaneOverlay  Plane = "overlay"  // configured on the leaf (CNC)
)

// Transition is one recorded state change.
type Transition struct {
	Plane  Plane     `json:"plane"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Status is a port's state derived from both planes.
type Status string

// Derived statuses.
const (
	StatusActiveActive Status = "ACTIVE_ACTIVE"
	StatusBuild        Status = "BUILD"
	StatusDown         Status = "DOWN"
	StatusError        Status = "ERROR"
)

// DeriveStatus combines the two planes; see Port.Status.
func DeriveStatus(under, over State) Status {
	switch {
	case under == StateActive && over == StateActive:
		return StatusActiveActive
	case under == StateError || over == StateError:
		return StatusError
	case under == StateBuild || over == StateBuild || under == StateActive || over == StateActive:
		return StatusBuild
	default:
		return StatusDown
	}
}

// MaxTransitions is how many of its latest transitions a port keeps: the
// record of a pod that drifts and churns for months must not grow without
// bound (every state report rewrites it).
const MaxTransitions = 64

// transition moves one plane of p to `to`, recording it at now, and
// reports whether the state changed: reporting the current state again
// changes nothing.
func (p *Port) transition(plane Plane, to State, now time.Time, reason string) (bool, error) {
	if !to.Valid() {
		return false, &FieldError{Field: string(plane) + "_state", Value: string(to), Reason: "want DOWN, BUILD, ACTIVE or ERROR"}
	}
	cur := &p.UnderlayState
	if plane == PlaneOverlay {
		cur = &p.OverlayState
	}
	if *cur == to {
		return false, nil
	}
	if !CanTransition(*cur, to) {
		return false, fmt.Errorf("port %q %s %s -> %s: %w (allowed from %s: %v)", p.Name, plane, *cur, to, ErrIllegalTransition, *cur, legal[*cur])
	}
	if len(p.Transitions) >= MaxTransitions {
		p.Transitions = append(p.Transitions[:0], p.Transitions[len(p.Transitions)-MaxTransitions+1:]...)
	}
	p.Transitions = append(p.Transitions, Transition{Plane: plane, From: *cur, To: to, At: now, Reason: reason})
	*cur = to
	return true, nil
}
