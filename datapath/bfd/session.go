package bfd

import "time"

// Defaults, as FRR's bfdd has them: a packet every 300 ms, down after
// three missed (900 ms).
const (
	DefaultInterval   = 300 * time.Millisecond
	DefaultDetectMult = 3
	// slowInterval is the least interval a session sends at while it is
	// not Up (section 6.8.3).
	slowInterval = time.Second
)

// Config sets a session's timers; zero fields take the defaults.
type Config struct {
	DesiredMinTx  time.Duration
	RequiredMinRx time.Duration
	DetectMult    uint8
}

func (c Config) withDefaults() Config {
	if c.DesiredMinTx <= 0 {
		c.DesiredMinTx = DefaultInterval
	}
	if c.RequiredMinRx <= 0 {
		c.RequiredMinRx = DefaultInterval
	}
	if c.DetectMult == 0 {
		c.DetectMult = DefaultDetectMult
	}
	return c
}

// Session is one asynchronous-mode session's state (section 6.8.1),
// driven by the caller: Receive for every packet from the peer, Tick
// whenever Next has come. Times are the caller's clock, so that a test
// advances it rather than sleeping. A Session is not safe for concurrent
// use.
type Session struct {
	cfg        Config
	state      State
	diag       Diag
	myDisc     uint32
	yourDisc   uint32
	remote     State
	remoteRx   time.Duration // the peer's Required Min RX
	remoteTx   time.Duration // the peer's Desired Min TX
	remoteMult uint8
	polling    bool // sending Poll until a Final comes back
	final      bool // a Final is owed for a Poll received
	lastRx     time.Duration
	nextTx     time.Duration
	jitter     func() float64
}

// NewSession returns a session in state Down with discriminator disc
// (nonzero, unique on this system); jitter returns a number in [0, 1)
// that spaces the packets (75–100% of the interval, section 6.8.7).
func NewSession(cfg Config, disc uint32, jitter func() float64) *Session {
	return &Session{cfg: cfg.withDefaults(), state: Down, myDisc: disc, remoteRx: time.Microsecond, jitter: jitter}
}

// State is the session's state; Diag why it last went down.
func (s *Session) State() State { return s.state }

// Diag is the diagnostic of the session's last change to Down.
func (s *Session) Diag() Diag { return s.diag }

// DetectTime is how long the session waits for a packet while Init or Up
// before it declares the peer down: the peer's multiplier times the
// greater of our Required Min RX and its Desired Min TX.
func (s *Session) DetectTime() time.Duration {
	return time.Duration(s.remoteMult) * max(s.cfg.RequiredMinRx, s.remoteTx)
}

// txInterval is the agreed transmit interval: the greater of what we
// want to send at (at least 1 s while not Up) and what the peer accepts.
func (s *Session) txInterval() time.Duration {
	want := s.cfg.DesiredMinTx
	if s.state != Up {
		want = max(want, slowInterval)
	}
	return max(want, s.remoteRx)
}

func (s *Session) setState(st State, d Diag) {
	if st == s.state {
		return
	}
	if st == Up || s.state == Up {
		// The transmit interval changes (1 s outside Up): tell the
		// peer with a Poll sequence (section 6.8.3).
		s.polling = true
	}
	s.state, s.diag = st, d
	if st == Down {
		s.yourDisc, s.remoteMult = 0, 0
	}
}

// Receive takes a packet from the peer at now (section 6.8.6) and
// reports whether the session's state changed.
func (s *Session) Receive(now time.Duration, p Packet) bool {
	if p.YourDisc != 0 && p.YourDisc != s.myDisc {
		return false // not for this session
	}
	before := s.state
	s.yourDisc, s.remote, s.remoteRx, s.remoteTx, s.remoteMult = p.MyDisc, p.State, p.RequiredMinRx, p.DesiredMinTx, p.DetectMult
	if s.remoteRx == 0 {
		s.remoteRx = time.Microsecond
	}
	if p.Final {
		s.polling = false
	}
	if p.Poll {
		s.final = true
		s.nextTx = now // answer at once
	}
	s.lastRx = now
	if s.state == AdminDown {
		return false
	}
	switch {
	case p.State == AdminDown:
		if s.state != Down {
			s.setState(Down, DiagNeighborDown)
		}
	case s.state == Down && p.State == Down:
		s.setState(Init, DiagNone)
	case s.state == Down && p.State == Init, s.state == Init && (p.State == Init || p.State == Up):
		s.setState(Up, DiagNone)
	case s.state == Up && p.State == Down:
		s.setState(Down, DiagNeighborDown)
	}
	if s.state != before {
		s.nextTx = now // tell the peer at once
	}
	return s.state != before
}

// Next is when the session next needs Tick: its next packet, or the end
// of its detection time.
func (s *Session) Next() time.Duration {
	n := s.nextTx
	if (s.state == Init || s.state == Up) && s.remoteMult > 0 {
		n = min(n, s.lastRx+s.DetectTime())
	}
	return n
}

// Tick runs the session's timers at now: the detection time expiring
// takes it Down (reported as changed); a packet that is due is returned.
func (s *Session) Tick(now time.Duration) (send *Packet, changed bool) {
	if (s.state == Init || s.state == Up) && s.remoteMult > 0 && now >= s.lastRx+s.DetectTime() {
		s.setState(Down, DiagDetectExpired)
		changed = true
		s.nextTx = now
	}
	if now < s.nextTx {
		return nil, changed
	}
	p := Packet{Diag: s.diag, State: s.state, DetectMult: s.cfg.DetectMult, MyDisc: s.myDisc, YourDisc: s.yourDisc,
		DesiredMinTx: s.cfg.DesiredMinTx, RequiredMinRx: s.cfg.RequiredMinRx}
	if s.state != Up {
		p.DesiredMinTx = max(p.DesiredMinTx, slowInterval)
	}
	switch {
	case s.final:
		p.Final, s.final = true, false
	case s.polling:
		p.Poll = true
	}
	j := 0.75 + s.jitter()*0.25
	if s.cfg.DetectMult == 1 {
		j = 0.75 + s.jitter()*0.15
	}
	s.nextTx = now + time.Duration(float64(s.txInterval())*j)
	return &p, changed
}
