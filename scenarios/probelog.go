package scenarios

import (
	"time"

	"github.com/netbed/netbed/reports"
)

// How many probes a run keeps in full (with their paths and hop times):
// every probe up to keepFirst, then the first keepPerKey of each outcome
// (reports.ProbeKey). A 4x16x16 all-pairs matrix is 65,280 probes; kept
// in full each cost ~1 KB (and the engine's trace of it ~7 KB more).
const (
	keepFirst  = 1000
	keepPerKey = 4
)

// probeLog holds every probe of a run in a compact record (~56 bytes: its
// strings interned, its path only when it is kept in full), which is all
// the expectations need: each check's first failing probe is the first of
// its outcome, so it is kept in full when its detail shows a path.
type probeLog struct {
	strs    []string
	ids     map[string]uint32
	recs    []probeRec
	full    []reports.Probe // kept in full, in order
	perKey  map[reports.ProbeKey]int
	onProbe func(reports.Probe)
}

type probeRec struct {
	oneWay, rtt                time.Duration
	tag, from, to, proto       uint32
	dropAt, reason, rule       uint32
	full                       int32 // index in full, -1: not kept
	hops, switchHops           uint16
	delivered, replied, expect uint8 // expect: 0 none, 1 delivered, 2 dropped
	v6                         uint8 // over IPv6
}

func newProbeLog(onProbe func(reports.Probe)) *probeLog {
	l := &probeLog{ids: map[string]uint32{}, perKey: map[reports.ProbeKey]int{}, onProbe: onProbe}
	l.intern("")
	return l
}

func (l *probeLog) intern(s string) uint32 {
	if id, ok := l.ids[s]; ok {
		return id
	}
	id := uint32(len(l.strs))
	l.strs = append(l.strs, s)
	l.ids[s] = id
	return id
}

// len is how many probes were sent.
func (l *probeLog) len() int { return len(l.recs) }

// add logs p, passing it to onProbe first.
func (l *probeLog) add(p reports.Probe) {
	if l.onProbe != nil {
		l.onProbe(p)
	}
	r := probeRec{oneWay: p.OneWay, rtt: p.RTT, tag: l.intern(p.Tag), from: l.intern(p.From), to: l.intern(p.To),
		proto: l.intern(p.Proto), dropAt: l.intern(p.DropAt), reason: l.intern(p.Reason), rule: l.intern(p.Rule),
		full: -1, hops: uint16(min(p.Hops, 0xffff)), switchHops: uint16(min(p.SwitchHops, 0xffff)),
		delivered: b2u(p.Delivered), replied: b2u(p.Replied), expect: expectCode(p.Expect), v6: b2u(p.Family == FamilyIPv6)}
	k := reports.KeyOf(p)
	if len(l.recs) < keepFirst || l.perKey[k] < keepPerKey {
		l.perKey[k]++
		r.full = int32(len(l.full))
		l.full = append(l.full, p)
	}
	l.recs = append(l.recs, r)
}

// probe is the i-th probe sent, with its path when it was kept in full.
func (l *probeLog) probe(i int) reports.Probe {
	r := &l.recs[i]
	p := reports.Probe{Tag: l.strs[r.tag], From: l.strs[r.from], To: l.strs[r.to], Proto: l.strs[r.proto],
		Delivered: r.delivered != 0, Replied: r.replied != 0, Hops: int(r.hops), SwitchHops: int(r.switchHops),
		OneWay: r.oneWay, RTT: r.rtt, DropAt: l.strs[r.dropAt], Reason: l.strs[r.reason], Rule: l.strs[r.rule],
		Expect: expectNames[r.expect]}
	if r.v6 != 0 {
		p.Family = FamilyIPv6
	}
	if r.full >= 0 {
		f := &l.full[r.full]
		p.Path, p.HopAt = f.Path, f.HopAt
	}
	return p
}

// tagged lists the indices of the probes of tag.
func (l *probeLog) tagged(tag string) []int {
	id, ok := l.ids[tag]
	if !ok {
		return nil
	}
	var out []int
	for i := range l.recs {
		if l.recs[i].tag == id {
			out = append(out, i)
		}
	}
	return out
}

// setExpect records what an expectation wants of probe i.
func (l *probeLog) setExpect(i int, want string) {
	r := &l.recs[i]
	r.expect = expectCode(want)
	if r.full >= 0 {
		l.full[r.full].Expect = want
	}
}

// finish gives run the probes kept in full and the figures of them all.
func (l *probeLog) finish(run *reports.Run) {
	var t reports.ProbeTally
	for i := range l.recs {
		t.Add(l.probe(i))
	}
	run.Probes = l.full
	run.ProbeStats = t.Stats()
}

var expectNames = [...]string{"", reports.ExpectDelivered, reports.ExpectDropped}

func expectCode(s string) uint8 {
	switch s {
	case reports.ExpectDelivered:
		return 1
	case reports.ExpectDropped:
		return 2
	}
	return 0
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
