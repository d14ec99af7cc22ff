package etcdstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/pki"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/internal/etcdlab"
	"github.com/netbed/netbed/internal/etcdtest"
)

// TestEtcdClientTLS: against an etcd member that serves TLS and asks for
// client certificates (--client-cert-auth), the store with the lab's CA
// and a client certificate writes and reads; without TLS, without a
// client certificate, or with a certificate of another CA it cannot open.
func TestEtcdClientTLS(t *testing.T) {
	etcdtest.Binary(t)
	dir := t.TempDir()
	lab, err := pki.WriteLab(pki.Options{Dir: filepath.Join(dir, "pki")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.WriteLab(pki.Options{Dir: filepath.Join(dir, "other")})
	if err != nil {
		t.Fatal(err)
	}
	admin := lab.Clients["admin"]
	good, err := TLS(lab.CA, admin.Cert, admin.Key)
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.StartWith(t, etcdlab.Options{Members: 1, Scheme: "https", ClientTLS: good, ExtraArgs: []string{
		"--client-cert-auth", "--trusted-ca-file", lab.CA, "--cert-file", lab.Server, "--key-file", lab.ServerKey}})

	st, err := Open(Options{Endpoints: c.Endpoints(), Prefix: "/tls/", TLS: good, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("open with the lab's CA and client certificate: %v", err)
	}
	ctx := context.Background()
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put("kv", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := st.View(ctx, func(tx store.Tx) error { got = string(tx.Get("kv", []byte("k"))); return nil }); err != nil || got != "v" {
		t.Errorf("read back %q, %v; want v", got, err)
	}
	st.Close()

	noCert, err := TLS(lab.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	stranger := other.Clients["admin"]
	wrongCA, err := TLS(lab.CA, stranger.Cert, stranger.Key)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := TLS(other.CA, admin.Cert, admin.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"plain", Options{}},
		{"no client certificate", Options{TLS: noCert}},
		{"client certificate of another CA", Options{TLS: wrongCA}},
		{"server not signed by the CA", Options{TLS: untrusted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Endpoints, o.Prefix, o.DialTimeout, o.CommitTimeout = c.Endpoints(), "/tls/", time.Second, time.Second
			st, err := Open(o)
			if err == nil {
				st.Close()
				t.Fatal("opened; want refused")
			}
			if !strings.Contains(err.Error(), c.Endpoints()[0]) {
				t.Errorf("error %v does not name the endpoint", err)
			}
		})
	}
}

// TestEtcdTLSFiles: each missing or wrong file is named.
func TestEtcdTLSFiles(t *testing.T) {
	lab, err := pki.WriteLab(pki.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := lab.Clients["admin"]
	for _, tc := range []struct{ name, ca, cert, key, want string }{
		{"no CA", "", a.Cert, a.Key, "the CA file (--etcd-ca) is required"},
		{"cert without key", lab.CA, a.Cert, "", "together"},
		{"missing CA", "/nonexistent/ca.crt", "", "", "/nonexistent/ca.crt"},
		{"CA not PEM", a.Key, "", "", "holds no PEM certificate"},
		{"key of another cert", lab.CA, a.Cert, lab.ServerKey, "client certificate " + a.Cert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TLS(tc.ca, tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want %q", err, tc.want)
			}
		})
	}
	if _, err := TLS(lab.CA, a.Cert, a.Key); err != nil {
		t.Error(err)
	}
}
