package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	netbedOnce sync.Once
	netbedDir  string
	netbedErr  error
)

// netbedOnPath builds netbed once into a temporary directory and puts it
// first on $PATH: a netns run serves its controller as a netbed process
// (`netbed controller serve`), and a test binary is not netbed. TestMain
// (labs_test.go) removes the directory.
func netbedOnPath(t *testing.T) {
	t.Helper()
	netbedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "netbed-test-bin-")
		if err != nil {
			netbedErr = err
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "netbed"), "github.com/netbed/netbed/cmd/netbed").CombinedOutput(); err != nil {
			netbedErr = &buildError{err, string(out)}
			return
		}
		netbedDir = dir
	})
	if netbedErr != nil {
		t.Fatalf("go build netbed: %v", netbedErr)
	}
	t.Setenv("PATH", netbedDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
