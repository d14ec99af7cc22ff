package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/netbed/netbed/internal/doctor"
	"github.com/netbed/netbed/scenarios/netnsrt"
	"github.com/netbed/netbed/topologies/clab"
	"github.com/netbed/netbed/topologies/netns"
)

func init() {
	register(command{name: "up", short: "deploy a topology file as network namespaces and veth pairs", run: runUp})
	register(command{name: "down", short: "remove a lab deployed by 'netbed up' (or every netbed lab with --all)", run: runDown})
	register(command{name: "doctor", short: "check what this machine's kernel offers and which backends can run", run: runDoctor})
}

// needRoot explains, before anything is attempted, that namespaces need root.
func needRoot(cmd string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root to create network namespaces: run it with sudo ('netbed doctor' shows what works here)", cmd)
	}
	return nil
}

func runUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", "up [flags] file.clab.yml", stderr)
	workers := fs.Int("workers", 0, "namespaces or links set up at once (0: twice the CPUs)")
	quiet := fs.Bool("q", false, "do not print what was inferred from the file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one topology file, e.g. 'netbed up topologies/examples/spine-leaf-2x4.clab.yml'")
	}
	t, rep, err := clab.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if !*quiet && !rep.Empty() {
		fmt.Fprint(stderr, rep.String())
	}
	if err := needRoot("netbed up"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lab, drep, err := netns.Deploy(ctx, t, &netns.Options{Workers: *workers})
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
		fmt.Fprintf(stdout, "try: ip netns exec %s ip link\nremove with: netbed down %s\n", name, fs.Arg(0))
	}
	return nil
}

func runDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("down", "down [flags] file.clab.yml | --lab name | --all", stderr)
	all := fs.Bool("all", false, "remove every netbed lab on this machine, including ones left by a crashed or killed run")
	labName := fs.String("lab", "", "remove the lab with this name (no file needed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := 0
	for _, b := range []bool{*all, *labName != "", fs.NArg() > 0} {
		if b {
			given++
		}
	}
	if given != 1 || fs.NArg() > 1 {
		return usageErr("want one of: a topology file, --lab name, or --all")
	}
	if err := needRoot("netbed down"); err != nil {
		return err
	}
	var (
		rep *netns.DestroyReport
		err error
	)
	switch {
	case *all:
		rep, err = netns.DestroyAll(nil)
	default:
		name := *labName
		if name == "" {
			t, _, lerr := clab.Load(fs.Arg(0))
			if lerr != nil {
				return fmt.Errorf("%w (to remove a lab whose file is gone, use --lab name or --all)", lerr)
			}
			name = t.Name
		}
		rep, err = netns.Destroy(name, nil)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	return nil
}

func runDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", "doctor [flags]", stderr)
	require := fs.String("require", "", "comma-separated backends (sim, netns, kernel) that must be able to run; exit 1 otherwise")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	res := doctor.Run()
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if p, err := netnsrt.FindPlugin(nil); err == nil {
		fmt.Fprintf(stdout, "\nCNI plugin: %s (pods on the netns backend are attached by it)\n", p)
	} else {
		fmt.Fprintf(stdout, "\nCNI plugin: not found (%v): pods on the netns backend need it; make build puts it in bin/ beside netbed\n", err)
	}
	if *require == "" {
		return nil
	}
	can := map[string]doctor.Backend{}
	for _, b := range res.Backends {
		can[b.Name] = b
	}
	var errs []error
	for _, name := range strings.Split(*require, ",") {
		name = strings.TrimSpace(name)
		b, ok := can[name]
		switch {
		case !ok:
			return usageErr("unknown backend %q in --require (want sim, netns or kernel)", name)
		case !b.Built:
			errs = append(errs, fmt.Errorf("backend %s is not built yet (see docs/design.md)", name))
		case !b.OK():
			errs = append(errs, fmt.Errorf("backend %s cannot run here: missing %s", name, strings.Join(b.Missing, ", ")))
		}
	}
	return errors.Join(errs...)
}
