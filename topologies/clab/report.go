package clab

import (
	"errors"
	"fmt"
	"strings"

	"github.com/netbed/netbed/topologies"
)

// Report says what Read inferred about a file and what it left out.
type Report struct {
	File string
	// Inferred lists attributes netbed worked out because the file did not
	// state them as netbed labels, in node order.
	Inferred []Inference
	// Unresolved names the nodes whose role could not be inferred.
	Unresolved []string
	// Notes are everything else worth knowing: aliases mapped to Linux
	// interface names, links skipped, fields ignored or not carried.
	Notes []string
	// Unused lists the fields netbed does not use but keeps, to write them
	// back on export (node fields such as startup-config, mgmt, settings).
	// They do not make a report non-empty: netbed's own files carry them
	// too.
	Unused []string
	// GeneratedClos is set when the nodes are in containerlab generate's
	// tier-N groups.
	GeneratedClos bool
}

// Inference is one inferred attribute of a node.
type Inference struct {
	Node  string
	Attr  string // "role" or "az"
	Value string
	From  string // "group tier-1", "name", "links to 2 leaves", ...
}

func (i Inference) String() string {
	return fmt.Sprintf("%s: %s %s (from %s)", i.Node, i.Attr, i.Value, i.From)
}

func (r *Report) note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

func (r *Report) infer(node, attr, value, format string, a ...any) {
	r.Inferred = append(r.Inferred, Inference{Node: node, Attr: attr, Value: value, From: fmt.Sprintf(format, a...)})
}

// Empty reports whether nothing was inferred, unresolved or noted: the file
// carried everything netbed needs (fields it keeps unused do not count).
func (r *Report) Empty() bool {
	return r == nil || len(r.Inferred)+len(r.Unresolved)+len(r.Notes) == 0
}

// String renders the report, one item per line.
func (r *Report) String() string {
	if r.Empty() && (r == nil || len(r.Unused) == 0) {
		return ""
	}
	var b strings.Builder
	for _, i := range r.Inferred {
		fmt.Fprintf(&b, "inferred %s\n", i)
	}
	for _, n := range r.Unresolved {
		fmt.Fprintf(&b, "unresolved %s: no role could be inferred; add label %s to the node\n", n, LabelRole)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note %s\n", n)
	}
	for _, n := range r.Unused {
		fmt.Fprintf(&b, "unused %s: kept, and written back on export; netbed does not use it\n", n)
	}
	return b.String()
}

// ErrNoHosts is returned by NeedHosts for a topology without host nodes.
var ErrNoHosts = errors.New("no host nodes")

// NeedHosts returns an error wrapping ErrNoHosts, saying how to add hosts,
// when t (read from file, with report rep) has no host nodes for instances
// to run on: a Clos from containerlab generate has none.
func NeedHosts(file string, t *topologies.Topology, rep *Report) error {
	if len(t.NodesByRole(topologies.RoleHost)) > 0 {
		return nil
	}
	fix := fmt.Sprintf("netbed topo import --hosts-per-leaf 2 %s -o with-hosts.clab.yml", file)
	if rep != nil && rep.GeneratedClos {
		return fmt.Errorf("%s: %w: a Clos from containerlab generate has no servers below its leaves, so instances have nowhere to run; "+
			"add N hosts below every leaf with '%s' and use that file", file, ErrNoHosts, fix)
	}
	return fmt.Errorf("%s: %w: instances run on nodes with role host (label %s: host); add them below the leaves, "+
		"or add N below every leaf with '%s'", file, ErrNoHosts, LabelRole, fix)
}
