package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/datapath/vpc/ipamd"
	"github.com/netbed/netbed/generation"
	"github.com/netbed/netbed/plan"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
)

type planFlags struct {
	p        plan.Params
	cloud    plan.CloudParams
	warm     ipamd.Config
	gens     string
	profiles string
	out      string
	shard    string
	shards   int
	quiet    bool
}

func init() {
	register(func() *cobra.Command {
		var f planFlags
		c := &cobra.Command{
			Use:   "plan [flags]",
			Short: "plan a fabric of the seed's scale on sim: table sizes per device against switch profiles, VLANs and VNIs, flood domains, the spawn storm's controller load, blast radius",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runPlan(f, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		fs := c.Flags()
		fs.IntVar(&f.p.Zones, "zones", 4, "availability zones, joined by border leaves")
		fs.IntVar(&f.p.NodesPerZone, "nodes-per-zone", 500, "hosts per zone")
		fs.IntVar(&f.p.InstancesPerZone, "instances-per-zone", 20000, "VMs per zone (gens 1 and 2)")
		fs.IntVar(&f.p.PodsPerNode, "pods-per-node", 0, "pods per host (gen 3; default: instances per zone / nodes per zone)")
		fs.IntVar(&f.p.HostsPerLeaf, "hosts-per-leaf", 20, "hosts per leaf (gen 1: per rack)")
		fs.IntVar(&f.p.Spines, "spines", 4, "spines per zone")
		fs.IntVar(&f.p.InstancesPerNetwork, "instances-per-network", 250, "instances per tenant network, each a VLAN (and a VNI in gen 2)")
		fs.StringVar(&f.gens, "gen", "vlan,evpn,ebpf", "generations, comma-separated (vpc: the public cloud's pods per node and API spawn storm)")
		fs.StringVar(&f.cloud.LimitsFile, "cloud-limits", "", "vpc: the cloud's limits file (YAML; default: the shipped datapath/vpc/cloud/limits.yaml)")
		fs.StringVar(&f.cloud.InstanceType, "instance-type", "m5.large", "vpc: instance type of the storm's nodes")
		fs.IntVar(&f.cloud.Nodes, "cloud-nodes", 0, "vpc: nodes in the storm's zone (default: --nodes-per-zone)")
		fs.IntVar(&f.cloud.PodsPerNode, "cloud-pods-per-node", 0, "vpc: pods a node in the storm (default: the type's max pods - 2)")
		fs.IntVar(&f.warm.WarmENITarget, "warm-eni-target", 0, "vpc: compare a warm pool with this WARM_ENI_TARGET (with the two below: instead of the default comparisons)")
		fs.IntVar(&f.warm.WarmIPTarget, "warm-ip-target", 0, "vpc: compare a warm pool with this WARM_IP_TARGET")
		fs.IntVar(&f.warm.MinimumIPTarget, "minimum-ip-target", 0, "vpc: compare a warm pool with this MINIMUM_IP_TARGET")
		fs.StringVar(&f.profiles, "profiles", "", "switch profiles file (YAML; default: the shipped plan/profiles.yaml)")
		fs.StringVar(&f.out, "out", "", "directory for plan.md, plan.html and plan.json")
		fs.StringVar(&f.shard, "shard", "", "plan only shard i of n (i/n) of the generations; default: "+envJobIndex+" of a Kubernetes Indexed Job")
		fs.IntVar(&f.shards, "shards", 0, "the number of shards when the index comes from "+envJobIndex+" (default: $"+envShards+")")
		fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress display")
		var out string
		merge := &cobra.Command{
			Use:   "merge [flags] plan.json...",
			Short: "merge the plan.json files of shards (plan --shard i/n) into one plan",
			Args:  minArgs(1, "name the plan.json files to merge"),
			RunE: func(c *cobra.Command, args []string) error {
				return runPlanMerge(args, out, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		merge.Flags().StringVarP(&out, "output", "o", "", "directory for the merged plan.md, plan.html and plan.json (default: print Markdown only)")
		c.AddCommand(merge)
		return c
	})
}

func runPlan(f planFlags, stdout, stderr io.Writer) error {
	var gens []scenarios.Generation
	vpc := false
	for _, g := range strings.Split(f.gens, ",") {
		if g = strings.TrimSpace(g); g == "vpc" {
			vpc = true
			continue
		}
		if !generation.Known(generation.Name(g)) {
			return usageErr("--gen: %q is not a generation; use %v", g, generation.Names())
		}
		if generation.Name(g).Desc().Sites {
			return usageErr("--gen: %s is a network of sites, each its own generation; give the sites' generations", g)
		}
		gens = append(gens, scenarios.Generation(g))
	}
	i, n, _, err := resolveShard(f.shard, f.shards, os.Getenv)
	if err != nil {
		return err
	}
	var mine []scenarios.Generation
	for k, g := range gens {
		if k%n == i {
			mine = append(mine, g)
		}
	}
	profiles := plan.DefaultProfiles()
	if f.profiles != "" {
		if profiles, err = plan.LoadProfiles(f.profiles); err != nil {
			return usageErr("--profiles: %v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress func(string)
	if !f.quiet {
		pr := newProgress(stderr)
		progress = pr.line("plan")
	}
	p, err := plan.Run(ctx, f.p, profiles, mine, progress)
	if err != nil {
		return err
	}
	if vpc && i == 0 {
		if !f.warm.Off() {
			f.cloud.Pools = []ipamd.Config{f.warm}
		}
		if p.Cloud, err = plan.RunCloud(f.p, f.cloud, progress); err != nil {
			return err
		}
	}
	if n > 1 {
		p.Shard = &reports.Shard{Index: i, Count: n}
	}
	return writePlan(stdout, stderr, f.out, p)
}

func runPlanMerge(files []string, out string, stdout, stderr io.Writer) error {
	var ps []plan.Named
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		p, err := plan.ReadJSON(data)
		if err != nil {
			return fmt.Errorf("merge %s: %w", path, err)
		}
		ps = append(ps, plan.Named{Name: path, Plan: p})
	}
	merged, err := plan.Merge(ps)
	if err != nil {
		return err
	}
	return writePlan(stdout, stderr, out, merged)
}

// writePlan prints the plan's Markdown and, with a directory, writes
// plan.md, plan.html and plan.json there.
func writePlan(stdout, stderr io.Writer, out string, p *plan.Plan) error {
	if err := plan.WriteMarkdown(stdout, p); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, *plan.Plan) error{
		"plan.md": plan.WriteMarkdown, "plan.html": plan.WriteHTML, "plan.json": plan.WriteJSON,
	} {
		fh, err := os.Create(filepath.Join(out, name))
		if err != nil {
			return err
		}
		err = write(fh, p)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	fmt.Fprintf(stderr, "written to %s/plan.{md,html,json}\n", out)
	return nil
}
