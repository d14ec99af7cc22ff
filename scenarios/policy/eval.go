package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod is what policy sees of a pod: where it is, its labels, its address
// and its named container ports.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	IP              netip.Addr
	Ports           []NamedPort
}

// NamedPort is a container port with a name ("http": 8080/TCP).
type NamedPort struct {
	Name     string
	Port     uint16
	Protocol string // TCP, UDP or SCTP
}

// String is "namespace/name".
func (p *Pod) String() string { return p.Namespace + "/" + p.Name }

// NamedPortOf returns the number of p's port called name for protocol.
func (p *Pod) NamedPortOf(name, protocol string) (uint16, bool) {
	for _, np := range p.Ports {
		if np.Name == name && strings.EqualFold(np.Protocol, protocol) {
			return np.Port, true
		}
	}
	return 0, false
}

// Cluster is the pods and namespace labels policies are evaluated over.
type Cluster struct {
	Pods []*Pod
	// Namespaces holds namespace labels; every namespace also carries
	// kubernetes.io/metadata.name=<name>, as the API server sets it.
	Namespaces map[string]map[string]string
}

// NamespaceLabels returns ns's labels, with kubernetes.io/metadata.name.
func (c *Cluster) NamespaceLabels(ns string) labels.Set {
	out := labels.Set{corev1.LabelMetadataName: ns}
	for k, v := range c.Namespaces[ns] {
		out[k] = v
	}
	return out
}

// Traffic is one connection attempt's protocol and destination port.
type Traffic struct {
	Protocol string // TCP, UDP, SCTP or ICMP
	Port     uint16 // 0 for ICMP
}

func (t Traffic) String() string {
	if t.Port == 0 {
		return strings.ToLower(t.Protocol)
	}
	return fmt.Sprintf("%s/%d", strings.ToLower(t.Protocol), t.Port)
}

// Peer is one end of a connection: a pod of the cluster, or an address
// outside it (Pod nil).
type Peer struct {
	Pod *Pod
	IP  netip.Addr
}

func (p Peer) addr() netip.Addr {
	if p.Pod != nil {
		return p.Pod.IP
	}
	return p.IP
}

func (p Peer) String() string {
	if p.Pod != nil {
		return p.Pod.String()
	}
	return p.IP.String()
}

// Verdict is the reference answer for one connection: allowed only if
// both the source's egress and the destination's ingress allow it. The
// reasons say which side decided and by which policy.
type Verdict struct {
	Allowed         bool
	Egress, Ingress string
}

// Evaluate says whether a connection from src to dst carrying t is
// allowed by the policies in s, reading the formats' documentation
// directly (it shares no code with any compiler):
//
// NetworkPolicy: a pod is isolated for ingress (egress) when a policy of
// its namespace selects it with podSelector and lists Ingress (Egress)
// in policyTypes; an isolated pod accepts (sends) only what at least one
// such policy's rules allow, and the rules of all policies add up. A rule
// with no from/to admits every peer, with no ports every port and
// protocol. A peer is a podSelector (pods of the policy's namespace), a
// namespaceSelector (every pod of the selected namespaces), both (pods
// matching the podSelector in namespaces matching the namespaceSelector),
// or an ipBlock (addresses in cidr and in no except). A port is a number,
// a range up to endPort, or a name resolved on the destination pod. The
// reply of an allowed connection is allowed.
//
// CiliumNetworkPolicy (the subset): endpointSelector picks pods of the
// policy's namespace; a pod picked by a policy with any ingress or
// ingressDeny rule is in default deny for ingress (the same for egress);
// fromEndpoints selectors match Cilium's labels of a pod (its labels,
// io.kubernetes.pod.namespace and io.cilium.k8s.namespace.labels.*) and
// are confined to the policy's namespace unless they name
// io.kubernetes.pod.namespace; entities: world (outside the cluster),
// cluster (every pod), all; fromCIDR/toCIDR and fromCIDRSet/toCIDRSet
// (a cidr less its excepts) select addresses outside the cluster only:
// as Cilium documents, a CIDR rule does not apply where both ends are
// pods, even if a pod's address is in the CIDR. Within a rule, peers
// and ports are ANDed; a rule with ports only admits every peer. A deny
// rule wins over every allow.
func (s *Set) Evaluate(c *Cluster, src, dst Peer, t Traffic) Verdict {
	v := Verdict{Allowed: true, Egress: "not isolated", Ingress: "not isolated"}
	if src.Pod != nil {
		ok, why := s.side(c, src.Pod, dst, t, true)
		v.Egress = why
		v.Allowed = v.Allowed && ok
	}
	if dst.Pod != nil {
		ok, why := s.side(c, dst.Pod, src, t, false)
		v.Ingress = why
		v.Allowed = v.Allowed && ok
	}
	return v
}

