package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/netbed/netbed/controller"
)

// Client talks to a controller's API. Its methods mirror the Service's; an
// error response comes back as *Error, which matches the service's
// sentinels with errors.Is.
type Client struct {
	base  string
	hc    *http.Client
	token string // bearer token, "" for none
}

// WithToken returns a copy of c that sends token as its bearer token
// (Authorization: Bearer <token>).
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token = token
	return &d
}

// NewClient returns a client of the controller at base (e.g.
// "http://127.0.0.1:7480", or "https://…" with hc's transport set up by
// ClientTLS). hc nil means a client with keep-alive connections sized for
// many concurrent callers.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// do sends body (if not nil) as JSON and decodes a 2xx response into out
// (if not nil). It returns the status.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "http", fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
		}
		return resp.StatusCode, e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func esc(s string) string { return url.PathEscape(s) }

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, r controller.NetworkRequest) (controller.Network, error) {
	var n controller.Network
	_, err := c.do(ctx, http.MethodPost, "/v1/networks", r, &n)
	return n, err
}

// GetNetwork returns a network by name or ID.
func (c *Client) GetNetwork(ctx context.Context, ref string) (controller.Network, error) {
	var n controller.Network
	_, err := c.do(ctx, http.MethodGet, "/v1/networks/"+esc(ref), nil, &n)
	return n, err
}

// ListNetworks lists networks, only those with label if it is set.
func (c *Client) ListNetworks(ctx context.Context, label string) ([]controller.Network, error) {
	var ns []controller.Network
	path := "/v1/networks"
	if label != "" {
		path += "?label=" + url.QueryEscape(label)
	}
	_, err := c.do(ctx, http.MethodGet, path, nil, &ns)
	return ns, err
}

// CreateSubnet creates a subnet.
func (c *Client) CreateSubnet(ctx context.Context, r controller.SubnetRequest) (controller.Subnet, error) {
	var s controller.Subnet
	_, err := c.do(ctx, http.MethodPost, "/v1/subnets", r, &s)
	return s, err
}

// ListSubnets lists a network's subnets (all when network is empty).
func (c *Client) ListSubnets(ctx context.Context, network string) ([]controller.Subnet, error) {
	var ss []controller.Subnet
	path := "/v1/subnets"
	if network != "" {
		path += "?network=" + url.QueryEscape(network)
	}
	_, err := c.do(ctx, http.MethodGet, path, nil, &ss)
	return ss, err
}

// DeleteSubnet deletes a subnet none of whose addresses is held.
func (c *Client) DeleteSubnet(ctx context.Context, id string) (controller.Subnet, error) {
	var s controller.Subnet
	_, err := c.do(ctx, http.MethodDelete, "/v1/subnets/"+esc(id), nil, &s)
	return s, err
}

// DeleteNetwork deletes a network without subnets.
func (c *Client) DeleteNetwork(ctx context.Context, ref string) (controller.Network, error) {
	var n controller.Network
	_, err := c.do(ctx, http.MethodDelete, "/v1/networks/"+esc(ref), nil, &n)
	return n, err
}

// CreatePort creates a port with its addresses. A bound port comes back
// before its overlay is ACTIVE; WaitPort waits for that.
func (c *Client) CreatePort(ctx context.Context, r controller.PortRequest) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodPost, "/v1/ports", r, &p)
	return p, err
}

// EnsurePort gets or creates the port r.Name, binding it to r.Host (see
// Service.EnsurePort); created tells whether it was new.
func (c *Client) EnsurePort(ctx context.Context, r controller.PortRequest) (controller.Port, bool, error) {
	var p controller.Port
	status, err := c.do(ctx, http.MethodPut, "/v1/ports/"+esc(r.Name), r, &p)
	return p, status == http.StatusCreated || status == http.StatusAccepted, err
}

// EnsureNode returns node name's block of the cluster pool (generation
// 3), giving it one on the first call.
func (c *Client) EnsureNode(ctx context.Context, name string) (controller.Node, bool, error) {
	var n controller.Node
	status, err := c.do(ctx, http.MethodPut, "/v1/nodes/"+esc(name), nil, &n)
	return n, status == http.StatusCreated, err
}

// ListNodes returns every node with its block.
func (c *Client) ListNodes(ctx context.Context) ([]controller.Node, error) {
	var ns []controller.Node
	_, err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &ns)
	return ns, err
}

