package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netbed/netbed/controller/pki"
	"github.com/netbed/netbed/internal/etcdlab"
	"github.com/netbed/netbed/reports"
	"github.com/netbed/netbed/scenarios/spec"
)

// replicaSet is a run's controller as replicas on etcd, on a runtime where
// the controller is its own process: a 3-member etcd, the replica
// processes, and the run's controller socket, which hands each connection
// to the first live replica (as a load balancer in front of replicas
// does), so that the backend, the CNC and the CNI plugin reach any live
// replica at one address.
type replicaSet struct {
	dir   string
	etcd  *etcdlab.Cluster
	front net.Listener
	args  []string // every replica's flags for etcd's TLS, in a secure run
	lead  *cncFollower

	mu    sync.Mutex
	procs []*replicaProc
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type replicaProc struct {
	name, sock, log string
	cmd             *exec.Cmd // nil while down
	exited          chan struct{}
}

// replicated reports whether the run's controller runs as replicas on
// etcd.
func (b *FabricBackend) replicated() bool {
	return b.env.Controller.Replicas > 1 || b.env.Controller.Store == StoreEtcd
}

// startReplicas starts the etcd, every replica and the front socket, and
// waits until the controller answers there.
func (b *FabricBackend) startReplicas() error {
	dir, err := os.MkdirTemp("", "netbed-etcd-")
	if err != nil {
		return fmt.Errorf("controller replicas: %w", err)
	}
	rs := &replicaSet{dir: dir, conns: map[net.Conn]struct{}{}}
	b.ctl.rs = rs
	if err := b.recordTempDir(dir); err != nil {
		return fmt.Errorf("controller replicas: %w", err)
	}
	var names []string
	for i := range EtcdMembers {
		names = append(names, fmt.Sprintf("member-%d", i+1))
	}
	memberTLS, clientTLS, replicaTLS, err := b.etcdSecurity()
	if err != nil {
		return fmt.Errorf("controller replicas: %w", err)
	}
	o := etcdlab.Options{Members: EtcdMembers, Dir: filepath.Join(dir, "etcd"), Names: names}
	if memberTLS != nil {
		o.Scheme, o.ClientTLS, o.ExtraArgs = "https", clientTLS, memberTLS
	}
	if rs.etcd, err = etcdlab.Start(o); err != nil {
		return fmt.Errorf("controller replicas: start etcd: %w", err)
	}
	if err := b.checkEtcdSecure(rs.etcd.Endpoints()); err != nil {
		return fmt.Errorf("controller replicas: %w", err)
	}
	rs.args = replicaTLS
	n := max(b.env.Controller.Replicas, 1)
	for i := range n {
		name := fmt.Sprintf("replica-%d", i+1)
		rs.procs = append(rs.procs, &replicaProc{name: name,
			sock: filepath.Join(dir, name+".sock"), log: filepath.Join(dir, name+".log")})
	}
	for _, p := range rs.procs {
		if err := b.startReplica(p); err != nil {
			return err
		}
	}
	sock := b.controllerSocket()
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("controller socket: %w", err)
	}
	if rs.front, err = net.Listen("unix", sock); err != nil {
		return fmt.Errorf("controller socket: %w", err)
	}
	rs.wg.Add(1)
	go rs.serve()
	b.ctl.mu.Lock()
	b.ctl.down = false
	b.ctl.mu.Unlock()
	if err := b.checkSecure(context.Background()); err != nil {
		return err
	}
	if b.cnc != nil {
		return b.followLeader()
	}
	return nil
}

