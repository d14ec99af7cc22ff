package ovs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netbed/netbed/datapath/kernel"
	"github.com/netbed/netbed/datapath/kernel/ovs/ovsdb"
)

// Where Debian's openvswitch-switch keeps its schema.
var schemaPaths = []string{"/usr/share/openvswitch/vswitch.ovsschema", "/usr/local/share/openvswitch/vswitch.ovsschema"}

// Binaries a vswitch needs.
var binaries = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"}

// ErrNoOVS: Open vSwitch's programs or schema are not installed.
var ErrNoOVS = errors.New("Open vSwitch is not installed (apt-get install openvswitch-switch)")

// Available reports whether this machine has Open vSwitch's programs and
// schema, naming what is missing.
func Available() error {
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%w: no %s in PATH", ErrNoOVS, b)
		}
	}
	if schema() == "" {
		return fmt.Errorf("%w: no vswitch.ovsschema in %s", ErrNoOVS, strings.Join(schemaPaths, " or "))
	}
	return nil
}

func schema() string {
	for _, p := range schemaPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// stopGrace is how long a daemon has to exit after SIGTERM before SIGKILL.
const stopGrace = 2 * time.Second

// startTimeout bounds a daemon's start (its socket appearing).
const startTimeout = 10 * time.Second

// vswitch is one private Open vSwitch: an ovsdb-server and an
// ovs-vswitchd running in a node's namespace, their sockets, database,
// pid and log files in dir.
type vswitch struct {
	node  string
	dir   string
	procs []*daemon

	cmu  sync.Mutex
	conn *ovsdb.Client // to the ovsdb-server, opened by dbClient
	ctlc *ovsdb.Client // to ovs-vswitchd's unixctl socket, opened by ctlClient
}

type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (v *vswitch) db() string  { return "unix:" + filepath.Join(v.dir, "db.sock") }
func (v *vswitch) ctl() string { return filepath.Join(v.dir, "ovs-vswitchd.ctl") }
func (v *vswitch) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+v.dir, "OVS_DBDIR="+v.dir, "OVS_LOGDIR="+v.dir, "OVS_SYSCONFDIR="+v.dir)
}

// TemplateDir is the directory, in the state directory, of the empty
// database every vswitch's starts as a copy of.
const TemplateDir = ".ovs-template"

// templates serialises the creation of the empty databases that
// startVswitch copies (one ovsdb-tool run per state directory, not per
// vswitch).
var templates sync.Mutex

// emptyDB returns an empty Open_vSwitch database made in base.
func emptyDB(ctx context.Context, base string) ([]byte, error) {
	templates.Lock()
	defer templates.Unlock()
	path := filepath.Join(base, TemplateDir, "empty.conf.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "ovsdb-tool", "create", tmp, schema())
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ovsdb-tool create: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// startVswitch creates dir and the database holding config (ovs-vsctl
// commands, each starting with "--"), and starts both daemons inside
// node's namespace; it returns once ovs-vswitchd has applied config. On
// error it stops what it started.
func startVswitch(ctx context.Context, lab kernel.Lab, node, dir string, config ...string) (_ *vswitch, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vswitch on %s: %w", node, err)
	}
	v := &vswitch{node: node, dir: dir}
	defer func() {
		if err != nil {
			v.stop()
			err = fmt.Errorf("vswitch on %s: %w", node, err)
		}
	}()
	dbFile := filepath.Join(dir, "conf.db")
	empty, err := emptyDB(ctx, filepath.Dir(dir))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(dbFile, empty, 0o644); err != nil {
		return nil, err
	}
	if err := v.start(lab, filepath.Join(dir, "db.sock"), "ovsdb-server", dbFile,
		"--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"), "-vconsole:off"); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(10 * time.Millisecond) {
		_, err := v.vsctl(ctx, append([]string{"--no-wait", "--", "init"}, config...)...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, err
		}
	}
	if err := v.start(lab, v.ctl(), "ovs-vswitchd", v.db(),
		"--unixctl="+v.ctl(),
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"), "-vconsole:off"); err != nil {
		return nil, err
	}
	// A change ovs-vsctl waits for: ovs-vswitchd has applied everything.
	if _, err := v.vsctl(ctx, "set", "Open_vSwitch", ".", "external_ids:netbed-node="+node); err != nil {
		return nil, err
	}
	return v, nil
}