// side decides for pod's egress (to peer) or ingress (from peer).
func (s *Set) side(c *Cluster, pod *Pod, peer Peer, t Traffic, egress bool) (bool, string) {
	isolated, allowedBy := false, ""
	// The pod whose port a rule's port names: the destination.
	dstPod := pod
	if egress {
		dstPod = peer.Pod
	}
	for i := range s.NetworkPolicies {
		np := &s.NetworkPolicies[i]
		if np.Namespace != pod.Namespace || !matches(&np.Spec.PodSelector, pod.Labels) {
			continue
		}
		want := networkingv1.PolicyTypeIngress
		if egress {
			want = networkingv1.PolicyTypeEgress
		}
		has := false
		for _, pt := range np.Spec.PolicyTypes {
			has = has || pt == want
		}
		if !has {
			continue
		}
		isolated = true
		if allowedBy != "" {
			continue
		}
		if egress {
			for j, r := range np.Spec.Egress {
				if peersMatch(c, np.Namespace, r.To, peer) && portsMatch(r.Ports, dstPod, t) {
					allowedBy = fmt.Sprintf("%s egress[%d]", Key("NetworkPolicy", np.Namespace, np.Name), j)
					break
				}
			}
		} else {
			for j, r := range np.Spec.Ingress {
				if peersMatch(c, np.Namespace, r.From, peer) && portsMatch(r.Ports, dstPod, t) {
					allowedBy = fmt.Sprintf("%s ingress[%d]", Key("NetworkPolicy", np.Namespace, np.Name), j)
					break
				}
			}
		}
	}
	for i := range s.Cilium {
		cp := &s.Cilium[i]
		if cp.Namespace != pod.Namespace || !matches(&cp.EndpointSelector, pod.Labels) {
			continue
		}
		allow, deny := cp.Ingress, cp.IngressDeny
		dir := "ingress"
		if egress {
			allow, deny, dir = cp.Egress, cp.EgressDeny, "egress"
		}
		if len(allow) > 0 || len(deny) > 0 {
			isolated = true
		}
		for j, r := range deny {
			if ciliumMatch(c, cp.Namespace, &r, peer, dstPod, t) {
				return false, fmt.Sprintf("%s %sDeny[%d]", Key("CiliumNetworkPolicy", cp.Namespace, cp.Name), dir, j)
			}
		}
		if allowedBy != "" {
			continue
		}
		for j, r := range allow {
			if ciliumMatch(c, cp.Namespace, &r, peer, dstPod, t) {
				allowedBy = fmt.Sprintf("%s %s[%d]", Key("CiliumNetworkPolicy", cp.Namespace, cp.Name), dir, j)
				break
			}
		}
	}
	switch {
	case !isolated:
		return true, "not isolated"
	case allowedBy != "":
		return true, allowedBy
	}
	return false, "isolated, no rule allows"
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false // validation rejected such selectors already
	}
	return s.Matches(labels.Set(l))
}

