package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecordTempDir: a lab's temporary directories are recorded once,
// only under the temporary directory or /run, and removeTempDirs removes
// those and nothing else.
func TestRecordTempDir(t *testing.T) {
	root := t.TempDir()
	opt := &Options{StateRoot: root}
	if err := writeState(root, &State{Lab: "l"}, nil); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "netbed-test-record-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "store.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := RecordTempDir("l", dir, opt); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"/etc", "relative/dir", "/tmp/../etc", "/tmp", "/run", "/home/user/x"} {
		if err := RecordTempDir("l", bad, opt); err == nil {
			t.Errorf("RecordTempDir(%q) accepted", bad)
		}
	}
	if err := RecordTempDir("no-such-lab", dir, opt); err == nil {
		t.Error("RecordTempDir of a lab without state accepted")
	}
	st, _, err := readState(root, "l")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.TempDirs, []string{dir}) || st.Created.IsZero() {
		t.Fatalf("state %+v", st)
	}
	// A hand-edited state naming a directory outside is left alone.
	keep := t.TempDir()
	st.TempDirs = append(st.TempDirs, "/etc", keep+"/../"+filepath.Base(keep))
	if err := writeState(root, st, nil); err != nil {
		t.Fatal(err)
	}
	n, err := removeTempDirs(root, "l")
	if err != nil || n != 1 {
		t.Errorf("removeTempDirs: %d, %v", n, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("%s removed: %v", keep, err)
	}
}

// TestOwnerAlive: the recording process is alive; a process that exited,
// or another one that took its PID, is not.
func TestOwnerAlive(t *testing.T) {
	root := t.TempDir()
	st := &State{Lab: "l"}
	if err := writeState(root, st, nil); err != nil {
		t.Fatal(err)
	}
	if !st.OwnerAlive() || st.PIDStart == 0 {
		t.Errorf("this process: alive %v, start %d", st.OwnerAlive(), st.PIDStart)
	}
	reused := *st
	reused.PIDStart++
	if reused.OwnerAlive() {
		t.Error("a PID reused by a later process taken for the owner")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no 'true' to run: %v", err)
	}
	gone := State{PID: cmd.Process.Pid, PIDStart: 1}
	if gone.OwnerAlive() {
		t.Errorf("exited process %d alive", gone.PID)
	}
}
