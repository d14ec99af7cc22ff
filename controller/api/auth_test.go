package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/store"
)

// Test tokens, one per caller.
const (
	tokAdmin   = "admin-0123456789abcdef"
	tokNodeA   = "node-a-0123456789abcdef"
	tokNodeB   = "node-b-0123456789abcdef"
	tokCNC     = "cnc-0123456789abcdef"
	tokRead    = "read-0123456789abcdef"
	tokExpired = "expired-0123456789abcdef"
)

var testTokens = `# test tokens
` + tokAdmin + ` admin name=ops
` + tokNodeA + ` node host=host-a
` + tokNodeB + ` node host=host-b
` + tokCNC + ` cnc
` + tokRead + ` read name=dashboard
` + tokExpired + ` admin expires=2026-01-01T00:00:00Z
`

// authFixture is a fixture whose server authenticates with testTokens
// (the clock at 2026-06-01, after the expired token's time).
type authFixture struct {
	*fixture
	api    *Server
	as     map[string]*Client // by token
	anonym *Client
}

func newAuthFixture(t testing.TB) *authFixture {
	t.Helper()
	toks, err := ParseTokens("test", []byte(testTokens))
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
	srv.SetAuth(&Auth{Tokens: toks, Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); svc.Close(); st.Close() })
	anon := NewClient(hs.URL, nil)
	f := &authFixture{fixture: &fixture{st: st, svc: svc, srv: hs, c: anon.WithToken(tokAdmin)}, api: srv, anonym: anon, as: map[string]*Client{}}
	for _, tok := range []string{tokAdmin, tokNodeA, tokNodeB, tokCNC, tokRead, tokExpired} {
		f.as[tok] = anon.WithToken(tok)
	}
	return f
}

