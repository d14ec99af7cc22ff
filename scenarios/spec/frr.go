package spec

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/topologies"
)

// frrLeaves checks the frr_leaves list (n): node names, each once, in a
// scenario whose gen 2 leaves learn their routes over BGP (control_plane:
// bgp, the ibgp design) on a backend that can run FRR (netns, kernel,
// or auto).
// Whether each name is a leaf of the topology is FRRProblems' question.
func (p *parser) frrLeaves(n *yaml.Node, names []string, s *Scenario) []string {
	if n.Kind != yaml.SequenceNode {
		p.fail(n.Line, "frr_leaves", "want a list of leaf names like [leaf3], got %s", describe(n))
		return nil
	}
	if len(names) == 0 {
		p.fail(n.Line, "frr_leaves", "an empty list changes nothing; name the leaves FRR should be, or leave frr_leaves out")
	}
	for i, name := range names {
		if name == "" || slices.Contains(names[:i], name) {
			p.fail(n.Content[i].Line, fmt.Sprintf("frr_leaves[%d]", i), "missing or duplicate leaf name %q", name)
		}
	}
	switch {
	case s.ControlPlane != ControlPlaneBGP:
		p.fail(n.Line, "frr_leaves", "FRR leaves are BGP speakers: they need control_plane: bgp (this scenario's control plane is %s)", s.ControlPlane)
	case !frrBackend(s.Backend) && s.Backend != "auto":
		p.fail(n.Line, "frr_leaves", "FRR leaves run on the netns and kernel backends only (this scenario says backend: %s)", s.Backend)
	case s.BGP.Design == DesignEBGP:
		p.fail(n.Line, "frr_leaves", "FRR leaves join the ibgp design (the spines route reflectors); design ebgp is not built for them")
	}
	return names
}

// FRRProblems says, as (field, message) pairs, which of frr_leaves are
// not gen 2 leaves of generation g's topology t; it says nothing for a
// generation frr_leaves does not apply to (one without gen 2 leaves).
func (s *Scenario) FRRProblems(g Generation, t *topologies.Topology) [][2]string {
	if len(s.BGP.FRRLeaves) == 0 || !g.Desc().FRRLeaves {
		return nil
	}
	var out [][2]string
	for i, name := range s.BGP.FRRLeaves {
		field := fmt.Sprintf("frr_leaves[%d]", i)
		n := t.Node(name)
		switch {
		case n == nil:
			out = append(out, [2]string{field, fmt.Sprintf("no node %q in topology %s", name, t.Name)})
		case n.Role != topologies.RoleLeaf:
			out = append(out, [2]string{field, fmt.Sprintf("%s is a %s of topology %s, not a leaf: FRR stands in for a gen 2 leaf", name, n.Role, t.Name)})
		}
	}
	return out
}

// BFDError refuses bgp: {bfd: true} on a backend other than netns,
// kernel (whose speakers run BFD over the links' /31s in the nodes'
// namespaces) and sim (whose BGP model runs BFD too), naming the file,
// line and field.
func (s *Scenario) BFDError(g Generation, backend string) error {
	if !s.BGP.BFD || !g.Desc().BGP || s.ControlPlane != ControlPlaneBGP || backend == "netns" || backend == "kernel" || backend == "sim" {
		return nil
	}
	return &Error{File: s.File, Line: s.lineOf("bgp.bfd"), Field: "bgp.bfd",
		Msg: fmt.Sprintf("BFD runs beside the netns, kernel and sim backends' speakers only (this run is on %s)", backend)}
}

// frrBackend reports whether the backend called name runs FRR leaves:
// netns (the spines in userspace route VXLAN to FRR's kernel) and kernel
// (the spines' kernels do), not sim, which has no kernel to run FRR on.
func frrBackend(name string) bool { return name == "netns" || name == "kernel" }

// FRRError checks frr_leaves before a run of generation g on topology t
// on the backend called backend: the names (FRRProblems), and that the
// backend is one that runs FRR (netns or kernel). The error names the
// file, line and field.
func (s *Scenario) FRRError(g Generation, t *topologies.Topology, backend string) error {
	if len(s.BGP.FRRLeaves) == 0 || !g.Desc().FRRLeaves {
		return nil
	}
	ps := s.FRRProblems(g, t)
	if !frrBackend(backend) {
		ps = append([][2]string{{"frr_leaves", fmt.Sprintf("FRR leaves run on the netns and kernel backends only (this run is on %s)", backend)}}, ps...)
	}
	if len(ps) == 0 {
		return nil
	}
	return &Error{File: s.File, Line: s.lineOf(ps[0][0]), Field: ps[0][0], Msg: ps[0][1]}
}
