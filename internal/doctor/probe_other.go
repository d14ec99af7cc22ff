//go:build !linux

package doctor

import "runtime"

// Run reports every kernel check as missing: netbed's kernel backends need
// Linux. The sim backend runs anywhere.
func Run() *Result {
	var checks []Check
	for _, n := range CheckNames {
		checks = append(checks, Check{Name: n, Detail: "needs Linux (this is " + runtime.GOOS + ")"})
	}
	return &Result{Checks: checks, Backends: Backends(checks)}
}
