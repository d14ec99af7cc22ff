package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netbed/netbed/controller"
)

// FuzzRequests sends any method, path, body and credentials to a server
// with tokens: every answer is well-formed JSON (a success, or an error
// with a code and a message; /metrics is text), never a 5xx but a
// request cut by the harness's deadline, and after every refused request
// (status >= 400) the store is as it was and consistent.
func FuzzRequests(f *testing.F) {
	seeds := []struct {
		method, path, body string
		who                uint8
	}{
		{"POST", "/v1/networks", `{"name":"n2","segment":{"type":"vlan","id":12}}`, 1},
		{"POST", "/v1/networks", `{"name":"n3","segment":{"type":"vlan","id":13}}`, 0},
		{"POST", "/v1/networks", `{"name":"n3","segment":{"type":"vlan","id":13}}`, 5},
		{"PUT", "/v1/ports/pb/binding", `{"host":"host-a"}`, 2},
		{"PUT", "/v1/ports/pb/underlay", `{"state":"BUILD","host":"host-b"}`, 3},
		{"PUT", "/v1/ports/pb/underlay", `{"state":"ACTIVE"}`, 2},
		{"PUT", "/v1/ports/pa", `{"label":"prod-env"}`, 2},
		{"PUT", "/v1/ports/pa", `{"label":"prod-env","host":"host-b"}`, 2},
		{"DELETE", "/v1/ports/pb", ``, 2},
		{"PUT", "/v1/ports/pb/overlay", `{"state":"BUILD"}`, 4},
		{"PUT", "/v1/nodes/host-b", ``, 2},
		{"POST", "/v1/allocations", `{"network":"n1","count":100000,"holder":"x"}`, 1},
		{"POST", "/v1/releases", `{"network":"n1","addresses":["10.0.0.9"]}`, 1},
		{"GET", "/v1/ports/pb?wait=ACTIVE_ACTIVE&timeout=1h", ``, 5},
		{"GET", "/v1/nope", ``, 1},
		{"PATCH", "/v1/networks", `{}`, 1},
		{"GET", "/v1//ports/../x", ``, 1},
		{"GET", "/metrics", ``, 5},
		{"GET", "/healthz", ``, 0},
		{"DELETE", "/v1/networks/n1", ``, 6},
		{"POST", "/v1/subnets", `{"network":"n1","cidr":"10.0.0.0/8"}`, 7},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, []byte(s.body), s.who)
	}
	fx := newAuthFixture(f)
	ctx := context.Background()
	fx.network(f, "n1", 100, []string{"prod-env"}, "10.0.0.0/24")
	if _, err := fx.c.CreatePort(ctx, controller.PortRequest{Name: "pb", Network: "n1", Host: "host-b"}); err != nil {
		f.Fatal(err)
	}
	auth := []string{"", "Bearer " + tokAdmin, "Bearer " + tokNodeA, "Bearer " + tokNodeB, "Bearer " + tokCNC, "Bearer " + tokRead, "Bearer " + tokExpired, "Basic YTpi"}
	f.Fuzz(func(t *testing.T, method, path string, body []byte, who uint8) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, method, "http://controller"+path, bytes.NewReader(body))
		if err != nil {
			t.Skip("not a request an HTTP server parses:", err)
		}
		if a := auth[int(who)%len(auth)]; a != "" {
			req.Header.Set("Authorization", a)
		}
		before := fx.dump(t)
		w := httptest.NewRecorder()
		fx.api.ServeHTTP(w, req)
		got := w.Body.Bytes()
		metrics := w.Code == http.StatusOK && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain")
		switch {
		case metrics:
		case len(bytes.TrimSpace(got)) == 0:
			if w.Code != http.StatusNoContent {
				t.Fatalf("%s %q: %d with an empty body", method, path, w.Code)
			}
		case !json.Valid(got):
			t.Fatalf("%s %q: %d, body not JSON: %q", method, path, w.Code, got)
		}
		if w.Code < 400 {
			return
		}
		var e Error
		if err := json.Unmarshal(got, &e); err != nil || e.Code == "" || e.Message == "" {
			t.Fatalf("%s %q: %d, not an error object: %q", method, path, w.Code, got)
		}
		if w.Code >= 500 && !(rctx.Err() != nil && e.Code == "canceled") {
			t.Fatalf("%s %q %q: %d %s", method, path, body, w.Code, got)
		}
		if after := fx.dump(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s %q %q as %d: refused with %d %s, but the store changed", method, path, body, who, w.Code, got)
		}
		if probs, err := fx.svc.Check(ctx); err != nil || len(probs) > 0 {
			t.Fatalf("store check after %s %q: %v %v", method, path, probs, err)
		}
	})
}

