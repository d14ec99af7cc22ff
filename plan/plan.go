package plan

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

// Params describe the fabric to plan. Zero fields take the defaults in
// parentheses: the seed's largest zone, four times.
type Params struct {
	Zones            int `json:"zones"`              // availability zones, joined by border leaves (4)
	NodesPerZone     int `json:"nodes_per_zone"`     // hosts per zone (500)
	InstancesPerZone int `json:"instances_per_zone"` // VMs per zone, gens 1 and 2 (20,000)
	PodsPerNode      int `json:"pods_per_node"`      // pods per host, gen 3 (40: a zone's 20,000)
	// The fabric of a zone: spines, hosts per leaf (or per rack in gen
	// 1), border leaves (4, 20, 2).
	Spines       int `json:"spines"`
	HostsPerLeaf int `json:"hosts_per_leaf"`
	BorderLeaves int `json:"border_leaves"`
	// InstancesPerNetwork sizes the tenant networks of gens 1 and 2, each
	// a VLAN (and in gen 2 a VNI) (250: a /24).
	InstancesPerNetwork int `json:"instances_per_network"`
	// ControllerLatency is one controller call in the spawn storm, in
	// virtual time (simrt.ControllerLatency: the measured call).
	ControllerLatency time.Duration `json:"controller_latency_ns"`
	Seed              int64         `json:"seed"`
}

func (p *Params) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.Zones, 4)
	def(&p.NodesPerZone, 500)
	def(&p.InstancesPerZone, 20000)
	def(&p.Spines, 4)
	def(&p.HostsPerLeaf, 20)
	def(&p.BorderLeaves, 2)
	def(&p.InstancesPerNetwork, 250)
	if p.PodsPerNode == 0 {
		p.PodsPerNode = max(1, p.InstancesPerZone/p.NodesPerZone)
	}
	if p.ControllerLatency == 0 {
		p.ControllerLatency = simrt.ControllerLatency
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	for name, v := range map[string]int{"zones": p.Zones, "nodes per zone": p.NodesPerZone, "instances per zone": p.InstancesPerZone,
		"pods per node": p.PodsPerNode, "spines": p.Spines, "hosts per leaf": p.HostsPerLeaf, "border leaves": p.BorderLeaves,
		"instances per network": p.InstancesPerNetwork} {
		if v < 1 {
			return fmt.Errorf("plan: %s %d: want at least 1", name, v)
		}
	}
	if p.NodesPerZone%p.HostsPerLeaf != 0 {
		return fmt.Errorf("plan: %d nodes per zone are not whole leaves of %d hosts", p.NodesPerZone, p.HostsPerLeaf)
	}
	return nil
}

// Plan is what netbed plan found, per generation.
type Plan struct {
	// Shard is the part of the generations this plan holds (--shard);
	// nil for a whole plan. plan merge joins the shards.
	Shard    *reports.Shard `json:"shard,omitempty"`
	Params   Params         `json:"params"`
	Profiles []Profile      `json:"profiles"`
	Gens     []Gen          `json:"generations"`
	// Cloud is the public cloud's plan (the vpc generation), when asked.
	Cloud *Cloud `json:"cloud,omitempty"`
}

