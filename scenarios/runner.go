package scenarios

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netbed/netbed/datapath"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios/policy"
	"github.com/netbed/netbed/topologies"
)

// Options tune a run.
type Options struct {
	// Progress receives one-line progress messages; nil discards them.
	Progress func(string)
	// ProbeTimeout bounds each probe (default 2s of backend time).
	ProbeTimeout time.Duration
	// Hold, if set, is called once the steps are done and the run is
	// measured, before the backend closes: the lab is still up with its
	// live instances (on netns the nodes keep forwarding), for a person to
	// look around. The run closes when it returns.
	Hold func(ctx context.Context, b Backend, live []Instance) error
	// OnProbe, if set, receives every probe of a traffic step as it is
	// answered, in full (path and hop times), before any expectation
	// speaks of it (its Expect is empty). The run keeps only a sample of
	// its probes in full (reports.Run.Probes); this sees them all.
	OnProbe func(reports.Probe)
}

// Run replays s for gen on b and returns what it measured. The backend is
// started and closed here. An error means the run could not be carried
// out (bad topology, backend failure); failed expectations are recorded in
// the returned run, not returned as an error.
func Run(ctx context.Context, s *Scenario, gen Generation, b Backend, opts Options) (run *reports.Run, err error) {
	start := time.Now()
	run = &reports.Run{Scenario: s.Name, Description: s.Description, Generation: string(gen), Backend: b.Name(), Seed: s.Seed}
	defer func() { run.Elapsed = time.Since(start) }()
	spec := s.TopologyFor(gen)
	topo, err := spec.Build(s.File)
	if err != nil {
		return run, err
	}
	run.Topology = topo.String()
	r := &runner{s: s, gen: gen, b: b, topo: topo, run: run, opts: opts, log: newProbeLog(opts.OnProbe),
		hosts: hostNames(topo), inst: map[string]Instance{}, firstIP: map[string]Instance{}}
	defer r.log.finish(run)
	if r.opts.ProbeTimeout == 0 {
		r.opts.ProbeTimeout = 2 * time.Second
	}
	if err := s.CapacityError(gen, topo); err != nil {
		return run, err
	}
	if err := s.FRRError(gen, topo, b.Name()); err != nil {
		return run, err
	}
	if err := s.BFDError(gen, b.Name()); err != nil {
		return run, err
	}
	gopts := s.OptionsFor(gen)
	env := Env{Generation: gen, Topology: topo, Seed: s.Seed, Networks: SegmentsFor(s.Networks, gopts), Sites: s.Sites, Options: gopts, ControlPlane: s.ControlPlane, BGP: s.BGP, Controller: s.Controller, Progress: opts.Progress}
	for _, st := range s.Sites {
		if env.SiteOptions == nil {
			env.SiteOptions = map[string]GenOptions{}
		}
		env.SiteOptions[st.Name] = s.OptionsFor(st.Generation)
	}
	if err := b.Start(ctx, env); err != nil {
		_ = b.Close()
		return run, fmt.Errorf("start %s backend for %s: %w", b.Name(), gen, err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s backend: %w", b.Name(), cerr)
		}
	}()
	for i := range s.Steps {
		st := &s.Steps[i]
		if len(st.Gens) > 0 && !slices.Contains(st.Gens, gen) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return run, err
		}
		if wait := st.At - b.Now(); wait > 0 {
			if err := r.sleep(ctx, wait); err != nil {
				return run, err
			}
		}
		r.stepMsg = fmt.Sprintf("step %d/%d %s", i+1, len(s.Steps), st.Kind())
		r.progress("%s", r.stepMsg)
		if err := r.step(ctx, i, st); err != nil {
			return run, fmt.Errorf("%s:%d: step %d (%s): %w", s.File, st.Line, i, st.Kind(), err)
		}
		// Background streams whose rounds fell due while the step was
		// busy send the latest as it ends, even when the next step does
		// not wait.
		if err := r.serveDue(ctx); err != nil {
			return run, fmt.Errorf("%s:%d: step %d (%s): %w", s.File, st.Line, i, st.Kind(), err)
		}
	}
	if err := r.finishStreams(ctx); err != nil {
		return run, fmt.Errorf("background traffic: %w", err)
	}
	if err := b.Finish(run); err != nil {
		return run, fmt.Errorf("finish: %w", err)
	}
	if len(r.failedSpawns) > 0 {
		run.Timeline = append(run.Timeline, r.failedSpawns...)
		sort.SliceStable(run.Timeline, func(i, j int) bool { return run.Timeline[i].At < run.Timeline[j].At })
		if run.Counters == nil {
			run.Counters = map[string]int{}
		}
		run.Counters["failed_spawns"] = len(r.failedSpawns)
	}
	r.conserve()
	if opts.Hold != nil {
		live := make([]Instance, 0, len(r.order))
		for _, n := range r.order {
			live = append(live, r.inst[n])
		}
		if err := opts.Hold(ctx, b, live); err != nil {
			return run, fmt.Errorf("hold: %w", err)
		}
	}
	return run, nil
}

