package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/netbed/netbed/datapath/vpc/cloud"
	"github.com/netbed/netbed/datapath/vpc/ipamd"
)

// CloudParams describe the public cloud's plan (the vpc generation):
// pods per node by instance type, and one zone's spawn storm through the
// cloud API with and without warm pools. Zero fields take the defaults
// in parentheses.
type CloudParams struct {
	// LimitsFile is the cloud's limits (the shipped
	// datapath/vpc/cloud/limits.yaml).
	LimitsFile string `json:"limits_file,omitempty"`
	// InstanceType of the storm's nodes (m5.large).
	InstanceType string `json:"instance_type"`
	// Nodes in the zone (Params.NodesPerZone).
	Nodes int `json:"nodes"`
	// PodsPerNode in the storm (the type's max pods less its 2
	// host-network pods, which take no VPC address).
	PodsPerNode int `json:"pods_per_node"`
	// Pools are the warm pool settings to compare: no pool is always
	// first, then the AWS VPC CNI's default WARM_ENI_TARGET=1, then
	// these (WARM_IP_TARGET=5; MINIMUM_IP_TARGET=pods per node with
	// WARM_IP_TARGET=2).
	Pools []ipamd.Config `json:"pools,omitempty"`
}

// Cloud is the public cloud's plan.
type Cloud struct {
	Params  CloudParams `json:"params"`
	Sources []string    `json:"sources"`
	// Types: each instance type's limits and the largest pod count per
	// node for the AWS VPC CNI, ENIs x (addresses per ENI - 1) + 2.
	Types []CloudType `json:"instance_types"`
	// Storms: the zone's spawn storm, one per pool setting, the first
	// without a pool.
	Storms []CloudStorm `json:"spawn_storms"`
}

// CloudType is one instance type's pod density.
type CloudType struct {
	Name       string `json:"name"`
	ENIs       int    `json:"enis"`
	IPv4PerENI int    `json:"ipv4_per_eni"`
	MaxPods    int    `json:"max_pods"`
}

// CloudStorm is one spawn storm: every pod of the zone at once.
type CloudStorm struct {
	Pool   string `json:"pool"`
	Pods   int    `json:"pods"`
	Failed int    `json:"failed,omitempty"`
	// Calls to the cloud API during the storm, and those throttled
	// (RequestLimitExceeded), in all and by action.
	Calls       int            `json:"api_calls"`
	Throttled   int            `json:"throttled"`
	CallsBy     map[string]int `json:"calls_by_action"`
	ThrottledBy map[string]int `json:"throttled_by_action,omitempty"`
	// Spawn: a pod's wait for its address, from the storm's start.
	P50 time.Duration `json:"spawn_p50_ns"`
	P99 time.Duration `json:"spawn_p99_ns"`
	Max time.Duration `json:"spawn_max_ns"`
}

func (p *CloudParams) defaults(zone Params, l *cloud.Limits) (cloud.InstanceType, error) {
	if p.InstanceType == "" {
		p.InstanceType = "m5.large"
	}
	t, ok := l.InstanceType(p.InstanceType)
	if !ok {
		var names []string
		for _, t := range l.InstanceTypes {
			names = append(names, t.Name)
		}
		return t, fmt.Errorf("plan: instance type %q is not in the cloud limits; use one of %s", p.InstanceType, strings.Join(names, ", "))
	}
	if p.Nodes == 0 {
		p.Nodes = zone.NodesPerZone
	}
	if p.PodsPerNode == 0 {
		p.PodsPerNode = t.MaxPods() - 2
	}
	if p.Nodes < 1 || p.PodsPerNode < 1 {
		return t, fmt.Errorf("plan: cloud storm of %d nodes, %d pods a node: want at least 1 of each", p.Nodes, p.PodsPerNode)
	}
	if len(p.Pools) == 0 {
		p.Pools = []ipamd.Config{{WarmIPTarget: 5}, {WarmIPTarget: 2, MinimumIPTarget: p.PodsPerNode}}
	}
	return t, nil
}