// peersMatch reports whether peer is one of peers (no peers: any).
func peersMatch(c *Cluster, ns string, peers []networkingv1.NetworkPolicyPeer, peer Peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			if inBlock(p.IPBlock, peer.addr()) {
				return true
			}
			continue
		}
		if peer.Pod == nil {
			continue
		}
		if p.NamespaceSelector != nil {
			if !matches(p.NamespaceSelector, c.NamespaceLabels(peer.Pod.Namespace)) {
				continue
			}
		} else if peer.Pod.Namespace != ns {
			continue
		}
		if p.PodSelector == nil || matches(p.PodSelector, peer.Pod.Labels) {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(a) {
		return false
	}
	for _, e := range b.Except {
		if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(a) {
			return false
		}
	}
	return true
}

// portsMatch reports whether t is one of ports (no ports: all traffic),
// named ports resolved on dst.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst *Pod, t Traffic) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if !strings.EqualFold(string(proto), t.Protocol) {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int:
			lo, hi := uint16(p.Port.IntVal), uint16(p.Port.IntVal)
			if p.EndPort != nil {
				hi = uint16(*p.EndPort)
			}
			if t.Port >= lo && t.Port <= hi {
				return true
			}
		default:
			if dst == nil {
				continue
			}
			if n, ok := dst.NamedPortOf(p.Port.StrVal, string(proto)); ok && n == t.Port {
				return true
			}
		}
	}
	return false
}

// CiliumLabels are the labels Cilium gives pod's identity: its own, its
// namespace's name and its namespace's labels.
func CiliumLabels(c *Cluster, pod *Pod) labels.Set {
	out := labels.Set{}
	for k, v := range pod.Labels {
		out[k] = v
	}
	out["io.kubernetes.pod.namespace"] = pod.Namespace
	for k, v := range c.NamespaceLabels(pod.Namespace) {
		out["io.cilium.k8s.namespace.labels."+k] = v
	}
	return out
}

