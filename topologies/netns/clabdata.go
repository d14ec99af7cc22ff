package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/netbed/netbed/topologies"
)

// ClabDataFile is the file containerlab writes into a lab's directory
// (clab-<lab>/topology-data.json) when it deploys.
const ClabDataFile = "topology-data.json"

// clabData is the part of containerlab's topology-data.json netbed reads.
type clabData struct {
	Name string `json:"name"`
	Clab struct {
		Config struct {
			Prefix *string `json:"prefix"`
		} `json:"config"`
	} `json:"clab"`
	Nodes map[string]struct {
		Index     string         `json:"index"`
		Shortname string         `json:"shortname"`
		Longname  string         `json:"longname"`
		Group     string         `json:"group"`
		Kind      string         `json:"kind"`
		Image     string         `json:"image"`
		Labels    map[string]any `json:"labels"`
	} `json:"nodes"`
	Links []struct {
		A clabEnd `json:"a"`
		Z clabEnd `json:"z"`
	} `json:"links"`
}

type clabEnd struct {
	Node      string `json:"node"`
	Interface string `json:"interface"`
}

// ClabLab is a lab described by containerlab's topology-data.json.
type ClabLab struct {
	Topology *topologies.Topology
	// Netns maps node name to namespace (container) name, containerlab's
	// "longname".
	Netns map[string]string
	// Skipped lists links that do not join two lab nodes (to "host",
	// "mgmt-net", bridges...), which netbed does not model.
	Skipped []string
}

// ParseClabData reads containerlab's topology-data.json. Roles come from the
// node label "netbed.role" when present and valid; otherwise they stay empty.
func ParseClabData(b []byte) (*ClabLab, error) {
	var d clabData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ClabDataFile, err)
	}
	if d.Name == "" {
		return nil, fmt.Errorf("parse %s: no lab name (is this a containerlab topology-data.json?)", ClabDataFile)
	}
	if len(d.Nodes) == 0 {
		return nil, fmt.Errorf("parse %s: lab %s has no nodes", ClabDataFile, d.Name)
	}
	t := &topologies.Topology{Name: d.Name, Prefix: d.Clab.Config.Prefix}
	if p := t.Prefix; p != nil && *p == "clab" {
		t.Prefix = nil // containerlab's default, written out
	}
	keys := make([]string, 0, len(d.Nodes))
	for k := range d.Nodes {
		keys = append(keys, k)
	}
	index := func(k string) int {
		i, err := strconv.Atoi(d.Nodes[k].Index)
		if err != nil {
			return 1 << 30
		}
		return i
	}
	sort.Slice(keys, func(i, j int) bool {
		if a, b := index(keys[i]), index(keys[j]); a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
	lab := &ClabLab{Topology: t, Netns: make(map[string]string, len(keys))}
	for _, k := range keys {
		dn := d.Nodes[k]
		name := k
		if dn.Shortname != "" {
			name = dn.Shortname
		}
		if t.Node(name) != nil {
			return nil, fmt.Errorf("parse %s: node %q appears twice", ClabDataFile, name)
		}
		n := &topologies.Node{Name: name, Kind: dn.Kind, Image: dn.Image}
		for lk, lv := range dn.Labels {
			s, ok := lv.(string)
			if !ok {
				continue
			}
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[lk] = s
		}
		if r := topologies.Role(n.Labels["netbed.role"]); r.Valid() {
			n.Role = r
		}
		t.Nodes = append(t.Nodes, n)
		lab.Netns[name] = dn.Longname
		if dn.Longname == "" {
			lab.Netns[name] = t.LabPrefix() + name
		}
	}
	for _, l := range d.Links {
		a := topologies.Endpoint{Node: l.A.Node, Iface: l.A.Interface}
		z := topologies.Endpoint{Node: l.Z.Node, Iface: l.Z.Interface}
		if t.Node(a.Node) == nil || t.Node(z.Node) == nil || a.Iface == "" || z.Iface == "" {
			lab.Skipped = append(lab.Skipped, a.String()+"--"+z.String())
			continue
		}
		t.Links = append(t.Links, &topologies.Link{A: a, B: z})
	}
	return lab, nil
}

var errNoClabData = errors.New("no containerlab topology-data.json")
