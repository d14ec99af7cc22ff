package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// The shipped examples are 'netbed topo gen' output; TestExamplesAreGenerated
// fails when they drift and rewrites them with -update-examples.
//go:generate go test -run TestExamplesAreGenerated -update-examples .

func init() {
	register(func() *cobra.Command {
		c := &cobra.Command{
			Use:   "topo",
			Short: "generate, show, import and export topologies (containerlab files)",
			Args: func(_ *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usageErr("topo needs a subcommand: gen, show, import or export")
				}
				return usageErr("unknown topo subcommand %q; want gen, show, import or export", args[0])
			},
			RunE: func(*cobra.Command, []string) error { return nil },
		}
		gen := &cobra.Command{
			Use:     "gen",
			Aliases: []string{"generate"},
			Short:   "build a fabric (three-tier, spine-leaf or multi-az) and write it as a containerlab file (stdout without -o)",
			Args: func(_ *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usageErr("topo gen needs a fabric: three-tier, spine-leaf or multi-az")
				}
				return usageErr("unknown fabric %q; want three-tier, spine-leaf or multi-az", args[0])
			},
			RunE: func(*cobra.Command, []string) error { return nil },
		}
		gen.AddCommand(topoGenCmd("three-tier"), topoGenCmd("spine-leaf"), topoGenCmd("multi-az"))
		c.AddCommand(gen, topoShowCmd(), topoImportCmd(), topoExportCmd())
		return c
	})
}

// rateFlag is a link rate flag: "25G", "100G", "40000000000".
type rateFlag struct{ v *int64 }

func (r rateFlag) String() string {
	if r.v == nil || *r.v == 0 {
		return ""
	}
	return topologies.FormatRate(*r.v)
}

func (r rateFlag) Type() string { return "rate" }

func (r rateFlag) Set(s string) error {
	v, err := topologies.ParseRate(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("rate %q: want a positive rate like 25G", s)
	}
	*r.v = v
	return nil
}

// topoGenCmd is 'netbed topo gen <fabric>', with the fabric's flags.
func topoGenCmd(fabric string) *cobra.Command {
	c := &cobra.Command{
		Use:   fabric + " [flags] [-o file.clab.yml]",
		Short: "generate a " + fabric + " fabric",
	}
	fs := c.Flags()
	out := fs.StringP("output", "o", "", "write the containerlab file here instead of stdout")
	name := fs.String("name", "", "lab name (default: the fabric's name)")
	kind := fs.String("kind", "", "containerlab kind written for every node (default "+topologies.DefaultKind+")")
	image := fs.String("image", "", "container image written for every node (default "+topologies.DefaultImage+")")
	var build func() (*topologies.Topology, error)
	switch fabric {
	case "three-tier":
		var p topologies.ThreeTierParams
		fs.IntVar(&p.Pods, "pods", 1, "pods, each with an aggregation pair")
		fs.IntVar(&p.RacksPerPod, "racks", 2, "racks per pod, each with a ToR pair")
		fs.IntVar(&p.HostsPerRack, "hosts", 2, "servers per rack, each dual-homed to the rack's ToRs")
		fs.IntVar(&p.Firewalls, "firewalls", 1, "firewalls beside the core routers")
		fs.Var(rateFlag{&p.HostRate}, "host-rate", "server-ToR link rate (default 10G)")
		fs.Var(rateFlag{&p.UplinkRate}, "uplink-rate", "ToR-aggregation link rate (default 40G)")
		fs.Var(rateFlag{&p.CoreRate}, "core-rate", "aggregation-core, core-core and core-firewall link rate (default 100G)")
		build = func() (*topologies.Topology, error) {
			p.Name, p.Kind, p.Image = *name, *kind, *image
			return topologies.ThreeTier(p)
		}
	case "spine-leaf":
		var p topologies.SpineLeafParams
		slFlags(fs, &p)
		build = func() (*topologies.Topology, error) {
			p.Name, p.Kind, p.Image = *name, *kind, *image
			return topologies.SpineLeaf(p)
		}
	case "multi-az":
		var p topologies.MultiAZParams
		fs.IntVar(&p.AZs, "azs", 2, "availability zones")
		fs.IntVar(&p.BorderLeaves, "borders", 2, "border leaves per AZ; border k of each AZ links to border k of every other")
		fs.Var(rateFlag{&p.InterAZRate}, "inter-az-rate", "border-border link rate (default 100G)")
		fs.DurationVar(&p.InterAZDelay, "inter-az-delay", topologies.DefaultInterAZDelay, "one-way border-border delay")
		slFlags(fs, &p.Fabric)
		build = func() (*topologies.Topology, error) {
			p.Name, p.Kind, p.Image = *name, *kind, *image
			if p.InterAZDelay <= 0 {
				return nil, usageErr("--inter-az-delay must be positive, e.g. 500us")
			}
			return topologies.MultiAZ(p)
		}
	}
	c.Args = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr("unexpected argument %q; write the output file with -o", args[0])
		}
		return nil
	}
	c.RunE = func(c *cobra.Command, _ []string) error {
		return topoGen(c, fabric, build, *out)
	}
	return c
}

