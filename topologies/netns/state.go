package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	Complete bool      `json:"complete"`
	PID      int       `json:"pid"`
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
	s.Updated = time.Now().UTC()
	return writeJSON(filepath.Join(dir, stateFile), s)
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