// FuzzTokensFile: any tokens file is parsed or refused with an error that
// names the file, never a panic; a parsed one holds at least one token.
func FuzzTokensFile(f *testing.F) {
	f.Add([]byte(testTokens))
	f.Add([]byte("0123456789abcdef0123 node\n"))
	f.Add([]byte("0123456789abcdef0123 read expires=2027-01-01T00:00:00Z name=x\n# c\n"))
	f.Add([]byte("\x00\xff 0123456789abcdef0123 admin host=h"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens("f", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokens file f") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		if toks.Len() == 0 {
			t.Fatal("parsed a tokens file without tokens")
		}
	})
}

// TestLimits: a batch over the server's limit is a 400 naming the field;
// a long-poll over the limit a 429 "busy"; both leave the store alone.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	srv := NewServer(f.svc)
	srv.SetLimits(Limits{MaxBatch: 8, MaxWaits: 1})
	srv.SetLogger(discardLogger())
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := NewClient(hs.URL, nil)
	f.network(t, "n1", 100, nil, "10.0.0.0/24")
	if _, err := c.CreatePort(ctx, controller.PortRequest{Name: "p", Network: "n1", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	before := f.dump(t)
	_, err := c.AllocateBatch(ctx, controller.AllocRequest{Network: "n1", Count: 9, Holder: "x"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "count" || !strings.Contains(ae.Message, "at most 8 addresses in one batch") {
		t.Errorf("batch of 9 over a limit of 8: %v", err)
	}
	addrs := make([]netip.Addr, 9)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)})
	}
	if err := c.Release(ctx, "n1", addrs, "x"); !errors.As(err, &ae) || ae.Field != "addresses" {
		t.Errorf("release of 9 over a limit of 8: %v", err)
	}
	// One long-poll waits; the second is refused at once.
	wctx, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() {
		_, err := c.WaitPort(wctx, "p", controller.StatusActiveActive)
		waiting <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.waits.n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err = c.WaitPort(ctx, "p", controller.StatusActiveActive)
	if !errors.Is(err, ErrBusy) || !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || !strings.Contains(ae.Message, "1 long-polls are already waiting") {
		t.Errorf("second long-poll over a limit of 1: %v", err)
	}
	cancel()
	<-waiting
	if after := f.dump(t); !reflect.DeepEqual(before, after) {
		t.Error("the store changed on refused requests")
	}
	if _, err := c.AllocateBatch(ctx, controller.AllocRequest{Network: "n1", Count: 8, Holder: "x"}); err != nil {
		t.Errorf("batch at the limit: %v", err)
	}
}

// TestNoRoute: a path no route serves is a JSON 404, a route's other
// method a JSON 405 with Allow.
func TestNoRoute(t *testing.T) {
	f := newFixture(t, nil)
	checkResponse(t, f.srv.URL, "GET", "/v1/nope", "", 404, "not_found", "", "no route GET /v1/nope; the routes are listed on api.Server")
	checkResponse(t, f.srv.URL, "PATCH", "/v1/networks", "", 405, "method_not_allowed", "", "PATCH /v1/networks: method not allowed; allowed: GET, HEAD, POST")
	checkResponse(t, f.srv.URL, "GET", "/v1//networks", "", 404, "not_found", "", "no route GET /v1//networks; write the path without empty, . or .. segments")
}
