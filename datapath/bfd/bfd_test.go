package bfd

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestPacketRoundTrip(t *testing.T) {
	p := Packet{Diag: DiagNeighborDown, State: Up, Poll: true, DetectMult: 3, MyDisc: 7, YourDisc: 9,
		DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 200 * time.Millisecond}
	b := p.Marshal(nil)
	if len(b) != 24 || b[0] != 0x23 || b[1] != 0xe0 {
		t.Fatalf("wire % x", b)
	}
	q, err := Parse(b)
	if err != nil || q != p {
		t.Fatalf("parse: %+v, %v; want %+v", q, err, p)
	}
	bad := map[string]func([]byte){
		"short":          func(b []byte) {},
		"version":        func(b []byte) { b[0] = 2 << 5 },
		"mult 0":         func(b []byte) { b[2] = 0 },
		"multipoint":     func(b []byte) { b[1] |= flagMultipoint },
		"auth":           func(b []byte) { b[1] |= flagAuth },
		"my disc 0":      func(b []byte) { clear(b[4:8]) },
		"your disc 0 up": func(b []byte) { clear(b[8:12]) },
		"length":         func(b []byte) { b[3] = 30 },
	}
	for name, edit := range bad {
		c := p.Marshal(nil)
		edit(c)
		if name == "short" {
			c = c[:20]
		}
		if _, err := Parse(c); !errors.Is(err, ErrPacket) {
			t.Errorf("%s: %v, want ErrPacket", name, err)
		}
	}
}

// pair runs two sessions against each other in virtual time: every
// packet arrives after delay unless the link from its sender is cut.
type pair struct {
	now   time.Duration
	s     [2]*Session
	cut   [2]bool
	queue []struct {
		at time.Duration
		to int
		p  Packet
	}
	changes [2][]State
}

func newPair() *pair {
	r := rand.New(rand.NewPCG(1, 2))
	return &pair{s: [2]*Session{NewSession(Config{}, 11, r.Float64), NewSession(Config{}, 22, r.Float64)}}
}

// run advances virtual time to until, a millisecond at a time.
func (pr *pair) run(until time.Duration) {
	for ; pr.now <= until; pr.now += time.Millisecond {
		q := pr.queue[:0]
		for _, m := range pr.queue {
			if m.at <= pr.now {
				if pr.s[m.to].Receive(pr.now, m.p) {
					pr.changes[m.to] = append(pr.changes[m.to], pr.s[m.to].State())
				}
			} else {
				q = append(q, m)
			}
		}
		pr.queue = q
		for i, s := range pr.s {
			if pr.now < s.Next() {
				continue
			}
			p, changed := s.Tick(pr.now)
			if changed {
				pr.changes[i] = append(pr.changes[i], s.State())
			}
			if p != nil && !pr.cut[i] {
				pr.queue = append(pr.queue, struct {
					at time.Duration
					to int
					p  Packet
				}{pr.now + time.Millisecond, 1 - i, *p})
			}
		}
	}
}

// TestSessionUpAndDetect: two sessions come Up through Init (the
// three-way handshake), agree on 300 ms once Up (a Poll answered with a
// Final), and when one goes silent the other declares it down
// (DiagDetectExpired); when it comes back both are Up again.
func TestSessionUpAndDetect(t *testing.T) {
	pr := newPair()
	pr.run(5 * time.Second)
	for i, s := range pr.s {
		if s.State() != Up {
			t.Fatalf("session %d: %s after 5s, changes %v", i, s.State(), pr.changes[i])
		}
		if s.polling {
			t.Errorf("session %d still polls: no Final came back", i)
		}
		if s.txInterval() != DefaultInterval || s.DetectTime() != 3*DefaultInterval {
			t.Errorf("session %d: interval %v, detect %v", i, s.txInterval(), s.DetectTime())
		}
	}
	pr.cut[1] = true
	pr.run(pr.now + 2*time.Second)
	if pr.s[0].State() != Down || pr.s[0].Diag() != DiagDetectExpired {
		t.Fatalf("session 0 after its peer went silent: %s diag %d", pr.s[0].State(), pr.s[0].Diag())
	}
	pr.cut[1] = false
	pr.run(pr.now + 6*time.Second)
	if pr.s[0].State() != Up || pr.s[1].State() != Up {
		t.Errorf("after the peer came back: %s, %s", pr.s[0].State(), pr.s[1].State())
	}
}

// TestDetectTime: the session goes down exactly when the detection time
// after the last packet has passed, not before.
func TestDetectTime(t *testing.T) {
	s := NewSession(Config{}, 5, func() float64 { return 0 })
	up := Packet{State: Init, DetectMult: 3, MyDisc: 6, YourDisc: 5, DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond}
	if !s.Receive(time.Second, up) || s.State() != Up {
		t.Fatalf("state %s after Init from a Down session's peer", s.State())
	}
	if d := s.DetectTime(); d != 900*time.Millisecond {
		t.Fatalf("detect time %v, want 3 × max(300ms ours, 100ms theirs)", d)
	}
	if _, changed := s.Tick(time.Second + 899*time.Millisecond); changed || s.State() != Up {
		t.Fatalf("down before the detection time: %s", s.State())
	}
	if _, changed := s.Tick(time.Second + 900*time.Millisecond); !changed || s.State() != Down {
		t.Fatalf("not down at the detection time: %s", s.State())
	}
	// The peer saying AdminDown takes an Up session down too.
	s.Receive(3*time.Second, Packet{State: Down, DetectMult: 3, MyDisc: 6})
	s.Receive(3*time.Second, Packet{State: Init, DetectMult: 3, MyDisc: 6, YourDisc: 5})
	if s.State() != Up {
		t.Fatalf("not up again: %s", s.State())
	}
	s.Receive(4*time.Second, Packet{State: AdminDown, DetectMult: 3, MyDisc: 6, YourDisc: 5})
	if s.State() != Down || s.Diag() != DiagNeighborDown {
		t.Errorf("after AdminDown: %s diag %d", s.State(), s.Diag())
	}
}

// TestRunUDP: two sessions over real UDP sockets on the loopback come
// Up, and one whose peer stops goes Down.
func TestRunUDP(t *testing.T) {
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	port := 40000 + rand.IntN(9000)
	var mu sync.Mutex
	states := map[string]State{}
	watch := func(name string) func(State, Diag) {
		return func(s State, _ Diag) { mu.Lock(); states[name] = s; mu.Unlock() }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxB, stopB := context.WithCancel(ctx)
	cfg := Config{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond}
	errs := make(chan error, 2)
	run := func(ctx context.Context, p Peer, name string) {
		if err := Run(ctx, p, watch(name)); err != nil {
			errs <- err
		}
	}
	go run(ctx, Peer{Local: a, Remote: b, Port: port, Config: cfg}, "a")
	go run(ctxB, Peer{Local: b, Remote: a, Port: port, Config: cfg}, "b")
	wait := func(want map[string]State) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := true
			for k, v := range want {
				ok = ok && states[k] == v
			}
			mu.Unlock()
			if ok {
				return
			}
			select {
			case err := <-errs:
				t.Fatalf("run: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("states %v, want %v", states, want)
	}
	wait(map[string]State{"a": Up, "b": Up})
	stopB()
	wait(map[string]State{"a": Down})
}