// Segments gives every network its VLAN (100, 101, ...), VNI (10100, ...)
// and gateway (the subnet's first address): SegmentsFor the defaults.
func Segments(nets []Network) []NetworkSegment { return SegmentsFor(nets, DefaultGenOptions) }

type runner struct {
	s       *Scenario
	gen     Generation
	b       Backend
	topo    *topologies.Topology
	run     *reports.Run
	opts    Options
	log     *probeLog // every probe sent (the run gets a sample and figures)
	hosts   []string
	next    int                 // spread cursor over hosts
	inst    map[string]Instance // live instances
	order   []string            // live instances in spawn order
	firstIP map[string]Instance // as first spawned: its addresses, for ip_unchanged
	lastTag string
	churned int
	stepMsg string // "step i/n kind", the progress line of the current step

	streams []*stream    // background traffic (stream.go)
	drifts  []driftEvent // drifts carried out, for the streams' outages
	// failedSpawns are the instances a spawn with allow_failures could
	// not create, with the error.
	failedSpawns []reports.SpawnEvent

	// Policy files (policyfile.go): what spawns said of pods, and the
	// policies applied.
	meta     map[string]podMeta
	policies *policy.Set
}

func hostNames(t *topologies.Topology) []string {
	var out []string
	for _, n := range t.NodesByRole(topologies.RoleHost) {
		out = append(out, n.Name)
	}
	return out
}

func (r *runner) progress(format string, a ...any) {
	if r.opts.Progress != nil {
		r.opts.Progress(fmt.Sprintf(format, a...))
	}
}

func (r *runner) step(ctx context.Context, i int, st *Step) error {
	switch {
	case st.Spawn != nil:
		if err := r.spawn(ctx, st.Spawn); err != nil {
			return err
		}
		return r.syncPolicies(ctx)
	case st.Churn != nil:
		if err := r.churn(ctx, st.Churn); err != nil {
			return err
		}
		return r.syncPolicies(ctx)
	case st.Drift != nil:
		if err := r.drift(ctx, st.Drift); err != nil {
			return err
		}
		return r.syncPolicies(ctx)
	case st.Fail != nil:
		t, err := r.target(*st.Fail)
		if err != nil {
			return err
		}
		return r.b.Fail(ctx, t)
	case st.Restore != nil:
		t, err := r.target(*st.Restore)
		if err != nil {
			return err
		}
		return r.b.Restore(ctx, t)
	case st.Traffic != nil:
		return r.traffic(ctx, st.Traffic)
	case st.Policy != nil && st.Policy.Set != nil:
		return r.policyFile(ctx, st.Policy)
	case st.Policy != nil:
		return r.b.Policy(ctx, *st.Policy)
	case st.Expect != nil && st.Expect.TruthTable:
		if err := r.truthTable(ctx, i, st); err != nil {
			return err
		}
		r.expect(ctx, i, st)
		return nil
	case st.Expect != nil:
		r.expect(ctx, i, st)
		return nil
	case st.FloatingIP != nil:
		return r.floatingIP(ctx, st.FloatingIP)
	case st.SecurityGroup != nil:
		sg, ok := r.b.(SecurityGroups)
		if !ok {
			return fmt.Errorf("security_group: the %s backend has no security groups", r.b.Name())
		}
		return sg.ChangeSecurityGroup(ctx, *st.SecurityGroup)
	}
	return errors.New("empty step")
}

