package reports

import (
	"fmt"
	"strings"
)

// TruthTable is a policy truth table, as Cyclonus draws one: every pod
// pair of the selected namespaces probed on every traffic the policies
// name (and one they do not), each cell the verdict the reference
// evaluator expects against the one the probe observed.
type TruthTable struct {
	Step     int      `json:"step"`
	Line     int      `json:"line"`
	Tag      string   `json:"tag"`
	Pods     []string `json:"pods"`     // "namespace/pod", rows and columns
	Traffics []string `json:"traffics"` // "tcp/80", "icmp"
	Cells    []Cell   `json:"cells"`
}

// Cell is one probe of a truth table.
type Cell struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Traffic  string `json:"traffic"`
	Expected bool   `json:"expected"` // allowed by the policies' semantics
	Observed bool   `json:"observed"` // the probe was answered
	// Why is the evaluator's reason; Rule is the rule that dropped the
	// probe, if it was dropped.
	Why  string `json:"why,omitempty"`
	Rule string `json:"rule,omitempty"`
}

// String names the cell: "x/a -> y/b tcp/80: expected allowed, observed
// dropped".
func (c Cell) String() string {
	word := func(b bool) string {
		if b {
			return "allowed"
		}
		return "dropped"
	}
	s := fmt.Sprintf("%s -> %s %s: expected %s, observed %s", c.From, c.To, c.Traffic, word(c.Expected), word(c.Observed))
	if c.Rule != "" {
		s += " by " + c.Rule
	}
	return s
}

// Mismatches are the cells whose observed verdict is not the expected.
func (t *TruthTable) Mismatches() []Cell {
	var out []Cell
	for _, c := range t.Cells {
		if c.Expected != c.Observed {
			out = append(out, c)
		}
	}
	return out
}

// Matrix draws the table as text, one block per traffic: a row per
// source, a column per destination, each cell "." where expected and
// observed agree on allowed, "x" where they agree on dropped, and "!"
// (observed allowed) or "?" (observed dropped) where they differ.
func (t *TruthTable) Matrix() string {
	idx := map[string]int{}
	for i, p := range t.Pods {
		idx[p] = i
	}
	var b strings.Builder
	for _, tr := range t.Traffics {
		grid := make([][]byte, len(t.Pods))
		for i := range grid {
			grid[i] = []byte(strings.Repeat("-", len(t.Pods)))
		}
		for _, c := range t.Cells {
			if c.Traffic != tr {
				continue
			}
			ch := byte('.')
			switch {
			case c.Expected && c.Observed:
			case !c.Expected && !c.Observed:
				ch = 'x'
			case c.Observed:
				ch = '!'
			default:
				ch = '?'
			}
			grid[idx[c.From]][idx[c.To]] = ch
		}
		fmt.Fprintf(&b, "%s (rows from, columns to: %s)\n", tr, strings.Join(t.Pods, " "))
		for i, p := range t.Pods {
			fmt.Fprintf(&b, "  %-24s %s\n", p, grid[i])
		}
	}
	return b.String()
}
