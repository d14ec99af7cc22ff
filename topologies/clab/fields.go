package clab

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// The fields a containerlab file may carry at each level are taken from
// containerlab's JSON schema, embedded here, so that the reader cannot fall
// behind it; beyond adds what containerlab itself reads or writes that the
// schema does not list (containerlab generate writes a top-level "debug";
// newer releases accept groups, extended links and more node fields).
// Inside a node's nested objects (extras, dns, healthcheck, stages, ...) the
// reader checks nothing: netbed carries them verbatim.

//go:embed schema/clab.schema.json
var schemaJSON []byte

// place is one level of a containerlab file and the fields it accepts.
type place struct {
	name   string // as the tests and errors call it: "top level", "node", ...
	schema string // JSON pointer to the schema's properties for it; "" when the schema has none
	beyond []string
}

var places = []place{
	{"top level", "/properties", []string{
		"debug", // core.Config.Debug; containerlab generate writes it
	}},
	{"topology", "/properties/topology/properties", []string{
		"groups", // types.Topology.Groups
	}},
	{"node", "/definitions/node-config/properties", []string{
		// types.NodeDefinition fields newer than the schema netbed pins
		"env-files", "devices", "cap-add", "shm-size", "sysctls", "components", "suppress-startup-config",
		"hostname", "volumes", "privileged", "cgroupns-mode", "cgroup-parent", "pid-mode", "tmpfs",
		"security-opts", "credentials", "position", "link-apply-mode",
		// deprecated, still read by containerlab
		"username", "password",
	}},
	{"brief link", "/definitions/link-config/properties", []string{
		"mtu", "labels", "ipv4", "ipv6", // links.LinkCommonParams
	}},
	{"extended link", "", []string{
		// links.LinkDefinition and the raw link types (veth, mgmt-net,
		// macvlan, host, vxlan, vxlan-stitch, dummy)
		"type", "endpoints", "endpoint", "mtu", "vars", "labels", "ipv4", "ipv6",
		"host-interface", "mode", "remote", "vni", "udp-port", "dst-port", "src-port",
	}},
	{"endpoint", "", []string{"node", "interface", "mac", "vars", "ipv4", "ipv6"}}, // links.EndpointRaw
	{"mgmt", "/properties/mgmt/properties", []string{
		"external-access", "skip-when-unused", "driver-opts", // types.MgmtNet
	}},
	{"settings", "/properties/settings/properties", nil},
}

// fieldSets are the accepted fields, one set per place.
type fieldSets struct {
	top, topology, node, brief, extended, endpoint, mgmt, settings map[string]bool
}

// accepted derives the field sets on first use, so that a netbed command
// that reads no topology does not parse the schema.
var accepted = sync.OnceValue(func() fieldSets {
	return fieldSets{
		top:      mustFields("top level"),
		topology: mustFields("topology"),
		node:     mustFields("node"),
		brief:    mustFields("brief link"),
		extended: mustFields("extended link"),
		endpoint: mustFields("endpoint"),
		mgmt:     mustFields("mgmt"),
		settings: mustFields("settings"),
	}
})

var schemaDoc = sync.OnceValues(func() (any, error) {
	var doc any
	err := json.Unmarshal(schemaJSON, &doc)
	return doc, err
})

// schemaProperties returns the property names at pointer (a JSON pointer
// such as "/definitions/node-config/properties") of the embedded schema.
func schemaProperties(pointer string) ([]string, error) {
	doc, err := schemaDoc()
	if err != nil {
		return nil, fmt.Errorf("containerlab schema: %w", err)
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("containerlab schema: %s: %q is not an object", pointer, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("containerlab schema: %s: no %q", pointer, tok)
		}
	}
	props, ok := cur.(map[string]any)
	if !ok || len(props) == 0 {
		return nil, fmt.Errorf("containerlab schema: %s lists no properties", pointer)
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	return names, nil
}

// fields returns the set of fields accepted at the named place.
func fields(name string) (map[string]bool, error) {
	for _, p := range places {
		if p.name != name {
			continue
		}
		keys := p.beyond
		if p.schema != "" {
			s, err := schemaProperties(p.schema)
			if err != nil {
				return nil, err
			}
			keys = append(s, keys...)
		}
		return set(keys...), nil
	}
	return nil, fmt.Errorf("no place %q", name)
}

func mustFields(name string) map[string]bool {
	f, err := fields(name)
	if err != nil {
		panic(err) // the embedded schema is part of the source
	}
	return f
}
