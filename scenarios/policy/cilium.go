package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// CiliumNetworkPolicy is the L3/L4 subset of cilium.io/v2
// CiliumNetworkPolicy netbed reads: one rule (spec) whose
// endpointSelector picks pods of the policy's namespace, with ingress,
// egress, ingressDeny and egressDeny rules.
type CiliumNetworkPolicy struct {
	Name, Namespace      string
	EndpointSelector     metav1.LabelSelector
	Ingress, IngressDeny []CiliumRule
	Egress, EgressDeny   []CiliumRule
}

// CiliumRule is one ingress or egress rule: its peers (Endpoints,
// selectors over Cilium's pod labels; Entities, "world", "cluster" or
// "all"; CIDRs, from fromCIDR/toCIDR and fromCIDRSet/toCIDRSet) and its
// ports. A rule with no peers and with ports applies to every peer (an
// L4-only rule); one with nothing allows nothing.
type CiliumRule struct {
	Endpoints []metav1.LabelSelector
	Entities  []string
	CIDRs     []CIDRSet
	Ports     []CiliumPort
}

// CIDRSet is a CIDR rule's block: the addresses of CIDR outside those of
// Except. As Cilium documents, CIDR rules select addresses outside the
// cluster: they never select a pod, whatever its address.
type CIDRSet struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// Contains reports whether a is in the set.
func (c CIDRSet) Contains(a netip.Addr) bool {
	if !a.IsValid() || !c.CIDR.Contains(a) {
		return false
	}
	for _, e := range c.Except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// CiliumPort is one toPorts port: Port 0 means every port of Protocol
// ("TCP", "UDP", "SCTP" or "ANY"); EndPort, if set, ends a range; Name,
// if set instead of a number, is a named port.
type CiliumPort struct {
	Port, EndPort uint16
	Name          string
	Protocol      string
}

// The subset's schema: what each object may hold. Any other key is a
// Cilium field netbed does not support yet (or not a field at all).
var ciliumKeys = map[string][]string{
	"":                 {"apiVersion", "kind", "metadata", "spec"},
	"metadata":         {"name", "namespace", "labels", "annotations"},
	"spec":             {"endpointSelector", "ingress", "egress", "ingressDeny", "egressDeny", "description"},
	"ingress":          {"fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "toPorts"},
	"egress":           {"toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toPorts"},
	"cidrSet":          {"cidr", "except"},
	"toPorts":          {"ports"},
	"ports":            {"port", "endPort", "protocol"},
	"selector":         {"matchLabels", "matchExpressions"},
	"matchExpressions": {"key", "operator", "values"},
}

// ciliumEntities are the entities the subset knows.
var ciliumEntities = []string{"world", "cluster", "all"}

// checkKeys walks v and fails on the first key outside the subset,
// naming its path.
func checkKeys(v any, kind string, path *field.Path) error {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range x {
				if !yield(k) {
					return
				}
			}
		}) {
			p := path.Child(k)
			if path == nil {
				p = field.NewPath(k)
			}
			if !slices.Contains(ciliumKeys[kind], k) {
				return fmt.Errorf("%s: %w (netbed reads endpointSelector, ingress/egress with fromEndpoints/toEndpoints, fromEntities/toEntities, fromCIDR/toCIDR, fromCIDRSet/toCIDRSet and toPorts, ingressDeny and egressDeny)", p, ErrUnsupported)
			}
			sub := k
			switch {
			case kind == "metadata":
				continue
			case kind == "spec" && (k == "ingressDeny"):
				sub = "ingress"
			case kind == "spec" && (k == "egressDeny"):
				sub = "egress"
			case k == "endpointSelector" || k == "fromEndpoints" || k == "toEndpoints":
				sub = "selector"
			case k == "fromCIDRSet" || k == "toCIDRSet":
				sub = "cidrSet"
			case kind == "selector" && k == "matchLabels", k == "fromEntities", k == "toEntities", k == "values",
				k == "apiVersion", k == "kind", k == "description", kind == "ports", kind == "cidrSet",
				k == "fromCIDR", k == "toCIDR":
				continue
			}
			if err := checkKeys(x[k], sub, p); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkKeys(e, kind, path.Index(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

type rawCNP struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec *struct {
		EndpointSelector *metav1.LabelSelector `json:"endpointSelector"`
		Ingress          []rawCiliumRule       `json:"ingress"`
		IngressDeny      []rawCiliumRule       `json:"ingressDeny"`
		Egress           []rawCiliumRule       `json:"egress"`
		EgressDeny       []rawCiliumRule       `json:"egressDeny"`
	} `json:"spec"`
}

type rawCiliumRule struct {
	FromEndpoints []metav1.LabelSelector `json:"fromEndpoints"`
	ToEndpoints   []metav1.LabelSelector `json:"toEndpoints"`
	FromEntities  []string               `json:"fromEntities"`
	ToEntities    []string               `json:"toEntities"`
	FromCIDR      []string               `json:"fromCIDR"`
	ToCIDR        []string               `json:"toCIDR"`
	FromCIDRSet   []rawCIDRSet           `json:"fromCIDRSet"`
	ToCIDRSet     []rawCIDRSet           `json:"toCIDRSet"`
	ToPorts       []struct {
		Ports []struct {
			Port     string `json:"port"`
			EndPort  int32  `json:"endPort"`
			Protocol string `json:"protocol"`
		} `json:"ports"`
	} `json:"toPorts"`
}

type rawCIDRSet struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except"`
}

// parseCilium reads one CiliumNetworkPolicy document of the subset.
func parseCilium(data []byte) (*CiliumNetworkPolicy, error) {
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return nil, err
	}
	if err := checkKeys(generic, "", nil); err != nil {
		return nil, err
	}
	var raw rawCNP
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if raw.Metadata.Name == "" {
		return nil, fmt.Errorf("metadata.name: %w: Required value: name or generateName is required", ErrInvalid)
	}
	if raw.Spec == nil {
		return nil, fmt.Errorf("spec: %w: Required value: a CiliumNetworkPolicy needs a spec (specs: %w)", ErrInvalid, ErrUnsupported)
	}
	if raw.Spec.EndpointSelector == nil {
		return nil, fmt.Errorf("spec.endpointSelector: %w: Required value (nodeSelector: %w)", ErrInvalid, ErrUnsupported)
	}
	p := &CiliumNetworkPolicy{Name: raw.Metadata.Name, Namespace: raw.Metadata.Namespace, EndpointSelector: stripSelector(*raw.Spec.EndpointSelector)}
	spec := field.NewPath("spec")
	opts := metav1validation.LabelSelectorValidationOptions{}
	if errs := metav1validation.ValidateLabelSelector(&p.EndpointSelector, opts, spec.Child("endpointSelector")); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, errs.ToAggregate())
	}
	for _, sec := range []struct {
		name   string
		raw    []rawCiliumRule
		out    *[]CiliumRule
		egress bool
	}{{"ingress", raw.Spec.Ingress, &p.Ingress, false}, {"ingressDeny", raw.Spec.IngressDeny, &p.IngressDeny, false},
		{"egress", raw.Spec.Egress, &p.Egress, true}, {"egressDeny", raw.Spec.EgressDeny, &p.EgressDeny, true}} {
		for i, r := range sec.raw {
			path := spec.Child(sec.name).Index(i)
			cr := CiliumRule{Endpoints: r.FromEndpoints, Entities: r.FromEntities}
			epField, entField, cidrField := "fromEndpoints", "fromEntities", "fromCIDR"
			cidrs, sets := r.FromCIDR, r.FromCIDRSet
			if sec.egress {
				cr.Endpoints, cr.Entities = r.ToEndpoints, r.ToEntities
				epField, entField, cidrField = "toEndpoints", "toEntities", "toCIDR"
				cidrs, sets = r.ToCIDR, r.ToCIDRSet
			}
			for j, c := range cidrs {
				pf, err := ciliumCIDR(c, path.Child(cidrField).Index(j))
				if err != nil {
					return nil, err
				}
				cr.CIDRs = append(cr.CIDRs, CIDRSet{CIDR: pf})
			}
			for j, set := range sets {
				cs, err := ciliumCIDRSet(set, path.Child(cidrField+"Set").Index(j))
				if err != nil {
					return nil, err
				}
				cr.CIDRs = append(cr.CIDRs, cs)
			}
			for j := range cr.Endpoints {
				cr.Endpoints[j] = stripSelector(cr.Endpoints[j])
				if errs := metav1validation.ValidateLabelSelector(&cr.Endpoints[j], opts, path.Child(epField).Index(j)); len(errs) > 0 {
					return nil, fmt.Errorf("%w: %s", ErrInvalid, errs.ToAggregate())
				}
			}
			for j, e := range cr.Entities {
				if !slices.Contains(ciliumEntities, e) {
					return nil, fmt.Errorf("%s: entity %q: %w (use %s)", path.Child(entField).Index(j), e, ErrUnsupported, strings.Join(ciliumEntities, ", "))
				}
			}
			for j, tp := range r.ToPorts {
				for k, rp := range tp.Ports {
					pp := path.Child("toPorts").Index(j).Child("ports").Index(k)
					cp, err := ciliumPort(rp.Port, rp.EndPort, rp.Protocol, pp)
					if err != nil {
						return nil, err
					}
					cr.Ports = append(cr.Ports, cp)
				}
			}
			*sec.out = append(*sec.out, cr)
		}
	}
	return p, nil
}

