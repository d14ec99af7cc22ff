package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
)

// portClient is what the plugin asks of the controller.
type portClient interface {
	// EnsurePort gets the port by r.Name or creates it, bound to r.Host.
	EnsurePort(ctx context.Context, r controller.PortRequest) (controller.Port, bool, error)
	GetPort(ctx context.Context, name string) (controller.Port, error)
	DeletePort(ctx context.Context, name string) (controller.Port, error)
	SetUnderlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error)
	// EnsureNode returns the node's block of the cluster pool (ebpf
	// mode without a nodeCIDR).
	EnsureNode(ctx context.Context, name string) (controller.Node, bool, error)
	// Ping reports whether the controller answers.
	Ping(ctx context.Context) error
}

// apiClient is the portClient of a real controller, over its HTTP API.
type apiClient struct {
	*api.Client
	base string
	hc   *http.Client
}

var _ portClient = (*apiClient)(nil)

// newAPIClient returns a client of the controller c names: at
// http(s)://host:port or unix:///path/to/socket, over TLS with c.CAFile
// (or https), with c's token or client certificate. A file that cannot be
// used is an error naming its field.
func newAPIClient(c *NetConf) (*apiClient, error) {
	raw, timeout := c.ControllerURL, c.timeout
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("controller URL %q: %w", raw, err)
	}
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: timeout}).DialContext}
	base := raw
	secure := u.Scheme == "https" || c.CAFile != ""
	if u.Scheme == "unix" {
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).DialContext(ctx, "unix", sock)
		}
		base = "http://localhost"
		if secure {
			base = "https://localhost"
		}
	}
	if secure {
		conf, err := api.ClientTLS(c.CAFile, c.CertFile, c.KeyFile, c.ServerName)
		if err != nil {
			return nil, fmt.Errorf("netbed-cni config: fields caFile, certFile, keyFile: %w", err)
		}
		tr.TLSClientConfig = conf
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	cl := api.NewClient(base, hc)
	if c.TokenFile != "" {
		tok, err := api.ReadTokenFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("netbed-cni config: field \"tokenFile\": %w", err)
		}
		cl = cl.WithToken(tok)
	}
	return &apiClient{Client: cl, base: base, hc: hc}, nil
}

// Ping asks the controller's /healthz.
func (c *apiClient) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET /healthz: HTTP %d", resp.StatusCode)
	}
	return nil
}
