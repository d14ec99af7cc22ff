// Package layering checks the floors of netbed's design with the go
// command's own view of the imports (go list -deps): what may not import
// what, so that a runtime, a generation or a store can be replaced
// without touching the packages above it.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/netbed/netbed/"

// deps returns the netbed packages pkgs import, directly or not.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	var ours []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, module) {
			ours = append(ours, strings.TrimPrefix(p, module))
		}
	}
	return ours
}

func TestFloors(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	floors := []struct {
		pkgs   []string
		why    string
		banned []string // path prefixes
	}{
		{[]string{"./controller/..."}, "the controller drives fabrics through its drivers, which live with the fabrics",
			[]string{"datapath", "sim", "scenarios"}},
		{[]string{"./reports/..."}, "reports render what any runtime recorded",
			[]string{"sim", "scenarios", "datapath/userspace", "datapath/kernel", "controller"}},
		{[]string{"./datapath/..."}, "datapaths know nothing of how scenarios run them",
			[]string{"scenarios", "sim"}},
		{[]string{"./scenarios/spec/..."}, "the scenario reader reads files: runtimes, the controller and datapaths build on it, not under it",
			[]string{"controller", "datapath", "sim", "reports", "scenarios/simrt", "scenarios/netnsrt", "cmd"}},
		{[]string{"./generation/..."}, "a generation's description is data that the scenario reader and reports read",
			[]string{"datapath", "controller", "scenarios", "sim", "reports", "topologies", "plan", "cmd"}},
		{[]string{"./topologies/..."}, "topologies are data",
			[]string{"datapath", "controller", "scenarios", "sim", "reports"}},
	}
	for _, f := range floors {
		for _, d := range deps(t, f.pkgs...) {
			for _, b := range f.banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s imports %s: %s", strings.Join(f.pkgs, " "), d, f.why)
				}
			}
		}
	}
}
