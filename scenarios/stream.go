package scenarios

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/netbed/netbed/reports"
)

// A background traffic step (`traffic: {..., background: true}`) starts
// a stream: from then on, while later steps run, every pair gets a probe
// every 1/rate seconds, as an operator's `ping -i` runs beside a
// migration, until Count probes per pair have been due. The runner's
// steps are sequential, so the stream is served whenever the runner
// waits (an `at`, a foreground traffic step's gaps, the end of the run):
// of the rounds that fall due while a step is busy (a drift being carried
// out), the last is sent when the step ends and the others count as lost,
// as a real stream's would have been. Each probe waits for its
// answer at most StreamTimeout; a later answer counts as lost. Stream probes are not in Run.Probes (their number depends on
// timing, which differs between backends): what they measure is the
// outage each drift caused to each flow of the drifted instance
// (Run.Outages).
type stream struct {
	tag     string
	proto   string
	port    uint16
	pairs   [][2]string
	gap     time.Duration // between a pair's probes
	timeout time.Duration // per probe
	start   time.Duration
	until   time.Duration // no probe is due from here on
	next    time.Duration // when the next round is due
	recs    []streamRec
}

// streamRec is one probe of a stream.
type streamRec struct {
	pair    int
	sent    time.Duration
	replied bool
	reply   time.Duration // when the answer came back
}

// driftEvent is a drift carried out while streams may be running.
type driftEvent struct {
	instance string
	at       time.Duration // when the move began
}

// startStream starts the background stream of traffic step t.
func (r *runner) startStream(ctx context.Context, t *Traffic, pairs [][2]string, tag string) error {
	if t.Rate <= 0 {
		return fmt.Errorf("background traffic %s needs a rate", tag)
	}
	gap := time.Duration(float64(time.Second) / t.Rate)
	now := r.b.Now()
	s := &stream{tag: tag, proto: t.Proto, port: t.Port, pairs: pairs, gap: gap,
		timeout: StreamTimeout,
		start:   now, until: now + time.Duration(t.Count)*gap, next: now}
	r.streams = append(r.streams, s)
	return r.serveDue(ctx)
}

// sleep waits d of backend time, serving the streams that fall due.
func (r *runner) sleep(ctx context.Context, d time.Duration) error {
	end := r.b.Now() + d
	for {
		s := r.nextDue(end)
		if s == nil {
			break
		}
		if w := s.next - r.b.Now(); w > 0 {
			if err := r.b.Sleep(ctx, w); err != nil {
				return err
			}
		}
		if err := r.round(ctx, s); err != nil {
			return err
		}
	}
	if w := end - r.b.Now(); w > 0 {
		return r.b.Sleep(ctx, w)
	}
	return nil
}

// serveDue sends the rounds already due when it is called, without
// waiting (not those that fall due while it sends: with rounds slower
// than the stream's interval it would never return).
func (r *runner) serveDue(ctx context.Context) error {
	now := r.b.Now()
	for {
		s := r.nextDue(now)
		if s == nil {
			return nil
		}
		if err := r.round(ctx, s); err != nil {
			return err
		}
	}
}

// nextDue returns the stream whose next round is earliest, if it is due
// by t and before the stream's end.
func (r *runner) nextDue(t time.Duration) *stream {
	var best *stream
	for _, s := range r.streams {
		if s.next < s.until && s.next <= t && (best == nil || s.next < best.next) {
			best = s
		}
	}
	return best
}

// round sends one probe per pair of s and schedules the next round.
func (r *runner) round(ctx context.Context, s *stream) error {
	// Rounds that fell due while a step was busy were not sent: a real
	// stream would have sent them and had no answer, so they count as
	// lost. This round takes the latest slot.
	for now := r.b.Now(); s.next+s.gap <= now && s.next+s.gap < s.until; s.next += s.gap {
		for i := range s.pairs {
			s.recs = append(s.recs, streamRec{pair: i, sent: s.next})
		}
		r.run.Reach = append(r.run.Reach, reports.Reach{At: s.next, Tag: s.tag, Flows: len(s.pairs)})
	}
	round := reports.Reach{At: r.b.Now(), Tag: s.tag, Flows: len(s.pairs)}
	for i, p := range s.pairs {
		sent := r.b.Now()
		rec := streamRec{pair: i, sent: sent}
		_, okFrom := r.inst[p[0]]
		_, okTo := r.inst[p[1]]
		if okFrom && okTo {
			res, err := r.b.Probe(ctx, ProbeRequest{From: p[0], To: p[1], Proto: s.proto, Port: s.port, Tag: s.tag, Timeout: s.timeout, Background: true})
			if err != nil {
				return fmt.Errorf("background traffic %s: probe %s -> %s: %w", s.tag, p[0], p[1], err)
			}
			if res.Replied && res.RTT <= s.timeout {
				rec.replied, rec.reply = true, sent+res.RTT
			}
		}
		s.recs = append(s.recs, rec)
		if rec.replied {
			round.Reached++
		}
	}
	r.run.Reach = append(r.run.Reach, round)
	s.next += s.gap
	return nil
}

