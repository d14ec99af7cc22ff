package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/store/etcdstore"
	"github.com/netbed/netbed/internal/etcdlab"
	"github.com/netbed/netbed/internal/etcdtest"
)

// TestReplicaOverEtcdTLS: `netbed controller certs` writes a lab; an etcd
// member serves its server certificate and asks for client certificates;
// a replica with --etcd-ca, --etcd-cert and --etcd-key serves and answers,
// and one without its client certificate exits saying it cannot reach
// etcd.
func TestReplicaOverEtcdTLS(t *testing.T) {
	etcdtest.Binary(t)
	dir := filepath.Join(t.TempDir(), "pki")
	var out, errb strings.Builder
	if code := run([]string{"controller", "certs", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("controller certs: exit %d: %s", code, errb.String())
	}
	ca, srv, srvKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cert, key := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	tlsc, err := etcdstore.TLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.StartWith(t, etcdlab.Options{Members: 1, Scheme: "https", ClientTLS: tlsc, ExtraArgs: []string{
		"--client-cert-auth", "--trusted-ca-file", ca, "--cert-file", srv, "--key-file", srvKey}})

	var mu sync.Mutex
	cmd, u, log := spawnController(t, &mu, "replica-tls", []string{"controller", "serve", "--store", c.URL(),
		"--replica", "replica-tls", "--listen", "127.0.0.1:0", "--etcd-ca", ca, "--etcd-cert", cert, "--etcd-key", key})
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := api.NewClient(u, nil).ListNetworks(ctx, ""); err != nil {
		mu.Lock()
		t.Errorf("list networks through the replica on TLS etcd: %v\n%s", err, log)
		mu.Unlock()
	}

	bad := exec.Command(cmd.Path, "controller", "serve", "--store", c.URL(), "--listen", "127.0.0.1:0", "--etcd-ca", ca)
	bad.Env = cmd.Env
	outb, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "etcd unreachable at "+c.Endpoints()[0]) {
		t.Errorf("replica without a client certificate: %v, %s; want it to exit naming the unreachable etcd", err, outb)
	}
}
