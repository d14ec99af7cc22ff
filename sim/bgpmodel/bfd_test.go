package bgpmodel_test

import (
	"testing"
	"time"

	"github.com/netbed/netbed/datapath/bfd"
	"github.com/netbed/netbed/sim/bgpmodel"
)

// bfdDetect is a BFD session's detection time with package bfd's
// defaults on both ends: the multiplier times the interval.
const bfdDetect = bfd.DefaultDetectMult * bfd.DefaultInterval

// runTo runs the fixture's engine to exactly t.
func (f *fixture) runTo(t *testing.T, at time.Duration) {
	t.Helper()
	f.run(t, at-f.e.Now())
}

// TestSilentLeafDetection: a leaf failed silently (links up, nothing
// through) is withdrawn from the other leaves when its spines notice:
// with BFD when each spine's BFD session has had no packet for the
// detection time (3 × 300 ms after the last one arrived, which was
// less than an interval before the failure: the phase of the leaf's
// packets), without BFD when the hold timer expires (9 s after the last
// keepalive). The exact time: the later spine's detection, then that
// spine's withdrawal handled at leaf2 (update, or service_withdraw after
// the first spine's), then the watch. A session BFD took down says so.
func TestSilentLeafDetection(t *testing.T) {
	for _, c := range []struct {
		name   string
		bfd    *bfd.Config
		detect time.Duration
		why    string
	}{
		{"bfd", &bfd.Config{}, bfdDetect, "BFD down"},
		{"hold", nil, bgpmodel.DefaultHold, "hold timer expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 2, 3, params, bgpmodel.Timers{BFD: c.bfd})
			r := f.type3("leaf1")
			if err := f.leaf("leaf1").Advertise(r); err != nil {
				t.Fatal(err)
			}
			f.run(t, 5*time.Second+123*time.Millisecond) // BFD up, at its fast pace
			for _, n := range []string{"spine1", "spine2"} {
				want := ""
				if c.bfd != nil {
					want = "up"
				}
				if s := sessions(t, f.m, n)["leaf1"]; !s.Established || s.BFD != want {
					t.Fatalf("%s's session to leaf1 before the failure: %+v, want established, BFD %q", n, s, want)
				}
			}
			start := f.e.Now()
			f.m.SetSilent("leaf1", true)
			var noticed [2]time.Duration
			for i, n := range []string{"spine1", "spine2"} {
				kaRx, bfdRx := bgpmodel.LastRx(f.m, n, "leaf1")
				last, pace := kaRx, bgpmodel.DefaultHold/3
				if c.bfd != nil {
					last, pace = bfdRx, bfd.DefaultInterval
				}
				if phase := start - last; phase < 0 || phase >= pace {
					t.Fatalf("%s last heard leaf1 %v before the failure, want within one interval (%v)", n, phase, pace)
				}
				noticed[i] = last + c.detect
			}
			first, last := min(noticed[0], noticed[1]), max(noticed[0], noticed[1])
			want := max(last+params.Update, first+params.Update+params.ServiceWithdraw) + params.Watch
			f.runTo(t, want-1)
			if !inTable(f.leaf("leaf2"), r) {
				t.Fatalf("leaf2 lost the silent leaf's route before %v after the failure", want-start)
			}
			f.runTo(t, want)
			if inTable(f.leaf("leaf2"), r) {
				t.Fatalf("leaf2 still holds the silent leaf's route %v after the failure, want it gone then (the later spine noticed at %v)", want-start, last-start)
			}
			t.Logf("withdrawn %v after the failure (%s)", want-start, c.name)
			for _, n := range []string{"spine1", "spine2"} {
				if s := sessions(t, f.m, n)["leaf1"]; s.Established || s.Down != c.why {
					t.Errorf("%s's session to leaf1: %+v, want down, %q", n, s, c.why)
				}
			}
		})
	}
}

