// Package etcdlab runs a real etcd cluster of local processes (the Debian
// etcd-server binary) on loopback ports: for tests, and for scenario runs
// whose controller runs as replicas on etcd.
package etcdlab

import (
	"context"
	"crypto/tls"
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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// MaxTxnOps is the --max-txn-ops the cluster's members run with.
const MaxTxnOps = 1024

// ErrNoBinary is returned by Binary and Start when there is no etcd
// executable.
var ErrNoBinary = errors.New("the etcd server binary is not installed (apt-get install etcd-server)")

// Cluster is a running etcd cluster; Close stops its members.
type Cluster struct {
	Members []*Member
	tls     *tls.Config
}

// Member is one etcd process.
type Member struct {
	Name      string
	Dir       string
	ClientURL string // http://127.0.0.1:port
	args      []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
}

// Options are how Start runs the cluster.
type Options struct {
	// Members is the cluster's size (3 unless set).
	Members int
	// Dir holds the members' data directories (Dir/m0, Dir/m1…).
	Dir string
	// Names are the members' names (default m0, m1…).
	Names []string
	// ExtraArgs are appended to every member's command line (TLS flags).
	ExtraArgs []string
	// Scheme is the client URLs' scheme, http (default) or https.
	Scheme string
	// ClientTLS is what Start's health check speaks to an https cluster
	// with.
	ClientTLS *tls.Config
}

// Binary returns the etcd executable's path, or ErrNoBinary.
func Binary() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", ErrNoBinary
	}
	return p, nil
}

// freePorts returns n TCP ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start starts the cluster's members, each with its own data directory
// under o.Dir and its own ports, and waits (up to 20 s) until it serves.
// On an error nothing is left running.
func Start(o Options) (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	n := o.Members
	if n == 0 {
		n = 3
	}
	scheme := o.Scheme
	if scheme == "" {
		scheme = "http"
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	name := func(i int) string {
		if i < len(o.Names) {
			return o.Names[i]
		}
		return fmt.Sprintf("m%d", i)
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", name(i), ports[2*i+1]))
	}
	c := &Cluster{tls: o.ClientTLS}
	for i := range n {
		m := &Member{Name: name(i), Dir: filepath.Join(o.Dir, name(i)),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i])}
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		m.args = append([]string{bin,
			"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(o.Dir) + fmt.Sprint(ports[0]),
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--max-txn-ops", fmt.Sprint(MaxTxnOps),
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
		}, o.ExtraArgs...)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			c.Close()
			return nil, fmt.Errorf("start etcd %s: %w", m.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcd %s is running", m.Name)
	}
	m.log = &lockedBuffer{}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(cmd, m.exited)
	return nil
}

// PID is the member's process id, 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Endpoints returns the members' client addresses (host:port).
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		_, hp, _ := strings.Cut(m.ClientURL, "://")
		out = append(out, hp)
	}
	return out
}

// URL returns the cluster as a store address, etcd://h:p,h:p,….
func (c *Cluster) URL() string { return "etcd://" + strings.Join(c.Endpoints(), ",") }

// Kill sends member i SIGKILL and waits for it to exit; a member not
// running is left alone.
func (c *Cluster) Kill(i int) {
	m := c.Members[i]
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts a killed member again on its data directory, where it
// finds the cluster it belongs to.
func (c *Cluster) Restart(i int) error {
	if err := c.Members[i].start(); err != nil {
		return fmt.Errorf("restart etcd %s: %w", c.Members[i].Name, err)
	}
	return nil
}

// WaitHealthy waits until the cluster answers a linearizable read, or ctx
// ends (the error then holds the members' last log lines).
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.tls, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster not healthy: %w\n%s", err, c.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Logs returns the members' last log lines.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, m := range c.Members {
		m.mu.Lock()
		l := m.log
		m.mu.Unlock()
		if l != nil {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", m.Name, lastLines(l.String(), 20))
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// Close kills every member and removes their data directories.
func (c *Cluster) Close() error {
	var errs []error
	for i, m := range c.Members {
		c.Kill(i)
		errs = append(errs, os.RemoveAll(m.Dir))
	}
	return errors.Join(errs...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
