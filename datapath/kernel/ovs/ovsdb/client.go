package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// ErrClosed is returned by Transact after Close, or once the connection
// has failed (the error says how).
var ErrClosed = errors.New("ovsdb: connection closed")

// Client is one JSON-RPC connection to an ovsdb-server. Transact may be
// called from several goroutines; replies are matched to requests by id,
// and the server's echo requests are answered.
type Client struct {
	conn net.Conn
	enc  *json.Encoder

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan response
	err     error // why the connection is done
	done    chan struct{}
}

// request is a JSON-RPC request (RFC 7047 4.1).
type request struct {
	Method string `json:"method"`
	Params []any  `json:"params"`
	ID     any    `json:"id"`
}

// response is a reply, or a request from the server (Method set).
type response struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// NewClient starts a client on conn, which it owns from now on.
func NewClient(conn net.Conn) *Client {
	c := &Client{conn: conn, enc: json.NewEncoder(conn), pending: map[uint64]chan response{}, done: make(chan struct{})}
	go c.read()
	return c
}

// read dispatches what the server sends until the connection ends.
func (c *Client) read() {
	dec := json.NewDecoder(c.conn)
	var err error
	for {
		var m response
		if err = dec.Decode(&m); err != nil {
			break
		}
		if m.Method == "echo" {
			// The server's liveness probe: answer with its params, from
			// another goroutine, so that reading never waits on writing.
			var params []any
			_ = json.Unmarshal(m.Params, &params)
			go func() {
				c.wmu.Lock()
				defer c.wmu.Unlock()
				_ = c.enc.Encode(map[string]any{"result": params, "error": nil, "id": m.ID})
			}()
			continue
		}
		if m.Method != "" {
			continue // a notification netbed did not ask for
		}
		var id uint64
		if json.Unmarshal(m.ID, &id) != nil {
			continue
		}
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %v", ErrClosed, err)
	}
	c.mu.Lock()
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.done)
}

// call sends method with params and waits for the reply's result.
func (c *Client) call(ctx context.Context, method string, params []any) (json.RawMessage, error) {
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	c.wmu.Lock()
	err := c.enc.Encode(request{Method: method, Params: params, ID: id})
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("ovsdb: send %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			var text string
			if json.Unmarshal(m.Error, &text) == nil {
				return nil, fmt.Errorf("%s: %s", method, strings.TrimSpace(text))
			}
			return nil, fmt.Errorf("%s: %s", method, m.Error)
		}
		return m.Result, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Err is why the connection is done (nil while it works).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection; calls waiting for a reply return ErrClosed.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Call sends method with params and returns the reply's result: any
// JSON-RPC method of the server, such as an OVS daemon's unixctl
// command (ovs-appctl's, whose params are its arguments as strings). A
// reply with an error is an error holding its text.
func (c *Client) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	return c.call(ctx, method, params)
}

// TransactError is a transaction the server refused (nothing of it was
// committed): which operation, and the server's error and details (RFC
// 7047 5.2). Op is -1 for an error at commit, after every operation
// succeeded.
type TransactError struct {
	Op      int
	Kind    string // the operation's "op"
	Table   string
	Err     string // the server's error, e.g. "constraint violation"
	Details string
}

func (e *TransactError) Error() string {
	var b strings.Builder
	b.WriteString("ovsdb: transact: ")
	if e.Op < 0 {
		b.WriteString("commit")
	} else {
		fmt.Fprintf(&b, "operation %d (%s %s)", e.Op, e.Kind, e.Table)
	}
	fmt.Fprintf(&b, ": %s", e.Err)
	if e.Details != "" {
		fmt.Fprintf(&b, ": %s", e.Details)
	}
	return b.String()
}

// Result is one operation's result: Count for update, mutate and
// delete, UUID for insert, Rows for select.
type Result struct {
	Count   int              `json:"count"`
	UUID    UUID             `json:"uuid"`
	Rows    []map[string]any `json:"rows"`
	Error   string           `json:"error"`
	Details string           `json:"details"`
}

// Transact runs ops as one transaction on database db and returns their
// results. A refused transaction (nothing committed) is a
// *TransactError naming the operation.
func (c *Client) Transact(ctx context.Context, db string, ops ...Op) ([]Result, error) {
	params := make([]any, 0, len(ops)+1)
	params = append(params, db)
	for _, op := range ops {
		params = append(params, op)
	}
	raw, err := c.call(ctx, "transact", params)
	if err != nil {
		return nil, err
	}
	var res []*Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("ovsdb: transact: result %s: %w", raw, err)
	}
	out := make([]Result, len(res))
	for i, r := range res {
		if r == nil {
			continue // not run: an earlier operation failed
		}
		if r.Error != "" {
			e := &TransactError{Op: -1, Err: r.Error, Details: r.Details}
			if i < len(ops) {
				e.Op, e.Kind, e.Table = i, fmt.Sprint(ops[i]["op"]), fmt.Sprint(ops[i]["table"])
			}
			return nil, e
		}
		out[i] = *r
	}
	if len(out) < len(ops) {
		return nil, fmt.Errorf("ovsdb: transact: %d results for %d operations", len(out), len(ops))
	}
	return out[:len(ops)], nil
}
