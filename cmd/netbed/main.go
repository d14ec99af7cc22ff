// Command netbed builds, runs and compares the three generations of a
// data-centre network: topologies, labs on network namespaces, scenarios and
// reports.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commands holds the constructors of the `netbed <name>` subcommands. Each
// lives in its own file and registers itself from init; run builds a fresh
// tree for every call, so that no flag value outlives it.
var commands []func() *cobra.Command

func register(newCmd func() *cobra.Command) {
	commands = append(commands, newCmd)
}

// errUsage marks an error caused by how the command was called; it exits
// 2 with a hint to run help.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func main() {
	// The controller and speakers run from this binary, whatever it is
	// called.
	netnsrt.ThisIsNetbed()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// newRoot returns the command tree writing to stdout and stderr.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "netbed",
		Short: "network simulation and verification testbed (VLAN, EVPN, eBPF generations)",
		// Errors are printed once, by run, with the exit code they deserve.
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versionString(),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("netbed {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	root.CompletionOptions.HiddenDefaultCmd = false
	// -o and -q are the long flags --output and --quiet; --o and --q, which
	// Go's flag package accepted, still reach them.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "o":
			name = "output"
		case "q":
			name = "quiet"
		}
		return pflag.NormalizedName(name)
	})
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

// usageTemplate is cobra's, with the usage line on the line of "Usage:".
const usageTemplate = `Usage: {{if .Runnable}}{{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}{{if .Runnable}}
       {{end}}{{.CommandPath}} <command>{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run '{{.CommandPath}} <command> -h' for a command's flags.{{end}}
`

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(goStyleFlags(root, args))
	c, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	if c == root && !errors.Is(err, errUsage) {
		// cobra's "unknown command" (with its suggestions).
		fmt.Fprintf(stderr, "netbed: %v\nrun 'netbed help' for the list\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", c.CommandPath(), err)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "run '%s -h' for usage\n", c.CommandPath())
		return 2
	}
	return 1
}

// goStyleFlags rewrites "-name" and "-name=value", as Go's flag package
// took them, to "--name": every long flag netbed had before it moved to
// pflag still works with one dash. Single letters (-o, -q, -h), negative
// numbers and everything after "--" are left alone.
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true, "version": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// exactArgs, minArgs and noArgs are cobra's argument checks with netbed's
// messages, as usage errors (exit 2).
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s", msg)
		}
		return nil
	}
}

func minArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErr("%s", msg)
		}
		return nil
	}
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unexpected arguments %q", args)
	}
	return nil
}
