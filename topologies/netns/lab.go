package netns

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/netbed/netbed/topologies"
)

// Where netbed keeps its marks on the machine.
const (
	// NetnsDir is where named namespaces are bind-mounted, as iproute2 does,
	// so that `ip netns exec <name>` finds them.
	NetnsDir = "/run/netns"
	// StateRoot holds one directory per deployed lab (see State).
	StateRoot = "/run/netbed/labs"
	// AliasPrefix starts the interface alias ("netbed:<lab>") put on every
	// link netbed creates, loopbacks included, so that namespaces left by a
	// killed run can be found without the state directory.
	AliasPrefix = "netbed:"
)

// Errors callers test with errors.Is.
var (
	// ErrUnsupported: the platform has no network namespaces.
	ErrUnsupported = errors.New("network namespaces are only supported on Linux")
	// ErrNotDeployed: a lab, node namespace or interface that Attach or a
	// Lab method needs does not exist.
	ErrNotDeployed = errors.New("not deployed")
	// ErrUnknownNode: a node name that is not in the lab.
	ErrUnknownNode = errors.New("unknown node")
	// ErrForeign: Deploy found a namespace with the name it wants that
	// belongs to something else (another netbed lab, or containerlab).
	ErrForeign = errors.New("namespace belongs to another lab")
)

// Alias returns the interface alias that marks netbed's links of lab.
func Alias(lab string) string { return AliasPrefix + lab }

// Options tune Deploy. The zero value is the default.
type Options struct {
	// Workers is how many namespaces or links are set up at once; zero means
	// twice the number of CPUs.
	Workers int
	// StateRoot overrides StateRoot (tests use it to keep their state apart).
	StateRoot string
	// Match, when set, limits DestroyAll to the labs it accepts.
	Match func(lab string) bool
	// Backend is recorded in the lab's state for 'netbed labs' (State.Backend).
	Backend string
}

func (o *Options) backend() string {
	if o == nil {
		return ""
	}
	return o.Backend
}

// LabDir is the directory where lab's state is recorded (under the
// state root); Destroy removes it with everything in it.
func (o *Options) LabDir(lab string) string { return labDir(o.stateRoot(), lab) }

func (o *Options) stateRoot() string {
	if o == nil || o.StateRoot == "" {
		return StateRoot
	}
	return o.StateRoot
}

// Report says what Deploy did. A second Deploy of the same topology reports
// everything as present and nothing as created or replaced.
type Report struct {
	Lab   string
	Nodes int
	Links int
	// NamespacesCreated and NamespacesPresent add up to Nodes.
	// NamespacesRemoved counts namespaces of nodes an earlier deploy of the
	// lab had and the topology no longer has.
	NamespacesCreated, NamespacesPresent, NamespacesRemoved int
	// LinksCreated + LinksPresent + LinksReplaced add up to Links.
	// Replaced links existed with the wrong peer and were recreated; Fixed
	// counts present links whose MTU, state or alias were corrected.
	// LinksRemoved counts interfaces with the lab's mark that the topology
	// no longer has (counted per end: a removed veth pair may count 1 or 2).
	LinksCreated, LinksPresent, LinksReplaced, LinksFixed, LinksRemoved int
	// Duration is the whole deploy; NamespacesTook and LinksTook its two
	// stages.
	Duration, NamespacesTook, LinksTook time.Duration
}

// NodesPerSecond is the deploy rate.
func (r *Report) NodesPerSecond() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Nodes) / r.Duration.Seconds()
}

// Changed reports whether Deploy created, replaced or fixed anything.
func (r *Report) Changed() bool {
	return r.NamespacesCreated+r.NamespacesRemoved+r.LinksCreated+r.LinksReplaced+r.LinksFixed+r.LinksRemoved > 0
}