func (r *runner) spawn(ctx context.Context, sp *Spawn) error {
	hosts := sp.Hosts
	if len(hosts) == 0 {
		hosts = r.hosts
	}
	for _, h := range hosts {
		// A network outside the VPC (vpc) runs clients named explicitly.
		if n := r.topo.Node(h); n == nil || n.Role != topologies.RoleHost && (n.Role != topologies.RoleExternal || len(sp.Hosts) == 0) {
			return fmt.Errorf("spawn %s: %q is not a host of topology %s", sp.Name, h, r.topo.Name)
		}
	}
	if len(hosts) == 0 {
		return fmt.Errorf("spawn %s: topology %s has no hosts", sp.Name, r.topo.Name)
	}
	for k := 1; k <= sp.Count; k++ {
		name := fmt.Sprintf("%s-%d", sp.Name, k)
		if _, dup := r.inst[name]; dup {
			return fmt.Errorf("spawn %s: instance %s exists already", sp.Name, name)
		}
		var host string
		if sp.Place == PlacePacked {
			host = hosts[0]
		} else if len(sp.Hosts) > 0 {
			host = hosts[(k-1)%len(hosts)]
		} else {
			host = hosts[r.next%len(hosts)]
			r.next++
		}
		in, err := r.b.Spawn(ctx, SpawnRequest{Name: name, Kind: sp.Kind, Host: host, Network: sp.Network, Label: sp.Label, Labels: spawnLabels(sp)})
		if err != nil && sp.AllowFailures {
			r.mark(name, "failed: "+err.Error())
			continue
		}
		if err != nil {
			return fmt.Errorf("spawn %s on %s: %w", name, host, err)
		}
		r.notePod(name, sp)
		r.add(in)
		if sp.Count >= 20 && k%10 == 0 {
			r.progress("%s %d/%d", r.stepMsg, k, sp.Count)
		}
	}
	return nil
}

func (r *runner) add(in Instance) {
	if _, ok := r.inst[in.Name]; !ok {
		r.order = append(r.order, in.Name)
	}
	r.inst[in.Name] = in
	if _, ok := r.firstIP[in.Name]; !ok {
		r.firstIP[in.Name] = in
	}
}

func (r *runner) remove(name string) {
	delete(r.inst, name)
	r.order = slices.DeleteFunc(r.order, func(s string) bool { return s == name })
}

// churn creates a pod every 1/rate seconds and deletes each one five
// intervals after it was created, so about five churn pods live at a time.
func (r *runner) churn(ctx context.Context, c *Churn) error {
	interval := time.Duration(float64(time.Second) / c.Rate)
	name := c.Name
	if name == "" {
		name = "churn"
	}
	var live []string
	for elapsed := time.Duration(0); elapsed < c.Duration; elapsed += interval {
		r.churned++
		pod := fmt.Sprintf("%s-c%d", name, r.churned)
		host := r.hosts[r.next%len(r.hosts)]
		r.next++
		in, err := r.b.Spawn(ctx, SpawnRequest{Name: pod, Kind: "pod", Host: host, Network: c.Network, Label: c.Label})
		if err != nil {
			return fmt.Errorf("churn: spawn %s: %w", pod, err)
		}
		r.add(in)
		live = append(live, pod)
		if len(live) > 5 {
			if err := r.b.Delete(ctx, live[0]); err != nil {
				return fmt.Errorf("churn: delete %s: %w", live[0], err)
			}
			r.remove(live[0])
			live = live[1:]
		}
		if err := r.b.Sleep(ctx, interval); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) drift(ctx context.Context, d *Drift) error {
	for _, name := range r.resolve(d.Instances) {
		in := r.inst[name]
		to := d.To
		if to == "" {
			i := slices.Index(r.hosts, in.Host)
			to = r.hosts[(i+1)%len(r.hosts)]
		}
		r.drifts = append(r.drifts, driftEvent{instance: name, at: r.b.Now()})
		moved, err := r.b.Move(ctx, name, to)
		if err != nil {
			return fmt.Errorf("drift %s to %s: %w", name, to, err)
		}
		r.add(moved)
	}
	return nil
}

// mark records a step of an instance's spawn timeline that the backend
// did not (a spawn that failed).
func (r *runner) mark(name, step string) {
	r.failedSpawns = append(r.failedSpawns, reports.SpawnEvent{Instance: name, Step: step, At: r.b.Now()})
}

// floatingIP attaches or detaches the floating IPs of the instances.
func (r *runner) floatingIP(ctx context.Context, f *FloatingIP) error {
	fb, ok := r.b.(FloatingIPs)
	if !ok {
		return fmt.Errorf("floating_ip: the %s backend has no floating IPs", r.b.Name())
	}
	names := r.resolve(f.Instances)
	if len(names) == 0 {
		return fmt.Errorf("floating_ip: no live instance matches %v", f.Instances)
	}
	for _, name := range names {
		var err error
		if f.Action == "detach" {
			err = fb.DetachFloatingIP(ctx, name)
		} else {
			_, err = fb.AttachFloatingIP(ctx, name)
		}
		if err != nil {
			return fmt.Errorf("floating_ip: %w", err)
		}
	}
	return nil
}

func (r *runner) target(t Target) (Target, error) {
	if t.Role != "" {
		nodes := r.topo.NodesByRole(topologies.Role(t.Role))
		if len(nodes) == 0 {
			return t, fmt.Errorf("no node with role %q in topology %s", t.Role, r.topo.Name)
		}
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = n.Name
		}
		sort.Strings(names)
		t.Node = names[0]
	}
	if t.Node != "" && r.topo.Node(t.Node) == nil {
		return t, fmt.Errorf("no node %q in topology %s", t.Node, r.topo.Name)
	}
	return t, nil
}