// DeleteNode gives node name's block back.
func (c *Client) DeleteNode(ctx context.Context, name string) (controller.Node, error) {
	var n controller.Node
	_, err := c.do(ctx, http.MethodDelete, "/v1/nodes/"+esc(name), nil, &n)
	return n, err
}

// GetPort returns the port named name.
func (c *Client) GetPort(ctx context.Context, name string) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodGet, "/v1/ports/"+esc(name), nil, &p)
	return p, err
}

// WaitPort long-polls until the port's status is want or ctx ends (then
// the error matches context.DeadlineExceeded or context.Canceled).
func (c *Client) WaitPort(ctx context.Context, name string, want controller.Status) (controller.Port, error) {
	for {
		wait := MaxWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 {
			p, err := c.GetPort(context.WithoutCancel(ctx), name)
			if err == nil && p.Status() != want {
				err = fmt.Errorf("wait for port %q to be %s (now %s): %w", name, want, p.Status(), context.DeadlineExceeded)
			}
			return p, err
		}
		var p controller.Port
		path := fmt.Sprintf("/v1/ports/%s?wait=%s&timeout=%s", esc(name), url.QueryEscape(string(want)), wait.Round(time.Millisecond))
		_, err := c.do(ctx, http.MethodGet, path, nil, &p)
		if err == nil {
			return p, nil
		}
		var ae *Error
		if errors.As(err, &ae) && ae.Code == "timeout" && ctx.Err() == nil {
			if _, has := ctx.Deadline(); has {
				return p, err
			}
			continue // server capped the poll; ask again
		}
		return p, err
	}
}

// ListPorts lists every port.
func (c *Client) ListPorts(ctx context.Context) ([]controller.Port, error) {
	var ps []controller.Port
	_, err := c.do(ctx, http.MethodGet, "/v1/ports", nil, &ps)
	return ps, err
}

// PortsOnHost lists the ports bound to host.
func (c *Client) PortsOnHost(ctx context.Context, host string) ([]controller.Port, error) {
	var ps []controller.Port
	_, err := c.do(ctx, http.MethodGet, "/v1/ports?host="+url.QueryEscape(host), nil, &ps)
	return ps, err
}

// BindPort binds the port to host ("" unbinds).
func (c *Client) BindPort(ctx context.Context, name, host string) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodPut, "/v1/ports/"+esc(name)+"/binding", BindRequest{Host: host}, &p)
	return p, err
}

// DeletePort deletes the port and frees its addresses; an unknown port is
// an error matching controller.ErrNotFound.
func (c *Client) DeletePort(ctx context.Context, name string) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodDelete, "/v1/ports/"+esc(name), nil, &p)
	return p, err
}

// SetUnderlayState reports the port's wiring on its host.
func (c *Client) SetUnderlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodPut, "/v1/ports/"+esc(name)+"/underlay", u, &p)
	return p, err
}

// SetOverlayState reports the port's leaf configuration.
func (c *Client) SetOverlayState(ctx context.Context, name string, u controller.StateUpdate) (controller.Port, error) {
	var p controller.Port
	_, err := c.do(ctx, http.MethodPut, "/v1/ports/"+esc(name)+"/overlay", u, &p)
	return p, err
}

// AllocateBatch allocates r.Count addresses by network or label.
func (c *Client) AllocateBatch(ctx context.Context, r controller.AllocRequest) ([]controller.Allocation, error) {
	var out AllocResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/allocations", r, &out)
	return out.Allocations, err
}

// Reserve holds a specific address of a network.
func (c *Client) Reserve(ctx context.Context, network string, a netip.Addr, holder string) (controller.Allocation, error) {
	var out controller.Allocation
	_, err := c.do(ctx, http.MethodPost, "/v1/reservations", ReserveRequest{Network: network, Address: a, Holder: holder}, &out)
	return out, err
}

// Release frees addresses of a network held by holder.
func (c *Client) Release(ctx context.Context, network string, addrs []netip.Addr, holder string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/releases", ReleaseRequest{Network: network, Addresses: addrs, Holder: holder}, nil)
	return err
}

// Stats returns request latency per endpoint.
func (c *Client) Stats(ctx context.Context) ([]EndpointStats, error) {
	var out []EndpointStats
	_, err := c.do(ctx, http.MethodGet, "/v1/stats", nil, &out)
	return out, err
}

// Check returns the store's inconsistencies (none when healthy).
func (c *Client) Check(ctx context.Context) ([]string, error) {
	var out CheckResponse
	_, err := c.do(ctx, http.MethodGet, "/v1/check", nil, &out)
	return out.Problems, err
}

var _ controller.API = (*Client)(nil)
