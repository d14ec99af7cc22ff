package clab

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/netbed/netbed/topologies"
)

// Role inference for nodes without a netbed.role label, strongest evidence
// first:
//  1. a group named after a role ("spine", "leaves", "servers");
//  2. a containerlab generate tier group: tier-1 are leaves, higher tiers
//     spines (a third tier, super-spines, is modelled as spines);
//  3. the node's name ("dc1-leaf3", "tor2", "fw1", "h1");
//  4. the kind (a bridge is an access switch);
//  5. the graph's shape, repeated until nothing changes: a linux node with
//     one or two links, all to leaves/ToRs, is a host; a node linked to
//     hosts is a leaf (a ToR when it also reaches aggregation switches);
//     a node linked only to spines is a leaf; a node linked only to leaves
//     is a spine.
// AZs are inferred from an "azN-" name prefix.

var (
	tierGroup = regexp.MustCompile(`(?i)^tier-?(\d+)$`)
	azPrefix  = regexp.MustCompile(`^(az\d+)-`)
)

// words maps words found in names and groups to roles. Contained words
// are matched anywhere in the name, in this order (so "border-leaf" is a
// border and "superspine" a spine); exact words must be a whole token.
var (
	containedWords = []struct {
		word string
		role topologies.Role
	}{
		{"border", topologies.RoleBorder},
		{"spine", topologies.RoleSpine},
		{"leaves", topologies.RoleLeaf},
		{"leaf", topologies.RoleLeaf},
		{"core", topologies.RoleCore},
		{"firewall", topologies.RoleFirewall},
		{"aggregation", topologies.RoleAggregation},
		{"aggr", topologies.RoleAggregation},
		{"distribution", topologies.RoleAggregation},
		{"access", topologies.RoleAccess},
		{"server", topologies.RoleHost},
		{"host", topologies.RoleHost},
		{"client", topologies.RoleHost},
	}
	exactWords = map[string]topologies.Role{
		"tor": topologies.RoleToR, "tors": topologies.RoleToR,
		"fw": topologies.RoleFirewall, "agg": topologies.RoleAggregation,
		"acc": topologies.RoleAccess, "bl": topologies.RoleBorder,
		"srv": topologies.RoleHost, "pc": topologies.RoleHost, "vm": topologies.RoleHost,
		"h": topologies.RoleHost,
	}
)

// roleFromWords finds a role named in s, and the word that named it.
func roleFromWords(s string) (topologies.Role, string) {
	low := strings.ToLower(s)
	for _, w := range containedWords {
		if strings.Contains(low, w.word) {
			return w.role, w.word
		}
	}
	tokens := strings.FieldsFunc(low, func(r rune) bool { return r < 'a' || r > 'z' })
	for _, tok := range tokens {
		if r, ok := exactWords[tok]; ok {
			return r, tok
		}
	}
	return "", ""
}

// hostKinds are kinds that run servers rather than network OSes.
var hostKinds = set("linux", "generic_vm", "k8s-kind", "ext-container", "")

func infer(t *topologies.Topology, groupOf map[string]string, rep *Report) {
	maxTier := 0
	for _, g := range groupOf {
		if m := tierGroup.FindStringSubmatch(g); m != nil {
			n, _ := strconv.Atoi(m[1])
			maxTier = max(maxTier, n)
		}
	}
	for _, n := range t.Nodes {
		if n.AZ == "" {
			if m := azPrefix.FindStringSubmatch(n.Name); m != nil {
				n.AZ = m[1]
				rep.infer(n.Name, "az", n.AZ, "name prefix %s-", m[1])
			}
		}
		if n.Role != "" {
			continue
		}
		g := groupOf[n.Name]
		if r, w := roleFromWords(g); r != "" && !tierGroup.MatchString(g) {
			n.Role = r
			rep.infer(n.Name, "role", string(r), "group %s, word %q", g, w)
			continue
		}
		if m := tierGroup.FindStringSubmatch(g); m != nil {
			tier, _ := strconv.Atoi(m[1])
			switch {
			case tier <= 1:
				n.Role = topologies.RoleLeaf
				rep.infer(n.Name, "role", "leaf", "group %s: the first tier of a generated Clos", g)
			case tier >= 3 && tier == maxTier:
				n.Role = topologies.RoleSpine
				rep.infer(n.Name, "role", "spine", "group %s: super-spine tier, modelled as spine", g)
			default:
				n.Role = topologies.RoleSpine
				rep.infer(n.Name, "role", "spine", "group %s: an upper tier of a generated Clos", g)
			}
			continue
		}
		if r, w := roleFromWords(n.Name); r != "" {
			n.Role = r
			rep.infer(n.Name, "role", string(r), "name, word %q", w)
			continue
		}
		if n.Kind == "bridge" || n.Kind == "ovs-bridge" {
			n.Role = topologies.RoleAccess
			rep.infer(n.Name, "role", "access", "kind %s", n.Kind)
		}
	}
	inferFromShape(t, rep)
	for _, n := range t.Nodes {
		if n.Role == "" {
			rep.Unresolved = append(rep.Unresolved, n.Name)
		}
	}
	if maxTier > 0 {
		rep.GeneratedClos = true
		if len(t.NodesByRole(topologies.RoleHost)) == 0 {
			rep.note("a Clos from containerlab generate has no host nodes below its leaves; scenarios need them: " +
				"add N below every leaf with 'netbed topo import --hosts-per-leaf N'")
		}
	}
}

