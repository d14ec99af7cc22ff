package spec

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/netbed/netbed/generation"
)

// rawGenOptions is one entry of a scenario's `options:`.
type rawGenOptions struct {
	ClusterCIDR string `yaml:"cluster_cidr"`
	NodeMask    int    `yaml:"node_mask"`
	// Gen 3's IPv6 pod addresses (GenOptions.ClusterCIDR6, NodeMask6).
	ClusterCIDR6 string `yaml:"cluster_cidr6"`
	NodeMask6    int    `yaml:"node_mask6"`
	VLANs        string `yaml:"vlans"`
	VNIs         string `yaml:"vnis"`
	// The vpc generation's cloud (VPCOptions).
	InstanceType    string `yaml:"instance_type"`
	WarmENITarget   int    `yaml:"warm_eni_target"`
	WarmIPTarget    int    `yaml:"warm_ip_target"`
	MinimumIPTarget int    `yaml:"minimum_ip_target"`
	CloudLimits     string `yaml:"cloud_limits"`
	CNILimits       string `yaml:"cni_limits"`
}

// genOptions checks and sets the scenario's options, keyed by
// generation or default: every malformed value is an error at its line.
func (p *parser) genOptions(raw map[string]rawGenOptions, root *yaml.Node, s *Scenario) {
	node := child(root, "options")
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		r := raw[key]
		entry := child(node, key)
		line := lineOf(entry, lineOf(node, root.Line))
		at := func(field string) int { return lineOf(child(entry, field), line) }
		path := "options." + key
		if key != "default" && !generation.Known(Generation(key)) {
			p.fail(line, path, "not a generation; use default or one of %v", generation.Names())
			continue
		}
		var o GenOptions
		if r.ClusterCIDR != "" {
			c, err := netip.ParsePrefix(r.ClusterCIDR)
			switch {
			case err != nil:
				p.fail(at("cluster_cidr"), path+".cluster_cidr", "%q is not a CIDR (like 10.0.0.0/12)", r.ClusterCIDR)
			case !c.Addr().Is4() || c.Bits() < 8 || c.Bits() > 30:
				p.fail(at("cluster_cidr"), path+".cluster_cidr", "%v: want an IPv4 CIDR from /8 to /30", c)
			case c.Masked() != c:
				p.fail(at("cluster_cidr"), path+".cluster_cidr", "%v has host bits set; did you mean %v?", c, c.Masked())
			}
			o.ClusterCIDR = c
		}
		if r.NodeMask != 0 {
			if r.NodeMask < 8 || r.NodeMask > 30 {
				p.fail(at("node_mask"), path+".node_mask", "%d: want a prefix length from 8 to 30 (24: a /24 per node, 253 pods)", r.NodeMask)
			}
			o.NodeMask = r.NodeMask
		}
		if r.ClusterCIDR6 != "" {
			c, err := netip.ParsePrefix(r.ClusterCIDR6)
			switch {
			case err != nil:
				p.fail(at("cluster_cidr6"), path+".cluster_cidr6", "%q is not a CIDR (like fd10::/104)", r.ClusterCIDR6)
			case !c.Addr().Is6() || c.Addr().Is4In6() || c.Bits() < 16 || c.Bits() > MaxNodeMask6:
				p.fail(at("cluster_cidr6"), path+".cluster_cidr6", "%v: want an IPv6 CIDR from /16 to /%d, like fd10::/104", c, MaxNodeMask6)
			case c.Masked() != c:
				p.fail(at("cluster_cidr6"), path+".cluster_cidr6", "%v has host bits set; did you mean %v?", c, c.Masked())
			}
			o.ClusterCIDR6 = c
		}
		if r.NodeMask6 != 0 {
			if r.NodeMask6 < MinNodeMask6 || r.NodeMask6 > MaxNodeMask6 {
				p.fail(at("node_mask6"), path+".node_mask6", "%d: want a prefix length from %d to %d (120: a /120 per node, 254 pods)", r.NodeMask6, MinNodeMask6, MaxNodeMask6)
			}
			o.NodeMask6 = r.NodeMask6
		}
		o.VLANs = p.idRange(r.VLANs, at("vlans"), path+".vlans", MaxVLAN, "VLAN IDs run from 1 to 4094")
		o.VNIs = p.idRange(r.VNIs, at("vnis"), path+".vnis", MaxVNI, "VNIs run from 1 to 16777215")
		o.VPC = VPCOptions{InstanceType: r.InstanceType, Limits: r.CloudLimits, CNILimits: r.CNILimits,
			WarmENITarget: r.WarmENITarget, WarmIPTarget: r.WarmIPTarget, MinimumIPTarget: r.MinimumIPTarget}
		for _, t := range []struct {
			name string
			v    int
		}{{"warm_eni_target", r.WarmENITarget}, {"warm_ip_target", r.WarmIPTarget}, {"minimum_ip_target", r.MinimumIPTarget}} {
			if t.v < 0 {
				p.fail(at(t.name), path+"."+t.name, "%d: a pool target is a count, 0 or more", t.v)
			}
		}
		if r.CloudLimits != "" && !filepath.IsAbs(r.CloudLimits) && s.File != "" {
			// Relative to the scenario file, as topology files are.
			o.VPC.Limits = filepath.Join(filepath.Dir(s.File), r.CloudLimits)
		}
		if r.CNILimits != "" && !filepath.IsAbs(r.CNILimits) && s.File != "" {
			o.VPC.CNILimits = filepath.Join(filepath.Dir(s.File), r.CNILimits)
		}
		if s.Options == nil {
			s.Options = map[string]GenOptions{}
		}
		s.Options[key] = o
	}
}

// idRange parses "first-last" (or one ID) within 1..limit.
func (p *parser) idRange(v string, line int, field string, limit uint32, why string) IDRange {
	if v == "" {
		return IDRange{}
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		b = a
	}
	first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		p.fail(line, field, "%q is not a range; write first-last, like 100-199", v)
	case first < 1 || last > uint64(limit):
		p.fail(line, field, "%q: %s", v, why)
	case first > last:
		p.fail(line, field, "%q runs backwards; write first-last, first ≤ last", v)
	default:
		return IDRange{uint32(first), uint32(last)}
	}
	return IDRange{}
}
