package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
)

func init() {
	register(func() *cobra.Command {
		var o capacityFlags
		c := &cobra.Command{
			Use:   "capacity [flags]",
			Short: "table sizes (MACs, routes, BPF maps) per generation as instances per host grow",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runCapacity(o, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		fs := c.Flags()
		fs.StringVar(&o.gens, "gen", "vlan,evpn,ebpf", "generations, comma-separated")
		fs.StringVar(&o.perHost, "per-host", "10,100,250,500", "instances per host to try, comma-separated")
		fs.IntVar(&o.spines, "spines", 2, "spine-leaf (gens 2 and 3): spines")
		fs.IntVar(&o.leaves, "leaves", 4, "spine-leaf: leaves")
		fs.IntVar(&o.hostsPerLeaf, "hosts-per-leaf", 4, "spine-leaf: hosts per leaf (gen 1 uses the default three-tier fabric)")
		fs.BoolVar(&o.traffic, "traffic", true, "every instance probes the first one, so that tables learnt from traffic (gen 1's MAC tables) fill")
		fs.StringVar(&o.out, "out", "", "directory for capacity.md, capacity.html and capacity.json")
		fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress display")
		return c
	})
}

// capacityPoint is one generation at one number of instances per host.
type capacityPoint struct {
	Generation string              `json:"generation"`
	PerHost    int                 `json:"per_host"`
	Hosts      int                 `json:"hosts"`
	Tables     []reports.TableStat `json:"tables,omitempty"`
	// Error says why the instances could not all be spawned (an address
	// pool exhausted: a capacity limit too).
	Error string `json:"error,omitempty"`
}

// capacityScenario is the study's scenario for one generation: perHost
// instances on every host of the topology, spread, and with traffic each
// of them probing the first (so that tables learnt from traffic fill).
func capacityScenario(gen scenarios.Generation, perHost, hosts int, topo string, traffic bool) string {
	kind := gen.Desc().Instance
	var b strings.Builder
	fmt.Fprintf(&b, "name: capacity-%s-%d\ntopology: %s\ngenerations: [%s]\nseed: 1\n", gen, perHost, topo, gen)
	b.WriteString("networks:\n  - {name: cap, subnet: 10.64.0.0/14, labels: [cap]}\nsteps:\n")
	fmt.Fprintf(&b, "  - spawn: {name: i, kind: %s, count: %d, label: cap}\n", kind, perHost*hosts)
	if traffic {
		b.WriteString("  - traffic: {proto: icmp, from: [i], to: [i-1], matrix: true}\n")
	}
	return b.String()
}

type capacityFlags struct {
	gens, perHost                string
	spines, leaves, hostsPerLeaf int
	traffic, quiet               bool
	out                          string
}

func runCapacity(o capacityFlags, stdout, stderr io.Writer) error {
	gensF, perF, spines, leaves, hostsPerLeaf, traffic, out, quiet := &o.gens, &o.perHost, &o.spines, &o.leaves, &o.hostsPerLeaf, &o.traffic, &o.out, &o.quiet
	var gens []scenarios.Generation
	for _, g := range strings.Split(*gensF, ",") {
		if g = strings.TrimSpace(g); !generation.Known(generation.Name(g)) {
			return usageErr("--gen: %q is not a generation; use %v", g, generation.Names())
		}
		if generation.Name(g).Desc().Sites {
			return usageErr("--gen: %s is a network of sites, each its own generation; give the sites' generations", g)
		}
		gens = append(gens, scenarios.Generation(g))
	}
	var per []int
	for _, p := range strings.Split(*perF, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return usageErr("--per-host: %q is not a positive count", p)
		}
		per = append(per, n)
	}
	slices.Sort(per)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var points []capacityPoint
	pr := newProgress(stderr)
	for _, gen := range gens {
		topo := fmt.Sprintf("{builder: spine-leaf, params: {spines: %d, leaves: %d, hosts_per_leaf: %d}}", *spines, *leaves, *hostsPerLeaf)
		if gen.Desc().Topology == "three-tier" {
			topo = "{builder: three-tier}"
		}
		for _, n := range per {
			prefix := fmt.Sprintf("%s, %d per host", gen, n)
			var progress func(string)
			if !*quiet {
				progress = pr.line(prefix)
			}
			pt, err := capacityRun(ctx, gen, n, topo, *traffic, progress)
			if err != nil {
				return err
			}
			points = append(points, pt)
			if !*quiet {
				status := "ok"
				if pt.Error != "" {
					status = "limit: " + pt.Error
				}
				pr.done("%s on %d hosts: %s", prefix, pt.Hosts, status)
			}
			if pt.Error != "" {
				break // more per host fails the same way
			}
		}
	}
	if err := writeCapacityMarkdown(stdout, points); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, []capacityPoint) error{
		"capacity.md": writeCapacityMarkdown, "capacity.html": writeCapacityHTML, "capacity.json": writeCapacityJSON,
	} {
		fh, err := os.Create(filepath.Join(*out, name))
		if err != nil {
			return err
		}
		err = write(fh, points)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	fmt.Fprintf(stderr, "written to %s/capacity.{md,html,json}\n", *out)
	return nil
}

// capacityRun runs one point on the sim backend.
func capacityRun(ctx context.Context, gen scenarios.Generation, perHost int, topo string, traffic bool, progress func(string)) (capacityPoint, error) {
	pt := capacityPoint{Generation: string(gen), PerHost: perHost}
	// The host count comes from the topology, built once without steps.
	probe, err := scenarios.Parse("capacity.yaml", []byte(capacityScenario(gen, 1, 1, topo, false)))
	if err != nil {
		return pt, err
	}
	t, err := probe.TopologyFor(gen).Build(probe.File)
	if err != nil {
		return pt, err
	}
	pt.Hosts = len(t.NodesByRole("host"))
	s, err := scenarios.Parse("capacity.yaml", []byte(capacityScenario(gen, perHost, pt.Hosts, topo, traffic)))
	if err != nil {
		return pt, err
	}
	dir, err := os.MkdirTemp("", "netbed-capacity-")
	if err != nil {
		return pt, err
	}
	defer os.RemoveAll(dir)
	b := scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), StoreDir: dir, ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
	run, err := scenarios.Run(ctx, s, gen, b, scenarios.Options{Progress: progress})
	if ctx.Err() != nil {
		return pt, ctx.Err()
	}
	if err != nil {
		pt.Error = err.Error()
		return pt, nil
	}
	pt.Tables = reports.TableStats(run)
	return pt, nil
}

