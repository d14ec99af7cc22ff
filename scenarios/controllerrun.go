package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/reports"
)

// ControllerHost is a Runtime on which the controller runs as its own
// process, as on a real deployment: ControllerBinary returns the netbed
// executable that serves it (`netbed controller serve`), or an error
// saying where it was looked for.
type ControllerHost interface {
	ControllerBinary() (string, error)
}

// ControllerChecker is a Backend that can check its controller against
// what the run was told: every live instance's port holds the address the
// instance was given, no address is held twice, and the controller's own
// consistency check passes. It returns the problems found.
type ControllerChecker interface {
	CheckController(ctx context.Context, live []Instance) ([]string, error)
}

var _ ControllerChecker = (*FabricBackend)(nil)

// errControllerDown is what a call to a controller that is down (killed,
// not restarted yet) fails with.
var errControllerDown = errors.New("the controller is down")

// ctlRun is the controller's life in a run: in this process, or as its
// own process (bin set); its faults, those scheduled for later, and how
// long its clients found it unavailable.
type ctlRun struct {
	api ctlAPI // what the backend calls: the controller, with retries

	bin       string       // netbed, when the controller is its own process
	client    *api.Client  // over the unix socket, when it is
	cncClient *api.Client  // the CNC's, in a secure run
	sec       *ctlSecurity // a secure run's certificates and tokens
	proc      *exec.Cmd
	exited    chan struct{} // closed when proc has been waited for
	rs        *replicaSet   // the replicas on etcd, when it runs as such

	mu             sync.Mutex
	down           bool
	restorePending int              // async restores scheduled, not yet done
	due            []dueFault       // in process: async faults, by time
	timers         []*time.Timer    // own process: async faults
	wg             sync.WaitGroup   // running async faults
	asyncErr       error            // the first error of an async fault
	failingSince   time.Duration    // first failed call of the outage in progress
	failing        bool             //
	lastRestore    int              // index in faults of the last controller restore, -1: none
	faults         *[]reports.Fault // the backend's
}

type dueFault struct {
	at time.Duration
	t  Target
	up bool
}

func (c *ctlRun) isDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// controllerFault fails (kills) or restores (restarts on its store) the
// controller, at once or, with t.After, that long later while the next
// steps run.
func (b *FabricBackend) controllerFault(ctx context.Context, t Target, up bool) error {
	if t.After > 0 {
		b.ctl.mu.Lock()
		defer b.ctl.mu.Unlock()
		if up {
			b.ctl.restorePending++
		}
		if b.ctl.bin == "" {
			// In process the backend's time may be virtual: the fault
			// fires when a call or a sleep reaches its time.
			b.ctl.due = append(b.ctl.due, dueFault{at: b.rt.Now() + t.After, t: t, up: up})
			sort.SliceStable(b.ctl.due, func(i, j int) bool { return b.ctl.due[i].at < b.ctl.due[j].at })
			return nil
		}
		b.ctl.wg.Add(1)
		b.ctl.timers = append(b.ctl.timers, time.AfterFunc(t.After, func() {
			defer b.ctl.wg.Done()
			if err := b.faultNow(context.Background(), t, up, true); err != nil {
				b.ctl.mu.Lock()
				if b.ctl.asyncErr == nil {
					b.ctl.asyncErr = fmt.Errorf("%s %s after %v: %w", ctlName(t), map[bool]string{false: "fail", true: "restore"}[up], t.After, err)
				}
				b.ctl.mu.Unlock()
			}
		}))
		return nil
	}
	return b.faultNow(ctx, t, up, false)
}

// faultNow fails or restores the controller, a replica or an etcd member
// now.
func (b *FabricBackend) faultNow(ctx context.Context, t Target, up, async bool) error {
	if t.Replica == "" && t.Etcd == "" {
		return b.controllerNow(ctx, up, async)
	}
	err := b.replicaNow(t, up)
	if async && up {
		b.ctl.mu.Lock()
		b.ctl.restorePending--
		b.ctl.mu.Unlock()
	}
	return err
}

// ctlName names a controller fault's target: the controller, replica-2,
// etcd member-1.
func ctlName(t Target) string {
	switch {
	case t.Replica != "":
		return t.Replica
	case t.Etcd != "":
		return "etcd " + t.Etcd
	}
	return "controller"
}

