package topologies

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Role is what a node does in a fabric. Roles decide which datapath model a
// generation runs on a node and how scenarios address it ("fail a leaf").
type Role string

// The roles netbed knows. Access and ToR are synonyms in the seed's three-tier
// fabric (Fig. 4); both are accepted.
const (
	RoleHost        Role = "host"
	RoleToR         Role = "tor"
	RoleAccess      Role = "access"
	RoleAggregation Role = "aggregation"
	RoleCore        Role = "core"
	RoleSpine       Role = "spine"
	RoleLeaf        Role = "leaf"
	RoleBorder      Role = "border"
	RoleFirewall    Role = "firewall"
	// A public cloud's VPC (generation vpc): its implicit router, its
	// internet gateway, and a network outside it (clients on the
	// internet).
	RoleVPCRouter       Role = "vpc-router"
	RoleInternetGateway Role = "internet-gateway"
	RoleExternal        Role = "external"
)

// Roles lists every known role in a stable order.
var Roles = []Role{RoleHost, RoleToR, RoleAccess, RoleAggregation, RoleCore, RoleSpine, RoleLeaf, RoleBorder, RoleFirewall,
	RoleVPCRouter, RoleInternetGateway, RoleExternal}

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// IsSwitch reports whether r forwards frames in the fabric (everything but
// hosts and firewalls).
func (r Role) IsSwitch() bool {
	switch r {
	case RoleToR, RoleAccess, RoleAggregation, RoleCore, RoleSpine, RoleLeaf, RoleBorder:
		return true
	}
	return false
}

// Node is one device of a topology: a server or a network device.
type Node struct {
	Name string
	Role Role
	// AZ is the availability zone; empty for single-AZ topologies.
	AZ string
	// Rack groups hosts with the ToR or leaf pair they hang off.
	Rack string
	// Site is the part of a hybrid network the node belongs to: the
	// private cloud, or a VPC in a region, each run by its own generation
	// and joined to the others by dedicated lines (links between nodes of
	// two sites). Empty: the topology is one site.
	Site string
	// Kind and Image are carried through to containerlab files ("linux",
	// "nokia_srlinux", ...). They do not change how netbed models the node.
	Kind  string
	Image string
	// Labels are free-form; netbed's own keys start with "netbed.".
	Labels map[string]string
	// Extra holds the containerlab node fields netbed does not model
	// (startup-config, binds, env, type, ...), as decoded from YAML, so
	// that a lab read from a containerlab file is written back with them.
	Extra map[string]any
}

// Endpoint is one end of a link: a node and one of its interfaces.
type Endpoint struct {
	Node  string
	Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link joins two interfaces. Zero Rate, Delay and MTU mean the defaults
// (DefaultRate, no delay, DefaultMTU).
type Link struct {
	A, B Endpoint
	// Rate in bits per second.
	Rate  int64
	Delay time.Duration
	MTU   int
}

// Link defaults.
const (
	DefaultRate int64 = 10_000_000_000
	DefaultMTU        = 1500
)

// Topology is a graph of nodes and links. It does no I/O; readers, writers
// and realisations live in subpackages.
type Topology struct {
	// Name is the lab name (containerlab's "name").
	Name string
	// Prefix follows containerlab: nil (the key absent or `prefix: null`)
	// means the default "clab"; a pointer to "" means no prefix at all
	// (`prefix: ""`); PrefixLabName ("__lab-name") keeps only the lab name.
	Prefix *string
	Nodes  []*Node
	Links  []*Link
	// Extra holds top-level containerlab sections netbed does not model
	// ("mgmt", "settings"), carried from file to file unchanged.
	Extra map[string]any
}

// Node returns the node called name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// AddNode appends a node and returns it.
func (t *Topology) AddNode(name string, role Role) *Node {
	n := &Node{Name: name, Role: role}
	t.Nodes = append(t.Nodes, n)
	return n
}

// Connect links a:aIface to b:bIface and returns the link.
func (t *Topology) Connect(a, aIface, b, bIface string) *Link {
	l := &Link{A: Endpoint{a, aIface}, B: Endpoint{b, bIface}}
	t.Links = append(t.Links, l)
	return l
}

// NodesByRole returns the nodes with role r, in topology order.
func (t *Topology) NodesByRole(r Role) []*Node {
	var out []*Node
	for _, n := range t.Nodes {
		if n.Role == r {
			out = append(out, n)
		}
	}
	return out
}

// Interfaces returns the interface names of node in link order.
func (t *Topology) Interfaces(node string) []string {
	var out []string
	for _, l := range t.Links {
		if l.A.Node == node {
			out = append(out, l.A.Iface)
		}
		if l.B.Node == node {
			out = append(out, l.B.Iface)
		}
	}
	return out
}

// Neighbors returns the distinct nodes linked to node, sorted by name.
func (t *Topology) Neighbors(node string) []string {
	seen := map[string]bool{}
	for _, l := range t.Links {
		if l.A.Node == node {
			seen[l.B.Node] = true
		}
		if l.B.Node == node {
			seen[l.A.Node] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Sites returns the distinct non-empty sites of the nodes, in topology
// order.
func (t *Topology) Sites() []string {
	var out []string
	for _, n := range t.Nodes {
		if n.Site != "" && !slices.Contains(out, n.Site) {
			out = append(out, n.Site)
		}
	}
	return out
}

// Lines returns the links joining two sites (dedicated lines), in link
// order.
func (t *Topology) Lines() []*Link {
	var out []*Link
	for _, l := range t.Links {
		a, b := t.Node(l.A.Node), t.Node(l.B.Node)
		if a != nil && b != nil && a.Site != b.Site {
			out = append(out, l)
		}
	}
	return out
}

// Peer returns the endpoint at the other end of the link on e, if any.
func (t *Topology) Peer(e Endpoint) (Endpoint, *Link, bool) {
	for _, l := range t.Links {
		if l.A == e {
			return l.B, l, true
		}
		if l.B == e {
			return l.A, l, true
		}
	}
	return Endpoint{}, nil, false
}

// PrefixLabName is containerlab's magic prefix value: containers are named
// "<lab>-<node>", without the "clab" part.
const PrefixLabName = "__lab-name"

// LabPrefix returns the namespace/container name prefix containerlab would
// use: "clab-<name>-" by default, "<prefix>-<name>-" for a custom prefix,
// "<name>-" for the magic prefix "__lab-name" and "" when the prefix is empty.
func (t *Topology) LabPrefix() string {
	if t.Prefix == nil {
		return "clab-" + t.Name + "-"
	}
	switch *t.Prefix {
	case "":
		return ""
	case PrefixLabName:
		return t.Name + "-"
	}
	return *t.Prefix + "-" + t.Name + "-"
}

// String summarises the topology in one line.
func (t *Topology) String() string {
	return fmt.Sprintf("%s: %d nodes, %d links", t.Name, len(t.Nodes), len(t.Links))
}