func (r *Report) String() string {
	s := fmt.Sprintf("lab %s: %d nodes (%d created, %d present), %d links (%d created, %d present, %d replaced, %d fixed) in %v (%.0f nodes/s)",
		r.Lab, r.Nodes, r.NamespacesCreated, r.NamespacesPresent,
		r.Links, r.LinksCreated, r.LinksPresent, r.LinksReplaced, r.LinksFixed,
		r.Duration.Round(time.Millisecond), r.NodesPerSecond())
	if r.NamespacesRemoved+r.LinksRemoved > 0 {
		s += fmt.Sprintf("; removed %d stale namespaces and %d stale interfaces", r.NamespacesRemoved, r.LinksRemoved)
	}
	return s
}

// DestroyReport says what Destroy or DestroyAll removed.
type DestroyReport struct {
	// Labs removed, sorted.
	Labs []string
	// Namespaces removed.
	Namespaces int
	// TempDirs is how many of the labs' recorded temporary directories
	// were removed (State.TempDirs).
	TempDirs int
	// Processes is how many processes still running in the labs'
	// namespaces (BGP speakers, OVS and FRR daemons of a killed run)
	// were killed.
	Processes int
	Duration  time.Duration
}

func (r *DestroyReport) add(o *DestroyReport) {
	r.Labs = append(r.Labs, o.Labs...)
	r.Namespaces += o.Namespaces
	r.TempDirs += o.TempDirs
	r.Processes += o.Processes
}

func (r *DestroyReport) String() string {
	if len(r.Labs) == 0 {
		return "nothing to remove"
	}
	dirs := ""
	if r.TempDirs > 0 {
		dirs = fmt.Sprintf(", %d temporary directories", r.TempDirs)
	}
	if r.Processes > 0 {
		dirs += fmt.Sprintf(", %d processes killed", r.Processes)
	}
	return fmt.Sprintf("removed %s: %d namespaces%s in %v", strings.Join(r.Labs, ", "), r.Namespaces, dirs, r.Duration.Round(time.Millisecond))
}

// Node is one node of a deployed or attached lab.
type Node struct {
	// Name is the node's name in the topology ("leaf1").
	Name string
	// Netns is the namespace's name under NetnsDir ("clab-lab-leaf1").
	Netns string
	// Ifaces are the node's interface names from the topology, in link order.
	Ifaces []string

	sys nodeSys // platform part: open namespace and netlink handle
}

// Path is the namespace's bind mount, e.g. /run/netns/clab-lab-leaf1.
func (n *Node) Path() string { return NetnsDir + "/" + n.Netns }

// Lab is a topology realised as namespaces and veth pairs, deployed by this
// process or attached to. It holds an open handle on every namespace until
// Close; closing does not remove anything (Destroy does).
type Lab struct {
	// Name is the lab name (the topology's name).
	Name     string
	Topology *topologies.Topology
	nodes    map[string]*Node
	order    []string
	// owned is set for labs netbed deployed (they may be destroyed);
	// stateRoot is where their state lives.
	owned     bool
	stateRoot string
}

// Nodes returns the node names in topology order.
func (l *Lab) Nodes() []string { return append([]string(nil), l.order...) }

// Node returns the node called name.
func (l *Lab) Node(name string) (*Node, error) {
	n, ok := l.nodes[name]
	if !ok {
		return nil, fmt.Errorf("lab %s: node %q: %w", l.Name, name, ErrUnknownNode)
	}
	return n, nil
}

// NetnsName returns the namespace name of node, e.g. "clab-lab-leaf1".
func (l *Lab) NetnsName(node string) (string, error) {
	n, err := l.Node(node)
	if err != nil {
		return "", err
	}
	return n.Netns, nil
}

