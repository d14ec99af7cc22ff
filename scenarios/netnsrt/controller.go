package netnsrt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/netbed/netbed/scenarios"
)

// Executable is the program that serves the controller
// (`netbed controller serve`).
const Executable = "netbed"

var _ scenarios.ControllerHost = (*Runtime)(nil)

// ControllerBinary implements scenarios.ControllerHost: on netns the
// controller runs as its own process, from Options.Netbed or else the
// first netbed found: the running executable if it is netbed, one beside
// it (bin/, where `make build` puts it with netbed-cni), on $PATH, then
// in ./bin.
func (r *Runtime) ControllerBinary() (string, error) {
	if r.opts.Netbed != "" {
		return r.opts.Netbed, nil
	}
	return FindNetbed()
}

// selfIsNetbed says the running executable is the netbed command,
// whatever its file is called (ThisIsNetbed).
var selfIsNetbed atomic.Bool

// ThisIsNetbed marks the running executable as the netbed command, so
// that the controller and the speakers run from it even when its file is
// not called netbed, rather than from a netbed found beside it (which may
// be an older build). cmd/netbed's main calls it.
func ThisIsNetbed() { selfIsNetbed.Store(true) }

// FindNetbed returns the path of the netbed executable, looked for as
// Runtime.ControllerBinary says.
func FindNetbed() (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		if selfIsNetbed.Load() || filepath.Base(exe) == Executable {
			return exe, nil
		}
		p := filepath.Join(filepath.Dir(exe), Executable)
		if isExec(p) {
			return p, nil
		}
		tried = append(tried, filepath.Dir(exe))
	}
	if p, err := exec.LookPath(Executable); err == nil {
		return p, nil
	}
	tried = append(tried, "$PATH")
	if p, err := filepath.Abs(filepath.Join("bin", Executable)); err == nil && isExec(p) {
		return p, nil
	}
	tried = append(tried, "./bin")
	return "", fmt.Errorf("%w: %s (it serves the controller as its own process on netns) is not in %s; run make build",
		errNoNetbed, Executable, strings.Join(tried, ", "))
}

var errNoNetbed = errors.New("netbed executable not found")

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
