package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios"
	"github.com/netbed/netbed/scenarios/simrt"
	"github.com/netbed/netbed/topologies"
)

func init() {
	register(func() *cobra.Command {
		return scenarioCmd("run [flags] scenario.yaml", "replay a scenario for its generations and report (exit 1 if an expectation fails)")
	})
	register(func() *cobra.Command {
		return scenarioCmd("compare [flags] scenario.yaml...", "replay several scenarios and write one comparative report")
	})
	register(func() *cobra.Command {
		return &cobra.Command{
			Use:   "validate scenario.yaml...",
			Short: "check scenario files without running them; every problem with file:line: field",
			Args:  minArgs(1, "name at least one scenario file"),
			RunE: func(c *cobra.Command, args []string) error {
				return runValidate(args, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
	})
	register(func() *cobra.Command {
		c := &cobra.Command{
			Use:   "report",
			Short: "merge shards' JSON results (report merge a.json b.json -o dir), or compare with a baseline (report diff old.json new.json)",
			Args:  reportArgs,
			RunE:  func(*cobra.Command, []string) error { return reportArgs(nil, nil) },
		}
		var out string
		merge := &cobra.Command{
			Use:   "merge [flags] shard.json...",
			Short: "merge report.json files of shards into one report",
			Args:  minArgs(1, "name the JSON reports to merge"),
			RunE: func(c *cobra.Command, args []string) error {
				return runReportMerge(args, out, c.OutOrStdout())
			},
		}
		merge.Flags().StringVarP(&out, "output", "o", "", "directory for the merged report (default: print Markdown only)")
		var slow float64
		diff := &cobra.Command{
			Use:   "diff [flags] baseline.json new.json",
			Short: "list what changed between two report.json files; exit 1 on a regression",
			Args:  exactArgs(2, "name the baseline report.json and the new one"),
			RunE: func(c *cobra.Command, args []string) error {
				return runReportDiff(args, slow, c.OutOrStdout())
			},
		}
		diff.Flags().Float64Var(&slow, "max-slowdown", 0, "the factor by which round-trip and spawn times of runs on the same backend may grow (0: timings not compared)")
		c.AddCommand(merge, diff)
		return c
	})
}

// reportArgs refuses 'netbed report' without a known subcommand.
func reportArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unknown report subcommand %q; report commands: report merge a.json b.json... -o dir; report diff baseline.json new.json", args[0])
	}
	return usageErr("report commands: report merge a.json b.json... -o dir; report diff baseline.json new.json")
}

// scenarioCmd is 'netbed run' or 'netbed compare'.
func scenarioCmd(use, short string) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1, "name at least one scenario file"),
	}
	c.RunE = func(c *cobra.Command, args []string) error {
		return runScenarios(c.Name(), f, args, c.OutOrStdout(), c.ErrOrStderr())
	}
	fs := c.Flags()
	var gens []string
	for _, g := range scenarios.Generations {
		gens = append(gens, string(g))
	}
	fs.StringVar(&f.gens, "gen", "", "generations to run, comma-separated ("+strings.Join(gens, ",")+"); default: each scenario's own")
	fs.StringVar(&f.backend, "backend", "auto", "sim, netns, kernel or auto (netns when root and the kernel allows, else sim)")
	fs.StringVar(&f.out, "out", "", "directory for report.md, report.html, report.json and junit.xml")
	fs.StringVar(&f.probes, "probes", "", "file to write every probe to as the runs go, one JSON object a line (the report keeps a sample in full)")
	fs.StringVar(&f.shard, "shard", "", "run only shard i of n (i/n, from 0) of the scenario × generation runs; default: "+envJobIndex+" of a Kubernetes Indexed Job, of --shards")
	fs.IntVar(&f.shards, "shards", 0, "the number of shards when the index comes from "+envJobIndex+" (default: $"+envShards+")")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress display")
	fs.StringVar(&f.baseline, "baseline", "", "report.json of an earlier run: list what changed, exit 1 on a regression (behaviour, or timing beyond --max-slowdown)")
	fs.BoolVar(&f.hold, "hold", false, "netns: once the run is measured, keep its lab up (the nodes forwarding) and list its instances' namespaces until Ctrl-C")
	fs.StringVar(&f.format, "format", "text", "standard output: text (the overview table and the failed checks) or json (the report.json content, for pipelines; progress stays on standard error)")
	fs.StringArrayVar(&f.topology, "topology", nil, "run on this containerlab file instead of the scenario's topology (FILE: every generation without a topology of its own; GEN=FILE: that generation's; repeatable)")
	fs.Float64Var(&f.maxSlowdown, "max-slowdown", 0, "with --baseline, the factor by which round-trip and spawn times of runs on the same backend may grow (0: timings not compared)")
	return c
}