// topoGen builds the fabric and writes it, headed by the command that made
// it.
func topoGen(c *cobra.Command, fabric string, build func() (*topologies.Topology, error), out string) error {
	stdout := c.OutOrStdout()
	t, err := build()
	if errors.Is(err, topologies.ErrBadParams) {
		return usageErr("%v", err)
	}
	if err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("generated topology is not valid (a netbed bug, please report it):\n%w", err)
	}
	b, err := clab.Write(t)
	if err != nil {
		return err
	}
	// Record how the file was made, flags in a canonical order, so that the
	// same command gives the same bytes.
	cmd := []string{"netbed", "topo", "gen", fabric}
	c.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "output" {
			cmd = append(cmd, "-"+f.Name+"="+f.Value.String())
		}
	})
	b = append([]byte("# "+strings.Join(cmd, " ")+"\n"), b...)
	if out == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s\n", out, t)
	return nil
}

func slFlags(fs *pflag.FlagSet, p *topologies.SpineLeafParams) {
	fs.IntVar(&p.Spines, "spines", 2, "spine switches")
	fs.IntVar(&p.Leaves, "leaves", 4, "leaf switches (even with -dual-homed)")
	fs.IntVar(&p.HostsPerLeaf, "hosts", 2, "hosts per leaf (-1 for none)")
	fs.BoolVar(&p.DualHomed, "dual-homed", false, "link every host to both leaves of a pair (leaf1-leaf2, leaf3-leaf4, ...)")
	fs.Var(rateFlag{&p.HostRate}, "host-rate", "host-leaf link rate (default 25G)")
	fs.Var(rateFlag{&p.FabricRate}, "fabric-rate", "leaf-spine link rate (default 100G)")
}

// topoFileArg checks there is exactly one topology file argument.
func topoFileArg(sub string) cobra.PositionalArgs {
	return exactArgs(1, fmt.Sprintf("topo %s wants exactly one topology file, e.g. 'netbed topo %s topologies/examples/spine-leaf-2x4.clab.yml'", sub, sub))
}

func topoRead(path string) (*topologies.Topology, *clab.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read topology: %w", err)
	}
	return clab.Read(path, data)
}

func topoShowCmd() *cobra.Command {
	var links bool
	c := &cobra.Command{
		Use:   "show [flags] file.clab.yml",
		Short: "nodes by role, AZs, racks, links, counts and the validation result",
		Args:  topoFileArg("show"),
		RunE: func(c *cobra.Command, args []string) error {
			return topoShow(args[0], links, c.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&links, "links", true, "list every link")
	return c
}

func topoShow(path string, links bool, stdout io.Writer) error {
	t, rep, err := topoRead(path)
	if err != nil {
		return err
	}
	w := stdout
	fmt.Fprintf(w, "lab %s: %d nodes, %d links (namespaces %s<node>)\n", t.Name, len(t.Nodes), len(t.Links), t.LabPrefix())

	fmt.Fprintln(w, "\nnodes by role:")
	// Top of the fabric first.
	roles := []topologies.Role{topologies.RoleBorder, topologies.RoleCore, topologies.RoleFirewall,
		topologies.RoleSpine, topologies.RoleAggregation, topologies.RoleLeaf, topologies.RoleToR,
		topologies.RoleAccess, topologies.RoleHost}
	for _, r := range topologies.Roles {
		if !containsRole(roles, r) {
			roles = append(roles, r)
		}
	}
	for _, n := range t.Nodes {
		if !n.Role.Valid() && !containsRole(roles, n.Role) {
			roles = append(roles, n.Role)
		}
	}
	for _, r := range roles {
		nodes := t.NodesByRole(r)
		if len(nodes) == 0 {
			continue
		}
		label := string(r)
		if r == "" {
			label = "(none)"
		}
		fmt.Fprintf(w, "  %-12s %4d  %s\n", label, len(nodes), nameList(nodes))
	}
	group := func(title string, key func(*topologies.Node) string) {
		by := map[string][]*topologies.Node{}
		for _, n := range t.Nodes {
			if k := key(n); k != "" {
				by[k] = append(by[k], n)
			}
		}
		if len(by) == 0 {
			return
		}
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-12s %4d  %s\n", k, len(by[k]), roleCounts(by[k]))
		}
	}
	group("availability zones", func(n *topologies.Node) string { return n.AZ })
	group("pods", func(n *topologies.Node) string { return n.Labels[topologies.LabelPod] })
	group("racks", func(n *topologies.Node) string { return n.Rack })

	kinds := map[string]int{}
	for _, n := range t.Nodes {
		kinds[n.Kind]++
	}
	var ks []string
	for k, c := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", orNone(k), c))
	}
	sort.Strings(ks)
	fmt.Fprintf(w, "\nkinds: %s\n", strings.Join(ks, ", "))

	if links && len(t.Links) > 0 {
		fmt.Fprintln(w, "\nlinks:")
		for _, l := range t.Links {
			fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-24s -- %-24s %s", l.A, l.B, linkAttrs(l)), " "))
		}
	}
	if !rep.Empty() {
		fmt.Fprintf(w, "\nimport report:\n%s", indent(rep.String()))
	}
	if err := t.Validate(); err != nil {
		fmt.Fprintf(w, "\nvalidation: %d problem(s)\n%s", countJoined(err), indent(err.Error()+"\n"))
		return fmt.Errorf("%s is not a valid topology (problems listed above)", path)
	}
	fmt.Fprintln(w, "\nvalidation: ok")
	return nil
}

