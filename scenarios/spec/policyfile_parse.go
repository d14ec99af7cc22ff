package spec

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/scenarios/policy"
)

// policyFile reads the policy file a policy step names (relative to the
// scenario file): a step with a file carries nothing else but its action.
func (p *parser) policyFile(n *yaml.Node, field string, po *rawPolicy) (string, *policy.Set) {
	if po.Name != "" || po.From != nil || po.To != nil || po.Proto != "" || po.Port != 0 || po.Allow != nil {
		p.fail(lineOf(n, 0), field+".file", "a policy file holds the whole policy; drop name, from, to, proto, port and allow")
		return "", nil
	}
	path := po.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.file), path)
	}
	s, err := policy.ReadFile(path)
	if err != nil {
		p.fail(lineOf(child(n, "file"), lineOf(n, 0)), field+".file", "%v", err)
		return "", nil
	}
	return po.File, s
}

// namedPorts reads a spawn's named ports: "http: 8080" (TCP) or
// "dns: 53/udp".
func (p *parser) namedPorts(n *yaml.Node, field string, in map[string]string) []policy.NamedPort {
	var out []policy.NamedPort
	for _, name := range slices.Sorted(maps.Keys(in)) {
		v := in[name]
		num, proto, _ := strings.Cut(v, "/")
		if proto == "" {
			proto = "tcp"
		}
		port, err := strconv.ParseUint(num, 10, 16)
		proto = strings.ToUpper(proto)
		if err != nil || port == 0 || (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
			p.fail(lineOf(child(n, name), lineOf(n, 0)), field+"."+name, "%q: write a port as 8080, 8080/tcp, 53/udp or 9/sctp", v)
			continue
		}
		out = append(out, policy.NamedPort{Name: name, Port: uint16(port), Protocol: proto})
	}
	return out
}