// TestAuth: no credentials, a malformed, unknown or expired token are 401;
// a role calling a route it may not is 403; each answer names its rule,
// leaves the store as it was and is counted in /metrics.
func TestAuth(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	f.network(t, "n1", 100, []string{"prod-env"}, "10.0.0.0/24")
	if _, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "pb", Network: "n1", Host: "host-b"}); err != nil {
		t.Fatal(err)
	}

	raw := func(auth string) func() error {
		return func() error {
			req, _ := http.NewRequest("POST", f.fixture.srv.URL+"/v1/networks", strings.NewReader(`{"name":"x","segment":{"type":"vlan","id":9}}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate: Bearer challenge")
			}
			return decodeError(resp)
		}
	}
	create := func(c *Client) func() error {
		return func() error {
			_, err := c.CreateNetwork(ctx, controller.NetworkRequest{Name: "x", Segment: controller.Segment{Type: controller.SegmentVLAN, ID: 9}})
			return err
		}
	}
	cases := []struct {
		name   string
		do     func() error
		status int
		rule   string
	}{
		{"no token", create(f.anonym), 401, RuleCredentials},
		{"basic auth", raw("Basic YWRtaW46YWRtaW4="), 401, RuleTokenFormat},
		{"bearer without token", raw("Bearer "), 401, RuleTokenFormat},
		{"unknown token", create(f.anonym.WithToken("not-a-token-of-this-controller")), 401, RuleTokenUnknown},
		{"expired token", create(f.as[tokExpired]), 401, RuleTokenExpired},
		{"read creates a network", create(f.as[tokRead]), 403, RuleRole},
		{"node creates a network", create(f.as[tokNodeA]), 403, RuleRole},
		{"cnc reports an underlay", func() error {
			_, err := f.as[tokCNC].SetUnderlayState(ctx, "pb", controller.StateUpdate{State: controller.StateBuild})
			return err
		}, 403, RuleRole},
		{"node reports an overlay", func() error {
			_, err := f.as[tokNodeB].SetOverlayState(ctx, "pb", controller.StateUpdate{State: controller.StateActive})
			return err
		}, 403, RuleRole},
		{"node deletes a node block", func() error {
			_, err := f.as[tokNodeA].DeleteNode(ctx, "host-a")
			return err
		}, 403, RuleRole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.dump(t)
			err := c.do()
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != c.status || ae.Rule != c.rule {
				t.Fatalf("got %v (%+v), want %d rule %s", err, ae, c.status, c.rule)
			}
			want := ErrUnauthorized
			if c.status == 403 {
				want = ErrForbidden
			}
			if !errors.Is(err, want) {
				t.Errorf("errors.Is(%v, %v) is false", err, want)
			}
			if after := f.dump(t); !reflect.DeepEqual(before, after) {
				t.Errorf("the store changed on a refused request")
			}
		})
	}
	// What each role may do, it can.
	if _, err := f.as[tokRead].ListPorts(ctx); err != nil {
		t.Errorf("read lists ports: %v", err)
	}
	if _, err := f.as[tokRead].Check(ctx); err != nil {
		t.Errorf("read checks the store: %v", err)
	}
	if _, err := f.as[tokCNC].SetOverlayState(ctx, "pb", controller.StateUpdate{State: controller.StateActive}); err != nil {
		t.Errorf("cnc reports an overlay: %v", err)
	}
	if err := create(f.as[tokAdmin])(); err != nil {
		t.Errorf("admin creates a network: %v", err)
	}
	// /healthz needs no credentials.
	resp, err := http.Get(f.fixture.srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("healthz without a token: %v %v", resp, err)
	}
	metrics := f.metrics(t)
	for _, want := range []string{`netbed_controller_refused_total{rule="credentials"} 1`, `netbed_controller_refused_total{rule="token-expired"} 1`, `netbed_controller_refused_total{rule="role"} 5`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
	f.mustCheck(t)
}

// TestNodeAuthorization: a node binds, reports and deletes only its own
// host's ports and takes only its own block; node A's token binding a
// port of host B is a 403 naming the rule, and nothing changed.
func TestNodeAuthorization(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	f.network(t, "n1", 100, []string{"prod-env"}, "10.0.0.0/24")
	if err := f.svc.SetClusterPool(ctx, controller.ClusterPool{CIDR: netip.MustParsePrefix("10.244.0.0/16"), MaskBits: 24}); err != nil {
		t.Fatal(err)
	}
	a, b := f.as[tokNodeA], f.as[tokNodeB]
	// Host B's agent wires its pod; host A's its own.
	if _, _, err := b.EnsurePort(ctx, controller.PortRequest{Name: "pod-b", Label: "prod-env", Host: "host-b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetUnderlayState(ctx, "pod-b", controller.StateUpdate{State: controller.StateBuild, Host: "host-b"}); err != nil {
		t.Fatal(err)
	}
	pa, _, err := a.EnsurePort(ctx, controller.PortRequest{Name: "pod-a", Label: "prod-env"}) // host unset: its own
	if err != nil || pa.Host != "host-a" {
		t.Fatalf("node A creates its pod's port: %+v %v", pa, err)
	}
	if _, err := a.SetUnderlayState(ctx, "pod-a", controller.StateUpdate{State: controller.StateBuild}); err != nil {
		t.Fatalf("node A reports its own port without naming the host: %v", err)
	}
	if _, err := f.c.CreatePort(ctx, controller.PortRequest{Name: "spare", Network: "n1"}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		do   func() error
		rule string
	}{
		{"bind B's port to A", func() error { _, err := a.BindPort(ctx, "pod-b", "host-a"); return err }, RuleNodeOwnPort},
		{"unbind B's port", func() error { _, err := a.BindPort(ctx, "pod-b", ""); return err }, RuleNodeOwnPort},
		{"bind a port to B", func() error { _, err := a.BindPort(ctx, "spare", "host-b"); return err }, RuleNodeOwnHost},
		{"ensure B's port on A", func() error {
			_, _, err := a.EnsurePort(ctx, controller.PortRequest{Name: "pod-b", Label: "prod-env", Host: "host-a"})
			return err
		}, RuleNodeOwnPort},
		{"create a port on B", func() error {
			_, err := a.CreatePort(ctx, controller.PortRequest{Name: "x", Network: "n1", Host: "host-b"})
			return err
		}, RuleNodeOwnHost},
		{"underlay of B's port", func() error {
			_, err := a.SetUnderlayState(ctx, "pod-b", controller.StateUpdate{State: controller.StateActive})
			return err
		}, RuleNodeOwnPort},
		{"underlay naming B", func() error {
			_, err := a.SetUnderlayState(ctx, "pod-b", controller.StateUpdate{State: controller.StateActive, Host: "host-b"})
			return err
		}, RuleNodeOwnHost},
		{"delete B's port", func() error { _, err := a.DeletePort(ctx, "pod-b"); return err }, RuleNodeOwnPort},
		{"delete an unbound port", func() error { _, err := a.DeletePort(ctx, "spare"); return err }, RuleNodeOwnPort},
		{"take B's block", func() error { _, _, err := a.EnsureNode(ctx, "host-b"); return err }, RuleNodeOwnBlock},
	}
	refused := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.dump(t)
			err := c.do()
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Rule != c.rule || !errors.Is(err, ErrForbidden) {
				t.Fatalf("got %v (%+v), want 403 rule %s", err, ae, c.rule)
			}
			refused++
			if after := f.dump(t); !reflect.DeepEqual(before, after) {
				t.Errorf("the store changed on a refused request")
			}
		})
	}
	p, err := f.c.GetPort(ctx, "pod-b")
	if err != nil || p.Host != "host-b" || p.UnderlayState != controller.StateBuild {
		t.Errorf("pod-b after node A's attempts: host %q underlay %s, %v; want host-b BUILD", p.Host, p.UnderlayState, err)
	}
	// What a node may do: its own block, binding an unbound port to
	// itself, reporting and deleting its own port.
	if n, _, err := a.EnsureNode(ctx, "host-a"); err != nil || !n.PodCIDR.IsValid() {
		t.Errorf("node A takes its own block: %+v %v", n, err)
	}
	if p, err := a.BindPort(ctx, "spare", "host-a"); err != nil || p.Host != "host-a" {
		t.Errorf("node A binds an unbound port to itself: %+v %v", p, err)
	}
	if _, err := a.DeletePort(ctx, "pod-a"); err != nil {
		t.Errorf("node A deletes its own port: %v", err)
	}
	// An admin moves B's port to A (drift); then it is A's.
	if _, err := f.c.BindPort(ctx, "pod-b", "host-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetUnderlayState(ctx, "pod-b", controller.StateUpdate{State: controller.StateBuild}); err != nil {
		t.Errorf("node A reports the port an admin moved to it: %v", err)
	}
	if _, err := b.SetUnderlayState(ctx, "pod-b", controller.StateUpdate{State: controller.StateActive}); !errors.Is(err, ErrForbidden) {
		t.Errorf("node B reports the port that left it: %v, want 403", err)
	}
	got := f.api.Stats().Refused()
	if got[RuleNodeOwnPort] != 7 || got[RuleNodeOwnHost] != 3 || got[RuleNodeOwnBlock] != 1 {
		t.Errorf("refusals counted %v, want node-own-port 7 (6 above and node B after the move), node-own-host 3, node-own-block 1 (of %d)", got, refused)
	}
	if m := f.metrics(t); !strings.Contains(m, `netbed_controller_refused_total{rule="node-own-port"} 7`) {
		t.Errorf("/metrics lacks the node-own-port refusals:\n%s", m)
	}
	f.mustCheck(t)
}

func (f *authFixture) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", f.fixture.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tokRead)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func decodeError(resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, e); err != nil {
		return err
	}
	return e
}

// TestParseTokens: each mistake in a tokens file is an error naming
// file:line and what to write instead.
func TestParseTokens(t *testing.T) {
	long := "0123456789abcdef0123"
	cases := []struct{ name, file, want string }{
		{"short token", "abc admin", "t:1: token of 3 characters; want at least 16"},
		{"unknown role", long + " root", `t:1: role "root"; want admin, node, cnc or read`},
		{"node without host", "# c\n\n" + long + " node", "t:3: role node needs host=<the node's name>"},
		{"host for admin", long + " admin host=h1", "t:1: host= is only for role node, not admin"},
		{"bad expiry", long + " read expires=tomorrow", `t:1: expires "tomorrow": want an RFC 3339 time`},
		{"unknown key", long + " read colour=red", `t:1: unknown key "colour"`},
		{"not key=value", long + " read h1", `t:1: "h1": want key=value`},
		{"one field", long, "t:1: want <token> <role>"},
		{"duplicate", long + " read\n" + long + " admin", "t:2: the same token again"},
		{"empty", "# nothing\n", "tokens file t: no tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTokens("t", []byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	toks, err := ParseTokens("t", []byte(testTokens))
	if err != nil || toks.Len() != 6 {
		t.Fatalf("%v, %d tokens", err, toks.Len())
	}
}

// TestTokenFileMode: a tokens file or token file group or others may
// read is refused, naming the file and its mode.
func TestTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	if err := os.WriteFile(path, []byte(testTokens), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadTokens(path)
	if err == nil || !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), path+" has mode 0644") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 tokens file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(path); err != nil {
		t.Errorf("0600 tokens file: %v", err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(tokAdmin+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(tok); !errors.Is(err, ErrInsecureFile) {
		t.Errorf("0640 token file: %v", err)
	}
	_ = os.Chmod(tok, 0o600)
	if got, err := ReadTokenFile(tok); err != nil || got != tokAdmin {
		t.Errorf("0600 token file: %q %v", got, err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
