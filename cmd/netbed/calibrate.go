package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netbed/netbed/datapath/cost"
	"github.com/netbed/netbed/datapath/cost/calibrate"
	"github.com/netbed/netbed/internal/doctor"
)

func init() {
	register(func() *cobra.Command {
		var o calibrateFlags
		c := &cobra.Command{
			Use:   "calibrate [flags]",
			Short: "remeasure the sim's per-device costs on this machine's kernel devices and Open vSwitch (root)",
			Args:  noArgs,
		}
		c.RunE = func(c *cobra.Command, _ []string) error {
			// The command line recorded in the table, flags in a canonical order.
			cmdline := []string{"netbed", "calibrate"}
			c.Flags().Visit(func(f *pflag.Flag) {
				if f.Name == "output" {
					cmdline = append(cmdline, "-o", f.Value.String())
				} else {
					cmdline = append(cmdline, "--"+f.Name+"="+f.Value.String())
				}
			})
			return runCalibrate(o, strings.Join(cmdline, " "), c.OutOrStdout(), c.ErrOrStderr())
		}
		fs := c.Flags()
		fs.StringVarP(&o.out, "output", "o", "", "write the calibration JSON here (datapath/cost/calibration.json is the one netbed embeds; rebuild after)")
		fs.IntVar(&o.samples, "samples", 30000, "round trips per path")
		fs.IntVar(&o.rounds, "rounds", 100, "interleaved rounds the samples are taken in")
		fs.BoolVar(&o.ovs, "ovs", true, "measure Open vSwitch's userspace datapath too (needs ovsdb-server and ovs-vswitchd)")
		fs.StringVar(&o.machine, "machine", "", "describe the machine (default: CPU model, cores, memory and kernel as Linux reports them)")
		return c
	})
}

type calibrateFlags struct {
	out, machine    string
	samples, rounds int
	ovs             bool
}

func runCalibrate(o calibrateFlags, cmdline string, stdout, stderr io.Writer) error {
	outPath, samples, rounds, ovs, machine := &o.out, &o.samples, &o.rounds, &o.ovs, &o.machine
	if *samples < 100 {
		return usageErr("--samples must be at least 100 (got %d)", *samples)
	}
	if *rounds < 1 || *rounds > *samples {
		return usageErr("--rounds must be between 1 and --samples (got %d)", *rounds)
	}
	if *ovs {
		if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
			return fmt.Errorf("calibrate: --ovs needs ovs-vswitchd (Debian openvswitch-switch), or pass --ovs=false: %w", err)
		}
	}
	if *machine == "" {
		*machine = doctor.Machine()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := calibrate.Run(ctx, calibrate.Options{Samples: *samples, Rounds: *rounds, OVS: *ovs, Machine: *machine, Command: cmdline,
		Progress: func(s string) { fmt.Fprintln(stderr, s) }})
	if err != nil {
		return err
	}
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	if _, err := cost.Parse(b); err != nil {
		return fmt.Errorf("calibrate: the measured table does not parse back: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "device\tcost\tmeasured\n")
	for _, c := range cost.Classes {
		f := t.Figures[c]
		fmt.Fprintf(tw, "%s\t%v\t%v\n", c, f.Cost, f.Measured)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *outPath == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*outPath, b, 0o644); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *outPath)
	return nil
}
