package ebpf

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Proto is an IP protocol number in policy; ProtoAny matches all.
type Proto uint8

// Protocols policy can name.
const (
	ProtoAny  Proto = 0
	ProtoICMP Proto = 1
	ProtoTCP  Proto = 6
	ProtoUDP  Proto = 17
)

func (p Proto) String() string {
	switch p {
	case ProtoAny:
		return "any"
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// ErrBadPolicy is returned for a policy that cannot be compiled.
var ErrBadPolicy = errors.New("invalid policy")

// Policy is an L3/L4 rule between label selectors. From selects source
// pods (empty: any source, including the world); To selects destination
// pods (empty: every pod). Port 0 means every port and needs Proto TCP or
// UDP otherwise.
//
// Semantics, as Kubernetes and Cilium: a pod selected by the To of at
// least one allow policy has ingress enforcement (default deny); then only
// what an allow policy admits gets in, and replies to its own connections
// (conntrack). Deny policies win over allow policies wherever they overlap
// and do not by themselves switch enforcement on.
type Policy struct {
	Name     string
	From, To map[string]string
	Proto    Proto
	Port     uint16
	Allow    bool
}

// Validate checks a policy.
func (p Policy) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("%w: a policy needs a name", ErrBadPolicy)
	}
	if p.Port != 0 && p.Proto != ProtoTCP && p.Proto != ProtoUDP {
		return fmt.Errorf("%w: policy %q names port %d with protocol %s; ports need tcp or udp", ErrBadPolicy, p.Name, p.Port, p.Proto)
	}
	return nil
}

// RuleName is how verdicts name a policy map entry:
// "policy:<src-id>-><dst-id>:<proto>/<port>", with "any" for wildcards,
// and "policy:egress:…" for an egress entry.
func RuleName(k PolicyKey) string {
	src, dst := "any", "any"
	if k.SrcIdentity != 0 {
		src = strconv.FormatUint(uint64(k.SrcIdentity), 10)
	}
	if k.DstIdentity != 0 {
		dst = strconv.FormatUint(uint64(k.DstIdentity), 10)
	}
	port := "any"
	if p := portOf(k.DPort); p != 0 {
		port = strconv.Itoa(int(p))
	}
	prefix := "policy:"
	if k.Egress != 0 {
		prefix = "policy:egress:"
	}
	return prefix + src + "->" + dst + ":" + Proto(k.Proto).String() + "/" + port
}

// DefaultDenyRule names the verdict for traffic to an enforced endpoint
// that no entry allows.
func DefaultDenyRule(src, dst Identity) string {
	return "policy:" + strconv.FormatUint(uint64(src), 10) + "->" + strconv.FormatUint(uint64(dst), 10) + ":default-deny"
}

// EgressDefaultDenyRule names the verdict for traffic from an egress-
// enforced endpoint that no egress entry allows.
func EgressDefaultDenyRule(src, dst Identity) string {
	return "policy:egress:" + strconv.FormatUint(uint64(src), 10) + "->" + strconv.FormatUint(uint64(dst), 10) + ":default-deny"
}

// PolicyRule is one compiled policy map entry.
type PolicyRule struct {
	Key    PolicyKey
	Action uint8 // PolicyAllow or PolicyDeny
	Name   string
	// From is the policy that produced the entry.
	From string
}

// CompiledPolicy is what the agent writes into the policy map.
type CompiledPolicy struct {
	Rules []PolicyRule
	// Enforced lists the identities with ingress enforcement,
	// EgressEnforced those with egress enforcement.
	Enforced, EgressEnforced map[Identity]bool
}

// NewPolicyKey builds an ingress policy map key.
func NewPolicyKey(src, dst Identity, proto Proto, port uint16) PolicyKey {
	return PolicyKey{SrcIdentity: uint32(src), DstIdentity: uint32(dst), Proto: uint8(proto), DPort: port2(port)}
}

// NewEgressKey builds an egress policy map key: src is the local pod,
// dst the destination (IdentityAny for every destination).
func NewEgressKey(src, dst Identity, proto Proto, port uint16) PolicyKey {
	k := NewPolicyKey(src, dst, proto, port)
	k.Egress = 1
	return k
}

