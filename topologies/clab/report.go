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
	// interface names, links skipped, fields not carried.
	Notes []string
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
// carried everything netbed needs.
func (r *Report) Empty() bool {
	return r == nil || len(r.Inferred)+len(r.Unresolved)+len(r.Notes) == 0
}

// String renders the report, one item per line.
func (r *Report) String() string {
	if r.Empty() {
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
	return b.String()
}
