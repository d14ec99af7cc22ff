package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/topologies/clab"
)

func init() {
	register(command{name: "blast", short: "which controller ports a device's failure touches (host, leaf, spine)", run: runBlast})
}

// blastRow is one device's radius, by port name.
type blastRow struct {
	Device    string   `json:"device"`
	Role      string   `json:"role"`
	Dependent []string `json:"dependent"`
	Isolated  []string `json:"isolated"`
}

func runBlast(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("blast", "blast --topology FILE [--controller URL] [flags] DEVICE...", stderr)
	topoPath := fs.String("topology", "", "containerlab topology file of the fabric (required)")
	ctlURL := fs.String("controller", "http://127.0.0.1:7480", "controller API to read the ports' host bindings from")
	list := fs.Bool("ports", false, "list the ports by name under each device")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the controller")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topoPath == "" {
		return usageErr("--topology is required: the fabric whose devices you ask about")
	}
	if fs.NArg() == 0 {
		return usageErr("name at least one device (a host, leaf or spine of the topology)")
	}
	topo, _, err := clab.Load(*topoPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ports, err := api.NewClient(*ctlURL, nil).ListPorts(ctx)
	if err != nil {
		return fmt.Errorf("list ports from the controller at %s: %w (is it running? see --controller)", *ctlURL, err)
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
	for _, dev := range fs.Args() {
		r, err := cnc.BlastRadius(topo, ports, dev)
		if err != nil {
			return fmt.Errorf("%w (devices are the node names of %s)", err, *topoPath)
		}
		rows = append(rows, blastRow{Device: dev, Role: string(r.Role), Dependent: byName(r.Dependent), Isolated: byName(r.Isolated)})
	}
	if *asJSON {
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
	if *list {
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