// controllerNow kills or restarts the controller now.
func (b *FabricBackend) controllerNow(ctx context.Context, up, async bool) error {
	f := reports.Fault{At: b.rt.Now(), Target: "controller", Restore: up}
	if !up {
		b.progress("controller killed")
		var err error
		f.Detail, err = b.killController()
		b.addFault(f, false)
		return err
	}
	err := b.startController()
	if pid := b.controllerPID(); pid > 0 {
		f.Detail = fmt.Sprintf("%s controller serve, pid %d", b.ctl.bin, pid)
	}
	if async {
		b.ctl.mu.Lock()
		b.ctl.restorePending--
		b.ctl.mu.Unlock()
	}
	if err != nil {
		return err
	}
	b.addFault(f, true)
	ports, err := b.api.ListPorts(ctx)
	if err != nil {
		return fmt.Errorf("restart controller: %w", err)
	}
	if b.cnc != nil {
		b.cnc.Resync(ports)
		return b.cnc.Wait(ctx)
	}
	return nil
}

func (b *FabricBackend) addFault(f reports.Fault, restore bool) {
	b.ctl.mu.Lock()
	defer b.ctl.mu.Unlock()
	b.faults = append(b.faults, f)
	if restore {
		b.ctl.lastRestore = len(b.faults) - 1
	}
}

// killController ends the controller without a graceful shutdown: its
// process gets SIGKILL; in process, its listeners close at once and the
// CNC's queued work is dropped. Whatever the store had not committed is
// lost.
func (b *FabricBackend) killController() (how string, err error) {
	b.ctl.mu.Lock()
	if b.ctl.down {
		b.ctl.mu.Unlock()
		return "already down", nil
	}
	b.ctl.down = true
	proc, exited := b.ctl.proc, b.ctl.exited
	b.ctl.proc = nil
	b.ctl.mu.Unlock()
	if proc != nil {
		how = fmt.Sprintf("SIGKILL to pid %d", proc.Process.Pid)
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return how, fmt.Errorf("kill controller process %d: %w", proc.Process.Pid, err)
		}
		<-exited
		return how, nil
	}
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
	return "in process: uncommitted work dropped", b.stopController()
}

// controllerPID is the controller process's id, 0 in process.
func (b *FabricBackend) controllerPID() int {
	b.ctl.mu.Lock()
	defer b.ctl.mu.Unlock()
	if b.ctl.proc == nil {
		return 0
	}
	return b.ctl.proc.Process.Pid
}

// startProcess starts `netbed controller serve` on the run's store and
// socket and waits until it answers.
func (b *FabricBackend) startProcess() error {
	sock := b.controllerSocket()
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("controller socket: %w", err)
	}
	logPath := filepath.Join(filepath.Dir(sock), "controller.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("controller log: %w", err)
	}
	cmd := exec.Command(b.ctl.bin, append([]string{"controller", "serve", "--store", b.storePath, "--listen", "unix:" + sock, "--lock-timeout", "10s", "--parent", strconv.Itoa(os.Getpid())}, b.secureArgs()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start controller (%s controller serve): %w", b.ctl.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	logTail := func() string {
		data, _ := os.ReadFile(logPath)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		return string(bytes.TrimSpace(data))
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := b.ctl.client.ListNetworks(ctx, "")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("controller process (%s controller serve --store %s) exited: %s", b.ctl.bin, b.storePath, logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("controller process did not answer on %s within 15s: %v; log: %s", sock, err, logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ctl.mu.Lock()
	b.ctl.proc, b.ctl.exited, b.ctl.down = cmd, exited, false
	b.ctl.mu.Unlock()
	return b.checkSecure(context.Background())
}

// stopProcess shuts the controller process down gracefully (SIGTERM), or
// kills it if it does not exit in time.
func (b *FabricBackend) stopProcess() error {
	b.ctl.mu.Lock()
	proc, exited := b.ctl.proc, b.ctl.exited
	b.ctl.proc, b.ctl.down = nil, true
	b.ctl.mu.Unlock()
	if proc == nil {
		return nil
	}
	_ = proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = proc.Process.Kill()
		<-exited
		return fmt.Errorf("controller process %d ignored SIGTERM for 10s; killed", proc.Process.Pid)
	}
	return nil
}

// unixClient is an HTTP client of the controller on socket sock.
func unixClient(sock string) *api.Client {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: false, MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", sock)
		}}
	return api.NewClient("http://controller", &http.Client{Transport: tr, Timeout: 30 * time.Second})
}

