package netnsrt_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/internal/testutil"
	"github.com/netbed/netbed/scenarios"
)

// TestSecureController runs pod-drift-keeps-ip on netns with
// `controller: {secure: true}`: the controller process serves TLS with
// tokens on its socket, the backend calls it as admin, the CNC by its
// client certificate, the CNI plugin as each host's node; every check
// holds. While the lab is held, a caller without a token gets a 401 and
// host1's token cannot take app-1, which drifted to host5.
func TestSecureController(t *testing.T) {
	testutil.RequireRoot(t)
	data, err := os.ReadFile("../library/pod-drift-keeps-ip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := scenarios.Parse("secure-drift.yaml", append([]byte("controller: {secure: true}\n"), data...))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Controller.Secure {
		t.Fatal("controller.secure did not parse")
	}
	var progress []string
	held := false
	hold := func(ctx context.Context, b scenarios.Backend, _ []scenarios.Instance) error {
		held = true
		fb, ok := b.(*scenarios.FabricBackend)
		if !ok {
			t.Fatalf("backend %T", b)
		}
		ep, ok := fb.ControllerEndpoint()
		if !ok || ep.CA == "" || ep.Tokens["host1"] == "" {
			t.Fatalf("controller endpoint %+v, %v; want a CA and host tokens", ep, ok)
		}
		client := func(who string) *api.Client {
			conf, err := api.ClientTLS(ep.CA, "", "", "localhost")
			if err != nil {
				t.Fatal(err)
			}
			c := api.NewClient("https://localhost", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf,
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", ep.Socket)
				}}})
			if who == "" {
				return c
			}
			tok, err := api.ReadTokenFile(ep.Tokens[who])
			if err != nil {
				t.Fatal(err)
			}
			return c.WithToken(tok)
		}
		if _, err := client("").ListPorts(ctx); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("no token: %v, want 401", err)
		}
		before, err := client("read").GetPort(ctx, "app-1")
		if err != nil || before.Host != "host5" {
			t.Fatalf("app-1: %+v %v; want bound to host5", before, err)
		}
		_, err = client("host1").BindPort(ctx, "app-1", "host1")
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Rule != api.RuleNodeOwnPort {
			t.Errorf("host1's token binding host5's port: %v, want 403 %s", err, api.RuleNodeOwnPort)
		}
		if after, err := client("read").GetPort(ctx, "app-1"); err != nil || after.Host != "host5" || len(after.Transitions) != len(before.Transitions) {
			t.Errorf("app-1 after the refused bind: %+v %v", after, err)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://localhost/metrics", nil)
		tok, _ := api.ReadTokenFile(ep.Tokens["read"])
		req.Header.Set("Authorization", "Bearer "+tok)
		conf, _ := api.ClientTLS(ep.CA, "", "", "localhost")
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: conf, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", ep.Socket)
		}}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), `netbed_controller_refused_total{rule="node-own-port"} 1`) {
			t.Errorf("/metrics lacks the refusal:\n%s", metrics)
		}
		return nil
	}
	run, err := scenarios.Run(context.Background(), s, scenarios.GenEVPN, scenarios.NewFabricBackend(scenarios.FabricOptions{
		Runtime: newRuntime(t, s.Name), StoreDir: t.TempDir()}), scenarios.Options{Hold: hold, Progress: func(m string) { progress = append(progress, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatal("the run was not held")
	}
	for _, c := range run.Checks {
		if !c.Passed {
			t.Errorf("step %d (line %d) %s: %s", c.Step, c.Line, c.What, c.Detail)
		}
	}
	if len(run.Checks) == 0 {
		t.Error("no checks ran")
	}
	if !strings.Contains(strings.Join(progress, "\n"), "controller: TLS with tokens and client certificates") {
		t.Errorf("the run did not say it secured the controller: %q", progress)
	}
}