// finishStreams runs the streams to their end and records the outages.
func (r *runner) finishStreams(ctx context.Context) error {
	var end time.Duration
	for _, s := range r.streams {
		end = max(end, s.until)
	}
	if w := end - r.b.Now(); len(r.streams) > 0 && w > 0 {
		if err := r.sleep(ctx, w); err != nil {
			return err
		}
	}
	r.run.Outages = outages(r.streams, r.drifts)
	return nil
}

// outages measures, for every drift during a stream and every flow of
// the stream from or to the drifted instance, the time from the last
// answer before the move began to the first answer to a probe sent after
// it (before the instance drifted again), as an operator reads it off a
// continuous ping.
func outages(streams []*stream, drifts []driftEvent) []reports.Outage {
	var out []reports.Outage
	for di, d := range drifts {
		bound := time.Duration(-1) // the instance's next drift, if any
		for _, n := range drifts[di+1:] {
			if n.instance == d.instance {
				bound = n.at
				break
			}
		}
		for _, s := range streams {
			if d.at < s.start || d.at >= s.until {
				continue
			}
			for pi, p := range s.pairs {
				if p[0] != d.instance && p[1] != d.instance {
					continue
				}
				o := reports.Outage{Tag: s.tag, Instance: d.instance, From: p[0], To: p[1], DriftAt: d.at}
				last := -1
				for i, rec := range s.recs {
					if rec.pair == pi && rec.replied && rec.reply <= d.at {
						last = i
					}
				}
				if last < 0 {
					continue // nothing answered before: no outage to measure
				}
				recovered := slices.IndexFunc(s.recs[last+1:], func(rec streamRec) bool {
					return rec.pair == pi && rec.replied && rec.sent >= d.at && (bound < 0 || rec.sent < bound)
				})
				from := s.recs[last].reply
				for _, rec := range s.recs[last+1:] {
					if rec.pair != pi || bound >= 0 && rec.sent >= bound {
						continue
					}
					if rec.replied && rec.sent >= d.at {
						break
					}
					if !rec.replied {
						o.Lost++
					}
				}
				if recovered >= 0 {
					o.Recovered = true
					o.Outage = s.recs[last+1+recovered].reply - from
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// checkOutages checks the outages of the drifts so far during the tag's
// background stream (the last one started when the expectation names no
// tag): each recovered, within e.MaxOutage when it is set.
func (r *runner) checkOutages(i int, st *Step, e *Expect) {
	tag := e.Tag
	if tag == "" && len(r.streams) > 0 {
		tag = r.streams[len(r.streams)-1].tag
	}
	what := "drift outages recovered"
	if e.MaxOutage > 0 {
		what = "drift outage ≤ " + e.MaxOutage.String()
	}
	var seen []reports.Outage
	for _, o := range outages(r.streams, r.drifts) {
		if o.Tag == tag {
			seen = append(seen, o)
		}
	}
	if len(seen) == 0 {
		r.check(i, st, what, false, "no drift happened during background traffic %q (or no probe was answered before it)", tag)
		return
	}
	for _, o := range seen {
		if !o.Recovered || e.MaxOutage > 0 && o.Outage > e.MaxOutage {
			r.check(i, st, what, false, "%s -> %s after %s drifted at %v: %s", o.From, o.To, o.Instance, o.DriftAt, o)
			return
		}
	}
	r.check(i, st, what, true, "")
}

// StreamTimeout is how long a background stream's probe waits for its
// answer, whatever the stream's rate, as `ping -W` is set apart from
// `ping -i`: an answer's round trip depends on the path and the load,
// not on how often the stream sends (a share of the interval, 5 ms at
// 100 per second over two flows, was below the round trip across gen
// 1's userspace OVS switches on a loaded machine, so answered probes
// counted as lost). A probe that waits keeps the stream's next rounds
// from going: they count as lost, as during a busy step.
const StreamTimeout = 200 * time.Millisecond