// runDue carries out the in-process async faults whose time has come.
func (b *FabricBackend) runDue(ctx context.Context) error {
	for {
		b.ctl.mu.Lock()
		if len(b.ctl.due) == 0 || b.ctl.due[0].at > b.rt.Now() {
			b.ctl.mu.Unlock()
			return nil
		}
		d := b.ctl.due[0]
		b.ctl.due = b.ctl.due[1:]
		b.ctl.mu.Unlock()
		if err := b.faultNow(ctx, d.t, d.up, true); err != nil {
			return err
		}
	}
}

// sleep advances the backend's time by d, carrying out the in-process
// async faults due meanwhile at their time.
func (b *FabricBackend) sleep(ctx context.Context, d time.Duration) error {
	end := b.rt.Now() + d
	for {
		b.ctl.mu.Lock()
		next := end
		if len(b.ctl.due) > 0 && b.ctl.due[0].at < end {
			next = b.ctl.due[0].at
		}
		b.ctl.mu.Unlock()
		if wait := next - b.rt.Now(); wait > 0 {
			if err := b.rt.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		if err := b.runDue(ctx); err != nil {
			return err
		}
		if b.rt.Now() >= end {
			return nil
		}
	}
}

// maxUnavailable bounds how long a call waits for a controller that is
// coming back.
const maxUnavailable = time.Minute

// call makes one controller call as a client does: while the controller
// is unavailable and a restart is on its way, it retries with backoff (as
// Nova or a kubelet retry Neutron), and it measures the outage clients
// see: from the first failed call to the first successful one.
func call[T any](ctx context.Context, b *FabricBackend, f func(controller.API) (T, error)) (T, error) {
	backoff := 5 * time.Millisecond
	start := b.rt.Now()
	for {
		if err := b.runDue(ctx); err != nil {
			var zero T
			return zero, err
		}
		var v T
		var err error
		if b.ctl.isDown() {
			err = errControllerDown
		} else {
			v, err = f(b.ctl.api.API)
		}
		if err == nil {
			b.sawController(true)
			return v, nil
		}
		if !b.unavailable(err) || ctx.Err() != nil {
			return v, err
		}
		b.sawController(false)
		b.ctl.mu.Lock()
		coming := b.ctl.restorePending > 0 || len(b.ctl.due) > 0
		rs := b.ctl.rs
		b.ctl.mu.Unlock()
		// With replicas, a call that broke on a killed replica goes to
		// another live one.
		coming = coming || (rs != nil && rs.live() > 0)
		if !coming {
			return v, err
		}
		if b.rt.Now()-start > maxUnavailable {
			return v, fmt.Errorf("controller unavailable for %v: %w", b.rt.Now()-start, err)
		}
		if err := b.sleep(ctx, backoff); err != nil {
			return v, err
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// unavailable reports whether err means that the controller could not be
// reached (down, its process gone, the connection cut), not an answer.
func (b *FabricBackend) unavailable(err error) bool {
	if errors.Is(err, errControllerDown) {
		return true
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		// A replica whose etcd member died answers so until its
		// client has moved to a live member: the call is retried, as
		// the answer says.
		return b.ctl.rs != nil && ae.Code == "store_unreachable"
	}
	return b.ctl.bin != ""
}

func (b *FabricBackend) sawController(ok bool) {
	b.ctl.mu.Lock()
	defer b.ctl.mu.Unlock()
	now := b.rt.Now()
	switch {
	case !ok && !b.ctl.failing:
		b.ctl.failing, b.ctl.failingSince = true, now
	case ok && b.ctl.failing:
		b.ctl.failing = false
		if i := b.ctl.lastRestore; i >= 0 && i < len(b.faults) {
			b.faults[i].APIUnavailable += now - b.ctl.failingSince
		}
	}
}

// CheckController implements ControllerChecker.
func (b *FabricBackend) CheckController(ctx context.Context, live []Instance) ([]string, error) {
	if !b.controlled() {
		return nil, fmt.Errorf("%s has no central controller", b.env.Generation)
	}
	ports, err := call(ctx, b, func(a controller.API) ([]controller.Port, error) { return a.ListPorts(ctx) })
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	var problems []string
	byName := map[string]controller.Port{}
	holder := map[string]map[netip.Addr]string{} // network → address → port
	names := make([]string, 0, len(ports))
	for _, p := range ports {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	slices.Sort(names)
	for _, n := range names {
		p := byName[n]
		if holder[p.Network] == nil {
			holder[p.Network] = map[netip.Addr]string{}
		}
		for _, ip := range p.IPs {
			if other, ok := holder[p.Network][ip.Address]; ok {
				problems = append(problems, fmt.Sprintf("address %v is held by ports %s and %s", ip.Address, other, p.Name))
			}
			holder[p.Network][ip.Address] = p.Name
		}
	}
	for _, in := range live {
		p, ok := byName[in.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s was given %v, but its port is gone", in.Name, in.IP))
			continue
		}
		if !slices.ContainsFunc(p.IPs, func(ip controller.FixedIP) bool { return ip.Address == in.IP }) {
			problems = append(problems, fmt.Sprintf("%s was given %v, but its port holds %v", in.Name, in.IP, p.IPs))
		}
	}
	more, err := call(ctx, b, func(a controller.API) ([]string, error) { return a.Check(ctx) })
	if err != nil {
		return problems, fmt.Errorf("controller check: %w", err)
	}
	return append(problems, more...), nil
}

// ctlAPI is the controller as the backend calls it: every call of the
// spawn flow goes through call (retries while it restarts, outage
// measured); the others go straight to it.
type ctlAPI struct {
	controller.API
	b *FabricBackend
}

func (a *ctlAPI) EnsurePort(ctx context.Context, r controller.PortRequest) (controller.Port, bool, error) {
	type res struct {
		p  controller.Port
		ok bool
	}
	v, err := call(ctx, a.b, func(c controller.API) (res, error) {
		p, ok, err := c.EnsurePort(ctx, r)
		return res{p, ok}, err
	})
	return v.p, v.ok, err
}

func (a *ctlAPI) GetNetwork(ctx context.Context, ref string) (controller.Network, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Network, error) { return c.GetNetwork(ctx, ref) })
}

func (a *ctlAPI) GetPort(ctx context.Context, name string) (controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Port, error) { return c.GetPort(ctx, name) })
}

func (a *ctlAPI) ListPorts(ctx context.Context) ([]controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) ([]controller.Port, error) { return c.ListPorts(ctx) })
}

