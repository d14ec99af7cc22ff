package bgpmodel

import (
	"time"

	"github.com/netbed/netbed/datapath/bfd"
)

// BFD beside the sessions (Timers.BFD), as netbed's speakers run it on
// netns (datapath/speaker): each end of a session runs package bfd's own
// state machine (bfd.Session) in virtual time, its control packets
// carried over the session's link (they arrive after the link's delay if
// the transport works then and on arrival), its jitter drawn from the
// model's seeded generator. When a BFD session that was Up goes Down
// while the end has carrier, the speaker takes the BGP session down at
// once (a NOTIFICATION, as DisablePeer sends, then the paths dropped as
// for any session that ends) and attempts no session on it until BFD is
// Up again; a BGP session comes up without waiting for BFD. A frozen
// speaker (SetSilent) runs no BFD timer until it speaks again.

// endBFD is one end's BFD session and what the speaker knows of it.
type endBFD struct {
	s *bfd.Session // nil: no BFD (none configured, or the speaker is off)
	// tok identifies the timer armed last (at armedAt): an older one
	// that fires does nothing.
	tok     uint64
	armedAt time.Duration
	armed   bool
	// frozen: the speaker was silent when a timer came; SetSilent(false)
	// runs it.
	frozen bool
	// wasUp: the session was Up since the speaker last acted on it
	// (a session that never came Up takes nothing down).
	wasUp bool
	// down: BFD took the BGP session down; no session is attempted
	// until BFD is Up again.
	down bool
	// lastRx is when the last control packet arrived.
	lastRx time.Duration
}

// startBFD gives e a new BFD session (state Down, a fresh discriminator)
// and runs its timers, if the model runs BFD.
func (e *end) startBFD() {
	m := e.sp.m
	if m.t.BFD == nil {
		return
	}
	m.bfdDisc++
	e.bfd = endBFD{s: bfd.NewSession(*m.t.BFD, m.bfdDisc, m.bfdRng.Float64), tok: e.bfd.tok + 1}
	e.bfdTick()
}

// stopBFD ends e's BFD session: the speaker is off.
func (e *end) stopBFD() { e.bfd = endBFD{tok: e.bfd.tok + 1} }

// bfdArm arms e's timer for when its session next needs a tick, unless
// one is armed for then or sooner.
func (e *end) bfdArm() {
	m := e.sp.m
	at := max(e.bfd.s.Next(), m.s.Now())
	if e.bfd.armed && e.bfd.armedAt <= at {
		return
	}
	e.bfd.tok++
	tok := e.bfd.tok
	e.bfd.armed, e.bfd.armedAt = true, at
	m.s.At(at, func() {
		if e.bfd.tok != tok {
			return
		}
		e.bfd.armed = false
		e.bfdTick()
	})
}

// bfdTick runs e's session timers now: a detection time that expired,
// a packet that is due.
func (e *end) bfdTick() {
	if e.bfd.s == nil {
		return
	}
	if e.sp.silent {
		e.bfd.frozen = true
		return
	}
	e.bfd.frozen = false
	send, changed := e.bfd.s.Tick(e.sp.m.s.Now())
	if changed {
		e.bfdChanged()
	}
	if send != nil {
		e.bfdSend(*send)
	}
	if e.bfd.s != nil {
		e.bfdArm()
	}
}

// bfdSend carries a control packet to the peer's session.
func (e *end) bfdSend(p bfd.Packet) {
	m, s := e.sp.m, e.s
	if !s.transport() {
		return
	}
	r := e.peer()
	m.s.At(m.s.Now()+s.Delay, func() {
		if !s.transport() || r.bfd.s == nil {
			return
		}
		now := m.s.Now()
		r.bfd.lastRx = now
		if r.bfd.s.Receive(now, p) {
			r.bfdChanged()
		}
		if r.bfd.s != nil {
			r.bfdArm()
		}
	})
}

// bfdChanged is the speaker's reaction to a change of e's BFD state, as
// datapath/speaker's: Down after Up with carrier takes the BGP session
// down; Up after that lets a session be attempted again.
func (e *end) bfdChanged() {
	b := &e.bfd
	switch st := b.s.State(); {
	case st == bfd.Down && b.wasUp && e.carrier() && !b.down:
		b.wasUp, b.down = false, true
		if e.established() {
			e.notify("BFD down")
		}
	case st == bfd.Up && !b.down:
		b.wasUp = true
	case st == bfd.Up && b.down:
		b.wasUp, b.down = true, false
		if e.carrier() {
			e.sp.m.tryConnect(e.s)
		}
	}
}

// bfdHolds says whether BFD keeps the session from being attempted: an
// end whose BFD took it down and is not Up again.
func (s *session) bfdHolds() bool { return s.end[0].bfd.down || s.end[1].bfd.down }

// bfdState is e's BFD state as an operator reads it ("" without BFD).
func (e *end) bfdState() string {
	if e.bfd.s == nil {
		return ""
	}
	return e.bfd.s.State().String()
}
