package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

// TestControllerRefusesOpen: a non-loopback address without TLS and
// authentication is refused at start with the flags to add; --insecure
// serves it with a loud warning; loopback and unix sockets need neither.
func TestControllerRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	if err := writeControllerCerts(dir, []string{"host1"}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	tlsOn := securityFlags{tlsCert: dir + "/server.crt", tlsKey: dir + "/server.key"}
	withTokens := tlsOn
	withTokens.tokens = dir + "/tokens"
	insecure := securityFlags{insecure: true}
	cases := []struct {
		name, listen string
		flags        securityFlags
		err, warning string
	}{
		{"all interfaces, nothing", "0.0.0.0:7480", securityFlags{}, "--listen 0.0.0.0:7480 is not a loopback address: serving it without TLS and authentication would let anyone who reaches it create networks, take addresses and bind ports. Add --tls-cert FILE --tls-key FILE and --tokens FILE (or --client-ca FILE)", ""},
		{"a host name, nothing", "ctl.example.net:7480", securityFlags{}, "Add --tls-cert FILE --tls-key FILE and --tokens FILE", ""},
		{"empty host, TLS only", ":7480", tlsOn, "Add --tokens FILE (or --client-ca FILE) (", ""},
		{"tokens without TLS", "10.0.0.1:7480", securityFlags{tokens: dir + "/tokens"}, "Add --tls-cert FILE --tls-key FILE (", ""},
		{"TLS and tokens", "0.0.0.0:7480", withTokens, "", ""},
		{"TLS and client CA", "[::]:7480", securityFlags{tlsCert: tlsOn.tlsCert, tlsKey: tlsOn.tlsKey, clientCA: dir + "/ca.crt"}, "", ""},
		{"insecure", "0.0.0.0:7480", insecure, "", "WARNING: --insecure: serving 0.0.0.0:7480 without TLS or authentication"},
		{"loopback", "127.0.0.1:7480", securityFlags{}, "", ""},
		{"localhost", "localhost:7480", securityFlags{}, "", ""},
		{"IPv6 loopback", "[::1]:7480", securityFlags{}, "", ""},
		{"unix socket", "unix:/run/x.sock", securityFlags{}, "", ""},
		{"key without cert", "127.0.0.1:7480", securityFlags{tlsKey: "k"}, "--tls-cert and --tls-key go together", ""},
		{"client CA without TLS", "127.0.0.1:7480", securityFlags{clientCA: "ca"}, "--client-ca needs TLS", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sec, err := c.flags.prepare(c.listen)
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errUsage) {
					t.Errorf("got %v, want a usage error with %q", err, c.err)
				}
			case err != nil:
				t.Errorf("refused: %v", err)
			case !strings.Contains(sec.warning, c.warning) || (c.warning == "") != (sec.warning == ""):
				t.Errorf("warning %q, want %q", sec.warning, c.warning)
			}
		})
	}
}

// TestControllerTokenFileMode: `netbed controller serve --tokens` with a
// file group or others may read does not start, and says which file and
// mode.
func TestControllerTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("0123456789abcdef0123 admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := run([]string{"controller", "serve", "--store", dir + "/c.db", "--listen", "127.0.0.1:0", "--tokens", tokens}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), tokens+" has mode 0644") || !strings.Contains(errb.String(), "chmod 600") {
		t.Errorf("exit %d, stderr %q; want a refusal naming %s and mode 0644", code, errb.String(), tokens)
	}
	if _, err := os.Stat(dir + "/c.db"); err == nil {
		t.Error("the store was created before the tokens were checked")
	}
}

