package netns

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/netbed/netbed/topologies"
)

// Labs lists the netbed labs on this machine: those with a state directory
// and those found only by the mark on their namespaces' interfaces (a run
// killed before its state was written, or whose state was removed), sorted
// by name. opt may be nil.
func Labs(opt *Options) ([]LabInfo, error) {
	root := opt.stateRoot()
	names, err := listStates(root)
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	marked, err := scanMarked(context.Background(), opt, nil)
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	for n := range marked {
		set[n] = true
	}
	var out []LabInfo
	for _, lab := range sortedKeys(set) {
		li := LabInfo{Name: lab, Prefix: (&topologies.Topology{Name: lab}).LabPrefix()}
		var listed []string
		if st, t, err := readState(root, lab); err == nil {
			li.State = st
			listed = st.Namespaces
			if t != nil {
				li.Nodes = len(t.Nodes)
				li.Prefix = t.LabPrefix()
			} else {
				li.Nodes = len(st.Namespaces)
			}
		}
		for _, ns := range union(listed, marked[lab]) {
			if _, err := os.Lstat(nsPath(ns)); err == nil {
				li.Namespaces = append(li.Namespaces, ns)
			}
		}
		slices.Sort(li.Namespaces)
		out = append(out, li)
	}
	return out, nil
}