func topoImportCmd() *cobra.Command {
	var (
		out          string
		hostsPerLeaf int
	)
	c := &cobra.Command{
		Use:   "import [flags] file.clab.yml",
		Short: "read a containerlab file netbed did not write, print what was inferred (roles, AZs, interface aliases) and write it with netbed labels; --hosts-per-leaf adds hosts below the leaves of a generated Clos",
		Args:  topoFileArg("import"),
		RunE: func(c *cobra.Command, args []string) error {
			return topoImport(args[0], out, hostsPerLeaf, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the netbed-labelled file here (default stdout; the report then goes to stderr)")
	c.Flags().IntVar(&hostsPerLeaf, "hosts-per-leaf", 0, "add this many linux hosts below every leaf (a Clos from containerlab generate has none)")
	return c
}

func topoImport(path, out string, hostsPerLeaf int, stdout, stderr io.Writer) error {
	t, rep, err := topoRead(path)
	if err != nil {
		return err
	}
	report := stdout
	if out == "" {
		report = stderr
	}
	if rep.Empty() {
		fmt.Fprintf(report, "%s: nothing to infer, the file carries netbed labels\n", path)
	} else {
		fmt.Fprint(report, rep.String())
	}
	if hostsPerLeaf != 0 {
		added, err := topologies.AddHostsPerLeaf(t, hostsPerLeaf)
		if err != nil {
			return usageErr("--hosts-per-leaf: %v", err)
		}
		fmt.Fprintf(report, "added %d hosts, %d below every leaf: %s\n", len(added), hostsPerLeaf, nameList(added))
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%s does not make a valid topology; fix the file (or add netbed.role labels) and import again:\n%w", path, err)
	}
	b, err := clab.Write(t)
	if err != nil {
		return err
	}
	if out == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintf(report, "wrote %s: %s\n", out, t)
	return nil
}

func topoExportCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [flags] file.clab.yml -o out.clab.yml",
		Short: "write a topology file back in netbed's normalised form",
		Args:  topoFileArg("export"),
		RunE: func(c *cobra.Command, args []string) error {
			return topoExport(args[0], out, c.OutOrStdout())
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output file (required)")
	return c
}

func topoExport(path, out string, stdout io.Writer) error {
	if out == "" {
		return usageErr("topo export needs -o out.clab.yml")
	}
	t, _, err := clab.Load(path)
	if err != nil {
		return err
	}
	if err := clab.WriteFile(out, t); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s\n", out, t)
	return nil
}

func containsRole(rs []topologies.Role, r topologies.Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// nameList lists node names, eliding the middle of long lists.
func nameList(nodes []*topologies.Node) string {
	const show = 8
	var names []string
	for i, n := range nodes {
		if len(nodes) > show && i == show-2 {
			names = append(names, fmt.Sprintf("... (%d more)", len(nodes)-show+1))
			names = append(names, nodes[len(nodes)-1].Name)
			break
		}
		names = append(names, n.Name)
	}
	return strings.Join(names, " ")
}

func roleCounts(nodes []*topologies.Node) string {
	c := map[topologies.Role]int{}
	for _, n := range nodes {
		c[n.Role]++
	}
	var parts []string
	for _, r := range topologies.Roles {
		if c[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[r], r))
		}
	}
	return strings.Join(parts, ", ")
}

func linkAttrs(l *topologies.Link) string {
	var parts []string
	if l.Rate != 0 {
		parts = append(parts, topologies.FormatRate(l.Rate))
	}
	if l.MTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", l.MTU))
	}
	if l.Delay != 0 {
		parts = append(parts, "delay "+topologies.FormatDelay(l.Delay.Round(time.Nanosecond)))
	}
	return strings.Join(parts, "  ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString("  " + l)
		}
	}
	return b.String()
}

func countJoined(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}
