package netnsrt

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindNetbedPrefersItself: once the running executable says it is
// netbed (cmd/netbed's main), FindNetbed returns it whatever its file is
// called, even with another executable called netbed beside it (an
// older build, which ran the speakers of a renamed newer one).
func TestFindNetbedPrefersItself(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(exe) == Executable {
		t.Fatalf("the test binary is called %s: the test cannot tell the cases apart", Executable)
	}
	defer selfIsNetbed.Store(selfIsNetbed.Load())
	selfIsNetbed.Store(false)
	before, _ := FindNetbed() // whatever is found beside, on $PATH or in ./bin
	ThisIsNetbed()
	got, err := FindNetbed()
	if err != nil {
		t.Fatal(err)
	}
	if got != exe {
		t.Errorf("FindNetbed after ThisIsNetbed = %s, want the running executable %s (before: %q)", got, exe, before)
	}
}
