package vpc

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// DefaultGroup is the security group of an ENI that names none.
const DefaultGroup = "sg-default"

// Rule is one ingress rule of a security group: traffic of Proto (0: any)
// to a port in [FromPort, ToPort] (0, 0: any; ignored for ICMP) from
// an address in CIDR is allowed.
type Rule struct {
	Proto            uint8
	FromPort, ToPort uint16
	CIDR             netip.Prefix
}

func (r Rule) String() string {
	p := "all"
	switch r.Proto {
	case protoICMP:
		p = "icmp"
	case protoTCP:
		p = "tcp"
	case protoUDP:
		p = "udp"
	case 0:
	default:
		p = strconv.Itoa(int(r.Proto))
	}
	if r.Proto != protoICMP && r.Proto != 0 && (r.FromPort != 0 || r.ToPort != 0) {
		p += "/" + strconv.Itoa(int(r.FromPort))
		if r.ToPort != r.FromPort {
			p += "-" + strconv.Itoa(int(r.ToPort))
		}
	}
	return p + " from " + r.CIDR.String()
}

func (r Rule) matches(f flow) bool {
	if r.Proto != 0 && r.Proto != f.proto {
		return false
	}
	if !r.CIDR.Contains(addr(f.src)) {
		return false
	}
	if r.Proto == protoICMP || r.Proto == 0 || r.FromPort == 0 && r.ToPort == 0 {
		return true
	}
	return f.dpt >= r.FromPort && f.dpt <= r.ToPort
}

// SecurityGroup is a stateful firewall on ENIs: every outbound packet is
// allowed and its connection tracked; an inbound packet is allowed when it
// belongs to a tracked connection or matches an ingress rule.
type SecurityGroup struct {
	ID      string
	Ingress []Rule
}

// Validate checks the group's rules.
func (g SecurityGroup) Validate() error {
	if g.ID == "" {
		return fmt.Errorf("security group without an ID")
	}
	for i, r := range g.Ingress {
		if !r.CIDR.IsValid() || !r.CIDR.Addr().Is4() {
			return fmt.Errorf("security group %s rule %d: CIDR %v: want an IPv4 prefix", g.ID, i, r.CIDR)
		}
		if r.ToPort < r.FromPort {
			return fmt.Errorf("security group %s rule %d: port range %d-%d is empty", g.ID, i, r.FromPort, r.ToPort)
		}
	}
	return nil
}

// AllowAll is the default group's rule set: everything from anywhere.
// Scenarios that test a restriction replace it (Fabric.SetSecurityGroup).
var AllowAll = []Rule{{CIDR: netip.MustParsePrefix("0.0.0.0/0")}}

// Security group errors, as EC2 names them.
var (
	// ErrDuplicateRule: the group has the rule already
	// (InvalidPermission.Duplicate).
	ErrDuplicateRule = errors.New("InvalidPermission.Duplicate: the rule exists in the group")
	// ErrNoSuchRule: the group has no such rule
	// (InvalidPermission.NotFound).
	ErrNoSuchRule = errors.New("InvalidPermission.NotFound: the group has no such rule")
)

// AuthorizeIngress adds rule r to group id (EC2's
// AuthorizeSecurityGroupIngress); every ENI in the group admits what it
// matches from the next packet on.
func (r *Router) AuthorizeIngress(id string, rl Rule) error {
	g, ok := r.groups[id]
	if !ok {
		return fmt.Errorf("authorize %v in %s: security group %w", rl, id, ErrNotFound)
	}
	rl.CIDR = rl.CIDR.Masked()
	if slices.Contains(g.Ingress, rl) {
		return fmt.Errorf("authorize %v in %s: %w", rl, id, ErrDuplicateRule)
	}
	ng := SecurityGroup{ID: id, Ingress: append(slices.Clone(g.Ingress), rl)}
	if err := ng.Validate(); err != nil {
		return err
	}
	r.groups[id] = &ng
	return nil
}

// RevokeIngress removes rule r from group id (EC2's
// RevokeSecurityGroupIngress). Connections already tracked go on, as on
// EC2; new ones need another rule.
func (r *Router) RevokeIngress(id string, rl Rule) error {
	g, ok := r.groups[id]
	if !ok {
		return fmt.Errorf("revoke %v in %s: security group %w", rl, id, ErrNotFound)
	}
	rl.CIDR = rl.CIDR.Masked()
	i := slices.Index(g.Ingress, rl)
	if i < 0 {
		return fmt.Errorf("revoke %v in %s (rules: %v): %w", rl, id, g.Ingress, ErrNoSuchRule)
	}
	r.groups[id] = &SecurityGroup{ID: id, Ingress: slices.Delete(slices.Clone(g.Ingress), i, i+1)}
	return nil
}

// ParseProto returns the IP protocol number of "all" (0), "icmp", "tcp"
// or "udp".
func ParseProto(s string) (uint8, error) {
	switch s {
	case "", "all":
		return 0, nil
	case "icmp":
		return protoICMP, nil
	case "tcp":
		return protoTCP, nil
	case "udp":
		return protoUDP, nil
	}
	return 0, fmt.Errorf("protocol %q: use all, icmp, tcp or udp", s)
}