// CiliumSelector is sel with Cilium's source prefixes ("k8s:", "any:")
// taken off its keys, confined to namespace ns unless it names
// io.kubernetes.pod.namespace.
func CiliumSelector(sel metav1.LabelSelector, ns string) *metav1.LabelSelector {
	out := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	named := false
	for k, v := range sel.MatchLabels {
		k = stripSource(k)
		named = named || k == "io.kubernetes.pod.namespace"
		out.MatchLabels[k] = v
	}
	for _, e := range sel.MatchExpressions {
		e.Key = stripSource(e.Key)
		named = named || e.Key == "io.kubernetes.pod.namespace"
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	if !named {
		out.MatchLabels["io.kubernetes.pod.namespace"] = ns
	}
	return out
}

func stripSource(k string) string {
	if src, rest, ok := strings.Cut(k, ":"); ok && (src == "k8s" || src == "any") {
		return rest
	}
	return k
}

func ciliumMatch(c *Cluster, ns string, r *CiliumRule, peer Peer, dst *Pod, t Traffic) bool {
	peerOK := len(r.Endpoints) == 0 && len(r.Entities) == 0 && len(r.CIDRs) == 0 && len(r.Ports) > 0
	if peer.Pod == nil {
		for _, cs := range r.CIDRs {
			peerOK = peerOK || cs.Contains(peer.IP)
		}
	}
	for _, e := range r.Entities {
		switch e {
		case "all":
			peerOK = true
		case "cluster":
			peerOK = peerOK || peer.Pod != nil
		case "world":
			peerOK = peerOK || peer.Pod == nil
		}
	}
	if peer.Pod != nil && !peerOK {
		for _, sel := range r.Endpoints {
			if matches(CiliumSelector(sel, ns), CiliumLabels(c, peer.Pod)) {
				peerOK = true
				break
			}
		}
	}
	if !peerOK {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if p.Protocol != "ANY" && !strings.EqualFold(p.Protocol, t.Protocol) {
			continue
		}
		if t.Protocol == "ICMP" {
			continue // ports speak of TCP, UDP and SCTP only
		}
		switch {
		case p.Name != "":
			if dst == nil {
				continue
			}
			protos := []string{p.Protocol}
			if p.Protocol == "ANY" {
				protos = []string{"TCP", "UDP", "SCTP"}
			}
			for _, pr := range protos {
				if n, ok := dst.NamedPortOf(p.Name, pr); ok && n == t.Port && strings.EqualFold(pr, t.Protocol) {
					return true
				}
			}
		case p.Port == 0:
			return true
		default:
			hi := p.Port
			if p.EndPort != 0 {
				hi = p.EndPort
			}
			if t.Port >= p.Port && t.Port <= hi {
				return true
			}
		}
	}
	return false
}

// ProbeTraffics are the traffics a truth table probes for s over c:
// every TCP and UDP port the policies name (a range by its two ends,
// a named port by the number each pod gives it), one TCP port none
// names, and ICMP. SCTP ports are returned in skipped (no probe speaks
// SCTP).
func ProbeTraffics(s *Set, c *Cluster) (out []Traffic, skipped []string) {
	seen := map[Traffic]bool{}
	add := func(t Traffic) {
		if t.Protocol == "SCTP" {
			if !seen[t] {
				skipped = append(skipped, t.String())
			}
			seen[t] = true
			return
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	named := func(name, proto string) {
		for _, p := range c.Pods {
			if n, ok := p.NamedPortOf(name, proto); ok {
				add(Traffic{Protocol: proto, Port: n})
			}
		}
	}
	var ranges [][2]uint16
	npPorts := func(ports []networkingv1.NetworkPolicyPort) {
		for _, p := range ports {
			proto := "TCP"
			if p.Protocol != nil {
				proto = string(*p.Protocol)
			}
			switch {
			case p.Port == nil:
			case p.Port.Type == intstr.Int:
				add(Traffic{Protocol: proto, Port: uint16(p.Port.IntVal)})
				hi := uint16(p.Port.IntVal)
				if p.EndPort != nil {
					hi = uint16(*p.EndPort)
					add(Traffic{Protocol: proto, Port: hi})
				}
				ranges = append(ranges, [2]uint16{uint16(p.Port.IntVal), hi})
			default:
				named(p.Port.StrVal, proto)
			}
		}
	}
	for _, np := range s.NetworkPolicies {
		for _, r := range np.Spec.Ingress {
			npPorts(r.Ports)
		}
		for _, r := range np.Spec.Egress {
			npPorts(r.Ports)
		}
	}
	for _, cp := range s.Cilium {
		for _, rules := range [][]CiliumRule{cp.Ingress, cp.IngressDeny, cp.Egress, cp.EgressDeny} {
			for _, r := range rules {
				for _, p := range r.Ports {
					protos := []string{p.Protocol}
					if p.Protocol == "ANY" {
						protos = []string{"TCP", "UDP"}
					}
					for _, proto := range protos {
						switch {
						case p.Name != "":
							named(p.Name, proto)
						case p.Port != 0:
							add(Traffic{Protocol: proto, Port: p.Port})
							hi := p.Port
							if p.EndPort != 0 {
								hi = p.EndPort
								add(Traffic{Protocol: proto, Port: hi})
							}
							ranges = append(ranges, [2]uint16{p.Port, hi})
						}
					}
				}
			}
		}
	}
	for _, p := range c.Pods {
		for _, np := range p.Ports {
			ranges = append(ranges, [2]uint16{np.Port, np.Port})
		}
	}
	// One TCP port nothing names: the first from 81 up.
	for port := uint16(81); port != 0; port++ {
		if !slices.ContainsFunc(ranges, func(r [2]uint16) bool { return port >= r[0] && port <= r[1] }) && !seen[Traffic{Protocol: "TCP", Port: port}] {
			add(Traffic{Protocol: "TCP", Port: port})
			break
		}
	}
	add(Traffic{Protocol: "ICMP"})
	return out, skipped
}