// resolve expands names and prefixes ("web" for web-1, web-2, ...) into
// live instance names in spawn order.
func (r *runner) resolve(names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := r.inst[n]; ok {
			out = append(out, n)
			continue
		}
		for _, live := range r.order {
			if strings.HasPrefix(live, n+"-") {
				out = append(out, live)
			}
		}
	}
	return out
}

func (r *runner) traffic(ctx context.Context, t *Traffic) error {
	from, to := r.resolve(t.From), r.resolve(t.To)
	if len(from) == 0 || len(to) == 0 {
		return fmt.Errorf("traffic: no live instance matches from %v / to %v", t.From, t.To)
	}
	if st, ok := r.b.(Settler); ok {
		if err := st.Settle(ctx); err != nil {
			return fmt.Errorf("traffic: %w", err)
		}
	}
	var pairs [][2]string
	if t.Matrix {
		for _, a := range from {
			for _, b := range to {
				if a != b {
					pairs = append(pairs, [2]string{a, b})
				}
			}
		}
	} else {
		for i := range max(len(from), len(to)) {
			pairs = append(pairs, [2]string{from[i%len(from)], to[i%len(to)]})
		}
	}
	tag := t.Tag
	if tag == "" {
		tag = fmt.Sprintf("traffic@%d", r.log.len())
	}
	if t.Background {
		return r.startStream(ctx, t, pairs, tag)
	}
	r.lastTag = tag
	var gap time.Duration
	if t.Rate > 0 {
		gap = time.Duration(float64(time.Second) / t.Rate)
	}
	fams := t.Families()
	total, sent := t.Count*len(pairs)*len(fams), 0
	for c := 0; c < t.Count; c++ {
		round := reports.Reach{At: r.b.Now(), Tag: tag, Flows: len(pairs) * len(fams)}
		for _, p := range pairs {
			for _, fam := range fams {
				res, err := r.b.Probe(ctx, ProbeRequest{From: p[0], To: p[1], Proto: t.Proto, Port: t.Port, Tag: tag, Timeout: r.opts.ProbeTimeout, Family: fam, Floating: t.Floating})
				if err != nil {
					return fmt.Errorf("probe %s -> %s over %s: %w", p[0], p[1], fam, err)
				}
				res.Tag, res.From, res.To, res.Proto = tag, p[0], p[1], t.Proto
				if fam == FamilyIPv6 {
					res.Family = FamilyIPv6
				}
				r.log.add(res)
				if res.Delivered {
					round.Reached++
				}
				if sent++; total >= 200 && sent%100 == 0 {
					r.progress("%s %d/%d probes", r.stepMsg, sent, total)
				}
			}
		}
		r.run.Reach = append(r.run.Reach, round)
		if gap > 0 && c+1 < t.Count {
			if err := r.sleep(ctx, gap); err != nil {
				return err
			}
		}
	}
	return nil
}

