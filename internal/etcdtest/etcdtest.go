// Package etcdtest starts a real etcd cluster of local processes (the
// Debian etcd-server binary) on loopback ports, for tests.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/netbed/netbed/internal/testutil"
)

// MaxTxnOps is the --max-txn-ops the cluster's members run with.
const MaxTxnOps = 1024

// Cluster is a running etcd cluster; its members stop when the test ends.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// Member is one etcd process.
type Member struct {
	Name      string
	Dir       string
	ClientURL string // http://127.0.0.1:port
	args      []string
	cmd       *exec.Cmd
	log       *bytes.Buffer
	exited    chan struct{}
}

// Binary returns the etcd executable's path, skipping t (failing it under
// NETBED_REQUIRE_PRIVILEGED=1) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		testutil.Unavailable(t, "needs the etcd server binary (apt-get install etcd-server)")
	}
	return p
}

// freePorts returns n TCP ports free on 127.0.0.1 now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// Start starts an n-member cluster, each member with its own data
// directory and ports, and waits until it serves. It stops the members in
// t.Cleanup, also when the test fails.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	ports := freePorts(t, 2*n)
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	tok := filepath.Base(t.TempDir())
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), Dir: filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i)),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])}
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		m.args = []string{bin,
			"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", tok,
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--max-txn-ops", fmt.Sprint(MaxTxnOps),
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
		}
		c.Members = append(c.Members, m)
	}
	t.Cleanup(c.stop)
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			t.Fatalf("start etcd %s: %v", m.Name, err)
		}
	}
	c.WaitHealthy(t, 20*time.Second)
	return c
}

func (m *Member) start() error {
	m.log = &bytes.Buffer{}
	m.cmd = exec.Command(m.args[0], m.args[1:]...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.SysProcAttr = sysProcAttr()
	if err := m.cmd.Start(); err != nil {
		return err
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(m.cmd, m.exited)
	return nil
}

// Endpoints returns the members' client addresses (host:port).
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, strings.TrimPrefix(m.ClientURL, "http://"))
	}
	return out
}

// URL returns the cluster as a store address, etcd://h:p,h:p,….
func (c *Cluster) URL() string { return "etcd://" + strings.Join(c.Endpoints(), ",") }

// Kill sends member i SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) {
	m := c.Members[i]
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// KillAll kills every member.
func (c *Cluster) KillAll() {
	for i := range c.Members {
		c.Kill(i)
	}
}

// Restart starts a killed member again on its data directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.cmd != nil {
		c.t.Fatalf("restart %s: still running", m.Name)
	}
	// Later starts join the existing cluster from the data directory.
	if err := m.start(); err != nil {
		c.t.Fatalf("restart etcd %s: %v", m.Name, err)
	}
}

// WaitHealthy waits until the cluster answers a linearizable read.
func (c *Cluster) WaitHealthy(t testing.TB, d time.Duration) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: d, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd cluster not healthy after %v: %v\n%s", d, err, c.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) logs() string {
	var b strings.Builder
	for _, m := range c.Members {
		if m.log != nil {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", m.Name, lastLines(m.log.String(), 20))
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

func (c *Cluster) stop() {
	for i := range c.Members {
		c.Kill(i)
	}
	if c.t.Failed() {
		c.t.Logf("etcd logs:\n%s", c.logs())
	}
	for _, m := range c.Members {
		_ = os.RemoveAll(m.Dir)
	}
}

// Leader returns the index of the member that is raft leader.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, ep := range c.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no etcd member says it is the leader")
	return -1
}
