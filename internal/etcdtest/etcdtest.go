// Package etcdtest starts a real etcd cluster of local processes (the
// Debian etcd-server binary, run by internal/etcdlab) on loopback ports,
// for tests.
package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/netbed/netbed/internal/etcdlab"
	"github.com/netbed/netbed/internal/testutil"
)

// MaxTxnOps is the --max-txn-ops the cluster's members run with.
const MaxTxnOps = etcdlab.MaxTxnOps

// Cluster is a running etcd cluster; its members stop when the test ends.
type Cluster struct {
	*etcdlab.Cluster
	t testing.TB
}

// Binary returns the etcd executable's path, skipping t (failing it under
// NETBED_REQUIRE_PRIVILEGED=1) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := etcdlab.Binary()
	if err != nil {
		testutil.Unavailable(t, "needs the etcd server binary (apt-get install etcd-server)")
	}
	return p
}

// Start starts an n-member cluster, each member with its own data
// directory and ports, and waits until it serves. It stops the members in
// t.Cleanup, also when the test fails.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, etcdlab.Options{Members: n})
}

// StartWith starts a cluster as o says (o.Dir defaults to a test
// directory).
func StartWith(t testing.TB, o etcdlab.Options) *Cluster {
	t.Helper()
	Binary(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	lab, err := etcdlab.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Cluster: lab, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("etcd logs:\n%s", lab.Logs())
		}
		lab.Close()
	})
	return c
}

// Restart starts a killed member again on its data directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.Cluster.Restart(i); err != nil {
		c.t.Fatal(err)
	}
}

// KillAll kills every member.
func (c *Cluster) KillAll() {
	for i := range c.Members {
		c.Kill(i)
	}
}

// WaitHealthy waits until the cluster answers a linearizable read.
func (c *Cluster) WaitHealthy(t testing.TB, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.Cluster.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
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