// ciliumCIDR reads a CIDR rule's prefix; a bare address is its host
// prefix, as Cilium reads one.
func ciliumCIDR(s string, p *field.Path) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s: %w: Invalid value: %q: must be a CIDR or an address", p, ErrInvalid, s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s: %w: Invalid value: %q: must be a CIDR", p, ErrInvalid, s)
	}
	return pf.Masked(), nil
}

// ciliumCIDRSet reads a fromCIDRSet/toCIDRSet entry: every except must
// lie inside the cidr (Cilium refuses the policy otherwise).
func ciliumCIDRSet(raw rawCIDRSet, p *field.Path) (CIDRSet, error) {
	if raw.CIDR == "" {
		return CIDRSet{}, fmt.Errorf("%s: %w: Required value (cidrGroupRef, cidrGroupSelector: %w)", p.Child("cidr"), ErrInvalid, ErrUnsupported)
	}
	cidr, err := ciliumCIDR(raw.CIDR, p.Child("cidr"))
	if err != nil {
		return CIDRSet{}, err
	}
	cs := CIDRSet{CIDR: cidr}
	for k, e := range raw.Except {
		ex, err := ciliumCIDR(e, p.Child("except").Index(k))
		if err != nil {
			return CIDRSet{}, err
		}
		if ex.Addr().Is4() != cidr.Addr().Is4() || ex.Bits() < cidr.Bits() || !cidr.Contains(ex.Addr()) {
			return CIDRSet{}, fmt.Errorf("%s: %w: Invalid value: %q: must lie inside cidr %s", p.Child("except").Index(k), ErrInvalid, e, cidr)
		}
		cs.Except = append(cs.Except, ex)
	}
	return cs, nil
}

