package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Run is one scenario replayed for one generation on one backend.
type Run struct {
	Scenario string `json:"scenario"`
	// Description is the scenario's description: what it shows.
	Description string `json:"description,omitempty"`
	Generation  string `json:"generation"`
	Backend     string `json:"backend"`
	Seed        int64  `json:"seed"`
	Topology    string `json:"topology"`
	// Probes are the probes kept in full, in the order they were sent:
	// every one of a run of at most a thousand, beyond that the first
	// thousand and the first few of each outcome (ProbeKey). ProbeStats
	// counts them all.
	Probes []Probe `json:"probes"`
	// ProbeStats aggregates every probe sent; nil in reports written
	// before it existed (StatsOf derives it from Probes then).
	ProbeStats *ProbeStats    `json:"probe_stats,omitempty"`
	Checks     []Check        `json:"checks"`
	Timeline   []SpawnEvent   `json:"timeline,omitempty"`
	Drops      map[string]int `json:"drops,omitempty"`       // by reason
	Tables     []Table        `json:"table_sizes,omitempty"` // capacity: entries per node and table at the end
	Counters   map[string]int `json:"counters,omitempty"`
	// Latency says what the probes' latencies are: modelled or measured.
	Latency Latency       `json:"latency"`
	Error   string        `json:"error,omitempty"` // the run could not finish
	Elapsed time.Duration `json:"elapsed_ns"`      // wall-clock time of the run
	// Faults are the run's fail and restore steps as carried out, in order.
	Faults []Fault `json:"faults,omitempty"`
	// Outages are what drifts cost the flows of a background traffic
	// stream (one per drift and flow of the drifted instance).
	Outages []Outage `json:"outages,omitempty"`
	// Reach is every round of probes, of traffic steps and background
	// streams, in the order sent: how many flows were reached when.
	Reach []Reach `json:"reach,omitempty"`
	// TruthTables are the run's policy truth tables (expect truth_table).
	TruthTables []TruthTable `json:"truth_tables,omitempty"`
}

// Reach is one round of probes (a probe per flow of a traffic step or
// a background stream): when it was sent and how many of its flows it
// reached, for plotting reachability against time around faults.
type Reach struct {
	At    time.Duration `json:"at_ns"` // when the round began, in the run's time
	Tag   string        `json:"tag"`
	Flows int           `json:"flows"`
	// Reached counts the flows whose probe was delivered (a traffic
	// step) or answered in time (a background stream).
	Reached int `json:"reached"`
}

// Fault is one fail or restore step as the backend carried it out.
type Fault struct {
	At      time.Duration `json:"at_ns"`   // backend time of the step
	Target  string        `json:"target"`  // "node leaf1", "link leaf1:eth1", "agent host1", "controller"
	Restore bool          `json:"restore"` // a restore step; false: a fail
	// PortsDown are the controller ports taken down by a failed host (its
	// agent is gone, so their underlay is DOWN), in name order.
	PortsDown []string `json:"ports_down,omitempty"`
	// RoutesWithdrawn is how many routes the failed node's peers withdrew
	// when its sessions dropped (on restore: advertised again).
	RoutesWithdrawn int `json:"routes_withdrawn,omitempty"`
	// APIUnavailable is, on a controller restore, how long the controller's
	// API was unavailable as its clients saw it: from the first call that
	// failed to the first that succeeded again.
	APIUnavailable time.Duration `json:"api_unavailable_ns,omitempty"`
	// Detail says how the fault was carried out ("SIGKILL to pid 4242").
	Detail string `json:"detail,omitempty"`
	// Convergence is, for a leaf failed with control_plane bgp, the time
	// from the fault until every other leaf's speaker had withdrawn the
	// failed leaf's routes; for a leaf restored, until every other leaf's
	// speaker held every route the leaf's own speaker originated; for a
	// leaf that originated nothing when it failed (a border leaf without
	// instances), until no running speaker had a session with it
	// established, and restored, until its own sessions were. For a
	// spine (Spine) failed, until no running leaf's speaker had a session
	// with it established (its paths via the spine gone, the other
	// spines' chosen); restored, until every running leaf's session to it
	// was established again and it held every route they originate.
	Convergence time.Duration `json:"convergence_ns,omitempty"`
	// Spine says that the fault's node is a spine (what Convergence
	// measured).
	Spine bool `json:"spine,omitempty"`
	// CNCHandover is, for a controller replica killed while it led the
	// CNC's election, the time from its SIGKILL until another replica led
	// and the CNC, resynced through it, had caught up.
	CNCHandover time.Duration `json:"cnc_handover_ns,omitempty"`
}

