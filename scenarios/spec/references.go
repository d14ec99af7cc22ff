package spec

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/netbed/netbed/topologies"
)

// CheckReferences finds, without running anything, what Parse cannot see
// in one file: names in steps that match nothing. For each generation it
// walks the steps that apply to it, as the runner would, and reports
//   - hosts (spawn.hosts, drift.to, fail/restore.agent) that are not hosts
//     of that generation's topology, and fail/restore nodes and roles the
//     topology does not have;
//   - instances (drift.instances, traffic.from/to, expect.reachable,
//     expect.unreachable, expect.ip_unchanged) that no earlier spawn or
//     churn creates, whether named (web-1) or by prefix (web);
//   - expect tags that no earlier traffic step sets.
//
// topo returns a generation's topology (TopologyFor(g).Build(s.File)).
// Every problem is returned, joined, each an *Error with the file, the
// line and the field; a problem that only some generations have says
// which.
func (s *Scenario) CheckReferences(topo func(Generation) (*topologies.Topology, error)) error {
	type key struct {
		field, msg string
	}
	var order []key
	gensOf := map[key][]Generation{}
	var errs []error
	for _, g := range s.Generations {
		t, err := topo(g)
		if err != nil {
			// Generations that share a topology share its error.
			if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
				errs = append(errs, err)
			}
			continue
		}
		for _, p := range slices.Concat(s.roleProblems(g, t), s.referenceProblems(g, t), s.capacityProblems(g, t), s.FRRProblems(g, t)) {
			k := key{p[0], p[1]}
			if _, seen := gensOf[k]; !seen {
				order = append(order, k)
			}
			gensOf[k] = append(gensOf[k], g)
		}
	}
	for _, k := range order {
		msg := k.msg
		if gs := gensOf[k]; len(gs) < len(s.Generations) {
			msg += fmt.Sprintf(" (generation %s)", joinGens(gs))
		}
		errs = append(errs, &Error{File: s.File, Line: s.lineOf(k.field), Field: k.field, Msg: msg})
	}
	return errors.Join(errs...)
}

// roleProblems says where topology t has a node of a role generation g's
// fabrics are not built from (a spine in a three-tier gen 1 fabric, a core
// in a spine-leaf one): the run would fail at its start.
func (s *Scenario) roleProblems(g Generation, t *topologies.Topology) [][2]string {
	d := g.Desc()
	var bad []string
	seen := map[topologies.Role]bool{}
	for _, n := range t.Nodes {
		if n.Role == topologies.RoleHost || slices.Contains(d.Roles, string(n.Role)) || seen[n.Role] {
			continue
		}
		seen[n.Role] = true
		bad = append(bad, fmt.Sprintf("%s (role %s)", n.Name, n.Role))
	}
	if len(bad) == 0 {
		return nil
	}
	field := "topologies." + string(g)
	if spec := s.TopologyFor(g); spec.Flag != "" {
		field = spec.Flag
	} else if _, own := s.Topologies[string(g)]; !own {
		field = "topologies.default"
		if _, ok := s.lines["topology"]; ok {
			field = "topology"
		}
	}
	fix := ""
	if s.TopologyFor(g).Flag != "" {
		fix = fmt.Sprintf("; give it a lab of its own with --topology %s=FILE", g)
	} else if d.Topology != "" {
		fix = fmt.Sprintf("; give it one with topologies.%s: {builder: %s}", g, d.Topology)
	}
	return [][2]string{{field, fmt.Sprintf("topology %s has %s: %s's fabric is built from hosts and %s only%s",
		t.Name, strings.Join(bad, ", "), g, strings.Join(d.Roles, ", "), fix)}}
}

func joinGens(gs []Generation) string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = string(g)
	}
	return strings.Join(out, ", ")
}