// TestControllerServeSecure serves on a unix socket with TLS and tokens,
// as a netns run does: the socket admits only its owner (0600), a
// client needs the CA and a token, and a node's token binds only its own
// host's ports.
func TestControllerServeSecure(t *testing.T) {
	dir := t.TempDir()
	if err := writeControllerCerts(dir, []string{"host1", "host2"}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	sec, err := securityFlags{tlsCert: dir + "/server.crt", tlsKey: dir + "/server.key", tokens: dir + "/tokens"}.prepare("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- serveController(ctx, filepath.Join(dir, "c.db"), "unix:"+sock, time.Second, nil, nil, sec, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output; serve returned %v", <-errc)
	}
	if !strings.Contains(lines.Text(), "serving https://") {
		t.Errorf("first line %q does not say https", lines.Text())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("socket mode %04o, want 0600 (its owner, root, alone)", m)
	}
	client := func(tokenFile string) *api.Client {
		conf, err := api.ClientTLS(dir+"/ca.crt", "", "", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		c := api.NewClient("https://localhost", &http.Client{Transport: &http.Transport{TLSClientConfig: conf,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}})
		if tokenFile == "" {
			return c
		}
		tok, err := api.ReadTokenFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		return c.WithToken(tok)
	}
	admin, host1 := client(dir+"/token-admin"), client(dir+"/token-node-host1")
	if _, err := client("").ListNetworks(ctx, ""); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("no token: %v, want 401", err)
	}
	if _, err := admin.CreateNetwork(ctx, controller.NetworkRequest{Name: "n", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateSubnet(ctx, controller.SubnetRequest{Network: "n", CIDR: netip.MustParsePrefix("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePort(ctx, controller.PortRequest{Name: "p2", Network: "n", Host: "host2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := host1.BindPort(ctx, "p2", "host1"); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("host1's token binding host2's port: %v, want 403", err)
	}
	if _, _, err := host1.EnsurePort(ctx, controller.PortRequest{Name: "p1", Network: "n"}); err != nil {
		t.Errorf("host1's token creating its own port: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestControllerSocketGroup: --socket-group lets that group use the
// socket (0660, owned by the group).
func TestControllerSocketGroup(t *testing.T) {
	testutil.RequireRoot(t) // chown to another group
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	sec, err := securityFlags{socketGroup: "1"}.prepare("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := sec.listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o660 {
		t.Errorf("socket mode %04o, want 0660", m)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 1 {
		t.Errorf("socket group %d, want 1", gid)
	}
}

// TestBlastSecure: netbed blast reads a controller that serves TLS with
// tokens with --ca and a read token; without the token it fails with the
// controller's 401.
func TestBlastSecure(t *testing.T) {
	dir := t.TempDir()
	if err := writeControllerCerts(dir, nil, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	topo := &topologies.Topology{Name: "blast"}
	topo.AddNode("leaf1", topologies.RoleLeaf)
	topo.AddNode("host-a", topologies.RoleHost)
	topo.Connect("host-a", "eth1", "leaf1", "eth2")
	for _, n := range topo.Nodes {
		n.Kind = "linux"
	}
	topoPath := filepath.Join(dir, "blast.clab.yml")
	if err := clab.WriteFile(topoPath, topo); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "ctl.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := controller.New(st, nil, nil)
	srv := api.NewServer(svc)
	toks, err := api.LoadTokens(dir + "/tokens")
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAuth(&api.Auth{Tokens: toks})
	hs := httptest.NewUnstartedServer(srv)
	if hs.TLS, err = api.ServerTLS(dir+"/server.crt", dir+"/server.key", "", false); err != nil {
		t.Fatal(err)
	}
	hs.StartTLS()
	t.Cleanup(func() { hs.Close(); svc.Close(); st.Close() })
	url := strings.Replace(hs.URL, "127.0.0.1", "localhost", 1)
	code, out, errOut := runCLI("blast", "--topology", topoPath, "--controller", url, "--ca", dir+"/ca.crt", "--token-file", dir+"/token-read", "leaf1")
	if code != 0 || !strings.Contains(out, "leaf1") {
		t.Errorf("blast with --ca and a read token: exit %d, %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI("blast", "--topology", topoPath, "--controller", url, "--ca", dir+"/ca.crt", "leaf1")
	if code == 0 || !strings.Contains(errOut, "no credentials") {
		t.Errorf("blast without a token: exit %d, %q", code, errOut)
	}
}

// TestRunHoldSecureController: a held netns run with controller: {secure:
// true} says how to call its controller (socket, CA, admin token), and
// that works; the same socket refuses a caller without the token.
func TestRunHoldSecureController(t *testing.T) {
	testutil.RequireRoot(t)
	netbedOnPath(t)
	name := testutil.Name("hold-")
	src, err := os.ReadFile("../../scenarios/library/cross-subnet-hops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte("name: cross-subnet-hops"), []byte("name: "+name+"\ncontroller: {secure: true}"), 1)
	src = bytes.ReplaceAll(src, []byte("../../topologies/"), []byte(mustAbs(t, "../../topologies")+"/"))
	file := t.TempDir() + "/hold.yaml"
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, stop := holdRun(t, file)
	defer stop()
	var sock, ca, token string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "controller (TLS, tokens): curl --unix-socket "); ok {
			f := strings.Fields(rest)
			// <socket> --cacert <ca> -H "Authorization: Bearer $(cat <token>)" <url>
			if len(f) >= 8 {
				sock, ca, token = f[0], f[2], strings.TrimSuffix(f[7], ")\"")
			}
		}
	}
	if sock == "" || ca == "" || token == "" {
		t.Fatalf("no secure controller line in:\n%s", stderr.String())
	}
	conf, err := api.ClientTLS(ca, "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient("https://localhost", &http.Client{Transport: &http.Transport{TLSClientConfig: conf,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}})
	ctx := context.Background()
	if _, err := c.ListPorts(ctx); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("without the token: %v, want 401", err)
	}
	tok, err := api.ReadTokenFile(token)
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := c.WithToken(tok).ListPorts(ctx); err != nil || len(ps) == 0 {
		t.Errorf("the held run's ports with the admin token: %d, %v", len(ps), err)
	}
}
