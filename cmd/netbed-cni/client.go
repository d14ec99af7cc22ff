package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

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

// newAPIClient returns a client of the controller at raw: http(s)://host:port
// or unix:///path/to/socket.
func newAPIClient(raw string, timeout time.Duration) (*apiClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("controller URL %q: %w", raw, err)
	}
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: timeout}).DialContext}
	base := raw
	if u.Scheme == "unix" {
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).DialContext(ctx, "unix", sock)
		}
		base = "http://controller"
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	return &apiClient{Client: api.NewClient(base, hc), base: base, hc: hc}, nil
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