// errChecksFailed makes the command exit 1 after printing its report.
var errChecksFailed = errors.New("expectations failed; see the report")

// errRegressed makes the command exit 1: the runs differ from the
// baseline in behaviour (or in timing beyond --max-slowdown).
var errRegressed = errors.New("regressions against the baseline; see the report")

// runValidate checks each file as far as it can without running it: the
// YAML, the topologies, and every name a step refers to. Each problem is a
// line of its own on stderr, file:line: field: message.
func runValidate(files []string, stdout, stderr io.Writer) error {
	var problems, bad int
	for _, f := range files {
		errs := validateScenario(f)
		if len(errs) == 0 {
			s, _ := scenarios.Load(f)
			fmt.Fprintf(stdout, "%s: ok (%s: %d steps, generations %v)\n", f, s.Name, len(s.Steps), s.Generations)
			continue
		}
		bad++
		for _, err := range errs {
			problems++
			fmt.Fprintln(stderr, err)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s) in %d of %d file(s), listed above", problems, bad, len(files))
	}
	return nil
}

// validateScenario returns every problem of scenario file f.
func validateScenario(f string) []error {
	s, err := scenarios.Load(f)
	if err != nil {
		return []error{err}
	}
	return referenceProblems(s)
}

// referenceProblems returns every problem of s's steps on its topologies.
func referenceProblems(s *scenarios.Scenario) []error {
	f := s.File
	type built struct {
		t   *topologies.Topology
		err error
	}
	cache := map[string]built{}
	err := s.CheckReferences(func(g scenarios.Generation) (*topologies.Topology, error) {
		spec := s.TopologyFor(g)
		key := fmt.Sprint(spec)
		b, ok := cache[key]
		if !ok {
			b.t, b.err = spec.Build(f)
			cache[key] = b
		}
		return b.t, b.err
	})
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

type runFlags struct {
	gens, backend, out, shard, format string
	probes                            string
	shards                            int
	quiet                             bool
	baseline                          string
	maxSlowdown                       float64
	hold                              bool
	topology                          []string
}

// useTopologies puts the --topology files in place of s's topologies and
// checks s's steps against them: a host the steps name that a lab lacks
// is an error before anything starts.
func useTopologies(s *scenarios.Scenario, specs []string) error {
	for _, spec := range specs {
		gen, path := scenarios.Generation(""), spec
		if g, p, ok := strings.Cut(spec, "="); ok {
			if !slices.Contains(scenarios.Generations, scenarios.Generation(g)) {
				return usageErr("--topology %s: %q is not a generation; use FILE or GEN=FILE with GEN one of %v", spec, g, scenarios.Generations)
			}
			gen, path = scenarios.Generation(g), p
		}
		if err := s.UseTopologyFile(gen, path, "--topology "+spec); err != nil {
			return usageErr("%v", err)
		}
	}
	if errs := referenceProblems(s); len(errs) > 0 {
		return fmt.Errorf("%s on the --topology lab:\n%w", s.File, errors.Join(errs...))
	}
	return nil
}

func runScenarios(name string, f runFlags, files []string, stdout, stderr io.Writer) error {
	var err error
	if name == "run" && len(files) > 1 {
		return usageErr("run takes one scenario; use compare for several")
	}
	var base *reports.Report
	if f.baseline != "" {
		if base, err = readReport(f.baseline); err != nil {
			return usageErr("--baseline: %v", err)
		}
	}
	if f.format != "text" && f.format != "json" {
		return usageErr("--format %q: use text or json", f.format)
	}
	if f.maxSlowdown != 0 && (f.maxSlowdown <= 1 || f.baseline == "") {
		return usageErr("--max-slowdown wants a factor above 1, with --baseline")
	}
	backend, note, err := pickBackend(f.backend, f.out)
	if err != nil {
		return err
	}
	shardI, shardN, shardEnv, err := resolveShard(f.shard, f.shards, os.Getenv)
	if err != nil {
		return err
	}
	var gens []scenarios.Generation
	for _, g := range strings.Split(f.gens, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !slices.Contains(scenarios.Generations, scenarios.Generation(g)) {
			return usageErr("--gen: %q is not a generation; use %v", g, scenarios.Generations)
		}
		gens = append(gens, scenarios.Generation(g))
	}
	type job struct {
		s   *scenarios.Scenario
		gen scenarios.Generation
	}
	var jobs []job
	for _, file := range files {
		s, err := scenarios.Load(file)
		if err != nil {
			return err
		}
		if len(f.topology) > 0 {
			if err := useTopologies(s, f.topology); err != nil {
				return err
			}
		}
		for _, g := range s.Generations {
			if len(gens) == 0 || slices.Contains(gens, g) {
				jobs = append(jobs, job{s, g})
			}
		}
	}
	var mine []job
	for i, j := range jobs {
		if i%shardN == shardI {
			mine = append(mine, j)
		}
	}
	if len(jobs) == 0 {
		return usageErr("nothing to run: no scenario names the generations %v", gens)
	}
	if f.hold && (len(mine) != 1 || backend.name == "sim") {
		return usageErr("--hold keeps one lab up: run one scenario for one generation (--gen) on the netns or kernel backend")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if note != "" && !f.quiet {
		fmt.Fprintln(stderr, note)
	}
	if shardEnv && !f.quiet {
		fmt.Fprintln(stderr, shardNote(shardI, shardN))
	}
	var probes *probeFile
	if f.probes != "" {
		if probes, err = createProbeFile(f.probes); err != nil {
			return err
		}
	}
	rep := &reports.Report{Title: "netbed comparison", Machine: machine(), Created: time.Now().UTC()}
	if shardN > 1 {
		// An empty shard (more shards than runs) still writes its
		// report, so that the merge sees every shard.
		rep.Shard = &reports.Shard{Index: shardI, Count: shardN}
	}
	pr := newProgress(stderr)
	var runErrs []error
	for i, j := range mine {
		prefix := fmt.Sprintf("[%d/%d] %s/%s on %s", i+1, len(mine), j.s.Name, j.gen, backend.name)
		opts := scenarios.Options{}
		if f.hold {
			opts.Hold = holdLab(stderr)
		}
		if probes != nil {
			opts.OnProbe = probes.sink(j.s.Name, string(j.gen), backend.name)
		}
		if !f.quiet {
			opts.Progress = pr.line(prefix)
			opts.Progress("starting")
		}
		run, err := scenarios.Run(ctx, j.s, j.gen, backend.make(j.s), opts)
		if err != nil {
			run.Error = err.Error()
			runErrs = append(runErrs, fmt.Errorf("%s/%s: %w", j.s.Name, j.gen, err))
		}
		rep.Runs = append(rep.Runs, run)
		if !f.quiet {
			status := "ok"
			if run.Failed() {
				status = "FAILED"
			}
			pr.done("%s: %s (%d probes, %d checks, %s)", prefix, status, reports.StatsOf(run).Sent, len(run.Checks), run.Elapsed.Round(time.Millisecond))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if probes != nil {
		if err := probes.Close(); err != nil {
			return err
		}
	}
	// Standard output is the overview (or, for pipelines, the JSON
	// result alone); everything else goes to standard error.
	diffOut := stdout
	if f.format == "json" {
		err, diffOut = reports.WriteJSON(stdout, rep), stderr
	} else {
		err = reports.WriteSummary(stdout, rep)
	}
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := writeReports(f.out, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "report written to %s/report.{md,html,json} and junit.xml\n", f.out)
	} else if !f.quiet {
		fmt.Fprintln(stderr, "the full report (Markdown, HTML with plots, JSON, JUnit): --out DIR")
	}
	regressed := false
	if base != nil {
		if regressed, err = writeDiff(diffOut, f.out, f.baseline, base, rep, reports.DiffOptions{MaxSlowdown: f.maxSlowdown}); err != nil {
			return err
		}
	}
	if ctx.Err() != nil && !f.hold {
		return fmt.Errorf("interrupted; the lab was torn down")
	}
	if len(runErrs) > 0 {
		return errors.Join(runErrs...)
	}
	if rep.Failed() {
		return errChecksFailed
	}
	if regressed {
		return errRegressed
	}
	return nil
}

// holdLab lists the live instances and how to reach them, and waits for
// Ctrl-C (the run's context ending).
func holdLab(w io.Writer) func(context.Context, scenarios.Backend, []scenarios.Instance) error {
	return func(ctx context.Context, b scenarios.Backend, live []scenarios.Instance) error {
		var ns interface {
			InstanceNamespace(string) (string, bool)
			LabName() string
		}
		if fb, ok := b.(*scenarios.FabricBackend); ok {
			ns, _ = fb.Runtime().(interface {
				InstanceNamespace(string) (string, bool)
				LabName() string
			})
		}
		if ns == nil {
			return fmt.Errorf("the %s backend has no lab to hold", b.Name())
		}
		fmt.Fprintf(w, "\nlab %s is up, its nodes forwarding (node namespaces: ip netns list | grep %s). Instances:\n", ns.LabName(), ns.LabName())
		for _, in := range live {
			n, _ := ns.InstanceNamespace(in.Name)
			fmt.Fprintf(w, "  %-14s %-15s on %-8s ip netns exec %s ...\n", in.Name, in.IP, in.Host, n)
		}
		if sp, ok := ns.(interface {
			Speakers() []string
			SpeakerSocket(string) (string, bool)
		}); ok && len(sp.Speakers()) > 0 {
			fmt.Fprintln(w, "BGP speakers (GoBGP's own CLI reads them: go tool gobgp --target unix://<socket> neighbor):")
			frr, _ := ns.(interface{ FRRLeaf(string) (string, bool) })
			for _, n := range sp.Speakers() {
				if frr != nil {
					if dir, ok := frr.FRRLeaf(n); ok {
						fmt.Fprintf(w, "  %-14s FRR: vtysh --vty_socket %s -c 'show bgp l2vpn evpn'\n", n, dir)
						continue
					}
				}
				sock, _ := sp.SpeakerSocket(n)
				fmt.Fprintf(w, "  %-14s unix://%s\n", n, sock)
			}
		}
		if fb, ok := b.(*scenarios.FabricBackend); ok {
			holdController(w, fb)
		}
		fmt.Fprintln(w, "Ctrl-C tears it down.")
		<-ctx.Done()
		return nil
	}
}

// readReport reads a report.json.
func readReport(path string) (*reports.Report, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := reports.ReadJSON(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// writeDiff prints what changed against the baseline, and writes it to
// dir/baseline.md when dir is set; it reports whether anything regressed.
func writeDiff(stdout io.Writer, dir, name string, base, cur *reports.Report, opts reports.DiffOptions) (bool, error) {
	changes := reports.Diff(base, cur, opts)
	if err := reports.WriteDiffMarkdown(stdout, name, changes); err != nil {
		return false, err
	}
	if dir != "" {
		fh, err := os.Create(filepath.Join(dir, "baseline.md"))
		if err != nil {
			return false, fmt.Errorf("write baseline.md: %w", err)
		}
		err = reports.WriteDiffMarkdown(fh, name, changes)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, fmt.Errorf("write baseline.md: %w", err)
		}
	}
	return reports.Regressed(changes), nil
}

type backendChoice struct {
	name string
	make func(s *scenarios.Scenario) scenarios.Backend
}

// pickBackend resolves --backend. auto takes netns when this process may
// create namespaces, else sim, and says so.
func pickBackend(name, out string) (backendChoice, string, error) {
	simB := backendChoice{"sim", func(s *scenarios.Scenario) scenarios.Backend {
		return scenarios.NewFabricBackend(scenarios.FabricOptions{Runtime: simrt.New(s.Seed), ControllerLatency: simrt.ControllerLatency, StoreNoSync: true})
	}}
	switch name {
	case "sim":
		return simB, "", nil
	case "netns", "kernel":
		b, err := netnsBackend(out, name == "kernel")
		return b, "", err
	case "auto":
		if b, err := netnsBackend(out, false); err == nil {
			return b, "backend: netns (real namespaces)", nil
		} else {
			return simB, fmt.Sprintf("backend: sim (netns unavailable: %v)", err), nil
		}
	}
	return backendChoice{}, "", usageErr("--backend: %q; use sim, netns, kernel or auto", name)
}

func parseShard(s string) (int, int, error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usageErr("--shard %q: write i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return i, n, nil
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func writeReports(dir string, rep *reports.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	writers := map[string]func(io.Writer, *reports.Report) error{
		"report.md": reports.WriteMarkdown, "report.html": reports.WriteHTML,
		"report.json": reports.WriteJSON, "junit.xml": reports.WriteJUnit,
	}
	for name, w := range writers {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		err = w(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func runReportMerge(files []string, out string, stdout io.Writer) error {
	var rs []reports.NamedReport
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		r, err := reports.ReadJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("merge %s: %w", path, err)
		}
		rs = append(rs, reports.NamedReport{Name: path, Report: r})
	}
	merged, err := reports.MergeShards(rs)
	if err != nil {
		return err
	}
	if err := reports.WriteMarkdown(stdout, merged); err != nil {
		return err
	}
	if out != "" {
		return writeReports(out, merged)
	}
	if merged.Failed() {
		return errChecksFailed
	}
	return nil
}

func runReportDiff(files []string, slow float64, stdout io.Writer) error {
	if slow != 0 && slow <= 1 {
		return usageErr("--max-slowdown wants a factor above 1")
	}
	base, err := readReport(files[0])
	if err != nil {
		return err
	}
	cur, err := readReport(files[1])
	if err != nil {
		return err
	}
	regressed, err := writeDiff(stdout, "", files[0], base, cur, reports.DiffOptions{MaxSlowdown: slow})
	if err != nil {
		return err
	}
	if regressed {
		return errRegressed
	}
	return nil
}
