package clab

import (
	"fmt"
	"strings"
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
