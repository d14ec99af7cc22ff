package scenarios

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios/policy"
)

// PolicySetter is a backend that enforces Kubernetes NetworkPolicies and
// CiliumNetworkPolicies (policy steps with a file).
//
// Contract: SetPolicies compiles s over the pods of c for the backend's
// generation and installs the result, replacing whatever an earlier call
// installed; an empty s removes it all. The runner calls it again when
// pods come and go. A generation that has nowhere to enforce pod policy
// returns an error that says so.
type PolicySetter interface {
	SetPolicies(ctx context.Context, s *policy.Set, c *policy.Cluster) error
}

// NamespaceLabel is the label a pod spawned into a namespace carries,
// as Cilium's identities do: pods of two namespaces never share one.
const NamespaceLabel = "io.kubernetes.pod.namespace"

// podMeta is what a spawn said of a pod for policy.
type podMeta struct {
	namespace string
	labels    map[string]string
	ports     []policy.NamedPort
}

// spawnLabels are the labels a spawn gives its instances' identities.
func spawnLabels(sp *Spawn) map[string]string {
	if sp.Namespace == "" {
		return sp.Labels
	}
	l := maps.Clone(sp.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[NamespaceLabel] = sp.Namespace
	return l
}

func (r *runner) notePod(name string, sp *Spawn) {
	if r.meta == nil {
		r.meta = map[string]podMeta{}
	}
	ns := sp.Namespace
	if ns == "" {
		ns = "default"
	}
	r.meta[name] = podMeta{namespace: ns, labels: sp.Labels, ports: sp.Ports}
}

// cluster is the live instances as policy sees them, in spawn order.
func (r *runner) cluster() *policy.Cluster {
	c := &policy.Cluster{Namespaces: map[string]map[string]string{}}
	if r.policies != nil {
		c.Namespaces = r.policies.Namespaces
	}
	for _, n := range r.order {
		m, ok := r.meta[n]
		if !ok {
			m.namespace = "default"
		}
		c.Pods = append(c.Pods, &policy.Pod{Namespace: m.namespace, Name: n, Labels: m.labels, IP: r.inst[n].IP, Ports: m.ports})
	}
	return c
}

// clusterIPv6 is c with every pod's IPv6 address in place of its IPv4
// one, when every pod has one (a dual-stack cluster); nil otherwise.
func (r *runner) clusterIPv6(c *policy.Cluster) *policy.Cluster {
	out := &policy.Cluster{Namespaces: c.Namespaces}
	for _, p := range c.Pods {
		ip6 := r.inst[p.Name].IP6
		if !ip6.IsValid() {
			return nil
		}
		q := *p
		q.IP = ip6
		out.Pods = append(out.Pods, &q)
	}
	if len(out.Pods) == 0 {
		return nil
	}
	return out
}

// policyFile applies or removes the policies of a policy step's file.
func (r *runner) policyFile(ctx context.Context, p *Policy) error {
	ps, ok := r.b.(PolicySetter)
	if !ok {
		return fmt.Errorf("policy %s: the %s backend cannot apply policy files", p.File, r.b.Name())
	}
	next := policy.Merge(r.policies, p.Set)
	if p.Action == "remove" {
		var err error
		if next, err = policy.Remove(r.policies, p.Set); err != nil {
			return fmt.Errorf("policy %s: %w", p.File, err)
		}
	}
	if err := ps.SetPolicies(ctx, next, r.clusterWith(next)); err != nil {
		return fmt.Errorf("policy %s: %w", p.File, err)
	}
	r.policies = next
	return nil
}

func (r *runner) clusterWith(s *policy.Set) *policy.Cluster {
	c := r.cluster()
	c.Namespaces = s.Namespaces
	return c
}

// syncPolicies recompiles the applied policy files after pods came or
// went.
func (r *runner) syncPolicies(ctx context.Context) error {
	if r.policies == nil {
		return nil
	}
	ps, ok := r.b.(PolicySetter)
	if !ok {
		return nil
	}
	if err := ps.SetPolicies(ctx, r.policies, r.cluster()); err != nil {
		return fmt.Errorf("recompile policies for the pods now live: %w", err)
	}
	return nil
}

// TruthTableTimeout bounds each truth-table probe (or the run's probe
// timeout, if shorter): a cell is a verdict, not a latency, every
// backend answers an allowed probe within milliseconds, and a table has
// many dropped cells that each wait the whole timeout.
const TruthTableTimeout = 500 * time.Millisecond

// truthTable probes every pod pair of the expectation's namespaces on
// every traffic the applied policies name and checks each cell against
// the reference evaluator.
func (r *runner) truthTable(ctx context.Context, i int, st *Step) error {
	e := st.Expect
	c := r.cluster()
	set := r.policies
	if set == nil {
		set = &policy.Set{}
	}
	var pods []*policy.Pod
	for _, p := range c.Pods {
		if len(e.Namespaces) == 0 || slices.Contains(e.Namespaces, p.Namespace) {
			pods = append(pods, p)
		}
	}
	traffics, skipped := policy.ProbeTraffics(set, c)
	tag := fmt.Sprintf("truth-table@%d", i)
	tt := reports.TruthTable{Step: i, Line: st.Line, Tag: tag}
	for _, p := range pods {
		tt.Pods = append(tt.Pods, p.String())
	}
	for _, t := range traffics {
		tt.Traffics = append(tt.Traffics, t.String())
	}
	if st, ok := r.b.(Settler); ok {
		if err := st.Settle(ctx); err != nil {
			return fmt.Errorf("truth table: %w", err)
		}
	}
	// Dual-stack pods are probed over each family, each evaluated with
	// the pods' addresses of that family (an ipBlock holds one family's).
	type view struct {
		family, label string
		c             *policy.Cluster
	}
	views := []view{{FamilyIPv4, "", c}}
	if c6 := r.clusterIPv6(c); c6 != nil {
		views = append(views, view{FamilyIPv6, " over ipv6", c6})
		for _, t := range traffics {
			tt.Traffics = append(tt.Traffics, t.String()+" over ipv6")
		}
	}
	for _, v := range views {
		byName := map[string]*policy.Pod{}
		for _, p := range v.c.Pods {
			byName[p.Name] = p
		}
		for _, t := range traffics {
			proto := strings.ToLower(t.Protocol)
			for _, a := range pods {
				for _, b := range pods {
					if a == b {
						continue // a pod's traffic to itself never leaves it
					}
					res, err := r.b.Probe(ctx, ProbeRequest{From: a.Name, To: b.Name, Proto: proto, Port: t.Port, Tag: tag, Family: v.family, Timeout: min(r.opts.ProbeTimeout, TruthTableTimeout)})
					if err != nil {
						return fmt.Errorf("truth table probe %s -> %s %s%s: %w", a, b, t, v.label, err)
					}
					want := set.Evaluate(v.c, policy.Peer{Pod: byName[a.Name]}, policy.Peer{Pod: byName[b.Name]}, t)
					res.Tag, res.From, res.To, res.Proto = tag, a.Name, b.Name, proto
					if v.family == FamilyIPv6 {
						res.Family = FamilyIPv6
					}
					res.Expect = reports.ExpectDropped
					if want.Allowed {
						res.Expect = reports.ExpectDelivered
					}
					r.log.add(res)
					why := "egress: " + want.Egress + "; ingress: " + want.Ingress
					tt.Cells = append(tt.Cells, reports.Cell{From: a.String(), To: b.String(), Traffic: t.String() + v.label,
						Expected: want.Allowed, Observed: res.Replied, Why: why, Rule: res.Rule})
				}
			}
		}
	}
	r.run.TruthTables = append(r.run.TruthTables, tt)
	bad := tt.Mismatches()
	detail := fmt.Sprintf("%d pods, %d traffics, %d cells", len(pods), len(traffics), len(tt.Cells))
	if len(skipped) > 0 {
		detail += "; not probed (no probe speaks it): " + strings.Join(skipped, ", ")
	}
	if len(bad) > 0 {
		var names []string
		for _, c := range bad[:min(len(bad), 5)] {
			names = append(names, c.String())
		}
		detail = fmt.Sprintf("%d of %d cells differ: %s", len(bad), len(tt.Cells), strings.Join(names, "; "))
		if len(bad) > 5 {
			detail += "; …"
		}
		detail += "\n" + tt.Matrix()
	}
	r.check(i, st, "truth table", len(bad) == 0, "%s", detail)
	return nil
}