// newLab builds the node table of t, naming namespaces with names(node).
func newLab(t *topologies.Topology, names func(node string) string) *Lab {
	l := &Lab{Name: t.Name, Topology: t, nodes: make(map[string]*Node, len(t.Nodes))}
	ifaces := make(map[string][]string, len(t.Nodes))
	for _, lk := range t.Links {
		ifaces[lk.A.Node] = append(ifaces[lk.A.Node], lk.A.Iface)
		ifaces[lk.B.Node] = append(ifaces[lk.B.Node], lk.B.Iface)
	}
	for _, n := range t.Nodes {
		l.nodes[n.Name] = &Node{Name: n.Name, Netns: names(n.Name), Ifaces: ifaces[n.Name]}
		l.order = append(l.order, n.Name)
	}
	return l
}

// maxIfName is the kernel's limit on interface names (IFNAMSIZ-1).
const maxIfName = 15

// checkTopology reports what stops t from being deployed as namespaces:
// this is narrower than topologies' own validation (roles do not matter
// here) but names every problem at once.
func checkTopology(t *topologies.Topology) error {
	if t == nil {
		return errors.New("no topology")
	}
	var errs []error
	if t.Name == "" || strings.ContainsAny(t.Name, "/\x00") || t.Name == "." || t.Name == ".." {
		errs = append(errs, fmt.Errorf("lab name %q: must be non-empty and contain no '/'; set `name:` in the topology file", t.Name))
	}
	nodes := make(map[string]bool, len(t.Nodes))
	for _, n := range t.Nodes {
		switch {
		case n.Name == "" || strings.ContainsAny(n.Name, "/\x00"):
			errs = append(errs, fmt.Errorf("node %q: name must be non-empty and contain no '/'", n.Name))
		case nodes[n.Name]:
			errs = append(errs, fmt.Errorf("node %q: defined twice", n.Name))
		}
		nodes[n.Name] = true
		if len(t.LabPrefix()+n.Name) > 255 {
			errs = append(errs, fmt.Errorf("node %q: namespace name %q is longer than 255 bytes", n.Name, t.LabPrefix()+n.Name))
		}
	}
	ends := map[topologies.Endpoint]int{}
	for i, lk := range t.Links {
		for _, e := range []topologies.Endpoint{lk.A, lk.B} {
			if !nodes[e.Node] {
				errs = append(errs, fmt.Errorf("link %d (%s--%s): node %q does not exist; add it under nodes or fix the endpoint", i, lk.A, lk.B, e.Node))
			}
			if e.Iface == "" || len(e.Iface) > maxIfName || strings.ContainsAny(e.Iface, "/ :\x00") || e.Iface == "lo" {
				errs = append(errs, fmt.Errorf("link %d: interface %q: Linux needs 1 to %d characters without '/', ':' or spaces (and not \"lo\"); rename it", i, e, maxIfName))
			}
			if j, dup := ends[e]; dup {
				errs = append(errs, fmt.Errorf("link %d: interface %s is already used by link %d", i, e, j))
			}
			ends[e] = i
		}
		if lk.MTU < 0 || lk.MTU > 65535 {
			errs = append(errs, fmt.Errorf("link %d (%s--%s): MTU %d out of range 68..65535", i, lk.A, lk.B, lk.MTU))
		}
	}
	return errors.Join(errs...)
}

func linkMTU(l *topologies.Link) int {
	if l.MTU == 0 {
		return topologies.DefaultMTU
	}
	return l.MTU
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// LabInfo is one lab on the machine, as Labs finds it.
type LabInfo struct {
	Name string
	// State is the lab's recorded state; nil for a lab found only by the
	// marks on its namespaces' interfaces.
	State *State
	// Nodes is the topology's node count (from the state).
	Nodes int
	// Namespaces are the lab's namespaces that exist now: its nodes' and
	// those a runtime added for instances.
	Namespaces []string
	// Prefix starts the names of the lab's node namespaces
	// ("clab-<lab>-").
	Prefix string
}

// Age is how long ago the lab was deployed, or zero when that is unknown
// (a lab found only by its marks).
func (li LabInfo) Age(now time.Time) time.Duration {
	if li.State == nil {
		return 0
	}
	created := li.State.Created
	if created.IsZero() {
		created = li.State.Updated
	}
	return now.Sub(created)
}
