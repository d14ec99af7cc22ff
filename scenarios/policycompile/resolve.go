package policycompile

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netbed/netbed/scenarios/policy"
)

// ErrNoHostPolicy says a generation has nowhere to enforce pod policy.
var ErrNoHostPolicy = errors.New("no host policy in this generation")

// grant is one rule of one policy resolved over the cluster: the pods it
// applies to (subjects), the peers it admits (or denies) and the ports.
type grant struct {
	egress, deny bool
	subjects     []*policy.Pod
	peers        peers
	// ports; none means every protocol and port.
	ports  []portSpec
	origin string
}

// peers is who a grant speaks of: anyone, or pods and address blocks,
// and the world (addresses outside the cluster).
type peers struct {
	any    bool
	pods   []*policy.Pod
	blocks []block
	world  bool
}

// block is an address block: a NetworkPolicy ipBlock, which holds the
// pods whose addresses are in it, or a Cilium CIDR rule's (outside),
// which holds addresses outside the cluster only.
type block struct {
	cidr    netip.Prefix
	except  []netip.Prefix
	outside bool
}

// holdsPod reports whether b admits pod address a.
func (b block) holdsPod(a netip.Addr) bool { return !b.outside && b.contains(a) }

func (b block) contains(a netip.Addr) bool {
	if !b.cidr.Contains(a) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

func (b block) String() string {
	if len(b.except) == 0 {
		return b.cidr.String()
	}
	var ex []string
	for _, e := range b.except {
		ex = append(ex, e.String())
	}
	return b.cidr.String() + " except " + strings.Join(ex, ",")
}

// portSpec is a protocol (0: any) and a port range (0-0: every port) or
// a port name resolved on the destination pod.
type portSpec struct {
	proto  uint8
	lo, hi uint16
	name   string
}

// Protocol numbers.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

var protoNumbers = map[string]uint8{"TCP": protoTCP, "UDP": protoUDP, "SCTP": protoSCTP}

// resolved is a policy set over a cluster: every grant, and which pods
// are isolated in each direction.
type resolved struct {
	grants                  []grant
	isolatedIn, isolatedOut map[*policy.Pod]bool
	usesNames               bool
	blocks                  []block
	// nsLabels caches every namespace's labels.
	nsLabels map[string]labels.Set
}

func (r *resolved) namespaceLabels(c *policy.Cluster, ns string) labels.Set {
	l, ok := r.nsLabels[ns]
	if !ok {
		l = c.NamespaceLabels(ns)
		r.nsLabels[ns] = l
	}
	return l
}

func selector(sel *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(sel)
}

// resolve turns the set's policies into grants over c's pods.
func resolve(s *policy.Set, c *policy.Cluster) (*resolved, error) {
	r := &resolved{isolatedIn: map[*policy.Pod]bool{}, isolatedOut: map[*policy.Pod]bool{}, nsLabels: map[string]labels.Set{}}
	for i := range s.NetworkPolicies {
		if err := r.networkPolicy(&s.NetworkPolicies[i], c); err != nil {
			np := &s.NetworkPolicies[i]
			return nil, fmt.Errorf("compile %s: %w", policy.Key("NetworkPolicy", np.Namespace, np.Name), err)
		}
	}
	for i := range s.Cilium {
		if err := r.cilium(&s.Cilium[i], c); err != nil {
			cp := &s.Cilium[i]
			return nil, fmt.Errorf("compile %s: %w", policy.Key("CiliumNetworkPolicy", cp.Namespace, cp.Name), err)
		}
	}
	return r, nil
}

func (r *resolved) networkPolicy(np *networkingv1.NetworkPolicy, c *policy.Cluster) error {
	sel, err := selector(&np.Spec.PodSelector)
	if err != nil {
		return err
	}
	var subjects []*policy.Pod
	for _, p := range c.Pods {
		if p.Namespace == np.Namespace && sel.Matches(labels.Set(p.Labels)) {
			subjects = append(subjects, p)
		}
	}
	key := policy.Key("NetworkPolicy", np.Namespace, np.Name)
	for _, t := range np.Spec.PolicyTypes {
		egress := t == networkingv1.PolicyTypeEgress
		for _, p := range subjects {
			if egress {
				r.isolatedOut[p] = true
			} else {
				r.isolatedIn[p] = true
			}
		}
		if egress {
			for j, rule := range np.Spec.Egress {
				if err := r.npRule(c, np.Namespace, subjects, rule.To, rule.Ports, true, fmt.Sprintf("%s egress[%d]", key, j)); err != nil {
					return err
				}
			}
		} else {
			for j, rule := range np.Spec.Ingress {
				if err := r.npRule(c, np.Namespace, subjects, rule.From, rule.Ports, false, fmt.Sprintf("%s ingress[%d]", key, j)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *resolved) npRule(c *policy.Cluster, ns string, subjects []*policy.Pod, from []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, egress bool, origin string) error {
	g := grant{egress: egress, subjects: subjects, origin: origin, peers: peers{any: len(from) == 0}}
	for _, peer := range from {
		if peer.IPBlock != nil {
			b := block{cidr: netip.MustParsePrefix(peer.IPBlock.CIDR).Masked()}
			for _, e := range peer.IPBlock.Except {
				b.except = append(b.except, netip.MustParsePrefix(e).Masked())
			}
			g.peers.blocks = append(g.peers.blocks, b)
			r.blocks = append(r.blocks, b)
			continue
		}
		var nsSel, podSel labels.Selector = nil, labels.Everything()
		var err error
		if peer.NamespaceSelector != nil {
			if nsSel, err = selector(peer.NamespaceSelector); err != nil {
				return err
			}
		}
		if peer.PodSelector != nil {
			if podSel, err = selector(peer.PodSelector); err != nil {
				return err
			}
		}
		for _, p := range c.Pods {
			inNS := p.Namespace == ns
			if nsSel != nil {
				inNS = nsSel.Matches(r.namespaceLabels(c, p.Namespace))
			}
			if inNS && podSel.Matches(labels.Set(p.Labels)) {
				g.peers.pods = append(g.peers.pods, p)
			}
		}
	}
	for _, p := range ports {
		ps := portSpec{proto: protoTCP}
		if p.Protocol != nil {
			ps.proto = protoNumbers[string(*p.Protocol)]
		}
		switch {
		case p.Port == nil:
		case p.Port.Type == intstr.Int:
			ps.lo, ps.hi = uint16(p.Port.IntVal), uint16(p.Port.IntVal)
			if p.EndPort != nil {
				ps.hi = uint16(*p.EndPort)
			}
		default:
			ps.name = p.Port.StrVal
			r.usesNames = true
		}
		g.ports = append(g.ports, ps)
	}
	r.grants = append(r.grants, g)
	return nil
}

func (r *resolved) cilium(cp *policy.CiliumNetworkPolicy, c *policy.Cluster) error {
	sel, err := selector(&cp.EndpointSelector)
	if err != nil {
		return err
	}
	var subjects []*policy.Pod
	for _, p := range c.Pods {
		if p.Namespace == cp.Namespace && sel.Matches(labels.Set(p.Labels)) {
			subjects = append(subjects, p)
		}
	}
	key := policy.Key("CiliumNetworkPolicy", cp.Namespace, cp.Name)
	for _, sec := range []struct {
		name         string
		rules        []policy.CiliumRule
		egress, deny bool
	}{{"ingress", cp.Ingress, false, false}, {"ingressDeny", cp.IngressDeny, false, true},
		{"egress", cp.Egress, true, false}, {"egressDeny", cp.EgressDeny, true, true}} {
		for _, p := range subjects {
			if len(sec.rules) == 0 {
				continue
			}
			if sec.egress {
				r.isolatedOut[p] = true
			} else {
				r.isolatedIn[p] = true
			}
		}
		for j, rule := range sec.rules {
			g := grant{egress: sec.egress, deny: sec.deny, subjects: subjects, origin: fmt.Sprintf("%s %s[%d]", key, sec.name, j)}
			g.peers.any = len(rule.Endpoints) == 0 && len(rule.Entities) == 0 && len(rule.CIDRs) == 0 && len(rule.Ports) > 0
			for _, cs := range rule.CIDRs {
				b := block{cidr: cs.CIDR, except: cs.Except, outside: true}
				g.peers.blocks = append(g.peers.blocks, b)
				r.blocks = append(r.blocks, b)
			}
			for _, e := range rule.Entities {
				switch e {
				case "all":
					g.peers.any = true
				case "cluster":
					g.peers.pods = append(g.peers.pods, c.Pods...)
				case "world":
					g.peers.world = true
				}
			}
			for _, es := range rule.Endpoints {
				s, err := selector(policy.CiliumSelector(es, cp.Namespace))
				if err != nil {
					return err
				}
				for _, p := range c.Pods {
					if s.Matches(policy.CiliumLabels(c, p)) {
						g.peers.pods = append(g.peers.pods, p)
					}
				}
			}
			for _, p := range rule.Ports {
				protos := []uint8{protoNumbers[p.Protocol]}
				if p.Protocol == "ANY" {
					protos = []uint8{protoTCP, protoUDP, protoSCTP}
				}
				for _, pr := range protos {
					ps := portSpec{proto: pr, lo: p.Port, hi: p.Port, name: p.Name}
					if p.EndPort != 0 {
						ps.hi = p.EndPort
					}
					r.usesNames = r.usesNames || p.Name != ""
					g.ports = append(g.ports, ps)
				}
			}
			if g.peers.any || len(g.peers.pods) > 0 || g.peers.world || len(g.peers.blocks) > 0 {
				r.grants = append(r.grants, g)
			}
		}
	}
	return nil
}

// resolvePorts returns the concrete port specs of ps on the destination
// pod dst: names become numbers (a name dst lacks, nothing). ok is false
// when ps had ports and none is left.
func resolvePorts(ps []portSpec, dst *policy.Pod) []portSpec {
	var out []portSpec
	for _, p := range ps {
		if p.name == "" {
			out = append(out, p)
			continue
		}
		if dst == nil {
			continue
		}
		for proto, n := range protoNumbers {
			if n != p.proto {
				continue
			}
			if port, ok := dst.NamedPortOf(p.name, proto); ok {
				out = append(out, portSpec{proto: p.proto, lo: port, hi: port})
			}
		}
	}
	return out
}