// capacityRows is, per generation, each table's largest size at each
// point, in the order of the points.
func capacityRows(points []capacityPoint) (gens []string, tables map[string][]string, at map[string]map[string]map[int]int) {
	tables, at = map[string][]string{}, map[string]map[string]map[int]int{}
	for _, p := range points {
		if _, ok := at[p.Generation]; !ok {
			gens = append(gens, p.Generation)
			at[p.Generation] = map[string]map[int]int{}
		}
		for _, t := range p.Tables {
			if _, ok := at[p.Generation][t.Name]; !ok {
				at[p.Generation][t.Name] = map[int]int{}
				tables[p.Generation] = append(tables[p.Generation], t.Name)
			}
			at[p.Generation][t.Name][p.PerHost] = t.Largest
		}
	}
	for _, g := range gens {
		slices.Sort(tables[g])
	}
	return gens, tables, at
}

func perHostOf(points []capacityPoint, gen string) []capacityPoint {
	var out []capacityPoint
	for _, p := range points {
		if p.Generation == gen {
			out = append(out, p)
		}
	}
	return out
}

func writeCapacityMarkdown(w io.Writer, points []capacityPoint) error {
	var b strings.Builder
	b.WriteString("# netbed capacity\n\nLargest table of any node (entries), by instances per host (sim backend).\n")
	gens, tables, at := capacityRows(points)
	for _, g := range gens {
		ps := perHostOf(points, g)
		fmt.Fprintf(&b, "\n## %s (%d hosts)\n\n| table |", g, ps[0].Hosts)
		for _, p := range ps {
			fmt.Fprintf(&b, " %d/host |", p.PerHost)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(ps)) + "\n")
		for _, t := range tables[g] {
			fmt.Fprintf(&b, "| %s |", t)
			for _, p := range ps {
				if v, ok := at[g][t][p.PerHost]; ok {
					fmt.Fprintf(&b, " %d |", v)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		for _, p := range ps {
			if p.Error != "" {
				fmt.Fprintf(&b, "\nAt %d per host: **limit reached**: %s\n", p.PerHost, p.Error)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var capacityTmpl = template.Must(template.New("capacity").Parse(`<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>netbed capacity</title>
<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}.fail{color:#b00}
.plots{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>
<h1>netbed capacity</h1><p>Largest table of any node, by instances per host (sim backend): a plot per table,
a line per generation that has it; an axis spanning more than an order of magnitude is logarithmic.</p>
<div class="plots">{{range .Plots}}{{.}}{{end}}</div>
{{if .Constant}}<p>Tables of the same size at every point:</p><ul>{{range .Constant}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{range .Limits}}<p class="fail">{{.}}</p>{{end}}
</body></html>
`))

// capacityPlots are a plot per table name with a line per generation
// that has the table (in name order), and the tables whose largest size
// is the same at every point, listed rather than drawn.
func capacityPlots(points []capacityPoint) (plots []template.HTML, constant []string, err error) {
	gens, tables, at := capacityRows(points)
	var names []string
	for _, g := range gens {
		for _, t := range tables[g] {
			if !slices.Contains(names, t) {
				names = append(names, t)
			}
		}
	}
	slices.Sort(names)
	for _, t := range names {
		var lines []reports.GenPoints
		for _, g := range gens {
			ps := perHostOf(points, g)
			l := reports.GenPoints{Gen: g}
			values := map[int]bool{}
			for _, p := range ps {
				if v, ok := at[g][t][p.PerHost]; ok {
					l.Points = append(l.Points, [2]float64{float64(p.PerHost), float64(v)})
					values[v] = true
				}
			}
			switch {
			case len(l.Points) == 0:
				continue
			case len(l.Points) > 1 && len(values) == 1:
				constant = append(constant, fmt.Sprintf("%s, %s: %d", g, t, int(l.Points[0][1])))
				continue
			}
			lines = append(lines, l)
		}
		if len(lines) == 0 {
			continue
		}
		svg, err := reports.CapacitySVG(t, "instances per host", "entries, largest node", lines)
		if err != nil {
			return nil, nil, err
		}
		plots = append(plots, template.HTML(svg))
	}
	return plots, constant, nil
}

func writeCapacityHTML(w io.Writer, points []capacityPoint) error {
	var data struct {
		Plots            []template.HTML
		Constant, Limits []string
	}
	var err error
	if data.Plots, data.Constant, err = capacityPlots(points); err != nil {
		return err
	}
	for _, p := range points {
		if p.Error != "" {
			data.Limits = append(data.Limits, fmt.Sprintf("%s at %d per host, limit reached: %s", p.Generation, p.PerHost, p.Error))
		}
	}
	return capacityTmpl.Execute(w, data)
}

func writeCapacityJSON(w io.Writer, points []capacityPoint) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(points)
}
