package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWriteLab: the server and every client certificate verify against
// the lab's CA for their use, with ECDSA P-256 keys, the names and roles
// the controller reads; keys are 0600 and certificates 0644.
func TestWriteLab(t *testing.T) {
	lab, err := WriteLab(Options{Dir: t.TempDir(), Nodes: []string{"host1", "host2"}, ServerNames: []string{"ctl.lab", "10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, lab.CA)
	if !ca.IsCA {
		t.Error("the CA certificate is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	srv := readCert(t, lab.Server)
	for _, name := range []string{"localhost", "ctl.lab", "10.0.0.1", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if k, ok := srv.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("server key %T, want ECDSA P-256", srv.PublicKey)
	}
	want := map[string][2]string{"admin": {"admin", "admin"}, "cnc": {"cnc", "cnc"}, "read": {"read", "read"}, "host1": {"host1", "node"}, "host2": {"host2", "node"}}
	if len(lab.Clients) != len(want) {
		t.Errorf("clients %v", lab.Clients)
	}
	for name, w := range want {
		c := readCert(t, lab.Clients[name].Cert)
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.Subject.CommonName != w[0] || !slices.Equal(c.Subject.Organization, []string{w[1]}) {
			t.Errorf("%s: CN %q O %v, want %q %q", name, c.Subject.CommonName, c.Subject.Organization, w[0], w[1])
		}
		for path, mode := range map[string]os.FileMode{lab.Clients[name].Key: 0o600, lab.Clients[name].Cert: 0o644} {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
				t.Errorf("%s: %v %v, want mode %04o", path, fi.Mode(), err, mode)
			}
		}
	}
	if _, err := WriteLab(Options{Dir: t.TempDir(), Nodes: []string{"admin"}}); err == nil {
		t.Error("a node named admin was accepted")
	}
}