// probesOf lists the probes of tag (the last traffic step's when empty)
// by their index in the run's log.
func (r *runner) probesOf(tag string) []int {
	if tag == "" {
		tag = r.lastTag
	}
	return r.log.tagged(tag)
}

func (r *runner) check(i int, st *Step, what string, ok bool, format string, a ...any) {
	c := reports.Check{Step: i, Line: st.Line, What: what, Passed: ok}
	if !ok {
		c.Detail = fmt.Sprintf(format, a...)
	}
	r.run.Checks = append(r.run.Checks, c)
}

func (r *runner) pairProbes(probes []int, p Pair) []reports.Probe {
	in := r.inPair(p)
	var out []reports.Probe
	for _, i := range probes {
		if pr := r.log.probe(i); in(pr) {
			out = append(out, pr)
		}
	}
	return out
}

// expectOutcome records on the run's probes of tag that pass keep what
// an expectation wants of them (reports.ExpectDelivered or
// ExpectDropped), so that a report can say how many drops were meant.
func (r *runner) expectOutcome(tag string, keep func(reports.Probe) bool, want string) {
	for _, i := range r.probesOf(tag) {
		if keep(r.log.probe(i)) {
			r.log.setExpect(i, want)
		}
	}
}

// inPair says whether a probe goes between the pair's instances.
func (r *runner) inPair(p Pair) func(reports.Probe) bool {
	from, to := r.resolve([]string{p.From}), r.resolve([]string{p.To})
	return func(pr reports.Probe) bool { return slices.Contains(from, pr.From) && slices.Contains(to, pr.To) }
}

func (r *runner) expect(ctx context.Context, i int, st *Step) {
	e := st.Expect
	probes := r.probesOf(e.Tag)
	every := func(reports.Probe) bool { return true }
	for _, p := range e.Reachable {
		r.expectOutcome(e.Tag, r.inPair(p), reports.ExpectDelivered)
	}
	for _, p := range e.Unreachable {
		r.expectOutcome(e.Tag, r.inPair(p), reports.ExpectDropped)
	}
	if e.AllReachable || e.Verdict == "forwarded" {
		r.expectOutcome(e.Tag, every, reports.ExpectDelivered)
	}
	if e.Verdict == "dropped" {
		r.expectOutcome(e.Tag, every, reports.ExpectDropped)
	}
	for _, p := range e.Reachable {
		ps := r.pairProbes(probes, p)
		bad := ""
		for _, pr := range ps {
			if !pr.Replied {
				bad = fmt.Sprintf("%s -> %s not answered (dropped at %s: %s)", pr.From, pr.To, pr.DropAt, pr.Reason)
				break
			}
		}
		if len(ps) == 0 {
			bad = "no probe between them was sent"
		}
		r.check(i, st, fmt.Sprintf("reachable %s -> %s", p.From, p.To), bad == "", "%s", bad)
	}
	for _, p := range e.Unreachable {
		ps := r.pairProbes(probes, p)
		bad := ""
		for _, pr := range ps {
			if pr.Delivered {
				bad = fmt.Sprintf("%s -> %s was delivered in %d hops", pr.From, pr.To, pr.Hops)
				break
			}
		}
		if len(ps) == 0 {
			bad = "no probe between them was sent"
		}
		r.check(i, st, fmt.Sprintf("unreachable %s -> %s", p.From, p.To), bad == "", "%s", bad)
	}
	if e.AllReachable {
		bad := 0
		first := ""
		for _, i := range probes {
			if pr := r.log.probe(i); !pr.Replied {
				bad++
				if first == "" {
					first = fmt.Sprintf("%s -> %s dropped at %s (%s)", pr.From, pr.To, pr.DropAt, pr.Reason)
				}
			}
		}
		r.check(i, st, "all reachable", bad == 0 && len(probes) > 0, "%d of %d probes unanswered, first: %s", bad, len(probes), first)
	}
	tag := e.Tag
	if tag == "" {
		tag = r.lastTag
	}
	if want, ok := e.Hops[r.gen]; ok {
		r.checkEach(i, st, probes, tag, fmt.Sprintf("hops = %d", want), measureDelivered("hops"), func(p reports.Probe) (bool, string) {
			return p.Hops == want, fmt.Sprintf("%s -> %s took %d hops: %s", p.From, p.To, p.Hops, strings.Join(p.Path, " → "))
		})
	}
	if want, ok := e.SwitchHops[r.gen]; ok {
		r.checkEach(i, st, probes, tag, fmt.Sprintf("switch hops = %d", want), measureDelivered("switch hops"), func(p reports.Probe) (bool, string) {
			return p.SwitchHops == want, fmt.Sprintf("%s -> %s crossed %d switches: %s", p.From, p.To, p.SwitchHops, strings.Join(p.Path, " → "))
		})
	}
	if e.MaxLatency > 0 {
		r.checkEach(i, st, probes, tag, fmt.Sprintf("rtt ≤ %v", e.MaxLatency), measureAnswered, func(p reports.Probe) (bool, string) {
			return p.RTT <= e.MaxLatency, fmt.Sprintf("%s -> %s rtt %v", p.From, p.To, p.RTT)
		})
	}
	if e.Verdict != "" {
		r.checkEach(i, st, probes, tag, "verdict "+e.Verdict, measureEvery, func(p reports.Probe) (bool, string) {
			ok := p.Verdict() == e.Verdict && (e.Rule == "" || e.Verdict != "dropped" || p.Rule == e.Rule)
			return ok, fmt.Sprintf("%s -> %s %s at %s by %q (%s)", p.From, p.To, p.Verdict(), p.DropAt, p.Rule, p.Reason)
		})
	}
	for _, name := range r.resolve(e.IPUnchanged) {
		now, first := r.inst[name], r.firstIP[name]
		if first.IP6.IsValid() || now.IP6.IsValid() {
			r.check(i, st, "ip unchanged "+name, now.IP == first.IP && now.IP6 == first.IP6, "%s had %v and %v, now %v and %v", name, first.IP, first.IP6, now.IP, now.IP6)
			continue
		}
		r.check(i, st, "ip unchanged "+name, now.IP == first.IP, "%s had %v, now %v", name, first.IP, now.IP)
	}
	if len(e.IPUnchanged) > 0 && len(r.resolve(e.IPUnchanged)) == 0 {
		r.check(i, st, "ip unchanged", false, "no live instance matches %v", e.IPUnchanged)
	}
	if e.PortState != "" {
		r.portStates(ctx, i, st, e)
	}
	if e.Recovered || e.MaxOutage > 0 {
		r.checkOutages(i, st, e)
	}
	if e.NoUnexplained {
		var scratch reports.Run
		err := r.b.Finish(&scratch)
		n := scratch.Counters["unexplained_drops"]
		r.check(i, st, "no unexplained drops", err == nil && n == 0, "%d unexplained drops (%v)", n, err)
	}
	if e.ControllerConsistent {
		r.controllerConsistent(ctx, i, st)
	}
	r.controlPlane(ctx, i, st)
}

