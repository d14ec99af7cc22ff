// Command netbed builds, runs and compares the three generations of a
// data-centre network: topologies, labs on network namespaces, scenarios and
// reports.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one `netbed <name>` subcommand. Each lives in its own file and
// registers itself from init.
type command struct {
	name  string
	short string // one line for `netbed help`
	// run gets the arguments after the command name; stdout and stderr are
	// where it writes. It returns an error to print and exit non-zero.
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("netbed: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error caused by how the command was called; main prints
// it with a hint to run help.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "netbed: unknown command %q; run 'netbed help' for the list\n", args[0])
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "netbed %s: %v\n", c.name, err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "run 'netbed %s -h' for usage\n", c.name)
			return 2
		}
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "netbed: network simulation and verification testbed (VLAN, EVPN, eBPF generations)")
	fmt.Fprintln(w, "\nUsage: netbed <command> [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w, "\nRun 'netbed <command> -h' for a command's flags.")
}

// newFlags returns a FlagSet that reports errors instead of exiting and
// prints usage to stderr.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("netbed "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: netbed %s\n", usage)
		if strings.Contains(usage, "[flags]") {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}