// TestBFDFlap: a leaf that hangs for 1.5 s, shorter than the hold time,
// goes unnoticed without BFD; with BFD its sessions go down at the
// detection time, its routes with them, and when it answers again its
// own BFD sessions time out (their timers ran late) and take its side
// down, BFD comes Up again, and the sessions (and routes) come back after
// the establishment time.
func TestBFDFlap(t *testing.T) {
	for _, withBFD := range []bool{false, true} {
		tm := bgpmodel.Timers{}
		if withBFD {
			tm.BFD = &bfd.Config{}
		}
		f := newFixture(t, 1, 2, params, tm)
		r := f.type3("leaf1")
		if err := f.leaf("leaf1").Advertise(r); err != nil {
			t.Fatal(err)
		}
		f.run(t, 5*time.Second)
		f.m.SetSilent("leaf1", true)
		f.run(t, 1500*time.Millisecond)
		s := sessions(t, f.m, "spine1")["leaf1"]
		if !withBFD {
			if !s.Established || !inTable(f.leaf("leaf2"), r) {
				t.Errorf("without BFD, 1.5 s of silence: spine1's session %+v, leaf2 holds the route %v; want it unnoticed", s, inTable(f.leaf("leaf2"), r))
			}
			continue
		}
		if s.Established || s.Down != "BFD down" || s.BFD != "down" || inTable(f.leaf("leaf2"), r) {
			t.Fatalf("with BFD, 1.5 s of silence: spine1's session %+v, leaf2 holds the route %v; want down by BFD, the route gone", s, inTable(f.leaf("leaf2"), r))
		}
		start := f.e.Now()
		f.m.SetSilent("leaf1", false)
		if s := sessions(t, f.m, "leaf1")["spine1"]; s.Established || s.Down != "BFD down" {
			t.Errorf("leaf1's own session when it answers again: %+v, want taken down by its BFD", s)
		}
		f.run(t, 10*time.Millisecond)
		for _, x := range [][2]string{{"spine1", "leaf1"}, {"leaf1", "spine1"}} {
			if s := sessions(t, f.m, x[0])[x[1]]; s.Established || s.BFD != "up" {
				t.Errorf("%s's session to %s 10 ms after leaf1 answers: %+v, want BFD up, BGP not yet established", x[0], x[1], s)
			}
		}
		at := f.runUntil(t, 3*time.Second, "leaf2 has leaf1's route again", func() bool { return inTable(f.leaf("leaf2"), r) })
		if d := at - start; d < params.EstablishMin || d > params.EstablishMax+10*time.Millisecond {
			t.Errorf("leaf1's route was back after %v, want within the establishment range %v–%v (and the hops)", d, params.EstablishMin, params.EstablishMax)
		}
	}
}

// TestBFDRestore: with BFD, a leaf failed silently and rebooted (as the
// runtimes restore it: power off, silence off, power on) is back within
// the establishment time; a leaf that loses power is noticed by carrier
// loss, not BFD, as without it.
func TestBFDRestore(t *testing.T) {
	f := newFixture(t, 2, 2, params, bgpmodel.Timers{BFD: &bfd.Config{}})
	r := f.type3("leaf1")
	if err := f.leaf("leaf1").Advertise(r); err != nil {
		t.Fatal(err)
	}
	f.run(t, 5*time.Second)
	f.m.SetSilent("leaf1", true)
	f.run(t, 2*time.Second)
	if inTable(f.leaf("leaf2"), r) {
		t.Fatal("leaf2 still holds the silent leaf's route 2 s after the failure")
	}
	start := f.e.Now()
	f.m.SetNodeState("leaf1", false)
	f.m.SetSilent("leaf1", false)
	f.m.SetNodeState("leaf1", true)
	at := f.runUntil(t, 3*time.Second, "leaf2 has leaf1's route again", func() bool { return inTable(f.leaf("leaf2"), r) })
	if d := at - start; d < params.EstablishMin || d > params.EstablishMax+10*time.Millisecond {
		t.Errorf("leaf1's route was back after %v, want within the establishment range %v–%v (and the hops)", d, params.EstablishMin, params.EstablishMax)
	}
	f.run(t, time.Second)
	start = f.e.Now()
	f.m.SetNodeState("leaf1", false)
	at = f.runUntil(t, time.Second, "leaf2 loses leaf1's route", func() bool { return !inTable(f.leaf("leaf2"), r) })
	if want := params.CarrierLoss + params.Update + params.ServiceWithdraw + params.Watch; at-start != want {
		t.Errorf("power loss with BFD: leaf2 lost leaf1's route after %v, want carrier loss + update + service_withdraw + watch = %v", at-start, want)
	}
	f.run(t, 2*time.Second)
	if s := sessions(t, f.m, "spine1")["leaf1"]; s.Down != "carrier lost" || s.BFD != "down" {
		t.Errorf("spine1's session to the powered-off leaf1: %+v, want down by carrier loss, BFD down", s)
	}
}