// Gen is one generation's plan.
type Gen struct {
	Generation string `json:"generation"`
	Topology   string `json:"topology"`
	Hosts      int    `json:"hosts"`
	Instances  int    `json:"instances"`
	Networks   int    `json:"networks,omitempty"`
	// VLANs used of MaxVLAN (gen 1: one per network, fabric-wide; gen 2:
	// one per network on each host's access side) and VNIs (gen 2).
	VLANs int `json:"vlans_used,omitempty"`
	VNIs  int `json:"vnis_used,omitempty"`
	// FloodDomain is what one broadcast reaches: gen 1, the devices that
	// learnt a network's MACs (every host, switch and router of the VLAN's
	// flood domain, here the whole fabric); gen 2, the VTEPs of the
	// largest flood list; gen 3, none (routed, no flooding).
	FloodDomain     int     `json:"flood_domain"`
	FloodDomainWhat string  `json:"flood_domain_what"`
	Tables          []Table `json:"tables"`
	Storm           Storm   `json:"spawn_storm"`
	Blast           []Blast `json:"blast_radius"`
	// RunsOutFirst is the table that reaches its profile's limit at the
	// lowest density, when one does.
	RunsOutFirst *Exhaustion   `json:"runs_out_first,omitempty"`
	Error        string        `json:"error,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
}

// Table is one table on the devices of one role: how its size is
// distributed, and the profile's limit.
type Table struct {
	Name    string `json:"table"`
	Role    string `json:"role"`
	Devices int    `json:"devices"`
	Min     int    `json:"min"`
	P50     int    `json:"p50"`
	Max     int    `json:"max"`
	Largest string `json:"largest_on"`
	Limit   int    `json:"limit,omitempty"`
	Profile string `json:"profile,omitempty"`
	// Use is Max over Limit.
	Use float64 `json:"use,omitempty"`
}

// Storm is the spawn of every instance, one after another, as the
// generation's IPAM does it.
type Storm struct {
	// IPAMCalls through the controller (gens 1 and 2: global IPAM, one
	// address per port); LocalAllocations on the nodes (gen 3).
	IPAMCalls        int `json:"ipam_calls"`
	LocalAllocations int `json:"local_allocations"`
	// ControllerCalls costed in the storm (port create with its address,
	// port bind), each ControllerLatency.
	ControllerCalls int           `json:"controller_calls"`
	Duration        time.Duration `json:"duration_ns"` // first spawn step to last, virtual time
	// CallsPerSecond is the controller's load meanwhile.
	CallsPerSecond float64 `json:"calls_per_second"`
	// AtNeutron is the storm's controller time at the seed's ~100 ms a
	// Neutron call.
	AtNeutron time.Duration `json:"at_neutron_ns"`
	// PerZone is one zone's storm (the question), scaled from
	// the whole: calls and time.
	PerZoneCalls    int           `json:"per_zone_calls"`
	PerZoneDuration time.Duration `json:"per_zone_duration_ns"`
}

// NeutronLatency is the seed's Neutron call (~100 ms, more under load).
const NeutronLatency = 100 * time.Millisecond

// Blast is what failing the worst device of one class costs.
type Blast struct {
	Role   string `json:"role"`
	Device string `json:"device"`
	// CutOff are the instances left with no path to the rest of the
	// fabric; Ports the instances on hosts linked to the device (their
	// NIC's link goes down, or their host did).
	CutOff int `json:"instances_cut_off"`
	Ports  int `json:"ports_affected"`
}

// Exhaustion is where a generation runs out: the table, on which class
// of device, and the density (instances per host) at which its largest
// instance reaches the limit, extrapolated linearly from the plan's.
type Exhaustion struct {
	Table   string  `json:"table"`
	Role    string  `json:"role"`
	Limit   int     `json:"limit"`
	Density float64 `json:"instances_per_host"`
}

// Run plans each generation in gens on sim. progress, if set, receives
// one-line progress messages.
func Run(ctx context.Context, p Params, profiles []Profile, gens []scenarios.Generation, progress func(string)) (*Plan, error) {
	if err := p.defaults(); err != nil {
		return nil, err
	}
	pl := &Plan{Params: p, Profiles: profiles}
	for _, gen := range gens {
		g, err := runGen(ctx, p, profiles, gen, progress)
		if err != nil {
			return nil, err
		}
		pl.Gens = append(pl.Gens, g)
	}
	return pl, nil
}

// scenario is the plan of gen as a scenario: the fabric, its networks and
// a spawn step per network (gens 1 and 2) or one of every pod (gen 3).
func scenario(p Params, gen scenarios.Generation) (src string, instances, networks int) {
	var b strings.Builder
	leaves := p.NodesPerZone / p.HostsPerLeaf
	topo := fmt.Sprintf("{builder: multi-az, params: {azs: %d, spines: %d, leaves: %d, hosts_per_leaf: %d, border_leaves: %d}}",
		p.Zones, p.Spines, leaves, p.HostsPerLeaf, p.BorderLeaves)
	if p.Zones == 1 {
		topo = fmt.Sprintf("{builder: spine-leaf, params: {spines: %d, leaves: %d, hosts_per_leaf: %d}}", p.Spines, leaves, p.HostsPerLeaf)
	}
	d := gen.Desc()
	if d.Topology == "three-tier" {
		// Gen 1 has no zones of its own: one three-tier fabric, a rack
		// of ToRs per leaf's worth of hosts, a pod of racks per zone.
		topo = fmt.Sprintf("{builder: three-tier, params: {pods: %d, racks_per_pod: %d, hosts_per_rack: %d}}", p.Zones, leaves, p.HostsPerLeaf)
	}
	fmt.Fprintf(&b, "name: plan-%s\ntopology: %s\ngenerations: [%s]\nseed: %d\n", gen, topo, gen, p.Seed)
	if d.LocalIPAM() {
		// Pods on every node, from its own pool: no networks to plan.
		instances = p.Zones * p.NodesPerZone * p.PodsPerNode
		fmt.Fprintf(&b, "steps:\n  - spawn: {name: pod, kind: pod, count: %d, network: any}\n", instances)
		return strings.Replace(b.String(), "steps:", "networks:\n  - {name: any, subnet: 10.64.0.0/24}\nsteps:", 1), instances, 0
	}
	instances = p.Zones * p.InstancesPerZone
	networks = (instances + p.InstancesPerNetwork - 1) / p.InstancesPerNetwork
	b.WriteString("networks:\n")
	for i := range networks {
		// 10.64.0.0/10 in /22s: room for 4,096 networks of up to 1,021.
		fmt.Fprintf(&b, "  - {name: n%d, subnet: 10.%d.%d.0/22}\n", i+1, 64+i/64, (i%64)*4)
	}
	b.WriteString("steps:\n")
	for i := range networks {
		n := min(p.InstancesPerNetwork, instances-i*p.InstancesPerNetwork)
		fmt.Fprintf(&b, "  - spawn: {name: n%d-vm, kind: vm, count: %d, network: n%d}\n", i+1, n, i+1)
	}
	return b.String(), instances, networks
}

func runGen(ctx context.Context, p Params, profiles []Profile, gen scenarios.Generation, progress func(string)) (g Gen, err error) {
	start := time.Now()
	src, instances, networks := scenario(p, gen)
	g = Gen{Generation: string(gen), Instances: instances, Networks: networks}
	defer func() { g.Elapsed = time.Since(start) }()
	if networks > 4096 {
		return g, fmt.Errorf("plan %s: %d networks of %d instances: more than the plan's addressing holds (4,096); raise --instances-per-network", gen, networks, p.InstancesPerNetwork)
	}
	s, err := scenarios.Parse("plan-"+string(gen)+".yaml", []byte(src))
	if err != nil {
		return g, fmt.Errorf("plan %s: %w", gen, err)
	}
	topo, err := s.TopologyFor(gen).Build(s.File)
	if err != nil {
		return g, fmt.Errorf("plan %s: %w", gen, err)
	}
	g.Topology, g.Hosts = topo.String(), len(topo.NodesByRole(topologies.RoleHost))
	dir, err := os.MkdirTemp("", "netbed-plan-")
	if err != nil {
		return g, err
	}
	defer os.RemoveAll(dir)
	// The controller's store in memory: a bbolt commit per controller call
	// was a third of a zone's CPU, and no figure depends on the medium.
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: dir,
		ControllerLatency: p.ControllerLatency, MemoryStore: true})
	var prog func(string)
	if progress != nil {
		prog = func(m string) { progress(string(gen) + ": " + m) }
	}
	run, err := scenarios.Run(ctx, s, gen, b, scenarios.Options{Progress: prog})
	if ctx.Err() != nil {
		return g, ctx.Err()
	}
	if err != nil {
		// A limit reached (an address pool exhausted) is a finding.
		g.Error = err.Error()
		return g, nil
	}
	switch gen.Desc().Segment {
	case generation.SegmentVLAN:
		g.VLANs = networks
	case generation.SegmentVXLAN:
		g.VLANs, g.VNIs = networks, networks
	}
	g.Tables = tables(run, topo, profiles)
	g.FloodDomain, g.FloodDomainWhat = floodDomain(gen, run, topo)
	g.Storm = storm(p, gen, run)
	hostOf := map[string]string{}
	for _, e := range run.Timeline {
		if h, ok := strings.CutPrefix(e.Step, "1-schedule:"); ok {
			hostOf[e.Instance] = h
		}
	}
	perHost := map[string]int{}
	for _, h := range hostOf {
		perHost[h]++
	}
	g.Blast = blast(topo, perHost)
	g.RunsOutFirst = runsOut(g.Tables, float64(instances)/float64(g.Hosts))
	return g, nil
}

// tables groups the run's table sizes by name and device role.
func tables(run *reports.Run, topo *topologies.Topology, profiles []Profile) []Table {
	type key struct{ name, role string }
	sizes := map[key][]reports.Table{}
	for _, t := range run.Tables {
		n := topo.Node(t.Node)
		if n == nil {
			continue
		}
		k := key{t.Name, string(n.Role)}
		sizes[k] = append(sizes[k], t)
	}
	var out []Table
	for k, ts := range sizes {
		sort.Slice(ts, func(a, b int) bool {
			return ts[a].Entries < ts[b].Entries || ts[a].Entries == ts[b].Entries && ts[a].Node > ts[b].Node
		})
		t := Table{Name: k.name, Role: k.role, Devices: len(ts), Min: ts[0].Entries, P50: ts[(len(ts)-1)/2].Entries,
			Max: ts[len(ts)-1].Entries, Largest: ts[len(ts)-1].Node}
		if t.Max == 0 {
			continue
		}
		t.Limit, t.Profile = limit(profiles, k.role, k.name)
		if t.Limit > 0 {
			t.Use = math.Round(float64(t.Max)/float64(t.Limit)*1e4) / 1e4
		}
		out = append(out, t)
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a].Name < out[b].Name || out[a].Name == out[b].Name && out[a].Role < out[b].Role
	})
	return out
}

// floodDomain is the size of what one broadcast reaches.
func floodDomain(gen scenarios.Generation, run *reports.Run, topo *topologies.Topology) (int, string) {
	switch gen.Desc().Flood {
	case generation.FloodLearnt:
		// Every device that learnt MACs is in a VLAN's flood domain.
		devs := map[string]bool{}
		for _, t := range run.Tables {
			if t.Name == "macs" && t.Entries > 0 {
				devs[t.Node] = true
			}
		}
		return len(devs), "devices a broadcast reaches (they learnt the VLAN's MACs)"
	case generation.FloodVTEPs:
		most := 0
		for _, t := range run.Tables {
			if t.Name == "flood vteps" {
				most = max(most, t.Entries)
			}
		}
		return most, "VTEPs on a leaf's largest flood list (head-end replication)"
	}
	return 0, "none: routed, no flooding"
}

// storm reads the spawn storm off the run's timeline.
func storm(p Params, gen scenarios.Generation, run *reports.Run) Storm {
	var s Storm
	var first, last time.Duration = -1, 0
	for _, e := range run.Timeline {
		if first < 0 || e.At < first {
			first = e.At
		}
		last = max(last, e.At)
		switch e.Step {
		case "2-4-port-created":
			s.IPAMCalls++
			s.ControllerCalls++
		case "7-8-host-bound":
			s.ControllerCalls++
		case "2-ipam-local":
			s.LocalAllocations++
		}
	}
	if first >= 0 {
		s.Duration = last - first
	}
	if s.Duration > 0 {
		s.CallsPerSecond = math.Round(float64(s.ControllerCalls)/s.Duration.Seconds()*10) / 10
	}
	s.AtNeutron = time.Duration(s.ControllerCalls) * NeutronLatency
	s.PerZoneCalls = s.ControllerCalls / p.Zones
	s.PerZoneDuration = s.Duration / time.Duration(p.Zones)
	return s
}

// blast fails, for each role, the device whose failure cuts off the most
// instances (then touches the most ports), on the topology's graph.
func blast(topo *topologies.Topology, perHost map[string]int) []Blast {
	adj := map[string][]string{}
	for _, l := range topo.Links {
		adj[l.A.Node] = append(adj[l.A.Node], l.B.Node)
		adj[l.B.Node] = append(adj[l.B.Node], l.A.Node)
	}
	hosts := topo.NodesByRole(topologies.RoleHost)
	var roles []string
	for _, n := range topo.Nodes {
		if !slices.Contains(roles, string(n.Role)) {
			roles = append(roles, string(n.Role))
		}
	}
	var out []Blast
	for _, role := range roles {
		var best Blast
		found := false
		for _, n := range topo.NodesByRole(topologies.Role(role)) {
			b := Blast{Role: role, Device: n.Name}
			// The component that holds most hosts once n is gone.
			comp := map[string]int{}
			id := 0
			for _, h := range hosts {
				if h.Name == n.Name || comp[h.Name] != 0 {
					continue
				}
				id++
				stack := []string{h.Name}
				comp[h.Name] = id
				for len(stack) > 0 {
					x := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					for _, y := range adj[x] {
						if y != n.Name && comp[y] == 0 {
							comp[y] = id
							stack = append(stack, y)
						}
					}
				}
			}
			size := map[int]int{}
			for _, h := range hosts {
				if c := comp[h.Name]; c != 0 {
					size[c] += perHost[h.Name]
				}
			}
			main := 0
			for c, v := range size {
				if main == 0 || v > size[main] || v == size[main] && c < main {
					main = c
				}
			}
			for _, h := range hosts {
				if c := comp[h.Name]; h.Name == n.Name || c != main {
					b.CutOff += perHost[h.Name]
				}
				if h.Name == n.Name || slices.Contains(adj[n.Name], h.Name) {
					b.Ports += perHost[h.Name]
				}
			}
			if !found || b.CutOff > best.CutOff || b.CutOff == best.CutOff && b.Ports > best.Ports {
				best, found = b, true
			}
		}
		if found {
			out = append(out, best)
		}
	}
	return out
}

// perInstance are the tables that hold an entry per instance (of the
// device's networks, or of the fabric): they grow with the density.
// Others (routes, VNIs, flood lists) grow with the fabric and its
// networks, not with the instances on a host.
var perInstance = []string{"macs", "arp", "arp suppression", "host routes", "type-2 routes", "endpoints", "ipcache", "conntrack"}

// runsOut is the per-instance table that reaches its limit at the lowest
// density, such tables growing in proportion to the instances.
func runsOut(ts []Table, density float64) *Exhaustion {
	var best *Exhaustion
	for _, t := range ts {
		if t.Limit == 0 || t.Max == 0 || !slices.Contains(perInstance, t.Name) {
			continue
		}
		d := math.Round(density*float64(t.Limit)/float64(t.Max)*10) / 10
		if best == nil || d < best.Density {
			best = &Exhaustion{Table: t.Name, Role: t.Role, Limit: t.Limit, Density: d}
		}
	}
	return best
}
