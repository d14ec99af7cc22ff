package reports

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFaultConvergence: a leaf failure's measured convergence is in the
// fault's line of the Markdown report and in report.json.
func TestFaultConvergence(t *testing.T) {
	f := Fault{At: time.Second, Target: "node leaf1", RoutesWithdrawn: 4, Convergence: 42 * time.Millisecond}
	if got := f.String(); !strings.Contains(got, "every other leaf's speaker withdrew its routes in 42.00ms") {
		t.Errorf("fault line %q does not give the convergence", got)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"convergence_ns":42000000`) {
		t.Errorf("fault JSON %s lacks convergence_ns", b)
	}
	f.Restore = true
	if got := f.String(); !strings.Contains(got, "every other leaf's speaker learnt its routes in 42.00ms") {
		t.Errorf("restore line %q does not give the convergence", got)
	}
	if s := (Fault{Target: "node leaf1"}).String(); strings.Contains(s, "withdrew") {
		t.Errorf("fault without a measured convergence says %q", s)
	}
}