// Compile turns policies into policy map entries for the identities ids
// (with their labels). Deny entries shadow the allow entries they overlap:
// where a deny and an allow intersect, the intersection is written as a
// deny, so that the most specific entry a lookup finds is always right.
func Compile(policies []Policy, ids *Identities) (CompiledPolicy, error) {
	cp := CompiledPolicy{Enforced: map[Identity]bool{}}
	entries := map[PolicyKey]PolicyRule{}
	all := ids.All()
	var denies []PolicyRule
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return CompiledPolicy{}, err
		}
		var srcs []Identity
		if len(p.From) == 0 {
			srcs = []Identity{IdentityAny}
		} else {
			for _, id := range all {
				if l, _ := ids.Labels(id); Selects(p.From, l) {
					srcs = append(srcs, id)
				}
			}
		}
		for _, dst := range all {
			if l, _ := ids.Labels(dst); !Selects(p.To, l) {
				continue
			}
			if p.Allow {
				cp.Enforced[dst] = true
			}
			for _, src := range srcs {
				k := NewPolicyKey(src, dst, p.Proto, p.Port)
				act := PolicyDeny
				if p.Allow {
					act = PolicyAllow
				}
				r := PolicyRule{Key: k, Action: act, Name: RuleName(k), From: p.Name}
				if old, ok := entries[k]; ok && old.Action == PolicyDeny {
					continue
				}
				entries[k] = r
				if act == PolicyDeny {
					denies = append(denies, r)
				}
			}
		}
	}
	return finish(cp, entries, denies), nil
}

// CompileRules builds the compiled policy from entries another compiler
// resolved (scenarios/policycompile: Kubernetes and Cilium policies),
// shadowing the allows that denies overlap as Compile does. A key given
// twice keeps its deny if it has one, else its first rule.
func CompileRules(rules []PolicyRule, enforced, egressEnforced map[Identity]bool) CompiledPolicy {
	cp := CompiledPolicy{Enforced: enforced, EgressEnforced: egressEnforced}
	entries := make(map[PolicyKey]PolicyRule, len(rules))
	var denies []PolicyRule
	for _, r := range rules {
		if r.Name == "" {
			r.Name = RuleName(r.Key)
		}
		if old, ok := entries[r.Key]; ok && (old.Action == PolicyDeny || r.Action != PolicyDeny) {
			continue
		}
		entries[r.Key] = r
		if r.Action == PolicyDeny {
			denies = append(denies, r)
		}
	}
	return finish(cp, entries, denies)
}

// finish shadows overlapping allows with denies and sorts the rules.
func finish(cp CompiledPolicy, entries map[PolicyKey]PolicyRule, denies []PolicyRule) CompiledPolicy {
	if cp.Enforced == nil {
		cp.Enforced = map[Identity]bool{}
	}
	if cp.EgressEnforced == nil {
		cp.EgressEnforced = map[Identity]bool{}
	}
	for _, d := range denies {
		for k, r := range entries {
			if r.Action != PolicyAllow {
				continue
			}
			if in, ok := intersect(d.Key, k); ok {
				entries[in] = PolicyRule{Key: in, Action: PolicyDeny, Name: RuleName(in), From: d.From}
			}
		}
	}
	cp.Rules = make([]PolicyRule, 0, len(entries))
	for _, r := range entries {
		cp.Rules = append(cp.Rules, r)
	}
	SortRules(cp.Rules)
	return cp
}

// intersect returns the key matching exactly the packets both a and b
// match, if any.
func intersect(a, b PolicyKey) (PolicyKey, bool) {
	if a.Egress != b.Egress {
		return PolicyKey{}, false
	}
	out := PolicyKey{Egress: a.Egress}
	var ok bool
	if out.SrcIdentity, ok = meet(a.SrcIdentity, b.SrcIdentity); !ok {
		return PolicyKey{}, false
	}
	if out.DstIdentity, ok = meet(a.DstIdentity, b.DstIdentity); !ok {
		return PolicyKey{}, false
	}
	p, ok := meet(uint32(a.Proto), uint32(b.Proto))
	if !ok {
		return PolicyKey{}, false
	}
	out.Proto = uint8(p)
	port, ok := meet(uint32(portOf(a.DPort)), uint32(portOf(b.DPort)))
	if !ok {
		return PolicyKey{}, false
	}
	out.DPort = port2(uint16(port))
	return out, true
}

// meet intersects two values where 0 is the wildcard.
func meet(a, b uint32) (uint32, bool) {
	switch {
	case a == 0:
		return b, true
	case b == 0 || a == b:
		return a, true
	}
	return 0, false
}

// level is a key's position in the lookup order: exact source before
// wildcard source, then protocol and port before protocol before neither.
func level(k PolicyKey) int {
	l := 0
	remote := k.SrcIdentity
	if k.Egress != 0 {
		remote = k.DstIdentity
	}
	if remote == 0 {
		l = 3
	}
	switch {
	case k.Proto != 0 && portOf(k.DPort) != 0:
	case k.Proto != 0:
		l++
	default:
		l += 2
	}
	return l
}

// SortRules orders rules as the lookup consults them: most specific first
// (see PolicyLookup), then by key.
func SortRules(rs []PolicyRule) {
	slices.SortFunc(rs, func(a, b PolicyRule) int {
		if d := level(a.Key) - level(b.Key); d != 0 {
			return d
		}
		if a.Key.Egress != b.Key.Egress {
			return int(a.Key.Egress) - int(b.Key.Egress)
		}
		if a.Key.DstIdentity != b.Key.DstIdentity {
			return cmpU32(a.Key.DstIdentity, b.Key.DstIdentity)
		}
		if a.Key.SrcIdentity != b.Key.SrcIdentity {
			return cmpU32(a.Key.SrcIdentity, b.Key.SrcIdentity)
		}
		if a.Key.Proto != b.Key.Proto {
			return int(a.Key.Proto) - int(b.Key.Proto)
		}
		return int(portOf(a.Key.DPort)) - int(portOf(b.Key.DPort))
	})
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	return 1
}

