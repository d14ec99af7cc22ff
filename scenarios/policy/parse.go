package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// ErrInvalid is wrapped by every error about a document Kubernetes (or
// Cilium) would reject; ErrUnsupported by one naming a field netbed does
// not support yet.
var (
	ErrInvalid     = errors.New("invalid")
	ErrUnsupported = errors.New("not supported yet")
)

// Set is what one or more policy files hold: NetworkPolicies,
// CiliumNetworkPolicies and the labels of Namespaces, in file order.
type Set struct {
	NetworkPolicies []networkingv1.NetworkPolicy
	Cilium          []CiliumNetworkPolicy
	// Namespaces maps a Namespace document's name to its labels.
	Namespaces map[string]map[string]string
	// Origin maps a policy's Key to the document it came from
	// ("netpol.yaml: document 2, line 14").
	Origin map[string]string
}

// Key names a policy in a Set: "<kind> <namespace>/<name>".
func Key(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// Keys returns the Key of every policy in the set, in file order.
func (s *Set) Keys() []string {
	var out []string
	for _, p := range s.NetworkPolicies {
		out = append(out, Key("NetworkPolicy", p.Namespace, p.Name))
	}
	for _, p := range s.Cilium {
		out = append(out, Key("CiliumNetworkPolicy", p.Namespace, p.Name))
	}
	return out
}

// Len is how many policies the set holds.
func (s *Set) Len() int { return len(s.NetworkPolicies) + len(s.Cilium) }

// ReadFile parses the policy file at path (see Parse).
func ReadFile(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	return Parse(path, data)
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	n, line int
	data    []byte
}

// split cuts data into its YAML documents at "---" lines, skipping empty
// ones.
func split(data []byte) []document {
	var out []document
	var cur bytes.Buffer
	start, line, n := 1, 0, 0
	flush := func() {
		n++
		if !blank(cur.String()) {
			out = append(out, document{n: n, line: start, data: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	for l := range strings.Lines(string(data)) {
		line++
		if t := strings.TrimRight(l, " \t\r\n"); t == "---" || strings.HasPrefix(t, "--- ") {
			if line > 1 {
				flush()
			} else {
				n = 0
			}
			start = line + 1
			continue
		}
		cur.WriteString(l)
	}
	flush()
	return out
}

func blank(s string) bool {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "..." {
			return false
		}
	}
	return true
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// Parse reads one or many YAML documents (file names them in errors):
// networking.k8s.io/v1 NetworkPolicy, cilium.io/v2 CiliumNetworkPolicy
// (an L3/L4 subset, see cilium.go) and v1 Namespace (for its labels). A
// policy without a namespace is in "default". Every document is
// validated as the Kubernetes API server validates it; an error names
// the file, the document (its number, kind, name and first line) and the
// field, with the API server's own reason.
func Parse(file string, data []byte) (*Set, error) {
	s := &Set{Namespaces: map[string]map[string]string{}, Origin: map[string]string{}}
	docs := split(data)
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no policy documents", file)
	}
	seen := map[string]string{}
	for _, d := range docs {
		where := fmt.Sprintf("%s: document %d (line %d)", file, d.n, d.line)
		var tm typeMeta
		if err := yaml.Unmarshal(d.data, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if tm.Metadata.Name != "" {
			where = fmt.Sprintf("%s: document %d (%s %s, line %d)", file, d.n, tm.Kind, tm.Metadata.Name, d.line)
		}
		ns := tm.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		key := Key(tm.Kind, ns, tm.Metadata.Name)
		switch {
		case tm.Kind == "NetworkPolicy" && tm.APIVersion == "networking.k8s.io/v1":
			var np networkingv1.NetworkPolicy
			if err := yaml.UnmarshalStrict(d.data, &np); err != nil {
				if f := unknownField(d.data, reflect.TypeFor[networkingv1.NetworkPolicy]()); f != "" {
					return nil, fmt.Errorf("%s: %w: strict decoding error: unknown field %q", where, ErrInvalid, f)
				}
				return nil, fmt.Errorf("%s: %w: %v", where, ErrInvalid, err)
			}
			if np.Namespace == "" {
				np.Namespace = "default"
			}
			Default(&np)
			if errs := ValidateNetworkPolicy(&np); len(errs) > 0 {
				return nil, fmt.Errorf("%s: %w: NetworkPolicy.networking.k8s.io %q is invalid: %s", where, ErrInvalid, np.Name, errs.ToAggregate())
			}
			s.NetworkPolicies = append(s.NetworkPolicies, np)
		case tm.Kind == "CiliumNetworkPolicy" && tm.APIVersion == "cilium.io/v2":
			cnp, err := parseCilium(d.data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if cnp.Namespace == "" {
				cnp.Namespace = "default"
			}
			s.Cilium = append(s.Cilium, *cnp)
		case tm.Kind == "Namespace" && tm.APIVersion == "v1":
			var n corev1.Namespace
			if err := yaml.Unmarshal(d.data, &n); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if n.Name == "" {
				return nil, fmt.Errorf("%s: %w: metadata.name: Required value: name or generateName is required", where, ErrInvalid)
			}
			s.Namespaces[n.Name] = n.Labels
			continue
		default:
			return nil, fmt.Errorf("%s: kind %q of apiVersion %q: %w (use networking.k8s.io/v1 NetworkPolicy, cilium.io/v2 CiliumNetworkPolicy or v1 Namespace)", where, tm.Kind, tm.APIVersion, ErrUnsupported)
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s: %s is defined twice (first at %s)", where, key, prev)
		}
		seen[key] = where
		s.Origin[key] = where
	}
	return s, nil
}

// Merge returns a set holding a's policies and then b's; a policy of b
// replaces a's policy with the same key (as kubectl apply does).
func Merge(a, b *Set) *Set {
	out := &Set{Namespaces: map[string]map[string]string{}, Origin: map[string]string{}}
	has := map[string]bool{}
	for _, p := range b.NetworkPolicies {
		has[Key("NetworkPolicy", p.Namespace, p.Name)] = true
	}
	for _, p := range b.Cilium {
		has[Key("CiliumNetworkPolicy", p.Namespace, p.Name)] = true
	}
	for _, s := range []*Set{a, b} {
		if s == nil {
			continue
		}
		for _, p := range s.NetworkPolicies {
			if k := Key("NetworkPolicy", p.Namespace, p.Name); s == b || !has[k] {
				out.NetworkPolicies = append(out.NetworkPolicies, p)
				out.Origin[k] = s.Origin[k]
			}
		}
		for _, p := range s.Cilium {
			if k := Key("CiliumNetworkPolicy", p.Namespace, p.Name); s == b || !has[k] {
				out.Cilium = append(out.Cilium, p)
				out.Origin[k] = s.Origin[k]
			}
		}
		for n, l := range s.Namespaces {
			out.Namespaces[n] = l
		}
	}
	return out
}

// Remove returns a without the policies b holds (by key); b's Namespace
// documents are kept. It fails naming a policy of b that a lacks.
func Remove(a, b *Set) (*Set, error) {
	drop := map[string]bool{}
	for _, k := range b.Keys() {
		drop[k] = true
	}
	out := &Set{Namespaces: map[string]map[string]string{}, Origin: map[string]string{}}
	if a != nil {
		for n, l := range a.Namespaces {
			out.Namespaces[n] = l
		}
		for _, p := range a.NetworkPolicies {
			k := Key("NetworkPolicy", p.Namespace, p.Name)
			if drop[k] {
				delete(drop, k)
				continue
			}
			out.NetworkPolicies = append(out.NetworkPolicies, p)
			out.Origin[k] = a.Origin[k]
		}
		for _, p := range a.Cilium {
			k := Key("CiliumNetworkPolicy", p.Namespace, p.Name)
			if drop[k] {
				delete(drop, k)
				continue
			}
			out.Cilium = append(out.Cilium, p)
			out.Origin[k] = a.Origin[k]
		}
	}
	for _, k := range b.Keys() {
		if drop[k] {
			return nil, fmt.Errorf("remove %s (%s): it is not applied", k, b.Origin[k])
		}
	}
	return out, nil
}
