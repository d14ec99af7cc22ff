package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/topologies/clab"
)

func init() {
	register(func() *cobra.Command {
		var o blastFlags
		c := &cobra.Command{
			Use:   "blast --topology FILE [--controller URL] [flags] DEVICE...",
			Short: "which controller ports a device's failure touches (host, leaf, spine)",
			RunE: func(c *cobra.Command, args []string) error {
				return runBlast(args, o, c.OutOrStdout())
			},
		}
		fs := c.Flags()
		fs.StringVar(&o.topology, "topology", "", "containerlab topology file of the fabric (required)")
		fs.StringVar(&o.controller, "controller", "http://127.0.0.1:7480", "controller API to read the ports' host bindings from")
		fs.BoolVar(&o.ports, "ports", false, "list the ports by name under each device")
		fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the controller")
		o.access.add(fs)
		return c
	})
}

// blastRow is one device's radius, by port name.
type blastRow struct {
	Device    string   `json:"device"`
	Role      string   `json:"role"`
	Dependent []string `json:"dependent"`
	Isolated  []string `json:"isolated"`
}

type blastFlags struct {
	topology, controller string
	ports, json          bool
	timeout              time.Duration
	access               clientFlags
}

func runBlast(devices []string, o blastFlags, stdout io.Writer) error {
	if o.topology == "" {
		return usageErr("--topology is required: the fabric whose devices you ask about")
	}
	if len(devices) == 0 {
		return usageErr("name at least one device (a host, leaf or spine of the topology)")
	}
	topo, _, err := clab.Load(o.topology)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cl, err := o.access.client(o.controller)
	if err != nil {
		return err
	}
	ports, err := cl.ListPorts(ctx)
	if err != nil {
		return fmt.Errorf("list ports from the controller at %s: %w (is it running? see --controller)", o.controller, err)
	}
	names := make(map[string]string, len(ports))
	for _, p := range ports {
		names[p.ID] = p.Name
	}
	byName := func(ids []string) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, names[id])
		}
		return out
	}
	var rows []blastRow
	for _, dev := range devices {
		r, err := cnc.BlastRadius(topo, ports, dev)
		if err != nil {
			return fmt.Errorf("%w (devices are the node names of %s)", err, o.topology)
		}
		rows = append(rows, blastRow{Device: dev, Role: string(r.Role), Dependent: byName(r.Dependent), Isolated: byName(r.Isolated)})
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tROLE\tDEPENDENT\tISOLATED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", r.Device, r.Role, len(r.Dependent), len(r.Isolated))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.ports {
		for _, r := range rows {
			fmt.Fprintf(stdout, "\n%s\n  dependent: %s\n  isolated:  %s\n", r.Device, joinOrNone(r.Dependent), joinOrNone(r.Isolated))
		}
	}
	return nil
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
