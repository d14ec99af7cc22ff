package netns

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netbed/netbed/topologies"
)

// Destroy removes every namespace of lab (and with them its veth pairs) and
// its state. The namespaces are those the state lists, with those named
// with the lab's prefix that carry its alias (instances a runtime added),
// or, when the state is gone, those whose interfaces carry the lab's alias. A lab that does not
// exist is not an error: the report is empty. opt may be nil.
func Destroy(lab string, opt *Options) (*DestroyReport, error) {
	start := time.Now()
	root := opt.stateRoot()
	var names []string
	st, _, err := readState(root, lab)
	if err == nil {
		names = st.Namespaces
		// Namespaces a runtime added to the lab (its instances) carry
		// the lab's mark but are not in its state: looked for by the
		// lab's default namespace prefix, taken by the mark.
		prefix := (&topologies.Topology{Name: lab}).LabPrefix()
		marked, err := scanMarked(context.Background(), opt, func(n string) bool {
			return strings.HasPrefix(n, prefix) && !slices.Contains(names, n)
		})
		if err != nil {
			return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
		}
		names = union(names, marked[lab])
	} else {
		marked, err := scanMarked(context.Background(), opt, nil)
		if err != nil {
			return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
		}
		names = marked[lab]
		if len(names) == 0 {
			if _, statErr := os.Stat(labDir(root, lab)); statErr != nil {
				return &DestroyReport{Duration: time.Since(start)}, nil
			}
		}
	}
	rep, err := destroyLab(lab, names, root, opt)
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// DestroyAll removes every netbed lab on the machine: those with a state
// directory and any namespace whose interfaces carry a netbed alias, which
// covers a run killed before its state was complete. opt.Match, when set,
// limits it to the labs it accepts.
func DestroyAll(opt *Options) (*DestroyReport, error) {
	start := time.Now()
	root := opt.stateRoot()
	labs, err := listStates(root)
	if err != nil {
		return nil, fmt.Errorf("destroy all labs: %w", err)
	}
	marked, err := scanMarked(context.Background(), opt, nil)
	if err != nil {
		return nil, fmt.Errorf("destroy all labs: %w", err)
	}
	set := map[string]bool{}
	for _, l := range labs {
		set[l] = true
	}
	for l := range marked {
		set[l] = true
	}
	total := &DestroyReport{}
	var errs []error
	for _, lab := range sortedKeys(set) {
		if opt != nil && opt.Match != nil && !opt.Match(lab) {
			continue
		}
		names := marked[lab]
		if st, _, err := readState(root, lab); err == nil {
			names = union(st.Namespaces, names)
		}
		rep, err := destroyLab(lab, names, root, opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		total.add(rep)
	}
	total.Duration = time.Since(start)
	if len(errs) > 0 {
		return total, fmt.Errorf("destroy all labs: %w", joinErrs(errs))
	}
	return total, nil
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func destroyLab(lab string, names []string, root string, opt *Options) (*DestroyReport, error) {
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = nsPath(n)
	}
	recorded, err := killRecorded(root, lab)
	if err != nil {
		return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
	}
	killed, err := killProcessesIn(paths)
	if err != nil {
		return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
	}
	killed += recorded
	var removed atomic.Int64
	err = pool(context.Background(), len(names), workerCount(opt, len(names)), simple(func(i int) error {
		ok, err := removeNamespace(names[i])
		if ok {
			removed.Add(1)
		}
		return err
	}))
	if err != nil {
		return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
	}
	dirs, err := removeTempDirs(root, lab)
	if err != nil {
		return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
	}
	if err := removeState(root, lab); err != nil {
		return nil, fmt.Errorf("destroy lab %s: %w", lab, err)
	}
	return &DestroyReport{Labs: []string{lab}, Namespaces: int(removed.Load()), TempDirs: dirs, Processes: killed}, nil
}

// scanMarked opens every namespace under NetnsDir and returns, per lab,
// those with an interface whose alias is netbed's mark.
func scanMarked(ctx context.Context, opt *Options, keep func(name string) bool) (map[string][]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", NetnsDir, err)
	}
	var mu sync.Mutex
	out := map[string][]string{}
	err = pool(ctx, len(ents), workerCount(opt, len(ents)), simple(func(i int) error {
		name := ents[i].Name()
		if keep != nil && !keep(name) || !isNamespace(nsPath(name)) {
			return nil
		}
		s, err := openNode(nsPath(name))
		if err != nil {
			return nil // vanished meanwhile, or not ours to read
		}
		defer s.close()
		links, err := s.nl.LinkList()
		if err != nil {
			return fmt.Errorf("list links of namespace %s: %w", name, err)
		}
		for _, l := range links {
			if lab, ok := strings.CutPrefix(l.Attrs().Alias, AliasPrefix); ok && lab != "" {
				mu.Lock()
				out[lab] = append(out[lab], name)
				mu.Unlock()
				break
			}
		}
		return nil
	}))
	for _, v := range out {
		sort.Strings(v)
	}
	return out, err
}
