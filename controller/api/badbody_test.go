package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/store"
)

// failingStore is a real bbolt store that, once broken, fails every
// write with bbolt's own words, as a full disk would.
type failingStore struct {
	store.Store
	broken atomic.Bool
}

func (f *failingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if f.broken.Load() {
		return errors.New("bbolt: write /var/lib/x.db: no space left on device")
	}
	return f.Store.Update(ctx, fn)
}

// TestBadBodies: a malformed body gets a 400 that names what was wrong
// (and the field, where there is one) in the API's words, never the JSON
// decoder's; an internal failure gets a 500 without the store's words,
// which go to the server's log.
func TestBadBodies(t *testing.T) {
	bolt, err := store.OpenBolt(filepath.Join(t.TempDir(), "ctl.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &failingStore{Store: bolt}
	svc := controller.New(st, nil, nil)
	srv := NewServer(svc)
	var logged bytes.Buffer
	srv.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); svc.Close(); bolt.Close() })

	cases := []struct {
		name, method, path, body string
		status                   int
		code, field, msg         string
	}{
		{"empty body", "POST", "/v1/networks", "", 400, "invalid", "", "POST /v1/networks: the body is empty; send a JSON object"},
		{"not JSON", "POST", "/v1/networks", "name=blue", 400, "invalid", "", "POST /v1/networks: the body is not valid JSON (at byte 2)"},
		{"cut short", "POST", "/v1/networks", `{"name": "blue", "segment": {`, 400, "invalid", "", "POST /v1/networks: the body ends in the middle of its JSON object"},
		{"an array", "POST", "/v1/subnets", `[1, 2]`, 400, "invalid", "", "POST /v1/subnets: the body is JSON array; send a JSON object"},
		{"wrong type", "POST", "/v1/networks", `{"name": "blue", "segment": {"type": "vxlan", "id": "seven"}}`, 400, "invalid", "segment.id", `POST /v1/networks: field "segment.id": want a whole number from 0, got JSON string`},
		{"unknown field", "POST", "/v1/networks", `{"name": "blue", "colour": "red"}`, 400, "invalid", "colour", `POST /v1/networks: unknown field "colour"`},
		{"bad address", "POST", "/v1/subnets", `{"network": "blue", "cidr": "10.0.0.0/33"}`, 400, "invalid", "", `POST /v1/subnets: a value in the body is not valid: addresses are written like "10.0.0.5", prefixes like "10.0.0.0/24", states and segment types as the API documents them`},
		{"two objects", "POST", "/v1/networks", `{"name": "a"} {"name": "b"}`, 400, "invalid", "", "POST /v1/networks: the body goes on after its JSON object; send one object"},
		{"too large", "POST", "/v1/networks", `{"name": "` + strings.Repeat("x", maxBody) + `"}`, 400, "invalid", "", fmt.Sprintf("POST /v1/networks: the body is larger than %d bytes", maxBody)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkResponse(t, hs.URL, c.method, c.path, c.body, c.status, c.code, c.field, c.msg)
		})
	}
	t.Run("store failure", func(t *testing.T) {
		st.broken.Store(true)
		defer st.broken.Store(false)
		logged.Reset()
		checkResponse(t, hs.URL, "POST", "/v1/networks", `{"name": "blue", "segment": {"type": "vlan", "id": 10}}`, 500, "internal", "", internalMessage)
		if !strings.Contains(logged.String(), "no space left on device") {
			t.Errorf("the cause is not in the server's log: %q", logged.String())
		}
	})
	// The decoder's words behind a 400 are logged too.
	logged.Reset()
	checkResponse(t, hs.URL, "POST", "/v1/networks", "name=blue", 400, "invalid", "", "POST /v1/networks: the body is not valid JSON (at byte 2)")
	if !strings.Contains(logged.String(), "invalid character") {
		t.Errorf("the decoder's error is not in the log: %q", logged.String())
	}
}

func checkResponse(t *testing.T, url, method, path, body string, status int, code, field, msg string) {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Error
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("status %d, body not an error object: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != status || got.Code != code || got.Field != field || got.Message != msg {
		t.Errorf("got %d %q field %q %q\nwant %d %q field %q %q", resp.StatusCode, got.Code, got.Field, got.Message, status, code, field, msg)
	}
	for _, internal := range []string{"json:", "cannot unmarshal", "invalid character", "bbolt", "EOF", "http:", "netip"} {
		if strings.Contains(got.Message, internal) {
			t.Errorf("the response carries Go's internal text %q: %s", internal, got.Message)
		}
	}
}