// PolicyLookup is the policy check of the BPF programs: at most six hash
// lookups, from the most specific key to the least — (src, dst, proto,
// port), (src, dst, proto, any), (src, dst, any, any), then the same with
// any source — and the first hit decides. O(1) in the number of rules.
func PolicyLookup(m *HashMap[PolicyKey, PolicyEntry], src, dst Identity, proto Proto, dport uint16) (PolicyKey, PolicyEntry, bool) {
	if m.Len() == 0 {
		// No policy on the node: six misses, known without a probe.
		return PolicyKey{}, PolicyEntry{}, false
	}
	k := PolicyKey{SrcIdentity: uint32(src), DstIdentity: uint32(dst), Proto: uint8(proto), DPort: port2(dport)}
	for range 2 {
		if dport != 0 {
			if e, ok := m.Lookup(k); ok {
				return k, e, true
			}
		}
		k.DPort = [2]byte{}
		if proto != 0 {
			if e, ok := m.Lookup(k); ok {
				return k, e, true
			}
		}
		k.Proto = 0
		if e, ok := m.Lookup(k); ok {
			return k, e, true
		}
		if src == 0 {
			break
		}
		k = PolicyKey{DstIdentity: uint32(dst), Proto: uint8(proto), DPort: port2(dport)}
	}
	return PolicyKey{}, PolicyEntry{}, false
}

// EgressLookup is the egress policy check, made on the source node as
// the packet leaves pod src for dst (IdentityWorld outside the cluster):
// the same six lookups as PolicyLookup over egress entries, with the
// destination as the wildcard side.
func EgressLookup(m *HashMap[PolicyKey, PolicyEntry], src, dst Identity, proto Proto, dport uint16) (PolicyKey, PolicyEntry, bool) {
	if m.Len() == 0 {
		return PolicyKey{}, PolicyEntry{}, false
	}
	k := NewEgressKey(src, dst, proto, dport)
	for range 2 {
		if dport != 0 {
			if e, ok := m.Lookup(k); ok {
				return k, e, true
			}
		}
		k.DPort = [2]byte{}
		if proto != 0 {
			if e, ok := m.Lookup(k); ok {
				return k, e, true
			}
		}
		k.Proto = 0
		if e, ok := m.Lookup(k); ok {
			return k, e, true
		}
		if dst == 0 {
			break
		}
		k = NewEgressKey(src, IdentityAny, proto, dport)
	}
	return PolicyKey{}, PolicyEntry{}, false
}

// Chain is an iptables-style policy chain: the same rules as a list,
// scanned in order, first match wins. It exists to compare with the map.
type Chain struct {
	Rules []PolicyRule
}

// NewChain returns the chain of rules in lookup order (see SortRules).
func NewChain(rules []PolicyRule) *Chain {
	c := &Chain{Rules: slices.Clone(rules)}
	SortRules(c.Rules)
	return c
}

// Match scans the chain: O(n) in the number of rules.
func (c *Chain) Match(src, dst Identity, proto Proto, dport uint16) (PolicyRule, bool) {
	s, d, p, port := uint32(src), uint32(dst), uint8(proto), port2(dport)
	for i := range c.Rules {
		k := &c.Rules[i].Key
		if k.Egress == 0 && k.DstIdentity == d && (k.SrcIdentity == 0 || k.SrcIdentity == s) &&
			(k.Proto == 0 || k.Proto == p) && (k.DPort == [2]byte{} || k.DPort == port) {
			return c.Rules[i], true
		}
	}
	return PolicyRule{}, false
}

// PolicyTable is the agent's view of the compiled policy: the map entries
// with their names (RuleID indexes Names).
type PolicyTable struct {
	Names                    []string
	Enforced, EgressEnforced map[Identity]bool
}

// Install writes compiled rules into a policy map, replacing its content,
// and returns the rule names indexed by the entries' RuleID.
func Install(m *HashMap[PolicyKey, PolicyEntry], cp CompiledPolicy) (*PolicyTable, error) {
	m.Clear()
	t := &PolicyTable{Enforced: cp.Enforced, EgressEnforced: cp.EgressEnforced}
	for i, r := range cp.Rules {
		if err := m.Update(r.Key, PolicyEntry{Action: r.Action, RuleID: uint32(i)}); err != nil {
			return nil, fmt.Errorf("install policy rule %s: %w", r.Name, err)
		}
		t.Names = append(t.Names, r.Name)
	}
	return t, nil
}