func inferFromShape(t *topologies.Topology, rep *Report) {
	byName := map[string]*topologies.Node{}
	for _, n := range t.Nodes {
		byName[n.Name] = n
	}
	// peers[n] lists the node at the other end of each of n's links.
	peers := map[string][]string{}
	for _, l := range t.Links {
		peers[l.A.Node] = append(peers[l.A.Node], l.B.Node)
		peers[l.B.Node] = append(peers[l.B.Node], l.A.Node)
	}
	roleCount := func(name string) map[topologies.Role]int {
		m := map[topologies.Role]int{}
		for _, p := range peers[name] {
			if nb := byName[p]; nb != nil {
				m[nb.Role]++
			}
		}
		return m
	}
	only := func(m map[topologies.Role]int, roles ...topologies.Role) bool {
		total := 0
		for _, r := range roles {
			total += m[r]
		}
		n := 0
		for _, c := range m {
			n += c
		}
		return n > 0 && total == n
	}
	for changed := true; changed; {
		changed = false
		for _, n := range t.Nodes {
			if n.Role != "" {
				continue
			}
			m := roleCount(n.Name)
			deg := len(peers[n.Name])
			var role topologies.Role
			var why string
			switch {
			case hostKinds[n.Kind] && deg >= 1 && deg <= 2 && only(m, topologies.RoleLeaf, topologies.RoleToR, topologies.RoleAccess):
				role, why = topologies.RoleHost, fmt.Sprintf("kind %s with %d link(s), all to leaves or ToRs", kindName(n.Kind), deg)
			case m[topologies.RoleHost] > 0 && m[topologies.RoleAggregation] > 0:
				role, why = topologies.RoleToR, fmt.Sprintf("links to %d host(s) and to aggregation", m[topologies.RoleHost])
			case m[topologies.RoleHost] > 0 && m[topologies.RoleLeaf] == 0:
				role, why = topologies.RoleLeaf, fmt.Sprintf("links to %d host(s)", m[topologies.RoleHost])
			case only(m, topologies.RoleSpine) && !hostKinds[n.Kind]:
				role, why = topologies.RoleLeaf, fmt.Sprintf("links only to spines (%d)", deg)
			case deg >= 2 && only(m, topologies.RoleLeaf, topologies.RoleBorder):
				role, why = topologies.RoleSpine, fmt.Sprintf("links only to leaves (%d)", deg)
			}
			if role != "" {
				n.Role = role
				rep.infer(n.Name, "role", string(role), "shape: %s", why)
				changed = true
			}
		}
		if changed {
			continue
		}
		// Nothing known to start from: a linux node hanging off one or two
		// network OS nodes is a host; the rules above take it from there.
		for _, n := range t.Nodes {
			deg := len(peers[n.Name])
			if n.Role != "" || !hostKinds[n.Kind] || deg < 1 || deg > 2 {
				continue
			}
			nos := true
			for _, p := range peers[n.Name] {
				nb := byName[p]
				nos = nos && nb != nil && !hostKinds[nb.Kind] && (nb.Role == "" || nb.Role.IsSwitch())
			}
			if nos {
				n.Role = topologies.RoleHost
				rep.infer(n.Name, "role", "host", "shape: kind %s with %d link(s), all to network OS nodes", kindName(n.Kind), deg)
				changed = true
			}
		}
	}
}

func kindName(k string) string {
	if k == "" {
		return "(none)"
	}
	return k
}