func ciliumPort(port string, end int32, proto string, p *field.Path) (CiliumPort, error) {
	proto = strings.ToUpper(proto)
	if proto == "" {
		proto = "ANY"
	}
	if !slices.Contains([]string{"TCP", "UDP", "SCTP", "ANY"}, proto) {
		if proto == "ICMP" || proto == "ICMPV6" {
			return CiliumPort{}, fmt.Errorf("%s: %q: %w (ICMP rules are icmps, outside the L3/L4 subset)", p.Child("protocol"), proto, ErrUnsupported)
		}
		return CiliumPort{}, fmt.Errorf("%s: %w: Unsupported value: %q: supported values: \"TCP\", \"UDP\", \"SCTP\", \"ANY\"", p.Child("protocol"), ErrInvalid, proto)
	}
	cp := CiliumPort{Protocol: proto}
	if port == "" || port == "0" {
		if end != 0 {
			return CiliumPort{}, fmt.Errorf("%s: %w: endPort needs a numeric port", p.Child("endPort"), ErrInvalid)
		}
		return cp, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		if end != 0 {
			return CiliumPort{}, fmt.Errorf("%s: %w: may not be specified when `port` is non-numeric", p.Child("endPort"), ErrInvalid)
		}
		cp.Name = port
		return cp, nil
	}
	if n < 1 || n > 65535 {
		return CiliumPort{}, fmt.Errorf("%s: %w: Invalid value: %q: must be between 1 and 65535, inclusive", p.Child("port"), ErrInvalid, port)
	}
	cp.Port = uint16(n)
	if end != 0 {
		if end < int32(n) || end > 65535 {
			return CiliumPort{}, fmt.Errorf("%s: %w: Invalid value: %d: must be between `port` and 65535", p.Child("endPort"), ErrInvalid, end)
		}
		cp.EndPort = uint16(end)
	}
	return cp, nil
}

// stripSelector takes Cilium's label source prefixes ("k8s:", "any:")
// off a selector's keys.
func stripSelector(sel metav1.LabelSelector) metav1.LabelSelector {
	out := metav1.LabelSelector{}
	if sel.MatchLabels != nil {
		out.MatchLabels = map[string]string{}
	}
	for k, v := range sel.MatchLabels {
		out.MatchLabels[stripSource(k)] = v
	}
	for _, e := range sel.MatchExpressions {
		e.Key = stripSource(e.Key)
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	return out
}