// referenceProblems walks the steps of generation g on topology t and
// returns each problem as {field, message}.
func (s *Scenario) referenceProblems(g Generation, t *topologies.Topology) [][2]string {
	var out [][2]string
	problem := func(field, format string, a ...any) {
		out = append(out, [2]string{field, fmt.Sprintf(format, a...)})
	}
	var hostNames []string
	for _, n := range t.NodesByRole(topologies.RoleHost) {
		hostNames = append(hostNames, n.Name)
	}
	sort.Strings(hostNames)
	hostList := strings.Join(hostNames, ", ")
	if len(hostNames) > 8 {
		hostList = strings.Join(hostNames[:4], ", ") + fmt.Sprintf(", ... (%d hosts)", len(hostNames))
	}
	isHost := func(h string) bool { return slices.Contains(hostNames, h) }
	checkHost := func(field, h string) {
		if !isHost(h) {
			problem(field, "%q is not a host of topology %s (hosts: %s)", h, t.Name, hostList)
		}
	}

	spawned := map[string]bool{} // instance names
	var prefixes []string        // spawn names (web for web-1) and churn pods' (churn-c)
	tags := map[string]bool{}
	matches := func(name string) bool {
		if spawned[name] {
			return true
		}
		for _, p := range prefixes {
			if name == p || strings.HasPrefix(name, p+"-") || strings.HasPrefix(p, name+"-") {
				return true
			}
		}
		for n := range spawned {
			if strings.HasPrefix(n, name+"-") {
				return true
			}
		}
		return false
	}
	checkInstance := func(field, name string) {
		if !matches(name) {
			problem(field, "%q matches no instance spawned before this step", name)
		}
	}
	checkTarget := func(field string, tg *Target) {
		switch {
		case tg.Node != "" && t.Node(tg.Node) == nil:
			problem(field+".node", "no node %q in topology %s", tg.Node, t.Name)
		case tg.Role != "" && len(t.NodesByRole(topologies.Role(tg.Role))) == 0:
			problem(field+".role", "no node with role %q in topology %s", tg.Role, t.Name)
		case tg.Agent != "":
			checkHost(field+".agent", tg.Agent)
		}
	}
	for i, st := range s.Steps {
		if len(st.Gens) > 0 && !slices.Contains(st.Gens, g) {
			continue
		}
		f := fmt.Sprintf("steps[%d]", i)
		switch {
		case st.Spawn != nil:
			for j, h := range st.Spawn.Hosts {
				if n := t.Node(h); n != nil && n.Role == topologies.RoleExternal {
					continue // clients outside a VPC, named explicitly
				}
				checkHost(fmt.Sprintf("%s.spawn.hosts[%d]", f, j), h)
			}
			for k := 1; k <= st.Spawn.Count; k++ {
				spawned[fmt.Sprintf("%s-%d", st.Spawn.Name, k)] = true
			}
		case st.Churn != nil:
			name := st.Churn.Name
			if name == "" {
				name = "churn"
			}
			prefixes = append(prefixes, name+"-c")
		case st.Drift != nil:
			for j, n := range st.Drift.Instances {
				checkInstance(fmt.Sprintf("%s.drift.instances[%d]", f, j), n)
			}
			if st.Drift.To != "" {
				checkHost(f+".drift.to", st.Drift.To)
			}
		case st.FloatingIP != nil:
			for j, n := range st.FloatingIP.Instances {
				checkInstance(fmt.Sprintf("%s.floating_ip.%s[%d]", f, st.FloatingIP.Action, j), n)
			}
		case st.Fail != nil:
			checkTarget(f+".fail", st.Fail)
		case st.Restore != nil:
			checkTarget(f+".restore", st.Restore)
		case st.Traffic != nil:
			for j, n := range st.Traffic.From {
				checkInstance(fmt.Sprintf("%s.traffic.from[%d]", f, j), n)
			}
			for j, n := range st.Traffic.To {
				checkInstance(fmt.Sprintf("%s.traffic.to[%d]", f, j), n)
			}
			if st.Traffic.Tag != "" {
				tags[st.Traffic.Tag] = true
			}
		case st.Expect != nil:
			e := st.Expect
			if e.Tag != "" && !tags[e.Tag] {
				var known []string
				for k := range tags {
					known = append(known, k)
				}
				sort.Strings(known)
				hint := "no traffic step before it sets a tag"
				if len(known) > 0 {
					hint = "tags set before it: " + strings.Join(known, ", ")
				}
				problem(f+".expect.tag", "%q is set by no traffic step before this one (%s)", e.Tag, hint)
			}
			for j, p := range e.Reachable {
				checkInstance(fmt.Sprintf("%s.expect.reachable[%d]", f, j), p.From)
				checkInstance(fmt.Sprintf("%s.expect.reachable[%d]", f, j), p.To)
			}
			for j, p := range e.Unreachable {
				checkInstance(fmt.Sprintf("%s.expect.unreachable[%d]", f, j), p.From)
				checkInstance(fmt.Sprintf("%s.expect.unreachable[%d]", f, j), p.To)
			}
			for j, n := range e.IPUnchanged {
				checkInstance(fmt.Sprintf("%s.expect.ip_unchanged[%d]", f, j), n)
			}
		}
	}
	return out
}

// lineOf is the line of field (a path like steps[2].drift.instances[0]),
// or of its nearest ancestor Parse recorded.
func (s *Scenario) lineOf(field string) int {
	for f := field; f != ""; {
		if l, ok := s.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}