// RunCloud plans the public cloud: pods per node for every instance type
// in the limits, and the zone's spawn storm for each pool setting (in the
// model's virtual time: the same parameters give the same plan).
func RunCloud(zone Params, cp CloudParams, progress func(string)) (*Cloud, error) {
	if err := zone.defaults(); err != nil {
		return nil, err
	}
	l, err := cloud.LoadLimits(cp.LimitsFile)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if _, err := cp.defaults(zone, l); err != nil {
		return nil, err
	}
	c := &Cloud{Params: cp, Sources: l.Sources}
	for _, t := range l.InstanceTypes {
		c.Types = append(c.Types, CloudType{Name: t.Name, ENIs: t.ENIs, IPv4PerENI: t.IPv4PerENI, MaxPods: t.MaxPods()})
	}
	pools := append([]ipamd.Config{{}, {WarmENITarget: 1}}, cp.Pools...)
	for _, pool := range pools {
		if progress != nil {
			progress(fmt.Sprintf("vpc: spawn storm of %d pods on %d %s nodes, %v", cp.Nodes*cp.PodsPerNode, cp.Nodes, cp.InstanceType, pool))
		}
		r, err := ipamd.Storm(ipamd.StormSpec{Limits: l, InstanceType: cp.InstanceType, Nodes: cp.Nodes, PodsPerNode: cp.PodsPerNode, Pool: pool})
		if err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		c.Storms = append(c.Storms, CloudStorm{Pool: pool.String(), Pods: r.Pods, Failed: r.Failed, Calls: r.Calls, Throttled: r.Throttled,
			CallsBy: r.CallsBy, ThrottledBy: r.ThrottledBy, P50: r.P50, P99: r.P99, Max: r.Max})
	}
	return c, nil
}

// writeCloudMarkdown writes the cloud's section of the plan.
func writeCloudMarkdown(b *strings.Builder, c *Cloud) {
	cp := c.Params
	fmt.Fprintf(b, "\n## vpc (public cloud)\n\nPods per node by instance type (the AWS VPC CNI: ENIs x (IPv4 addresses per ENI - 1) + 2):\n\n| instance type | ENIs | IPv4 per ENI | max pods |\n|---|---|---|---|\n")
	for _, t := range c.Types {
		fmt.Fprintf(b, "| %s | %d | %d | %d |\n", t.Name, t.ENIs, t.IPv4PerENI, t.MaxPods)
	}
	fmt.Fprintf(b, "\nSpawn storm of a zone: %d pods at once on %d %s nodes (%d a node), through the cloud API with its latencies and request throttling; a pod's spawn is its wait for a VPC address.\n\n",
		cp.Nodes*cp.PodsPerNode, cp.Nodes, cp.InstanceType, cp.PodsPerNode)
	b.WriteString("| warm pool | pods | API calls | throttled | spawn p50 | p99 | max | calls by action (throttled) |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range c.Storms {
		var by []string
		for _, a := range slices.Sorted(maps.Keys(s.CallsBy)) {
			x := fmt.Sprintf("%s %d", a, s.CallsBy[a])
			if n := s.ThrottledBy[a]; n > 0 {
				x += fmt.Sprintf(" (%d)", n)
			}
			by = append(by, x)
		}
		pods := fmt.Sprint(s.Pods)
		if s.Failed > 0 {
			pods += fmt.Sprintf(" (%d found no room)", s.Failed)
		}
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %s | %s |\n", s.Pool, pods, s.Calls, s.Throttled, dur(s.P50), dur(s.P99), dur(s.Max), strings.Join(by, ", "))
	}
	b.WriteString("\nSources of the limits:\n\n")
	for _, s := range c.Sources {
		fmt.Fprintf(b, "- %s\n", s)
	}
}