func (f Fault) String() string {
	verb := "fail"
	if f.Restore {
		verb = "restore"
	}
	s := fmt.Sprintf("%s %s at %s", verb, f.Target, hopDur(f.At))
	if f.Detail != "" {
		s += " (" + f.Detail + ")"
	}
	if f.RoutesWithdrawn > 0 {
		if f.Restore {
			s += fmt.Sprintf(": %d routes advertised again", f.RoutesWithdrawn)
		} else {
			s += fmt.Sprintf(": %d routes withdrawn", f.RoutesWithdrawn)
		}
	}
	switch {
	case f.Convergence > 0 && f.Spine && f.Restore:
		s += fmt.Sprintf(": every leaf's session to it was back and it held their routes in %s", hopDur(f.Convergence))
	case f.Convergence > 0 && f.Spine:
		s += fmt.Sprintf(": every leaf's speaker dropped its session to it in %s", hopDur(f.Convergence))
	case f.Convergence > 0:
		verb := "withdrew"
		if f.Restore {
			verb = "learnt"
		}
		s += fmt.Sprintf(": every other leaf's speaker %s its routes in %s", verb, hopDur(f.Convergence))
	}
	if len(f.PortsDown) > 0 {
		s += fmt.Sprintf(": ports down: %s", strings.Join(f.PortsDown, ", "))
	}
	if f.APIUnavailable > 0 {
		s += fmt.Sprintf(": API unavailable for %s", hopDur(f.APIUnavailable))
	}
	if f.CNCHandover > 0 {
		s += fmt.Sprintf(": CNC handed over in %s", hopDur(f.CNCHandover))
	}
	return s
}

// What a latency is (Latency.Kind).
const (
	// LatencyModelled: computed by the simulator from per-device costs
	// (a calibration table) and link delays, in virtual time.
	LatencyModelled = "modelled"
	// LatencyMeasured: timed on real packets by the machine's clock.
	LatencyMeasured = "measured"
)

// Latency says what a run's latencies are and where they come from.
type Latency struct {
	Kind string `json:"kind"` // LatencyModelled or LatencyMeasured
	// Calibration and Machine name the table a modelled latency is
	// costed with: the date it was measured and the machine.
	Calibration string `json:"calibration,omitempty"`
	Machine     string `json:"machine,omitempty"`
	// Method says in a phrase how the times were obtained.
	Method string `json:"method,omitempty"`
}

// String says what the latencies are in one line, for reports.
func (l Latency) String() string {
	switch l.Kind {
	case "":
		return "latency source not recorded"
	case LatencyModelled:
		s := "modelled (sim"
		if l.Calibration != "" {
			s += ", device costs calibrated " + l.Calibration
			if l.Machine != "" {
				s += " on " + l.Machine
			}
		}
		s += ")"
		if l.Method != "" {
			s += ": " + l.Method
		}
		return s
	}
	s := l.Kind
	if l.Method != "" {
		s += ": " + l.Method
	}
	return s
}

// Table is how many entries one table of one node held at the end of a
// run (a leaf's MAC table, a node's BPF policy map, the EVPN routes).
type Table struct {
	Node    string `json:"node"`
	Name    string `json:"table"`
	Entries int    `json:"entries"`
}

// TableStat is one kind of table (its name) in one run: its largest
// instance, on which node, and the sum over the nodes.
type TableStat struct {
	Name, Node     string
	Largest, Total int
}

// TableStats summarises run's tables per kind, by name, leaving out the
// kinds that stayed empty on every node.
func TableStats(run *Run) []TableStat {
	byName := map[string]*TableStat{}
	var names []string
	for _, t := range run.Tables {
		x, ok := byName[t.Name]
		if !ok {
			x = &TableStat{Name: t.Name, Node: t.Node, Largest: -1}
			byName[t.Name] = x
			names = append(names, t.Name)
		}
		x.Total += t.Entries
		if t.Entries > x.Largest {
			x.Largest, x.Node = t.Entries, t.Node
		}
	}
	sort.Strings(names)
	var out []TableStat
	for _, n := range names {
		if x := byName[n]; x.Largest > 0 {
			out = append(out, *x)
		}
	}
	return out
}

