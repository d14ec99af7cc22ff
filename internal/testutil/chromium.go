package testutil

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Chromium is a headless Chromium driven through the DevTools protocol
// over a pipe (--remote-debugging-pipe: it reads commands on its fd 3
// and writes answers and events on its fd 4, each a JSON message ended
// by a NUL byte), so that a test needs no port, no WebSocket and no
// client library.
type Chromium struct {
	cmd    *exec.Cmd
	toC    *os.File       // commands, Chromium's fd 3
	fromC  *os.File       // messages, Chromium's fd 4
	stderr *limitedWriter // what Chromium said, for errors

	mu      sync.Mutex
	next    int
	calls   map[int]chan cdpMessage
	events  []cdpMessage
	arrived chan struct{} // closed and replaced when an event arrives
	readErr error         // why the reader stopped
	done    chan struct{} // closed when the reader stops
}

// cdpMessage is a DevTools protocol message: a command's answer (ID) or
// an event (Method), of the browser or of a page's session.
type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// chromiumNames are the names Chromium's binary goes by.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// StartChromium starts a headless Chromium for t and closes it when t
// ends. Without a Chromium on PATH the test is skipped, saying so, or
// fails when NETBED_REQUIRE_PRIVILEGED=1. As root Chromium runs without
// its sandbox (which refuses root).
func StartChromium(t testing.TB) *Chromium {
	t.Helper()
	var bin string
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		Unavailable(t, fmt.Sprintf("no Chromium on PATH (looked for %v): apt-get install chromium", chromiumNames))
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--headless", "--remote-debugging-pipe", "--user-data-dir=" + t.TempDir(),
		"--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--window-size=1200,900", "about:blank"}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox"}, args...)
	}
	c := &Chromium{cmd: exec.Command(bin, args...), toC: toW, fromC: fromR, stderr: &limitedWriter{n: 64 << 10},
		calls: map[int]chan cdpMessage{}, arrived: make(chan struct{}), done: make(chan struct{})}
	c.cmd.ExtraFiles = []*os.File{toR, fromW} // its fd 3 and fd 4
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	toR.Close()
	fromW.Close()
	go c.read()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close chromium: %v", err)
		}
	})
	return c
}

// read dispatches Chromium's messages until its pipe closes.
func (c *Chromium) read() {
	r := bufio.NewReaderSize(c.fromC, 1<<20)
	var err error
	for {
		var raw []byte
		if raw, err = r.ReadBytes(0); err != nil {
			break
		}
		var m cdpMessage
		if err = json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			err = fmt.Errorf("decode %.200q: %w", raw, err)
			break
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch, ok := c.calls[m.ID]; ok {
				delete(c.calls, m.ID)
				ch <- m
			}
		} else {
			c.events = append(c.events, m)
			close(c.arrived)
			c.arrived = make(chan struct{})
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.readErr = err
	c.mu.Unlock()
	close(c.done)
}

// Call sends method with params to the browser (session "") or a page's
// session, and decodes the answer's result into result (unless nil).
func (c *Chromium) Call(ctx context.Context, session, method string, params, result any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMessage, 1)
	c.calls[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if _, err := c.toC.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("%s: send: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (code %d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-c.done:
		return fmt.Errorf("%s: chromium stopped: %v; %s", method, c.readErr, c.stderr.String())
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Wait returns the first event named method of the session, already
// received or still to come.
func (c *Chromium) Wait(ctx context.Context, session, method string) (json.RawMessage, error) {
	for seen := 0; ; {
		c.mu.Lock()
		for ; seen < len(c.events); seen++ {
			if e := c.events[seen]; e.Method == method && e.SessionID == session {
				c.mu.Unlock()
				return e.Params, nil
			}
		}
		arrived := c.arrived
		c.mu.Unlock()
		select {
		case <-arrived:
		case <-c.done:
			return nil, fmt.Errorf("wait for %s: chromium stopped: %v", method, c.readErr)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", method, ctx.Err())
		}
	}
}

// Events returns the parameters of every event named method of the
// session received so far, in order.
func (c *Chromium) Events(session, method string) []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []json.RawMessage
	for _, e := range c.events {
		if e.Method == method && e.SessionID == session {
			out = append(out, e.Params)
		}
	}
	return out
}

// Open opens url in a new page with the Network and Page domains on,
// and waits until it has loaded; it returns the page's session.
func (c *Chromium) Open(ctx context.Context, url string) (string, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return "", err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return "", err
	}
	for _, domain := range []string{"Network.enable", "Page.enable", "Runtime.enable"} {
		if err := c.Call(ctx, att.SessionID, domain, nil, nil); err != nil {
			return "", err
		}
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.Call(ctx, att.SessionID, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return "", err
	}
	if nav.ErrorText != "" {
		return "", fmt.Errorf("open %s: %s", url, nav.ErrorText)
	}
	if _, err := c.Wait(ctx, att.SessionID, "Page.loadEventFired"); err != nil {
		return "", fmt.Errorf("open %s: %w", url, err)
	}
	return att.SessionID, nil
}

// Eval evaluates the JavaScript expression in the page (awaiting a
// promise) and decodes its value, returned as JSON, into out.
func (c *Chromium) Eval(ctx context.Context, session, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := c.Call(ctx, session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("evaluate: %s %s", e.Text, e.Exception.Description)
	}
	return json.Unmarshal(res.Result.Value, out)
}

// Close closes the browser and waits for it to exit (killing it after 5
// seconds).
func (c *Chromium) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Call(ctx, "", "Browser.close", nil, nil)
	c.toC.Close()
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		err = errors.Join(errors.New("chromium did not exit within 5 s of Browser.close; killed"), <-exited)
	}
	c.fromC.Close()
	<-c.done
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return nil // Browser.close may leave it with a non-zero status
	}
	return err
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *limitedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
