package main

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/pki"
)

// TestSecureController: the plugin reaches a controller that serves TLS
// and authenticates, with its CA and this node's token or client
// certificate; each unusable file is a configuration error naming its
// field, and the wrong CA or no credentials fail the call.
func TestSecureController(t *testing.T) {
	rc := startController(t, "10.30.0.0/24")
	dir := t.TempDir()
	lab, err := pki.WriteLab(pki.Options{Dir: dir, Nodes: []string{"host-a", "host-b"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := api.WriteLabTokens(dir, []string{"host-a", "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := api.LoadTokens(toks.Server)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(rc.svc)
	srv.SetAuth(&api.Auth{Tokens: tokens, ClientCerts: true})
	tlsConf, err := api.ServerTLS(lab.Server, lab.ServerKey, lab.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = tlsConf
	hs.StartTLS()
	defer hs.Close()
	other, err := pki.WriteLab(pki.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open-token")
	if err := os.WriteFile(open, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln := newFakeLinker()
	a := realPlugin("host-a", ln)
	base := map[string]any{"controllerURL": hs.URL, "caFile": lab.CA}
	conf := func(extra map[string]any) []byte {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return confJSON(t, "1.1.0", m)
	}

	// Token, then client certificate: ADD works as host-a.
	if _, _, err := a.add(args(conf(map[string]any{"tokenFile": toks.Clients["host-a"]}), "c1", "NETBED_IDENTITY=db-1")); err != nil {
		t.Fatalf("ADD with host-a's token: %v", err)
	}
	if _, _, err := a.add(args(conf(map[string]any{"certFile": lab.Clients["host-a"].Cert, "keyFile": lab.Clients["host-a"].Key}), "c2", "NETBED_IDENTITY=db-2")); err != nil {
		t.Fatalf("ADD with host-a's certificate: %v", err)
	}
	if p := rc.settled(t, "id:db-2"); p.Host != "host-a" {
		t.Errorf("db-2 on %q", p.Host)
	}

	cases := []struct {
		name  string
		extra map[string]any
		code  uint
		want  string
	}{
		{"token file missing", map[string]any{"tokenFile": filepath.Join(dir, "nope")}, types.ErrInvalidNetworkConfig, `field "tokenFile": token file: open ` + dir + "/nope"},
		{"token file readable by others", map[string]any{"tokenFile": open}, types.ErrInvalidNetworkConfig, open + " has mode 0644"},
		{"CA missing", map[string]any{"caFile": filepath.Join(dir, "nope.crt"), "tokenFile": toks.Clients["host-a"]}, types.ErrInvalidNetworkConfig, "fields caFile, certFile, keyFile: controller CA: open"},
		{"another CA", map[string]any{"caFile": other.CA, "tokenFile": toks.Clients["host-a"]}, types.ErrTryAgainLater, "certificate signed by unknown authority"},
		{"no credentials", nil, types.ErrInternal, "no credentials"},
		{"another host's token", map[string]any{"tokenFile": toks.Clients["host-b"]}, types.ErrInternal, `may not name host "host-a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := a.add(args(conf(c.extra), "c9", "NETBED_IDENTITY=db-9"))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != c.code || !strings.Contains(te.Msg, c.want) {
				t.Errorf("got %v, want CNI error %d with %q", err, c.code, c.want)
			}
		})
	}
}