func (a *ctlAPI) BindPort(ctx context.Context, name, host string) (controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Port, error) { return c.BindPort(ctx, name, host) })
}

func (a *ctlAPI) DeletePort(ctx context.Context, name string) (controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Port, error) { return c.DeletePort(ctx, name) })
}

func (a *ctlAPI) SetUnderlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Port, error) { return c.SetUnderlayState(ctx, name, u) })
}

func (a *ctlAPI) SetOverlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	return call(ctx, a.b, func(c controller.API) (controller.Port, error) { return c.SetOverlayState(ctx, name, u) })
}

// newProcessCNC returns the CNC of a controller that runs as its own
// process: it stays in this process, beside the leaves it programs, and
// follows the controller through its API; the backend tells it of
// bindings (the service's hooks do in process).
func (b *FabricBackend) newProcessCNC() *cnc.CNC {
	return cnc.New(b.env.Topology, b.drv, b.cncAPI(), cnc.Options{AccessVLAN: b.drv.AccessVLAN})
}

// portBound tells a CNC that follows a controller process of a binding
// (in process, the service's hook does).
func (b *FabricBackend) portBound(ctx context.Context, in *instance, p controller.Port) {
	if b.ctl.bin != "" && b.cnc != nil {
		b.cnc.PortBound(ctx, p, in.bound)
	}
	in.bound = p.Host
}

// controllerFailed reports whether the controller has been killed in this
// run.
func (b *FabricBackend) controllerFailed() bool {
	b.ctl.mu.Lock()
	defer b.ctl.mu.Unlock()
	for _, f := range b.faults {
		if strings.HasPrefix(f.Target, "controller") && !f.Restore {
			return true
		}
	}
	return false
}

// awaitController returns once the controller answers, waiting while a
// restart is on its way (for clients that call it themselves: the CNI
// plugin).
func (b *FabricBackend) awaitController(ctx context.Context) error {
	_, err := call(ctx, b, func(c controller.API) (struct{}, error) {
		_, err := c.ListNetworks(ctx, "")
		return struct{}{}, err
	})
	return err
}
