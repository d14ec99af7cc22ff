package scenarios_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

// mute is the sim runtime with instances that never announce themselves:
// netbed before instances announced on attach.
type mute struct{ *simrt.Runtime }

func (mute) Announce(context.Context, string, bool) error { return nil }

// A drifted instance is reachable at once only because it announces
// itself: without the announcements, the shipped ping-pong drift fails
// its reachability checks (frames go to where its MAC was learnt) and
// its background stream reports flows that never recovered; with them,
// every flow of the drifted instance recovers after each move, in both
// directions, for gen 1 (VM migration) and gen 2 (pod drift).
func TestDriftNeedsAnnouncements(t *testing.T) {
	s, err := scenarios.Load("library/drift-ping-pong.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []scenarios.Generation{scenarios.GenVLAN, scenarios.GenEVPN} {
		t.Run(string(gen), func(t *testing.T) {
			b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: mute{simrt.New(s.Seed)}, StoreDir: t.TempDir(), ControllerLatency: simrt.ControllerLatency})
			run, err := scenarios.Run(context.Background(), s, gen, b, scenarios.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, c := range run.Checks {
				if !c.Passed {
					failed = append(failed, c.What+": "+c.Detail)
				}
			}
			all := strings.Join(failed, "\n")
			if !strings.Contains(all, "all reachable") || !strings.Contains(all, "drift outages recovered") || !strings.Contains(all, "never recovered") {
				t.Errorf("without announcements, failed checks:\n%s\nwant all reachable and drift outages recovered to fail", all)
			}
			if len(run.Outages) == 0 {
				t.Fatal("no outages measured")
			}
			for _, o := range run.Outages {
				if o.Recovered {
					t.Errorf("without announcements %s -> %s recovered after %s drifted: %v", o.From, o.To, o.Instance, o)
				}
			}

			run, err = scenarios.Run(context.Background(), s, gen, simBackend(t, s.Seed), scenarios.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if run.Failed() {
				t.Errorf("with announcements: %+v", run.Checks)
			}
			// Two flows to the mover, two moves.
			if len(run.Outages) != 4 {
				t.Fatalf("outages %+v; want 4 (2 flows × 2 drifts)", run.Outages)
			}
			for _, o := range run.Outages {
				if !o.Recovered || o.Outage <= 0 || o.Instance != "mover-1" || o.To != "mover-1" || o.Tag != "stream" {
					t.Errorf("outage %+v", o)
				}
			}
		})
	}
}

// slowAnswers is the sim backend with every answer 20 ms late, more than
// a stream probe's share of its interval (10 ms over two flows at 100
// per second), as a fabric of userspace switches answers on a loaded
// machine: a probe whose timeout is shorter than the round trip times
// out, as a real socket does.
type slowAnswers struct {
	*scenarios.FabricBackend
	timeouts map[string]time.Duration // the stream's probes' timeouts, by tag
}

const slowRTT = 20 * time.Millisecond

func (b *slowAnswers) Probe(ctx context.Context, req scenarios.ProbeRequest) (reports.Probe, error) {
	res, err := b.FabricBackend.Probe(ctx, req)
	if err != nil || !res.Replied {
		return res, err
	}
	b.timeouts[req.Tag] = req.Timeout
	if req.Timeout < res.RTT+slowRTT {
		res.Replied = false
		return res, b.Sleep(ctx, req.Timeout)
	}
	res.RTT += slowRTT
	return res, b.Sleep(ctx, slowRTT)
}

// A background stream's probe waits for its answer StreamTimeout,
// whatever the stream's rate: with answers later than the stream's
// interval (but sooner than StreamTimeout), every flow of the shipped
// ping-pong drift still recovers after each move; and rounds slower
// than the interval still leave the run's later steps their turn (the
// drifts happen at their `at`, during the stream, not after it).
func TestStreamDeadlineIndependentOfRate(t *testing.T) {
	s, err := scenarios.Load("library/drift-ping-pong.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := &slowAnswers{FabricBackend: simBackend(t, s.Seed), timeouts: map[string]time.Duration{}}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenVLAN, b, scenarios.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.timeouts["stream"]; got != scenarios.StreamTimeout {
		t.Errorf("stream probes wait %v for their answers, want %v", got, scenarios.StreamTimeout)
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Outages) != 4 {
		t.Fatalf("outages %+v; want 4 (2 flows × 2 drifts)", run.Outages)
	}
	for _, o := range run.Outages {
		if !o.Recovered {
			t.Errorf("%s -> %s never recovered after %s drifted", o.From, o.To, o.Instance)
		}
	}
}