// startReplica starts one replica process and waits until it answers on
// its own socket.
func (b *FabricBackend) startReplica(p *replicaProc) error {
	rs := b.ctl.rs
	if err := os.Remove(p.sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s socket: %w", p.name, err)
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.name, err)
	}
	args := []string{"controller", "serve", "--store", rs.etcd.URL(), "--etcd-prefix", "/netbed/",
		"--replica", p.name, "--etcd-max-txn-ops", strconv.Itoa(etcdlab.MaxTxnOps),
		"--listen", "unix:" + p.sock, "--parent", strconv.Itoa(os.Getpid())}
	args = append(append(args, rs.args...), b.secureArgs()...)
	if b.cnc != nil {
		args = append(args, "--cnc-election", "--leader-ttl", cncLeaderTTL.String())
	}
	cmd := exec.Command(b.ctl.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s (%s controller serve): %w", p.name, b.ctl.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	cl := unixClient(p.sock)
	if s := b.ctl.sec; s != nil {
		if cl, err = b.secureClientOn(p.sock, pki.KeyPair{}, s.toks.Clients["admin"]); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			return err
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cl.ListNetworks(ctx, "")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("%s (%s controller serve --store %s) exited: %s", p.name, b.ctl.bin, rs.etcd.URL(), tail(p.log))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not answer on %s within 15s: %v; log: %s", p.name, p.sock, err, tail(p.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs.mu.Lock()
	p.cmd, p.exited = cmd, exited
	rs.mu.Unlock()
	return nil
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// serve hands each connection on the front socket to the first live
// replica that accepts it.
func (rs *replicaSet) serve() {
	defer rs.wg.Done()
	for {
		c, err := rs.front.Accept()
		if err != nil {
			return
		}
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			rs.proxy(c)
		}()
	}
}

func (rs *replicaSet) proxy(c net.Conn) {
	defer c.Close()
	var up net.Conn
	rs.mu.Lock()
	procs := append([]*replicaProc(nil), rs.procs...)
	rs.mu.Unlock()
	for _, p := range procs {
		rs.mu.Lock()
		live := p.cmd != nil
		rs.mu.Unlock()
		if !live {
			continue
		}
		if u, err := net.DialTimeout("unix", p.sock, time.Second); err == nil {
			up = u
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	rs.mu.Lock()
	rs.conns[c], rs.conns[up] = struct{}{}, struct{}{}
	rs.mu.Unlock()
	defer func() {
		rs.mu.Lock()
		delete(rs.conns, c)
		delete(rs.conns, up)
		rs.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// live is how many replicas run.
func (rs *replicaSet) live() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, p := range rs.procs {
		if p.cmd != nil {
			n++
		}
	}
	return n
}

// replicaNow kills (SIGKILL) or restarts a replica or an etcd member. In
// process (sim) the controller stands for its replicas and its etcd: the
// fault is recorded and its clients, as on netns, do not see it.
func (b *FabricBackend) replicaNow(t Target, up bool) error {
	f := reports.Fault{At: b.rt.Now(), Target: "controller/" + t.Replica, Restore: up}
	if t.Etcd != "" {
		f.Target = "etcd/" + t.Etcd
	}
	rs := b.ctl.rs
	if rs == nil {
		f.Detail = "in process: one controller stands for the replicas and their etcd"
		b.addFault(f, up)
		return nil
	}
	if t.Etcd != "" {
		i, _ := spec.Ordinal(t.Etcd, "member-")
		if up {
			if err := rs.etcd.Restart(i - 1); err != nil {
				return err
			}
			f.Detail = fmt.Sprintf("etcd %s, pid %d", t.Etcd, rs.etcd.Members[i-1].PID())
		} else {
			b.progress("etcd %s killed", t.Etcd)
			f.Detail = fmt.Sprintf("SIGKILL to pid %d", rs.etcd.Members[i-1].PID())
			rs.etcd.Kill(i - 1)
		}
		b.addFault(f, up)
		return nil
	}
	name := t.Replica
	if name == CNCLeader {
		if rs.lead == nil {
			return fmt.Errorf("%s %s: the run has no CNC (gen 2 runs one)", map[bool]string{false: "fail", true: "restore"}[up], CNCLeader)
		}
		if name = rs.lead.current(); up {
			rs.lead.mu.Lock()
			name = rs.lead.lastKilled
			rs.lead.mu.Unlock()
			if name == "" {
				return fmt.Errorf("restore %s: no replica was killed as the CNC's leader", CNCLeader)
			}
		}
		f.Target = "controller/" + name
	}
	i, _ := spec.Ordinal(name, "replica-")
	p := rs.procs[i-1]
	if up {
		rs.mu.Lock()
		running := p.cmd != nil
		rs.mu.Unlock()
		if running {
			return fmt.Errorf("restore %s: it is running", name)
		}
		if err := b.startReplica(p); err != nil {
			return err
		}
		f.Detail = fmt.Sprintf("%s controller serve --replica %s, pid %d", b.ctl.bin, p.name, p.cmd.Process.Pid)
		b.addFault(f, true)
		return nil
	}
	b.progress("%s killed", name)
	recordLead := func(int) {}
	if rs.lead != nil {
		var led bool
		if led, recordLead = rs.lead.killing(p.name); led {
			b.progress("%s led the CNC's election", name)
		}
	}
	rs.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	rs.mu.Unlock()
	if cmd == nil {
		f.Detail = "already down"
		b.addFault(f, false)
		return nil
	}
	f.Detail = fmt.Sprintf("SIGKILL to pid %d", cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	<-exited
	b.addFault(f, false)
	b.ctl.mu.Lock()
	idx := len(b.faults) - 1
	b.ctl.mu.Unlock()
	recordLead(idx)
	return nil
}

// close stops the replicas (SIGTERM, then SIGKILL), the front socket and
// the etcd, and removes their directory.
func (rs *replicaSet) close() error {
	var errs []error
	if rs.lead != nil {
		errs = append(errs, rs.lead.close())
	}
	if rs.front != nil {
		rs.front.Close()
	}
	rs.mu.Lock()
	procs := append([]*replicaProc(nil), rs.procs...)
	rs.mu.Unlock()
	for _, p := range procs {
		rs.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.cmd = nil
		rs.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			errs = append(errs, fmt.Errorf("%s (pid %d) ignored SIGTERM for 10s; killed", p.name, cmd.Process.Pid))
		}
	}
	rs.mu.Lock()
	for c := range rs.conns {
		c.Close()
	}
	rs.mu.Unlock()
	rs.wg.Wait()
	if rs.etcd != nil {
		errs = append(errs, rs.etcd.Close())
	}
	errs = append(errs, os.RemoveAll(rs.dir))
	return errors.Join(errs...)
}
