package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/internal/doctor"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/topologies/clab"
	"github.com/netbed/netbed/topologies/netns"
)

func init() {
	register(func() *cobra.Command {
		var o upFlags
		c := &cobra.Command{
			Use:   "up [flags] file.clab.yml",
			Short: "deploy a topology file as network namespaces and veth pairs",
			Args:  exactArgs(1, "want exactly one topology file, e.g. 'netbed up topologies/examples/spine-leaf-2x4.clab.yml'"),
			RunE: func(c *cobra.Command, args []string) error {
				return runUp(args[0], o, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		c.Flags().IntVar(&o.workers, "workers", 0, "namespaces or links set up at once (0: twice the CPUs)")
		c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "do not print what was inferred from the file")
		return c
	})
	register(func() *cobra.Command {
		var o downFlags
		c := &cobra.Command{
			Use:   "down [flags] file.clab.yml | lab | --lab name | --all",
			Short: "remove a lab deployed by 'netbed up' or 'netbed run' (or every netbed lab with --all)",
			RunE: func(c *cobra.Command, args []string) error {
				return runDown(args, o, c.OutOrStdout())
			},
		}
		c.Flags().BoolVar(&o.all, "all", false, "remove every netbed lab on this machine, including ones left by a crashed or killed run")
		c.Flags().StringVar(&o.lab, "lab", "", "remove the lab with this name, as 'netbed labs' or 'ip netns list' shows it (no file needed)")
		return c
	})
	register(func() *cobra.Command {
		var require string
		c := &cobra.Command{
			Use:   "doctor [flags]",
			Short: "check what this machine's kernel offers and which backends can run",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runDoctor(require, c.OutOrStdout())
			},
		}
		c.Flags().StringVar(&require, "require", "", "comma-separated backends (sim, netns, kernel) that must be able to run; exit 1 otherwise")
		return c
	})
}

type upFlags struct {
	workers int
	quiet   bool
}

// downAllOptions limits `down --all` in tests, which must not remove other
// tests' labs; nil otherwise.
var downAllOptions *netns.Options

type downFlags struct {
	all bool
	lab string
}

// needRoot explains, before anything is attempted, that namespaces need root.
func needRoot(cmd string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root to create network namespaces: run it with sudo ('netbed doctor' shows what works here)", cmd)
	}
	return nil
}

func runUp(file string, o upFlags, stdout, stderr io.Writer) error {
	t, rep, err := clab.Load(file)
	if err != nil {
		return err
	}
	if !o.quiet && !rep.Empty() {
		fmt.Fprint(stderr, rep.String())
	}
	if err := needRoot("netbed up"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lab, drep, err := netns.Deploy(ctx, t, &netns.Options{Workers: o.workers})
	if err != nil {
		return err
	}
	defer lab.Close()
	fmt.Fprintln(stdout, drep)
	// Deployed means ready: every veth carries frames when up returns.
	if err := lab.WaitUp(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("lab deployed, but: %w", err)
	}
	if nodes := lab.Nodes(); len(nodes) > 0 {
		name, _ := lab.NetnsName(nodes[0])
		fmt.Fprintf(stdout, "try: ip netns exec %s ip link\nremove with: netbed down %s\n", name, file)
	}
	return nil
}

func runDown(args []string, o downFlags, stdout io.Writer) error {
	given := 0
	for _, b := range []bool{o.all, o.lab != "", len(args) > 0} {
		if b {
			given++
		}
	}
	if given != 1 || len(args) > 1 {
		return usageErr("want one of: a topology file, --lab name, or --all")
	}
	if err := needRoot("netbed down"); err != nil {
		return err
	}
	if o.all {
		rep, err := netns.DestroyAll(downAllOptions)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep)
		return nil
	}
	name, what := o.lab, "lab"
	if name == "" {
		name, what = args[0], "file"
		if _, err := os.Stat(name); err == nil || strings.ContainsAny(name, "/") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml") {
			t, _, err := clab.Load(name)
			if err != nil {
				return fmt.Errorf("%w (to remove a lab whose file is gone, use --lab name or --all)", err)
			}
			name = t.Name
		} else {
			what = "lab" // not a file: a lab's name, as deploy errors print it
		}
	}
	labs, err := netns.Labs(nil)
	if err != nil {
		return err
	}
	lab, ok := matchLab(labs, name)
	if !ok {
		if what == "file" {
			return fmt.Errorf("no lab %s on this machine: nothing to remove ('netbed labs' lists the labs)", name)
		}
		return fmt.Errorf("no lab matches %q: nothing to remove ('netbed labs' lists the labs; --lab takes a lab's name or one of its namespaces as 'ip netns list' shows them)", name)
	}
	rep, err := netns.Destroy(lab, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	return nil
}

// matchLab finds the lab that name means: a lab's name, the same with
// containerlab's "clab-" in front, or the name of one of its namespaces
// as `ip netns list` shows it ("clab-<lab>-<node>").
func matchLab(labs []netns.LabInfo, name string) (string, bool) {
	for _, l := range labs {
		if l.Name == name || "clab-"+l.Name == name || slices.Contains(l.Namespaces, name) {
			return l.Name, true
		}
	}
	// A node namespace that is gone: the longest lab prefix it carries.
	best := ""
	for _, l := range labs {
		if strings.HasPrefix(name, l.Prefix) && len(l.Name) > len(best) {
			best = l.Name
		}
	}
	return best, best != ""
}

func runDoctor(require string, stdout io.Writer) error {
	res := doctor.Run()
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if p, err := netnsrt.FindPlugin(nil); err == nil {
		fmt.Fprintf(stdout, "\nCNI plugin: %s (pods on the netns backend are attached by it)\n", p)
	} else {
		fmt.Fprintf(stdout, "\nCNI plugin: not found (%v): pods on the netns backend need it; make build puts it in bin/ beside netbed\n", err)
	}
	needs := netnsrt.KernelNeeds()
	dual := netnsrt.KernelIPv6Generations()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nGENERATION ON KERNEL\tFAMILIES\tCAN RUN")
	for _, g := range netnsrt.KernelGenerations() {
		families := "IPv4"
		if slices.Contains(dual, g) {
			families = "IPv4, IPv6"
		}
		if err := needs[g]; err != nil {
			fmt.Fprintf(tw, "%s\t%s\tno: %s\n", g, families, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(tw, "%s\t%s\twhere the kernel backend can\n", g, families)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if require == "" {
		return nil
	}
	can := map[string]doctor.Backend{}
	for _, b := range res.Backends {
		can[b.Name] = b
	}
	var errs []error
	for _, name := range strings.Split(require, ",") {
		name = strings.TrimSpace(name)
		b, ok := can[name]
		switch {
		case !ok:
			return usageErr("unknown backend %q in --require (want sim, netns or kernel)", name)
		case !b.OK():
			errs = append(errs, fmt.Errorf("backend %s cannot run here: missing %s", name, strings.Join(b.Missing, ", ")))
		}
	}
	return errors.Join(errs...)
}
