package netns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netbed/netbed/topologies"
)

// State is what netbed records about a lab in <StateRoot>/<lab>/state.json
// before it creates anything, so that a crashed or killed run can be undone.
// The topology itself is kept beside it in topology.json.
type State struct {
	Lab string `json:"lab"`
	// Namespaces lists every namespace the lab owns (or is about to).
	Namespaces []string `json:"namespaces"`
	// Complete is set once Deploy finished without error.
	Complete bool `json:"complete"`
	// Backend says what deployed the lab (Options.Backend): "netns" for
	// a scenario run's lab, empty for a bare topology ('netbed up').
	Backend string `json:"backend,omitempty"`
	// TempDirs are directories the lab's owner made outside the state
	// directory (CNI cache, controller store, captures): removed with the
	// lab, so that a killed run leaves none (see RecordTempDir).
	TempDirs []string `json:"temp_dirs,omitempty"`
	// Processes are daemons the lab's owner started for it (FRR's zebra,
	// bgpd and bfdd on an FRR leaf; see RecordProcess): Destroy kills
	// those still running, wherever their namespace is, before whatever
	// runs in the lab's namespaces.
	Processes []Process `json:"processes,omitempty"`
	// PID is the owning process; PIDStart its start time in clock ticks
	// since boot (/proc/<pid>/stat), which tells a live owner from a
	// later process that reuses the PID.
	PID      int       `json:"pid"`
	PIDStart uint64    `json:"pid_start,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	Updated  time.Time `json:"updated"`
}

const (
	stateFile    = "state.json"
	topologyFile = "topology.json"
)

func labDir(root, lab string) string { return filepath.Join(root, lab) }

// writeState records s and t under root, replacing files atomically.
func writeState(root string, s *State, t *topologies.Topology) error {
	dir := labDir(root, s.Lab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if t != nil {
		if err := writeJSON(filepath.Join(dir, topologyFile), t); err != nil {
			return err
		}
	}
	s.PID = os.Getpid()
	s.PIDStart = procStart(s.PID)
	s.Updated = time.Now().UTC()
	if s.Created.IsZero() {
		s.Created = s.Updated
	}
	return writeJSON(filepath.Join(dir, stateFile), s)
}

// procStart returns pid's start time in clock ticks since boot, or 0 when
// it cannot be read (no such process, no /proc).
func procStart(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	const startTime = 22 - 3 // field 22, counted from field 3
	if len(f) <= startTime {
		return 0
	}
	v, _ := strconv.ParseUint(f[startTime], 10, 64)
	return v
}

// OwnerAlive reports whether the process that recorded s still runs (and
// is the same process, not a later one with its PID).
func (s *State) OwnerAlive() bool {
	if s.PID <= 0 {
		return false
	}
	start := procStart(s.PID)
	return start != 0 && (s.PIDStart == 0 || start == s.PIDStart)
}

// stateMu serialises read-modify-write of state files within a process.
var stateMu sync.Mutex

// RecordTempDir adds dir to the temporary directories of lab's state, so
// that Destroy and DestroyAll remove it even when the process that made it
// was killed. dir must be absolute and lie under the system's temporary
// directory or /run (Destroy removes nothing else). opt may be nil.
func RecordTempDir(lab, dir string, opt *Options) error {
	if !removableTempDir(dir) {
		return fmt.Errorf("record temporary directory %q of lab %s: not an absolute path under %s or /run", dir, lab, os.TempDir())
	}
	stateMu.Lock()
	defer stateMu.Unlock()
	root := opt.stateRoot()
	st, _, err := readState(root, lab)
	if err != nil {
		return fmt.Errorf("record temporary directory of lab %s: %w", lab, err)
	}
	if slices.Contains(st.TempDirs, dir) {
		return nil
	}
	st.TempDirs = append(st.TempDirs, dir)
	return writeState(root, st, nil)
}

// Process is one recorded daemon: its PID, its start time in clock ticks
// since boot (which tells it from a later process with its PID), and what
// it is ("leaf3 bgpd").
type Process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	What  string `json:"what"`
}

// RecordProcess adds the running process pid to lab's state, so that
// Destroy and DestroyAll kill it even when the process that started it
// was killed. opt may be nil.
func RecordProcess(lab string, pid int, what string, opt *Options) error {
	start := procStart(pid)
	if start == 0 {
		return fmt.Errorf("record process %d (%s) of lab %s: it does not run", pid, what, lab)
	}
	stateMu.Lock()
	defer stateMu.Unlock()
	root := opt.stateRoot()
	st, _, err := readState(root, lab)
	if err != nil {
		return fmt.Errorf("record process %d (%s): %w", pid, what, err)
	}
	// Processes that ended are dropped: a restarted daemon replaces them.
	st.Processes = slices.DeleteFunc(st.Processes, func(p Process) bool { return procStart(p.PID) != p.Start })
	st.Processes = append(st.Processes, Process{PID: pid, Start: start, What: what})
	return writeState(root, st, nil)
}

// removableTempDir accepts the directories RecordTempDir may record: an
// absolute, clean path strictly below the temporary directory or /run.
func removableTempDir(dir string) bool {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return false
	}
	for _, base := range []string{filepath.Clean(os.TempDir()), "/tmp", "/run"} {
		if strings.HasPrefix(dir, base+"/") {
			return true
		}
	}
	return false
}

// removeTempDirs removes the temporary directories recorded in lab's state
// (none when it has no state) and reports how many existed.
func removeTempDirs(root, lab string) (int, error) {
	st, _, err := readState(root, lab)
	if err != nil {
		return 0, nil
	}
	n := 0
	var errs []error
	for _, d := range st.TempDirs {
		if !removableTempDir(d) {
			continue // a hand-edited state: not ours to remove
		}
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove temporary directory of lab %s: %w", lab, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readState loads the state of lab; the topology is nil when its file is
// missing (a run killed between the two writes).
func readState(root, lab string) (*State, *topologies.Topology, error) {
	dir := labDir(root, lab)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read state of lab %s: %w", lab, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("read state of lab %s: %s: %w", lab, filepath.Join(dir, stateFile), err)
	}
	var t *topologies.Topology
	if b, err := os.ReadFile(filepath.Join(dir, topologyFile)); err == nil {
		t = new(topologies.Topology)
		if err := json.Unmarshal(b, t); err != nil {
			return nil, nil, fmt.Errorf("read topology of lab %s: %w", lab, err)
		}
	}
	return &s, t, nil
}

// listStates returns the names of labs with a state directory under root.
func listStates(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func removeState(root, lab string) error {
	if err := os.RemoveAll(labDir(root, lab)); err != nil {
		return fmt.Errorf("remove state of lab %s: %w", lab, err)
	}
	return nil
}
