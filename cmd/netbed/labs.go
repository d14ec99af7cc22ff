package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/topologies/netns"
)

func init() {
	register(func() *cobra.Command {
		var asJSON bool
		c := &cobra.Command{
			Use:   "labs [flags]",
			Short: "list the netbed labs on this machine: backend, nodes, age, whether the process that made it is alive",
			Long: `List the netbed labs on this machine, from the state netbed records under
/run/netbed/labs and the marks on the labs' interfaces. A lab whose owner is
not alive was left by a killed run: 'netbed down --lab NAME' removes it, its
namespaces and its temporary directories.`,
			Args: noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				labs, err := netns.Labs(nil)
				if err != nil {
					return err
				}
				if asJSON {
					return writeLabsJSON(c.OutOrStdout(), labs, time.Now())
				}
				return writeLabs(c.OutOrStdout(), labs, time.Now())
			},
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		return c
	})
}

// labRow is one lab as 'netbed labs' shows it.
type labRow struct {
	Name       string   `json:"name"`
	Backend    string   `json:"backend"`
	Nodes      int      `json:"nodes"`
	Namespaces []string `json:"namespaces"`
	AgeSeconds float64  `json:"age_seconds,omitempty"`
	PID        int      `json:"pid,omitempty"`
	// Owner: "alive", "gone" (the run was killed or crashed), "none" (a
	// lab 'netbed up' finished: it outlives its process by design), or
	// "unknown" (no state: found by the marks on its interfaces only).
	Owner    string   `json:"owner"`
	TempDirs []string `json:"temp_dirs,omitempty"`
}

func labRows(labs []netns.LabInfo, now time.Time) []labRow {
	rows := make([]labRow, 0, len(labs))
	for _, l := range labs {
		r := labRow{Name: l.Name, Backend: "topology", Nodes: l.Nodes, Namespaces: l.Namespaces, Owner: "unknown"}
		if r.Namespaces == nil {
			r.Namespaces = []string{}
		}
		if st := l.State; st != nil {
			if st.Backend != "" {
				r.Backend = st.Backend
			}
			r.PID, r.TempDirs = st.PID, st.TempDirs
			r.AgeSeconds = l.Age(now).Seconds()
			switch {
			case st.OwnerAlive():
				r.Owner = "alive"
			case st.Backend == "" && st.Complete:
				// 'netbed up' deployed it and exited: nothing was killed.
				r.Owner = "none"
			default:
				r.Owner = "gone"
			}
		} else {
			r.Backend = "?"
		}
		rows = append(rows, r)
	}
	return rows
}

func writeLabs(w io.Writer, labs []netns.LabInfo, now time.Time) error {
	if len(labs) == 0 {
		_, err := fmt.Fprintln(w, "no netbed labs on this machine")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBACKEND\tNODES\tNAMESPACES\tAGE\tPID\tOWNER")
	for _, r := range labRows(labs, now) {
		age, pid := "-", "-"
		if r.AgeSeconds > 0 {
			age = formatAge(time.Duration(r.AgeSeconds * float64(time.Second)))
		}
		if r.PID > 0 {
			pid = fmt.Sprint(r.PID)
		}
		owner := r.Owner
		switch owner {
		case "gone":
			owner = "gone (killed? netbed down --lab " + r.Name + ")"
		case "none":
			owner = "none (left by netbed up)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, r.Backend, r.Nodes, len(r.Namespaces), age, pid, owner)
	}
	return tw.Flush()
}

func writeLabsJSON(w io.Writer, labs []netns.LabInfo, now time.Time) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(labRows(labs, now))
}

// formatAge is a duration to the second, in the largest two units: "3h12m",
// "4m05s", "12s".
func formatAge(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%02dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