// controllerConsistent checks the controller against the instances the
// run was given: no acknowledged address lost, none held twice.
func (r *runner) controllerConsistent(ctx context.Context, i int, st *Step) {
	cc, ok := r.b.(ControllerChecker)
	if !ok {
		r.check(i, st, "controller consistent", false, "the %s backend cannot check its controller", r.b.Name())
		return
	}
	live := make([]Instance, 0, len(r.order))
	for _, n := range r.order {
		live = append(live, r.inst[n])
	}
	problems, err := cc.CheckController(ctx, live)
	if err != nil {
		problems = append(problems, err.Error())
	}
	r.check(i, st, "controller consistent", len(problems) == 0, "%d problems, first: %s", len(problems), strings.Join(problems[:min(len(problems), 1)], ""))
}

// measure says which of a tag's probes a check measures. A check with
// nothing to measure fails: a check must never pass because every probe
// it was meant to look at was lost.
type measure struct {
	// quantity names what is measured on delivered probes ("hops"); empty:
	// every probe is measured.
	quantity string
	// answered requires every probe to have been answered (round trips).
	answered bool
}

var (
	measureEvery    = measure{}
	measureAnswered = measure{answered: true}
)

func measureDelivered(quantity string) measure { return measure{quantity: quantity} }

// checkEach checks f on the probes m selects among probes (those of tag).
func (r *runner) checkEach(i int, st *Step, probes []int, tag, what string, m measure, f func(reports.Probe) (bool, string)) {
	if len(probes) == 0 {
		r.check(i, st, what, false, "no probe of tag %s was sent", tag)
		return
	}
	n := 0
	for _, k := range probes {
		p := r.log.probe(k)
		switch {
		case m.answered && !p.Replied:
			r.check(i, st, what, false, "%s -> %s was not answered (%s): no round trip to measure", p.From, p.To, lostAt(p))
			return
		case m.quantity != "" && !p.Delivered:
			continue
		}
		n++
		if ok, detail := f(p); !ok {
			r.check(i, st, what, false, "%s", detail)
			return
		}
	}
	if n == 0 {
		r.check(i, st, what, false, "no delivered probe of tag %s to measure %s on (all %d lost, the first %s)",
			tag, m.quantity, len(probes), lostAt(r.log.probe(probes[0])))
		return
	}
	r.check(i, st, what, true, "")
}