// start runs a daemon inside v's namespace and waits until sock accepts
// connections.
func (v *vswitch) start(lab kernel.Lab, sock, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = v.env()
	cmd.Dir = v.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := lab.Do(v.node, cmd.Start); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	v.procs = append(v.procs, d)
	deadline := time.Now().Add(startTimeout)
	for {
		if ready(sock) {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited at start (%v): %s (log in %s)", name, cmd.ProcessState, strings.TrimSpace(stderr.String()), v.dir)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %v (log in %s)", name, sock, startTimeout, v.dir)
		}
	}
}

// maxSunPath is the longest unix socket path Go can dial (sun_path less
// its terminating NUL). OVS reaches longer ones through /proc/self/fd.
const maxSunPath = 107

// ready reports whether the daemon's socket sock accepts connections; a
// path too long to dial is ready once it exists (the caller retries its
// first command).
func ready(sock string) bool {
	if len(sock) > maxSunPath {
		_, err := os.Stat(sock)
		return err == nil
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// run runs a program to completion (outside any namespace: the OVS
// clients talk to the daemons over their unix sockets).
func (v *vswitch) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = v.env()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// vsctl runs ovs-vsctl against v's database (waiting, unless told
// --no-wait, until ovs-vswitchd has applied the change).
func (v *vswitch) vsctl(ctx context.Context, args ...string) (string, error) {
	return v.run(ctx, "ovs-vsctl", append([]string{"--db=" + v.db(), "--timeout=20"}, args...)...)
}

// delPort takes dev off bridge (nothing if it is not there: dropPort),
// and waits
// until the datapath's cached flows no longer send to it: ovs-vsctl
// returns once ovs-vswitchd has removed the port, but the flows its
// revalidator threads have not revisited yet still output to the
// port's old number, and a frame for a MAC that was behind it (an
// instance that just moved away) is dropped on them instead of flooded.
func (v *vswitch) delPort(ctx context.Context, bridge, dev string) error {
	if err := v.dropPort(ctx, bridge, dev); err != nil {
		return err
	}
	if _, err := v.appctl(ctx, "revalidator/wait"); err != nil {
		return fmt.Errorf("wait for the revalidators after deleting %s: %w", dev, err)
	}
	return nil
}

// appctl runs an ovs-appctl command on v's ovs-vswitchd: the command
// and its arguments as a JSON-RPC request on the daemon's unixctl
// socket, over a connection kept open (ctlClient), as ovs-appctl sends
// them; the reply's text is what ovs-appctl would print.
func (v *vswitch) appctl(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("ovs-appctl: no command")
	}
	c, err := v.ctlClient()
	if err != nil {
		return "", fmt.Errorf("ovs-appctl %s: %w", strings.Join(args, " "), err)
	}
	params := make([]any, len(args)-1)
	for i, a := range args[1:] {
		params[i] = a
	}
	raw, err := c.Call(ctx, args[0], params...)
	if err != nil {
		return "", fmt.Errorf("ovs-appctl: %w (arguments %q)", err, args[1:])
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("ovs-appctl %s: reply %s: %w", strings.Join(args, " "), raw, err)
	}
	return out, nil
}

// stop ends both daemons (ovs-vswitchd first): SIGTERM, then SIGKILL after
// stopGrace, and waits for them. It removes v's directory.
func (v *vswitch) stop() error {
	v.closeDB()
	var errs []error
	for i := len(v.procs) - 1; i >= 0; i-- {
		d := v.procs[i]
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopGrace):
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	v.procs = nil
	if err := os.RemoveAll(v.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