// Probe is one probe's outcome.
type Probe struct {
	Tag   string `json:"tag,omitempty"`
	From  string `json:"from"`
	To    string `json:"to"`
	Proto string `json:"proto"`
	// Family is "ipv6" for a probe over IPv6; empty for IPv4.
	Family     string   `json:"family,omitempty"`
	Delivered  bool     `json:"delivered"`
	Replied    bool     `json:"replied"`
	Hops       int      `json:"hops"`
	SwitchHops int      `json:"switch_hops"`
	Path       []string `json:"path,omitempty"`
	// HopAt is when the probe reached each element of Path, since it
	// left the first: where a path's latency accrues.
	HopAt  []time.Duration `json:"hop_at_ns,omitempty"`
	OneWay time.Duration   `json:"one_way_ns"`
	RTT    time.Duration   `json:"rtt_ns"`
	DropAt string          `json:"drop_at,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Rule   string          `json:"rule,omitempty"`
	// Expect is what the scenario's expectations want of the probe:
	// ExpectDelivered, ExpectDropped, or empty when none speaks of it.
	Expect string `json:"expect,omitempty"`
}

// What an expectation wants of a probe (Probe.Expect).
const (
	ExpectDelivered = "delivered"
	ExpectDropped   = "dropped"
)

// Verdict is "forwarded" when the probe reached its destination, else "dropped".
func (p Probe) Verdict() string {
	if p.Delivered {
		return "forwarded"
	}
	return "dropped"
}

// Outage is what one drift cost one flow of a continuous probe stream:
// the time from the last answer before the move began to the first
// answer after it, as an operator reads it off a running ping.
type Outage struct {
	Tag      string        `json:"tag"`      // the stream (its traffic step's tag)
	Instance string        `json:"instance"` // the instance that drifted
	From     string        `json:"from"`
	To       string        `json:"to"`
	DriftAt  time.Duration `json:"drift_at_ns"` // when the move began, in the run's time
	// Outage is meaningful when Recovered: no probe of the flow was
	// answered again before the stream ended (or the instance drifted
	// again) otherwise.
	Outage    time.Duration `json:"outage_ns"`
	Recovered bool          `json:"recovered"`
	Lost      int           `json:"lost"` // probes unanswered in between
}

// String is the outage as a report shows it: "12.3ms (4 lost)" or
// "never recovered (10 lost)".
func (o Outage) String() string {
	if !o.Recovered {
		return fmt.Sprintf("never recovered (%d lost)", o.Lost)
	}
	return fmt.Sprintf("%v (%d lost)", o.Outage.Round(10*time.Microsecond), o.Lost)
}

// Check is one expectation and whether it held.
type Check struct {
	Step   int    `json:"step"`
	Line   int    `json:"line"`
	What   string `json:"what"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// SpawnEvent is one step of an instance's spawn flow (seed Fig. 10) or a
// port state transition.
type SpawnEvent struct {
	Instance string        `json:"instance"`
	Step     string        `json:"step"`
	At       time.Duration `json:"at_ns"`
}

// Failed reports whether any check failed or the run errored.
func (r *Run) Failed() bool {
	if r.Error != "" {
		return true
	}
	for _, c := range r.Checks {
		if !c.Passed {
			return true
		}
	}
	return false
}

// Summary aggregates a run's probes.
type Summary struct {
	Probes, Delivered      int
	HopsMin, HopsMax       int
	SwitchHopsMax          int
	RTTp50, RTTp99, RTTmax time.Duration
	ChecksPassed, Checks   int
	SpawnP50, SpawnMax     time.Duration // from first to last event of an instance
}

// Summarize computes a run's summary; percentiles use gonum/stat's
// empirical quantiles.
func Summarize(r *Run) Summary {
	ps := StatsOf(r)
	s := Summary{Probes: ps.Sent, Delivered: ps.Delivered, HopsMin: ps.HopsMin, HopsMax: ps.HopsMax,
		SwitchHopsMax: ps.SwitchHopsMax, RTTp50: ps.RTTp50, RTTp99: ps.RTTp99, RTTmax: ps.RTTmax}
	for _, c := range r.Checks {
		s.Checks++
		if c.Passed {
			s.ChecksPassed++
		}
	}
	first, last := map[string]time.Duration{}, map[string]time.Duration{}
	for _, e := range r.Timeline {
		if t, ok := first[e.Instance]; !ok || e.At < t {
			first[e.Instance] = e.At
		}
		last[e.Instance] = max(last[e.Instance], e.At)
	}
	var spawns []float64
	for k, f := range first {
		spawns = append(spawns, float64(last[k]-f))
	}
	s.SpawnP50, _, s.SpawnMax = quantiles(spawns)
	return s
}

func quantiles(xs []float64) (p50, p99, mx time.Duration) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(xs)
	q := func(p float64) time.Duration { return time.Duration(stat.Quantile(p, stat.Empirical, xs, nil)) }
	return q(0.5), q(0.99), time.Duration(xs[len(xs)-1])
}