// lostAt says where and why a probe was lost.
func lostAt(p reports.Probe) string {
	switch {
	case p.DropAt == "" && p.Reason == "":
		return "lost without a recorded drop"
	case p.Delivered:
		return fmt.Sprintf("answer dropped at %s: %s", p.DropAt, p.Reason)
	}
	return fmt.Sprintf("dropped at %s: %s", p.DropAt, p.Reason)
}

// unexplainedKinds says which of the runtimes' unexplained kinds the
// drops hold: " (send-error 1, capture-lost 2)", or "" when none does.
func unexplainedKinds(drops map[string]int) string {
	var kinds []string
	for _, k := range []string{"", "send-error", "capture-lost"} {
		if n := drops[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", cmp.Or(k, "no reason"), n))
		}
	}
	if len(kinds) == 0 {
		return ""
	}
	return " (" + strings.Join(kinds, ", ") + ")"
}

// congestionDrops are the drop reasons of a queue or ring that overflowed:
// explained only where a scenario expects congestion.
var congestionDrops = []string{string(datapath.ReasonQueueFull), "rx-ring-full"}

// conserve checks, at the end of every run, that every probe is
// accounted for: answered, or lost at a named place for a named reason;
// and that the runtime saw no frame vanish (its unexplained drops).
func (r *runner) conserve() {
	c := reports.Check{Step: len(r.s.Steps), What: "packet conservation", Passed: true}
	unexplained := r.run.Counters["unexplained_drops"]
	var why []string
	if unexplained > 0 {
		why = append(why, fmt.Sprintf("%d frames lost without a reason%s", unexplained, unexplainedKinds(r.run.Drops)))
	}
	if !r.s.Congestion {
		for _, reason := range congestionDrops {
			if n := r.run.Drops[reason]; n > 0 {
				why = append(why, fmt.Sprintf("%d frames dropped as %s in a scenario that does not expect congestion (expect_congestion: true)", n, reason))
			}
		}
	}
	lost := 0
	first := ""
	for i := range r.log.len() {
		if p := r.log.probe(i); !p.Replied && (p.DropAt == "" || p.Reason == "") {
			if lost++; first == "" {
				first = fmt.Sprintf("%s -> %s (%s)", p.From, p.To, p.Tag)
			}
		}
	}
	if lost > 0 {
		why = append(why, fmt.Sprintf("%d probes lost without a recorded drop, first %s", lost, first))
	}
	if len(why) > 0 {
		c.Passed, c.Detail = false, strings.Join(why, "; ")
	}
	r.run.Checks = append(r.run.Checks, c)
}

// portStates waits up to e.Within (backend time) for every live instance's
// port to reach e.PortState.
func (r *runner) portStates(ctx context.Context, i int, st *Step, e *Expect) {
	deadline := r.b.Now() + e.Within
	step := max(e.Within/50, time.Millisecond)
	for {
		pending := ""
		for _, name := range r.order {
			s, err := r.b.PortState(ctx, name)
			if err != nil || s != e.PortState {
				pending = fmt.Sprintf("%s is %s (%v)", name, s, err)
				break
			}
		}
		if pending == "" {
			r.check(i, st, "ports "+e.PortState, true, "")
			return
		}
		if r.b.Now() >= deadline || ctx.Err() != nil {
			r.check(i, st, "ports "+e.PortState+" within "+e.Within.String(), false, "%s", pending)
			return
		}
		if err := r.b.Sleep(ctx, step); err != nil {
			r.check(i, st, "ports "+e.PortState, false, "%v", err)
			return
		}
	}
}
