package api

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/pki"
	"github.com/netbed/netbed/controller/store"
)

// tlsFixture serves a service over HTTPS with a lab's certificates:
// client certificates of the lab's CA verified when given (or required),
// and the test tokens.
type tlsFixture struct {
	*fixture
	lab pki.Lab
	url string
}

func newTLSFixture(t *testing.T, requireCert bool) *tlsFixture {
	t.Helper()
	lab, err := pki.WriteLab(pki.Options{Dir: t.TempDir(), Nodes: []string{"host-a", "host-b"}})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := ServerTLS(lab.Server, lab.ServerKey, lab.CA, requireCert)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "api.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	srv := NewServer(svc)
	srv.SetLogger(discardLogger())
	auth := &Auth{ClientCerts: true}
	if !requireCert {
		if auth.Tokens, err = ParseTokens("test", []byte(testTokens)); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetAuth(auth)
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = conf
	hs.Config.ErrorLog = nil
	hs.StartTLS()
	t.Cleanup(func() { hs.Close(); svc.Close(); st.Close() })
	f := &tlsFixture{lab: lab, url: hs.URL}
	f.fixture = &fixture{st: st, svc: svc, srv: hs, c: f.client(t, lab.CA, lab.Clients["admin"]).WithToken(tokAdmin)}
	return f
}

// client is a client of f trusting ca, presenting kp when it is set.
func (f *tlsFixture) client(t *testing.T, ca string, kp pki.KeyPair) *Client {
	t.Helper()
	conf, err := ClientTLS(ca, kp.Cert, kp.Key, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(f.url, &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second})
}

// TestTLS: HTTPS with TLS 1.3 preferred and 1.2 the least; a client
// certificate names a node, which may act only for its host; certificates
// from another CA are refused either way round, and nothing changes.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	f := newTLSFixture(t, false)
	f.network(t, "n1", 100, []string{"prod-env"}, "10.0.0.0/24")
	if _, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "pb", Network: "n1", Host: "host-b"}); err != nil {
		t.Fatal(err)
	}

	// The versions: 1.3 negotiated, 1.2 accepted, 1.1 refused.
	for _, c := range []struct {
		max  uint16
		want uint16
	}{{0, tls.VersionTLS13}, {tls.VersionTLS12, tls.VersionTLS12}, {tls.VersionTLS11, 0}} {
		conf, _ := ClientTLS(f.lab.CA, "", "", "localhost")
		conf.MinVersion, conf.MaxVersion = tls.VersionTLS10, c.max
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: conf}}).Get(f.url + "/healthz")
		if c.want == 0 {
			if err == nil {
				resp.Body.Close()
				t.Errorf("a client of at most TLS %x was served", c.max)
			}
			continue
		}
		if err != nil {
			t.Fatalf("TLS up to %x: %v", c.max, err)
		}
		resp.Body.Close()
		if resp.TLS.Version != c.want {
			t.Errorf("negotiated TLS %x, want %x", resp.TLS.Version, c.want)
		}
	}

	// Mutual TLS: node host-a's certificate is the node role for host-a.
	a := f.client(t, f.lab.CA, f.lab.Clients["host-a"])
	if p, _, err := a.EnsurePort(ctx, controller.PortRequest{Name: "pa", Label: "prod-env"}); err != nil || p.Host != "host-a" {
		t.Fatalf("host-a's certificate creates its port: %+v %v", p, err)
	}
	before := f.dump(t)
	_, err := a.BindPort(ctx, "pb", "host-a")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Rule != RuleNodeOwnPort {
		t.Errorf("host-a's certificate binding host-b's port: %v, want 403 %s", err, RuleNodeOwnPort)
	}
	if _, err := a.CreateNetwork(ctx, controller.NetworkRequest{Name: "x", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 3}}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a node's certificate creating a network: %v, want 403", err)
	}
	if _, err := f.client(t, f.lab.CA, f.lab.Clients["read"]).ListPorts(ctx); err != nil {
		t.Errorf("the read certificate lists ports: %v", err)
	}

	// Another CA's certificates.
	other, err := pki.WriteLab(pki.Options{Dir: t.TempDir(), Nodes: []string{"host-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(t, f.lab.CA, other.Clients["admin"]).ListPorts(ctx); err == nil || errors.As(err, &ae) {
		t.Errorf("a client certificate of another CA was not refused in the handshake: %v", err)
	}
	if _, err := f.client(t, f.lab.CA, other.Clients["host-a"]).BindPort(ctx, "pb", "host-a"); err == nil || errors.As(err, &ae) {
		t.Errorf("another CA's host-a binding a port: %v, want a handshake failure", err)
	}
	if _, err := f.client(t, other.CA, pki.KeyPair{}).WithToken(tokAdmin).ListPorts(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA reached the server: %v", err)
	}
	if after := f.dump(t); !reflect.DeepEqual(before, after) {
		t.Error("the store changed on refused requests")
	}
	f.mustCheck(t)
}

// TestTLSRequireCert: with client certificates and no tokens, a client
// without a certificate does not get past the handshake.
func TestTLSRequireCert(t *testing.T) {
	ctx := context.Background()
	f := newTLSFixture(t, true)
	f.c = f.client(t, f.lab.CA, f.lab.Clients["admin"])
	f.network(t, "n1", 100, nil, "10.0.0.0/24")
	if _, err := f.client(t, f.lab.CA, pki.KeyPair{}).WithToken(tokAdmin).ListNetworks(ctx, ""); err == nil {
		t.Error("a client without a certificate was served")
	}
	if ns, err := f.client(t, f.lab.CA, f.lab.Clients["cnc"]).ListNetworks(ctx, ""); err != nil || len(ns) != 1 {
		t.Errorf("the cnc certificate lists networks: %v %v", ns, err)
	}
}

// TestClientTLSErrors: each bad client setting is an error naming it.
func TestClientTLSErrors(t *testing.T) {
	dir := t.TempDir()
	lab, err := pki.WriteLab(pki.Options{Dir: dir, Nodes: []string{"n1"}})
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "junk")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o644)
	openKey := filepath.Join(dir, "open.key")
	data, _ := os.ReadFile(lab.Clients["n1"].Key)
	_ = os.WriteFile(openKey, data, 0o644)
	cases := []struct {
		name                string
		ca, cert, key, want string
	}{
		{"CA missing", filepath.Join(dir, "nope.crt"), "", "", "controller CA: open " + dir + "/nope.crt"},
		{"CA not PEM", notPEM, "", "", "controller CA: " + notPEM + " holds no PEM certificate"},
		{"cert without key", lab.CA, lab.Clients["n1"].Cert, "", "give both the certificate and its key"},
		{"key readable by others", lab.CA, lab.Clients["n1"].Cert, openKey, openKey + " has mode 0644"},
		{"key of another cert", lab.CA, lab.Clients["n1"].Cert, lab.Clients["admin"].Key, "private key does not match public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ClientTLS(c.ca, c.cert, c.key, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	if _, err := ServerTLS(lab.Server, openKey, "", false); err == nil || !errors.Is(err, ErrInsecureFile) {
		t.Errorf("server key readable by others: %v", err)
	}
}
